/**
 * The key of a flow as the connection tracker stores it, written into a reusable Int32Array: always
 * oriented from this node's side — (family, protocol, local port, remote port, local address, remote
 * address) — so an outbound packet (local = source) and the inbound reply (local = destination) build
 * the same key. For ICMP echo the local "port" is the echo identifier and the remote one 0.
 * @module
 */
import type { ParsedPacket } from "./packet-parse.ts";

/** Words in a flow key. */
export const FLOW_KEY_WORDS = 10;

function word(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** Writes the 4 words of the address at `off` (IPv4: one word, then zeros). */
export function writeAddress(key: Int32Array, at: number, buf: Uint8Array, off: number, family: 4 | 6): void {
  key[at] = word(buf, off);
  if (family === 4) {
    key[at + 1] = key[at + 2] = key[at + 3] = 0;
  } else {
    key[at + 1] = word(buf, off + 4);
    key[at + 2] = word(buf, off + 8);
    key[at + 3] = word(buf, off + 12);
  }
}

/**
 * Writes the key of `pkt` (parsed from `buf`) into `key`: `outbound` true when this node sent it (local
 * = source), false for a packet to this node (local = destination). `localPort`/`remotePort` are given
 * by the caller, which knows what a "port" is for the protocol.
 */
export function writeFlowKey(
  key: Int32Array,
  buf: Uint8Array,
  pkt: ParsedPacket,
  outbound: boolean,
  localPort: number,
  remotePort: number,
): void {
  key[0] = (pkt.family << 16) | (pkt.proto << 8);
  key[1] = (localPort << 16) | remotePort;
  writeAddress(key, 2, buf, outbound ? pkt.srcOff : pkt.dstOff, pkt.family);
  writeAddress(key, 6, buf, outbound ? pkt.dstOff : pkt.srcOff, pkt.family);
}
