/**
 * The packets of the aes0 → wg0 in-process hand-off (docs/offload.md), pure and allocation-free.
 * When both layers run in one process, an aes0 datagram does not cross the kernel's UDP stack: on
 * send, {@link writeHandoffHeader} puts the IPv4/IPv6 + UDP header the kernel would have built in
 * front of the sealed aes0 message, so wg0 seals it as if it had read it from its TUN; on receive,
 * {@link readHandoffDatagram} recognises a packet wg0 opened that the kernel would have delivered
 * to aes0's socket, checks what the kernel would have checked (IP header, addresses, port, UDP
 * length) and yields the aes0 message with its source as the sockaddr `recvmmsg` gives.
 *
 * The UDP checksum is the one thing not done the socket's way. wg0's AEAD authenticates every byte
 * of a handed-off packet end to end, so a checksum over it can only repeat what the peer computed:
 * kernel WireGuard marks the packets it decrypts CHECKSUM_UNNECESSARY for that reason. So the
 * receive side does not verify it, and the send side leaves it out over IPv4 (0: "no checksum", as a
 * socket with SO_NO_CHECK sends, which every IPv4 receiver accepts) and computes it over IPv6, where
 * it is mandatory. Each spares a pass over every datagram.
 * @module
 */
import { AF_INET, AF_INET6 } from "../../../ffi/libc.ts";
import {
  SIN6_ADDR,
  SIN6_V4_MAPPED_ADDR,
  SIN_ADDR,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_PORT,
} from "../../../ffi/udp.ts";
import { isV4Mapped } from "../../../ffi/ip-text.ts";
import { checksumOf, PROTO_UDP, pseudoHeaderSum, sumBytes } from "../offload/checksum.ts";
import {
  getU16,
  IPV4_CHECKSUM,
  IPV4_FLAGS_FRAGMENT,
  IPV4_ID,
  IPV4_MIN_HEADER,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOS,
  IPV4_TOTAL_LENGTH,
  IPV4_TTL,
  IPV4_VERSION_IHL,
  IPV6_HEADER,
  IPV6_HOP_LIMIT,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
  IPV6_SRC,
  MAX_IP_PACKET,
  putU16,
  UDP_CHECKSUM,
  UDP_HEADER,
  UDP_LENGTH,
} from "../offload/packet-layout.ts";

/** TTL / hop limit of a handed-off packet: Linux's default (net.ipv4.ip_default_ttl, IPv6 hop_limit). */
export const HANDOFF_TTL = 64;
/** IPv4 flags byte with Don't Fragment set: what Linux puts on UDP under its default PMTU discovery. */
const IPV4_DF = 0x40;
/** Bytes of the header the hand-off builds: IPv4 + UDP. */
export const HANDOFF_HEADER_V4 = IPV4_MIN_HEADER + UDP_HEADER;
/** Bytes of the header the hand-off builds: IPv6 + UDP. */
export const HANDOFF_HEADER_V6 = IPV6_HEADER + UDP_HEADER;

/**
 * The local end of aes0's socket: its address (4 or 16 bytes: the node's wg0 address) and port.
 * Handed-off packets leave from it and are accepted only when addressed to it.
 */
export interface HandoffLocal {
  /** The address bytes (4: IPv4, 16: IPv6). */
  readonly address: Uint8Array;
  /** aes0's UDP port. */
  readonly port: number;
}

/** Why {@link writeHandoffHeader} built no header. */
export const HandoffSendError = {
  /** The endpoint is not a sockaddr of the local address's family (the kernel: EAFNOSUPPORT). */
  family: -1,
  /** The packet would exceed `maxPacket` (the kernel: EMSGSIZE for a DF packet). */
  tooBig: -2,
} as const;

/**
 * The header length for sending to the sockaddr at `endpoint[off]` from `local`: 28 (IPv4), 48
 * (IPv6), or {@link HandoffSendError.family} when the endpoint's family does not match. An IPv4-mapped
 * sockaddr_in6 counts as IPv4.
 */
export function handoffHeaderLength(local: HandoffLocal, endpoint: Uint8Array, off: number): number {
  const v4 = local.address.length === 4;
  const family = endpoint[off] | (endpoint[off + 1] << 8);
  if (family === AF_INET) return v4 ? HANDOFF_HEADER_V4 : HandoffSendError.family;
  if (family !== AF_INET6) return HandoffSendError.family;
  return isV4Mapped(endpoint, off + SIN6_ADDR) === v4
    ? (v4 ? HANDOFF_HEADER_V4 : HANDOFF_HEADER_V6)
    : HandoffSendError.family;
}

/**
 * Writes the IP + UDP header from `local` to the sockaddr at `endpoint[epOff]` into
 * `buf[at, at + header)`, for the `payloadLen` bytes already at `buf[at + header…]`: lengths, TTL 64,
 * IPv4 DF and identification `ipId`, the IPv4 header checksum, and the UDP checksum over the payload
 * for IPv6 (IPv4: none, see the module doc).
 * Returns the header length, or a {@link HandoffSendError} (nothing usable written) when the family
 * does not match or the packet would exceed `maxPacket` (wg0's MTU).
 */
export function writeHandoffHeader(
  buf: Uint8Array,
  at: number,
  local: HandoffLocal,
  endpoint: Uint8Array,
  epOff: number,
  payloadLen: number,
  ipId: number,
  maxPacket: number,
): number {
  const header = handoffHeaderLength(local, endpoint, epOff);
  if (header < 0) return header;
  const total = header + payloadLen;
  if (total > maxPacket || total > MAX_IP_PACKET) return HandoffSendError.tooBig;
  const v4 = header === HANDOFF_HEADER_V4;
  const udpLen = UDP_HEADER + payloadLen;
  const addrLen = v4 ? 4 : 16;
  const srcAt = at + (v4 ? IPV4_SRC : IPV6_SRC);
  const epAddr = epOff + (endpoint[epOff] === AF_INET ? SIN_ADDR : v4 ? SIN6_V4_MAPPED_ADDR : SIN6_ADDR);
  buf.set(local.address, srcAt);
  for (let k = 0; k < addrLen; k++) buf[srcAt + addrLen + k] = endpoint[epAddr + k];
  if (v4) {
    buf[at + IPV4_VERSION_IHL] = 0x45;
    buf[at + IPV4_TOS] = 0;
    putU16(buf, at + IPV4_TOTAL_LENGTH, total);
    putU16(buf, at + IPV4_ID, ipId & 0xffff);
    buf[at + IPV4_FLAGS_FRAGMENT] = IPV4_DF;
    buf[at + IPV4_FLAGS_FRAGMENT + 1] = 0;
    buf[at + IPV4_TTL] = HANDOFF_TTL;
    buf[at + IPV4_PROTOCOL] = PROTO_UDP;
    putU16(buf, at + IPV4_CHECKSUM, 0);
    putU16(buf, at + IPV4_CHECKSUM, checksumOf(sumBytes(buf, at, at + IPV4_MIN_HEADER, 0)));
  } else {
    buf[at] = 0x60;
    buf[at + 1] = buf[at + 2] = buf[at + 3] = 0;
    putU16(buf, at + IPV6_PAYLOAD_LENGTH, udpLen);
    buf[at + IPV6_NEXT_HEADER] = PROTO_UDP;
    buf[at + IPV6_HOP_LIMIT] = HANDOFF_TTL;
  }
  const udp = at + header - UDP_HEADER;
  putU16(buf, udp, local.port);
  buf[udp + 2] = endpoint[epOff + SOCKADDR_PORT];
  buf[udp + 3] = endpoint[epOff + SOCKADDR_PORT + 1];
  putU16(buf, udp + UDP_LENGTH, udpLen);
  putU16(buf, udp + UDP_CHECKSUM, 0); // IPv4: "no checksum"
  if (!v4) {
    const sum = sumBytes(buf, udp, at + total, pseudoHeaderSum(buf, srcAt, addrLen, PROTO_UDP, udpLen));
    putU16(buf, udp + UDP_CHECKSUM, checksumOf(sum) || 0xffff); // a computed 0 is sent as 0xffff
  }
  return header;
}

/** What {@link readHandoffDatagram} made of a packet wg0 opened. */
export const enum HandoffReceive {
  /** Not for aes0's socket (another address, protocol or port, or a fragment): deliver it to the TUN. */
  notForAes0,
  /** An aes0 datagram: its payload and source are in the {@link HandoffDatagram}. */
  datagram,
  /** For aes0's socket but malformed (IP header checksum, lengths; over IPv6 no UDP checksum): dropped, as by the kernel. */
  dropped,
}

/** Where {@link readHandoffDatagram} puts an accepted datagram (reused, no allocation). */
export class HandoffDatagram {
  /** Offset of the UDP payload (the aes0 message) in the buffer. */
  payloadAt = 0;
  /** Bytes of UDP payload. */
  payloadLen = 0;
  /** Length of the source sockaddr written (16 or 28). */
  sourceLen = 0;
}

/**
 * Classifies the IP packet at `buf[at, at + len)` (already opened by wg0, its length from its own
 * header): is it a UDP datagram to `local` (address and port) the kernel would deliver to aes0's
 * socket? When it is, fills `out` and writes the source as the sockaddr `recvmmsg` on that socket
 * would (sockaddr_in for IPv4, sockaddr_in6 for IPv6) at `source[sourceOff]`. IPv4 fragments are not
 * handed off (the kernel reassembles them and delivers them to the socket, as without the hand-off).
 */
export function readHandoffDatagram(
  buf: Uint8Array,
  at: number,
  len: number,
  local: HandoffLocal,
  out: HandoffDatagram,
  source: Uint8Array,
  sourceOff: number,
): HandoffReceive {
  const v4 = local.address.length === 4;
  const version = buf[at] >> 4;
  if (version !== (v4 ? 4 : 6)) return HandoffReceive.notForAes0;
  let ipHeader: number;
  if (v4) {
    ipHeader = (buf[at + IPV4_VERSION_IHL] & 0x0f) * 4;
    if (len < IPV4_MIN_HEADER || ipHeader < IPV4_MIN_HEADER || ipHeader > len) {
      return HandoffReceive.notForAes0;
    }
    if (buf[at + IPV4_PROTOCOL] !== PROTO_UDP || !addressIs(buf, at + IPV4_SRC + 4, local.address)) {
      return HandoffReceive.notForAes0;
    }
    if ((getU16(buf, at + IPV4_FLAGS_FRAGMENT) & 0x3fff) !== 0) return HandoffReceive.notForAes0; // MF or offset
    if (checksumOf(sumBytes(buf, at, at + ipHeader, 0)) !== 0) return HandoffReceive.dropped;
    if (getU16(buf, at + IPV4_TOTAL_LENGTH) !== len) return HandoffReceive.dropped;
  } else {
    ipHeader = IPV6_HEADER;
    if (len < IPV6_HEADER || buf[at + IPV6_NEXT_HEADER] !== PROTO_UDP) return HandoffReceive.notForAes0;
    if (!addressIs(buf, at + IPV6_SRC + 16, local.address)) return HandoffReceive.notForAes0;
    if (IPV6_HEADER + getU16(buf, at + IPV6_PAYLOAD_LENGTH) !== len) return HandoffReceive.dropped;
  }
  const udp = at + ipHeader;
  if (len - ipHeader < UDP_HEADER) return HandoffReceive.dropped;
  if (getU16(buf, udp + 2) !== local.port) return HandoffReceive.notForAes0;
  const udpLen = getU16(buf, udp + UDP_LENGTH);
  if (udpLen < UDP_HEADER || udpLen > len - ipHeader) return HandoffReceive.dropped;
  // The checksum itself is not verified (wg0 authenticated the packet; see the module doc), but
  // IPv6 forbids leaving it out, and the kernel drops such a datagram.
  if (!v4 && getU16(buf, udp + UDP_CHECKSUM) === 0) return HandoffReceive.dropped;
  const addrLen = v4 ? 4 : 16;
  const srcAt = at + (v4 ? IPV4_SRC : IPV6_SRC);
  out.payloadAt = udp + UDP_HEADER;
  out.payloadLen = udpLen - UDP_HEADER;
  out.sourceLen = writeSourceSockaddr(buf, srcAt, addrLen, udp, source, sourceOff);
  return HandoffReceive.datagram;
}

/** Writes the packet's source address and UDP source port as a sockaddr_in/in6; returns its length. */
function writeSourceSockaddr(
  buf: Uint8Array,
  srcAt: number,
  addrLen: number,
  udp: number,
  out: Uint8Array,
  off: number,
): number {
  const size = addrLen === 4 ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE;
  out.fill(0, off, off + size);
  const family = addrLen === 4 ? AF_INET : AF_INET6;
  out[off] = family & 0xff;
  out[off + 1] = family >> 8;
  out[off + SOCKADDR_PORT] = buf[udp];
  out[off + SOCKADDR_PORT + 1] = buf[udp + 1];
  const addrAt = off + (addrLen === 4 ? SIN_ADDR : SIN6_ADDR);
  for (let k = 0; k < addrLen; k++) out[addrAt + k] = buf[srcAt + k];
  return size;
}

function addressIs(buf: Uint8Array, at: number, address: Uint8Array): boolean {
  for (let k = 0; k < address.length; k++) if (buf[at + k] !== address[k]) return false;
  return true;
}
