/**
 * WireGuard message layouts (docs/design.md §2.2): type constants, sizes, field offsets,
 * little-endian integer helpers and the cheap first-pass classifier {@link messageType}.
 *
 * Every message starts with `type u8 ‖ 3 zero bytes`; indices are LE u32, counters LE u64.
 * @module
 */

/** Handshake initiation. */
export const MessageInitiationType = 1;
/** Handshake response. */
export const MessageResponseType = 2;
/** Cookie reply. */
export const MessageCookieReplyType = 3;
/** Transport data. */
export const MessageTransportType = 4;

/** Size of a handshake initiation. */
export const MessageInitiationSize = 148;
/** Size of a handshake response. */
export const MessageResponseSize = 92;
/** Size of a cookie reply. */
export const MessageCookieReplySize = 64;
/** Size of the transport header (type, receiver, counter). */
export const MessageTransportHeaderSize = 16;
/** Smallest transport message: header plus a 16-byte tag (a keepalive). */
export const MessageTransportSize = 32;
/** Size of a keepalive (empty transport message). */
export const MessageKeepaliveSize = 32;

/** Offset of the sender index in an initiation. */
export const InitiationOffsetSender = 4;
/** Offset of the unencrypted ephemeral in an initiation. */
export const InitiationOffsetEphemeral = 8;
/** Offset of the encrypted static key (32 + 16) in an initiation. */
export const InitiationOffsetStatic = 40;
/** Offset of the encrypted TAI64N timestamp (12 + 16) in an initiation. */
export const InitiationOffsetTimestamp = 88;
/** Offset of mac1 in an initiation. */
export const InitiationOffsetMac1 = 116;
/** Offset of mac2 in an initiation. */
export const InitiationOffsetMac2 = 132;

/** Offset of the sender index in a response. */
export const ResponseOffsetSender = 4;
/** Offset of the receiver index in a response. */
export const ResponseOffsetReceiver = 8;
/** Offset of the unencrypted ephemeral in a response. */
export const ResponseOffsetEphemeral = 12;
/** Offset of the encrypted empty payload (0 + 16) in a response. */
export const ResponseOffsetEmpty = 44;
/** Offset of mac1 in a response. */
export const ResponseOffsetMac1 = 60;
/** Offset of mac2 in a response. */
export const ResponseOffsetMac2 = 76;

/** Offset of the receiver index in a cookie reply. */
export const CookieReplyOffsetReceiver = 4;
/** Offset of the 24-byte nonce in a cookie reply. */
export const CookieReplyOffsetNonce = 8;
/** Offset of the encrypted cookie (16 + 16) in a cookie reply. */
export const CookieReplyOffsetCookie = 32;

/** Offset of the receiver index in a transport message. */
export const MessageTransportOffsetReceiver = 4;
/** Offset of the counter in a transport message. */
export const MessageTransportOffsetCounter = 8;
/** Offset of the encrypted content in a transport message. */
export const MessageTransportOffsetContent = 16;

/** Length of mac1 and mac2. */
export const MAC_LEN = 16;

/** Offset of mac1 in an initiation or response of length `messageLength`. */
export function mac1Offset(messageLength: number): number {
  return messageLength - 2 * MAC_LEN;
}

/** Offset of mac2 in an initiation or response of length `messageLength`. */
export function mac2Offset(messageLength: number): number {
  return messageLength - MAC_LEN;
}

/** Reads a little-endian u32. */
export function readU32LE(buf: Uint8Array, offset: number): number {
  return (buf[offset] | (buf[offset + 1] << 8) | (buf[offset + 2] << 16) | (buf[offset + 3] << 24)) >>> 0;
}

/** Writes a little-endian u32. */
export function writeU32LE(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value & 0xff;
  buf[offset + 1] = (value >>> 8) & 0xff;
  buf[offset + 2] = (value >>> 16) & 0xff;
  buf[offset + 3] = (value >>> 24) & 0xff;
}

/**
 * Reads a little-endian u64 as a number. Exact below 2^53; larger values come back inexact but
 * still ≥ 2^53, so range checks against `Number.MAX_SAFE_INTEGER` stay correct.
 */
export function readU64LE(buf: Uint8Array, offset: number): number {
  return readU32LE(buf, offset + 4) * 4294967296 + readU32LE(buf, offset);
}

/** Writes a non-negative integer ≤ 2^53 − 1 as a little-endian u64. */
export function writeU64LE(buf: Uint8Array, offset: number, value: number): void {
  writeU32LE(buf, offset, value >>> 0);
  writeU32LE(buf, offset + 4, Math.floor(value / 4294967296) >>> 0);
}

/** Writes the 4-byte message header: type then three zero bytes. */
export function writeMessageHeader(buf: Uint8Array, type: number): void {
  buf[0] = type;
  buf[1] = buf[2] = buf[3] = 0;
}

/**
 * Classifies the first `len` bytes of `buf`: the message type (1–4) when the type byte is known,
 * the three reserved bytes are zero and the size is exact (1–3) or at least 32 (4); otherwise 0.
 */
export function messageType(buf: Uint8Array, len: number): number | 0 {
  if (!(len >= 4) || len > buf.length) return 0;
  if ((buf[1] | buf[2] | buf[3]) !== 0) return 0;
  const type = buf[0];
  switch (type) {
    case MessageInitiationType:
      return len === MessageInitiationSize ? type : 0;
    case MessageResponseType:
      return len === MessageResponseSize ? type : 0;
    case MessageCookieReplyType:
      return len === MessageCookieReplySize ? type : 0;
    case MessageTransportType:
      return len >= MessageTransportSize ? type : 0;
    default:
      return 0;
  }
}

/** Writes a transport message header (type 4, receiver index, counter; little-endian) at `buf[0, 16)`. */
export function writeTransportHeader(buf: Uint8Array, remote: number, counter: number): void {
  buf[0] = 4;
  buf[1] = buf[2] = buf[3] = 0;
  buf[4] = remote & 0xff;
  buf[5] = (remote >>> 8) & 0xff;
  buf[6] = (remote >>> 16) & 0xff;
  buf[7] = remote >>> 24;
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 4294967296);
  buf[8] = lo & 0xff;
  buf[9] = (lo >>> 8) & 0xff;
  buf[10] = (lo >>> 16) & 0xff;
  buf[11] = lo >>> 24;
  buf[12] = hi & 0xff;
  buf[13] = (hi >>> 8) & 0xff;
  buf[14] = (hi >>> 16) & 0xff;
  buf[15] = hi >>> 24;
}
