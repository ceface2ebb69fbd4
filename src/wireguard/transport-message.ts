/**
 * Sealing and opening one WireGuard transport message in place, with no I/O: the send and receive paths
 * of the data plane (`src/wireguard/dataplane/`) call these on their batch buffers, and the unit tests call them on
 * buffers of their own. A transport message is the 16-byte header (type 4, receiver index, little-endian
 * 64-bit counter), the plaintext padded to a multiple of 16 bytes (never past the MTU), and the AEAD tag;
 * the counter is the AEAD nonce (whitepaper §5.4.6).
 * @module
 */
import type { AeadKey } from "../crypto/aead.ts";
import {
  MessageTransportHeaderSize,
  MessageTransportOffsetCounter,
  MessageTransportOffsetReceiver,
  readU32LE,
  writeTransportHeader,
} from "./messages.ts";

/** Bytes before a transport message's encrypted body (type, reserved, receiver index, counter). */
export const TRANSPORT_HEADER = MessageTransportHeaderSize;
/** Bytes of the AEAD tag after the encrypted body (both suites' AEADs have 16). */
export const TRANSPORT_TAG = 16;
/** Plaintext is zero-padded to a multiple of this many bytes before sealing (whitepaper §5.4.6). */
export const PADDING_MULTIPLE = 16;
/** Counters at or above 2^53 are not exact as JavaScript numbers; such a message is refused as expired. */
const COUNTER_HIGH_WORD_LIMIT = 0x200000;
/** 2^32, to join the counter's two little-endian words. */
const WORD = 4294967296;

/**
 * The body length sealed for `len` bytes of plaintext: padded up to `PADDING_MULTIPLE`, but not past
 * `mtu` (0 = no MTU known). A keepalive (0 bytes) stays empty. Where `len` exceeds the MTU the padding is
 * judged on what the last MTU-sized piece would be, as wireguard-go does.
 */
export function paddedBodyLength(len: number, mtu: number): number {
  let last = len;
  if (mtu > 0 && last > mtu) last %= mtu;
  let padded = (last + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  if (mtu > 0 && padded > mtu) padded = mtu;
  return len + (padded - last);
}

/**
 * Seals the plaintext at `buf[TRANSPORT_HEADER, TRANSPORT_HEADER + len)` in place as a transport message
 * to `remoteIndex` under `counter`: zero padding, header, encrypted body and tag. `buf` must have room
 * for the padding and the tag. Returns the message's total length.
 */
export function sealTransport(
  key: AeadKey,
  buf: Uint8Array,
  len: number,
  remoteIndex: number,
  counter: number,
  mtu: number,
): number {
  const bodyLen = paddedBodyLength(len, mtu);
  if (bodyLen > len) buf.fill(0, TRANSPORT_HEADER + len, TRANSPORT_HEADER + bodyLen);
  writeTransportHeader(buf, remoteIndex, counter);
  key.sealInPlace(counter, buf, TRANSPORT_HEADER, bodyLen);
  return TRANSPORT_HEADER + bodyLen + TRANSPORT_TAG;
}

/** The receiver index of the transport message in `buf` (our local index, which names the keypair). */
export function transportReceiver(buf: Uint8Array): number {
  return readU32LE(buf, MessageTransportOffsetReceiver);
}

/**
 * The counter of the transport message in `buf`, or -1 when it is 2^53 or more (no key lives that long:
 * such a message is refused like an expired one).
 */
export function transportCounter(buf: Uint8Array): number {
  const hi = readU32LE(buf, MessageTransportOffsetCounter + 4);
  if (hi >= COUNTER_HIGH_WORD_LIMIT) return -1;
  return hi * WORD + readU32LE(buf, MessageTransportOffsetCounter);
}

/**
 * Opens the transport message `buf[0, len)` in place under `counter` (read with `transportCounter`):
 * afterwards the plaintext (with its padding) is at `buf[TRANSPORT_HEADER, len - TRANSPORT_TAG)`. False
 * when authentication fails; the caller then drops the message and must not use the buffer's body.
 */
export function openTransport(key: AeadKey, buf: Uint8Array, len: number, counter: number): boolean {
  return key.openInPlace(counter, buf, TRANSPORT_HEADER, len - TRANSPORT_HEADER);
}
