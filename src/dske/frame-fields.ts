/**
 * Field layouts of the DSKE frames and the generic reader and writer over them: every field has a fixed
 * size, every reserved byte must be zero, u64 values above 2^53 − 1 are malformed. Shared by the two
 * codecs (hub-frames.ts, peer-frame-codec.ts).
 * @module
 */
import {
  CLIENT_ID_LEN,
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameError,
  frameVersionOf,
  HEADER_LEN,
  HUB_ID_LEN,
  KEY_ID_LEN,
  MAX_FRAME_LEN,
  PEER_FRAME_VERSION,
  PEER_ID_LEN,
  SHARE_LEN,
} from "./frame-types.ts";

/** One field of a frame body: fixed-size bytes, an unsigned integer, reserved zeros, or the share fields. */
export type Field =
  | { readonly kind: "bytes"; readonly name: string; readonly len: number }
  | { readonly kind: "u8" | "u16" | "u64"; readonly name: string }
  | { readonly kind: "reserved"; readonly len: number }
  | { readonly kind: "share-len" }
  | { readonly kind: "enc-share" };

/** A fixed-length byte field. */
export const bytes = (name: string, len: number): Field => ({ kind: "bytes", name, len });
/** An unsigned 8-bit field. */
export const u8 = (name: string): Field => ({ kind: "u8", name });
/** An unsigned 16-bit field (big-endian). */
export const u16 = (name: string): Field => ({ kind: "u16", name });
/** An unsigned 64-bit field (big-endian; at most 2^53 − 1). */
export const u64 = (name: string): Field => ({ kind: "u64", name });
/** `len` reserved bytes (zero on the wire, checked on reading). */
export const reserved = (len: number): Field => ({ kind: "reserved", len });
/** The share-length field (SHARE_LEN when the frame carries a share, else 0). */
export const SHARE_LEN_FIELD: Field = { kind: "share-len" };
/** The OTP-encrypted share (present only when the frame carries a share). */
export const ENC_SHARE_FIELD: Field = { kind: "enc-share" };

/** client_id. */
export const CLIENT_ID = bytes("clientId", CLIENT_ID_LEN);
/** hub_id. */
export const HUB_ID = bytes("hubId", HUB_ID_LEN);
/** key_id. */
export const KEY_ID = bytes("keyId", KEY_ID_LEN);
/** generator_peer. */
export const GENERATOR_PEER = bytes("generatorPeer", PEER_ID_LEN);
/** recoverer_peer. */
export const RECOVERER_PEER = bytes("recovererPeer", PEER_ID_LEN);

function fieldLength(f: Field, withShare: boolean): number {
  switch (f.kind) {
    case "bytes":
    case "reserved":
      return f.len;
    case "u8":
    case "share-len":
      return 1;
    case "u16":
      return 2;
    case "u64":
      return 8;
    case "enc-share":
      return withShare ? SHARE_LEN : 0;
  }
}

/** Bytes of a body with `layout` (the share fields counted only `withShare`). */
export function layoutLength(layout: readonly Field[], withShare: boolean): number {
  let total = 0;
  for (const f of layout) total += fieldLength(f, withShare);
  return total;
}

// ---------------------------------------------------------------------------------------------------
// Field codec

/** Decoded field values by name. */
export type Fields = Record<string, unknown>;

/** A DataView over exactly `b`. */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** `value` as an integer in 0..max, else FrameError "bad-field" naming `name`. */
export function checkUint(name: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new FrameError("bad-field", `${name} must be an integer in 0..${max}`);
  }
  return value;
}

/** `value` as bytes of exactly `len`, else FrameError "bad-field" naming `name`. */
export function checkBytes(name: string, value: unknown, len: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== len) {
    throw new FrameError("bad-field", `${name} must be ${len} bytes`);
  }
  return value;
}

/** Writes a u64 (a safe integer) big-endian at `pos`. */
export function writeU64(view: DataView, pos: number, value: number): void {
  view.setUint32(pos, Math.floor(value / 2 ** 32));
  view.setUint32(pos + 4, value % 2 ** 32);
}

/** Reads a big-endian u64 at `pos`; FrameError "bad-field" naming `name` above 2^53 − 1. */
export function readU64(view: DataView, pos: number, name: string): number {
  const hi = view.getUint32(pos);
  if (hi > 0x1fffff) throw new FrameError("bad-field", `${name} exceeds 2^53-1`);
  return hi * 2 ** 32 + view.getUint32(pos + 4);
}

/**
 * Writes `fields` in layout order at `pos`. `sharePad` (64 bytes) encrypts the share when the layout
 * carries one (`withShare`). Returns the position after the last field.
 */
export function writeFields(
  out: Uint8Array,
  pos: number,
  layout: readonly Field[],
  fields: Fields,
  withShare: boolean,
  sharePad: Uint8Array | null,
): number {
  const view = viewOf(out);
  for (const f of layout) {
    switch (f.kind) {
      case "bytes":
        out.set(checkBytes(f.name, fields[f.name], f.len), pos);
        break;
      case "u8":
        view.setUint8(pos, checkUint(f.name, fields[f.name], 0xff));
        break;
      case "u16":
        view.setUint16(pos, checkUint(f.name, fields[f.name], 0xffff));
        break;
      case "u64":
        writeU64(view, pos, checkUint(f.name, fields[f.name], Number.MAX_SAFE_INTEGER));
        break;
      case "reserved":
        break; // `out` is zero-filled
      case "share-len":
        out[pos] = withShare ? SHARE_LEN : 0;
        break;
      case "enc-share":
        if (withShare) {
          const share = checkBytes("share", fields.share, SHARE_LEN);
          if (sharePad === null) throw new FrameError("bad-pad");
          for (let i = 0; i < SHARE_LEN; i++) out[pos + i] = share[i] ^ sharePad[i];
        }
        break;
    }
    pos += fieldLength(f, withShare);
  }
  return pos;
}

/**
 * Reads and validates the fields of `layout` at `pos` (the caller has checked the length). Reserved bytes
 * must be zero and `share_len` must match `withShare`. The share is decrypted with `sharePad` when given,
 * and skipped (left encrypted, not returned) when `sharePad` is null.
 */
export function readFields(
  frame: Uint8Array,
  pos: number,
  layout: readonly Field[],
  withShare: boolean,
  sharePad: Uint8Array | null,
): Fields {
  const view = viewOf(frame);
  const fields: Fields = {};
  for (const f of layout) {
    switch (f.kind) {
      case "bytes":
        fields[f.name] = frame.slice(pos, pos + f.len);
        break;
      case "u8":
        fields[f.name] = frame[pos];
        break;
      case "u16":
        fields[f.name] = view.getUint16(pos);
        break;
      case "u64":
        fields[f.name] = readU64(view, pos, f.name);
        break;
      case "reserved":
        for (let i = 0; i < f.len; i++) {
          if (frame[pos + i] !== 0) throw new FrameError("bad-field", "reserved bytes must be zero");
        }
        break;
      case "share-len":
        if (frame[pos] !== (withShare ? SHARE_LEN : 0)) {
          throw new FrameError("bad-field", `share_len must be ${withShare ? SHARE_LEN : 0}`);
        }
        break;
      case "enc-share":
        if (withShare && sharePad !== null) {
          const share = new Uint8Array(SHARE_LEN);
          for (let i = 0; i < SHARE_LEN; i++) share[i] = frame[pos + i] ^ sharePad[i];
          fields.share = share;
        }
        break;
    }
    pos += fieldLength(f, withShare);
  }
  return fields;
}

/**
 * Checks header (magic, a known version) and overall length; returns the type. `frame.length` must equal
 * the header length. Callers check that the version is the one of the type ({@link frameVersionOf}).
 */
export function readHeader(frame: Uint8Array): number {
  if (frame.length < HEADER_LEN) throw new FrameError("bad-length", "shorter than a header");
  if (frame.length > MAX_FRAME_LEN) throw new FrameError("too-long");
  const view = viewOf(frame);
  if (view.getUint16(0) !== FRAME_MAGIC) throw new FrameError("bad-magic");
  if (frame[2] !== FRAME_VERSION && frame[2] !== PEER_FRAME_VERSION) throw new FrameError("bad-version");
  const length = view.getUint32(4);
  if (length > MAX_FRAME_LEN) throw new FrameError("too-long");
  if (length !== frame.length) throw new FrameError("bad-length", "header length differs from frame size");
  return frame[3];
}

/** Writes the header of a frame of `type` filling `out`. */
export function writeHeader(out: Uint8Array, type: number): void {
  const view = viewOf(out);
  view.setUint16(0, FRAME_MAGIC);
  out[2] = frameVersionOf(type);
  out[3] = type;
  view.setUint32(4, out.length);
}
