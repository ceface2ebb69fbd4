/**
 * DSKE wire frames for the TCP 51831 service (protocols.md §1.5 "Frame" and the two message tables;
 * §1.6 invariants 4-6).
 *
 * Every frame is `Header(8) | Body | [Auth(48)]` with big-endian integers and fixed-length IDs.
 *
 * - Client ↔ hub frames (HELLO … SHARE_DELETE and their responses) carry Auth: the PSRD block, the
 *   start offset in the sender's region, the number of PSRD bytes used (32 for the one-time MAC key plus
 *   the OTP field lengths) and a Poly1305 tag keyed with the first 32 pad bytes over every frame byte
 *   before the tag. The only OTP-encrypted field is `enc_share` (SHARE_PUT, and SHARE_GET_RESP with
 *   status OK), encrypted with the pad bytes that follow the MAC key.
 * - Node ↔ node frames (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC) end with a 32-byte tag under a key
 *   only the two nodes can compute (see peer-auth.ts; docs/dske.md): `decodePeerFrame` verifies it in
 *   constant time before it reads any field. KEY_OFFER and KEY_RESULT carry the key-confirmation tags
 *   of key-confirm.ts. ERROR carries no Auth (advisory only, never acted on).
 *
 * Receiving a hub frame is two steps, so the caller can follow §1.6 invariant 3: `peekHubFrame` checks the
 * whole structure (sizes, `used`, reserved bytes) without the pad and returns block and offset, the caller
 * checks `offset ≥ rx_next` and fetches the pad, then `openHubFrame` verifies the tag in constant time
 * before it touches the OTP field (invariant 5). Once the tag verifies, decoding cannot fail, so the
 * caller never sees an authenticated frame it cannot act on.
 *
 * Every reserved byte must be zero and every length must equal the one the type (and, for
 * SHARE_GET_RESP, the status) implies (invariant 6). u64 fields are JavaScript numbers; values above
 * 2^53 − 1 are rejected as malformed.
 *
 * Error messages name the reason and, for field problems, the field name; never pad, key or share bytes.
 * @module
 */

import { oneTimeTag, verifyOneTimeTag } from "./one-time-mac.ts";
import { PEER_TAG_LEN, peerFrameTag, verifyPeerFrameTag } from "./peer-auth.ts";
import { CONFIRM_TAG_LEN } from "./key-confirm.ts";

/** Header magic, "DK". */
export const FRAME_MAGIC = 0x444b;
/** Version of the client ↔ hub frames and ERROR (unchanged since the first release). */
export const FRAME_VERSION = 1;
/**
 * Version of the node ↔ node frames (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC). 2: authenticated
 * and carrying key confirmation; version 1 had neither and is refused as "bad-version".
 */
export const PEER_FRAME_VERSION = 2;

/** The version a frame of `type` must carry. */
export function frameVersionOf(type: number): number {
  return type === FrameType.KEY_OFFER || type === FrameType.KEY_RESULT || type === FrameType.KEY_ABORT ||
      type === FrameType.KEY_SYNC
    ? PEER_FRAME_VERSION
    : FRAME_VERSION;
}
/** Largest frame (header, body and auth) a peer may send; longer frames close the connection. */
export const MAX_FRAME_LEN = 4096;
/** Header: magic u16, version u8, type u8, length u32. */
export const HEADER_LEN = 8;
/** Auth trailer of client ↔ hub frames: block_id 16, offset u64, used u32, reserved u32, tag 16. */
export const AUTH_LEN = 48;
/** The first PSRD bytes of each hub message form the one-time Poly1305 key (r ‖ s). */
export const MAC_KEY_LEN = 32;
/** Length of a Shamir share (and of its OTP pad); fixed so share sizes leak nothing. */
export const SHARE_LEN = 64;
/** Length of the Poly1305 tag at the end of the Auth trailer. */
export const TAG_LEN = 16;
/** Length of a HubID. */
export const HUB_ID_LEN = 16;
/** Length of a ClientID. */
export const CLIENT_ID_LEN = 16;
/** Length of a PeerID (the peer's aes0 WireGuard static public key). */
export const PEER_ID_LEN = 32;
/** Length of a KeyID. */
export const KEY_ID_LEN = 16;
/** Length of a PSRD BlockID. */
export const BLOCK_ID_LEN = 16;
/** Largest hub list a KEY_OFFER can carry within MAX_FRAME_LEN: 8 + 132 + 20n + 32 ≤ 4096. */
export const MAX_KEY_OFFER_HUBS = Math.floor((MAX_FRAME_LEN - HEADER_LEN - 132 - PEER_TAG_LEN) / 20);
/** Largest bad-hub list a KEY_RESULT can carry within MAX_FRAME_LEN: 8 + 60 + 16n + 32 ≤ 4096. */
export const MAX_KEY_RESULT_BAD_HUBS = Math.floor((MAX_FRAME_LEN - HEADER_LEN - 60 - PEER_TAG_LEN) / 16);
/** Most epochs a KEY_SYNC lists (the held keys of one pair). */
export const MAX_SYNC_EPOCHS = 8;

/** Frame type codes (header byte 3). 0x8x are hub responses to the client request 0x0x. */
export const FrameType = {
  HELLO: 0x01,
  HELLO_ACK: 0x81,
  SHARE_PUT: 0x02,
  SHARE_PUT_ACK: 0x82,
  SHARE_GET: 0x03,
  SHARE_GET_RESP: 0x83,
  SHARE_DELETE: 0x04,
  ERROR: 0x7f,
  KEY_OFFER: 0x10,
  KEY_RESULT: 0x11,
  KEY_ABORT: 0x12,
  KEY_SYNC: 0x13,
} as const;

/** Status codes in hub responses (HELLO_ACK, SHARE_PUT_ACK, SHARE_GET_RESP). */
export const HubStatus = {
  OK: 0,
  UNKNOWN_CLIENT: 1,
  NOT_AUTHORIZED: 2,
  UNKNOWN_KEY: 3,
  EXPIRED: 4,
  DUPLICATE: 5,
  PSRD_LOW: 6,
  BAD_PARAMS: 7,
} as const;

/** Status codes in KEY_RESULT. */
export const KeyResultStatus = {
  OK: 0,
  NOT_ENOUGH_SHARES: 1,
  VALIDATION_FAILED: 2,
  UNKNOWN_HUB: 3,
  PSRD_LOW: 4,
  /** The reconstructed key does not match the generator's confirmation (forged or mixed-up shares). */
  CONFIRMATION_FAILED: 5,
} as const;

/** HELLO (client → hub): keepalive and state query. */
export type Hello = {
  type: typeof FrameType.HELLO;
  clientId: Uint8Array;
  hubId: Uint8Array;
  peerId: Uint8Array;
  timeMs: number;
};

/** HELLO_ACK (hub → client): the hub's view of both regions of the block. */
export type HelloAck = {
  type: typeof FrameType.HELLO_ACK;
  clientId: Uint8Array;
  hubId: Uint8Array;
  status: number;
  c2hRxNext: number;
  h2cTxNext: number;
  c2hRemaining: number;
  h2cRemaining: number;
};

/** SHARE_PUT (generator → hub): one share of a key; `share` is the plaintext (OTP-encrypted on the wire). */
export type SharePut = {
  type: typeof FrameType.SHARE_PUT;
  clientId: Uint8Array;
  hubId: Uint8Array;
  keyId: Uint8Array;
  generatorPeer: Uint8Array;
  recovererPeer: Uint8Array;
  epoch: number;
  ttlS: number;
  x: number;
  k: number;
  n: number;
  share: Uint8Array;
};

/** SHARE_PUT_ACK (hub → generator). */
export type SharePutAck = {
  type: typeof FrameType.SHARE_PUT_ACK;
  clientId: Uint8Array;
  hubId: Uint8Array;
  keyId: Uint8Array;
  status: number;
};

/** SHARE_GET (recoverer → hub). */
export type ShareGet = {
  type: typeof FrameType.SHARE_GET;
  clientId: Uint8Array;
  hubId: Uint8Array;
  keyId: Uint8Array;
  generatorPeer: Uint8Array;
  recovererPeer: Uint8Array;
};

/** SHARE_GET_RESP (hub → recoverer); `share` is the plaintext share, null iff status ≠ OK. */
export type ShareGetResp = {
  type: typeof FrameType.SHARE_GET_RESP;
  clientId: Uint8Array;
  hubId: Uint8Array;
  keyId: Uint8Array;
  status: number;
  x: number;
  k: number;
  n: number;
  epoch: number;
  generatorPeer: Uint8Array;
  share: Uint8Array | null;
};

/** SHARE_DELETE (generator → hub). */
export type ShareDelete = {
  type: typeof FrameType.SHARE_DELETE;
  clientId: Uint8Array;
  hubId: Uint8Array;
  keyId: Uint8Array;
};

/** Any authenticated client ↔ hub message. */
export type HubMessage = Hello | HelloAck | SharePut | SharePutAck | ShareGet | ShareGetResp | ShareDelete;

/**
 * KEY_OFFER (generator → recoverer). The wire has a single `n` that is both the sharing parameter and
 * the length of the hub list, so `n` must equal `hubs.length`.
 */
export type KeyOffer = {
  type: typeof FrameType.KEY_OFFER;
  keyId: Uint8Array;
  epoch: number;
  generatorPeer: Uint8Array;
  recovererPeer: Uint8Array;
  k: number;
  n: number;
  expiresMs: number;
  /** The generator's key-confirmation tag (key-confirm.ts), 32 bytes. */
  confirm: Uint8Array;
  hubs: { hubId: Uint8Array; x: number }[];
};

/**
 * KEY_RESULT (recoverer → generator), with the hubs whose shares were inconsistent. `confirm` is the
 * recoverer's key-confirmation tag with status OK, 32 zero bytes otherwise.
 */
export type KeyResult = {
  type: typeof FrameType.KEY_RESULT;
  keyId: Uint8Array;
  epoch: number;
  status: number;
  confirm: Uint8Array;
  badHubs: Uint8Array[];
};

/** KEY_ABORT (either peer), for the key of `keyId` and `epoch`. */
export type KeyAbort = { type: typeof FrameType.KEY_ABORT; keyId: Uint8Array; epoch: number; reason: number };

/**
 * KEY_SYNC (either node, request and answer): the epochs of the agreed keys the sender holds, so both
 * sides can move to the newest one they share. `timeMs` is the sender's clock (stale ones are ignored).
 */
export type KeySync = { type: typeof FrameType.KEY_SYNC; timeMs: number; epochs: number[] };

/** ERROR (either side): unauthenticated, advisory only; must never change state. */
export type ErrorFrame = { type: typeof FrameType.ERROR; code: number };

/** Any frame that is not client ↔ hub: the authenticated node ↔ node messages, and ERROR. */
export type PeerMessage = KeyOffer | KeyResult | KeyAbort | KeySync | ErrorFrame;

/** Why a frame was rejected (or could not be built). */
export type FrameErrorCode =
  | "bad-magic"
  | "bad-version"
  | "bad-type"
  | "too-long"
  | "bad-length"
  | "bad-used"
  | "bad-tag"
  | "bad-pad"
  | "bad-field";

/** A malformed, forged or unbuildable frame. `code` is machine-readable; the message holds no secrets. */
export class FrameError extends Error {
  /** The reason, e.g. "bad-tag". */
  readonly code: FrameErrorCode;

  /** `detail` must not contain secret material (field names and sizes only). */
  constructor(code: FrameErrorCode, detail?: string) {
    super(detail === undefined ? `DSKE frame: ${code}` : `DSKE frame: ${code}: ${detail}`);
    this.name = "FrameError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------------
// Field layouts

type Field =
  | { readonly kind: "bytes"; readonly name: string; readonly len: number }
  | { readonly kind: "u8" | "u16" | "u64"; readonly name: string }
  | { readonly kind: "reserved"; readonly len: number }
  | { readonly kind: "share-len" }
  | { readonly kind: "enc-share" };

const bytes = (name: string, len: number): Field => ({ kind: "bytes", name, len });
const u8 = (name: string): Field => ({ kind: "u8", name });
const u16 = (name: string): Field => ({ kind: "u16", name });
const u64 = (name: string): Field => ({ kind: "u64", name });
const reserved = (len: number): Field => ({ kind: "reserved", len });
const SHARE_LEN_FIELD: Field = { kind: "share-len" };
const ENC_SHARE_FIELD: Field = { kind: "enc-share" };

const CLIENT_ID = bytes("clientId", CLIENT_ID_LEN);
const HUB_ID = bytes("hubId", HUB_ID_LEN);
const KEY_ID = bytes("keyId", KEY_ID_LEN);
const GENERATOR_PEER = bytes("generatorPeer", PEER_ID_LEN);
const RECOVERER_PEER = bytes("recovererPeer", PEER_ID_LEN);

/** Body layouts of the hub messages, in wire order (§1.5 table "client ↔ hub"). */
const HUB_LAYOUTS: ReadonlyMap<number, readonly Field[]> = new Map([
  [FrameType.HELLO, [CLIENT_ID, HUB_ID, bytes("peerId", PEER_ID_LEN), u64("timeMs")]],
  [FrameType.HELLO_ACK, [
    CLIENT_ID,
    HUB_ID,
    u8("status"),
    reserved(3),
    u64("c2hRxNext"),
    u64("h2cTxNext"),
    u64("c2hRemaining"),
    u64("h2cRemaining"),
  ]],
  [FrameType.SHARE_PUT, [
    CLIENT_ID,
    HUB_ID,
    KEY_ID,
    GENERATOR_PEER,
    RECOVERER_PEER,
    u64("epoch"),
    u16("ttlS"),
    u8("x"),
    u8("k"),
    u8("n"),
    SHARE_LEN_FIELD,
    ENC_SHARE_FIELD,
  ]],
  [FrameType.SHARE_PUT_ACK, [CLIENT_ID, HUB_ID, KEY_ID, u8("status"), reserved(3)]],
  [FrameType.SHARE_GET, [CLIENT_ID, HUB_ID, KEY_ID, GENERATOR_PEER, RECOVERER_PEER]],
  [FrameType.SHARE_GET_RESP, [
    CLIENT_ID,
    HUB_ID,
    KEY_ID,
    u8("status"),
    u8("x"),
    u8("k"),
    u8("n"),
    u64("epoch"),
    GENERATOR_PEER,
    SHARE_LEN_FIELD,
    reserved(3),
    ENC_SHARE_FIELD,
  ]],
  [FrameType.SHARE_DELETE, [CLIENT_ID, HUB_ID, KEY_ID]],
]);

/** Fixed parts of the unauthenticated frames (§1.5 table "peer ↔ peer", and ERROR). */
const KEY_OFFER_FIXED: readonly Field[] = [
  KEY_ID,
  u64("epoch"),
  GENERATOR_PEER,
  RECOVERER_PEER,
  u8("k"),
  u8("n"),
  reserved(2),
  u64("expiresMs"),
  bytes("confirm", CONFIRM_TAG_LEN),
];
const KEY_OFFER_HUB: readonly Field[] = [HUB_ID, u8("x"), reserved(3)];
const KEY_RESULT_FIXED: readonly Field[] = [
  KEY_ID,
  u64("epoch"),
  u8("status"),
  u8("badHubCount"),
  reserved(2),
  bytes("confirm", CONFIRM_TAG_LEN),
];
const KEY_RESULT_BAD_HUB: readonly Field[] = [HUB_ID];
const KEY_ABORT_BODY: readonly Field[] = [KEY_ID, u64("epoch"), u8("reason"), reserved(3)];
const KEY_SYNC_FIXED: readonly Field[] = [u64("timeMs"), u8("count"), reserved(3)];
const KEY_SYNC_EPOCH: readonly Field[] = [u64("epoch")];
const ERROR_BODY: readonly Field[] = [u16("code"), reserved(2)];

/** Offset of the status byte in a SHARE_GET_RESP frame (after header, client_id, hub_id, key_id). */
const GET_RESP_STATUS_OFFSET = HEADER_LEN + CLIENT_ID_LEN + HUB_ID_LEN + KEY_ID_LEN;

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

function layoutLength(layout: readonly Field[], withShare: boolean): number {
  let total = 0;
  for (const f of layout) total += fieldLength(f, withShare);
  return total;
}

// ---------------------------------------------------------------------------------------------------
// Field codec

type Fields = Record<string, unknown>;

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function checkUint(name: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new FrameError("bad-field", `${name} must be an integer in 0..${max}`);
  }
  return value;
}

function checkBytes(name: string, value: unknown, len: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== len) {
    throw new FrameError("bad-field", `${name} must be ${len} bytes`);
  }
  return value;
}

function writeU64(view: DataView, pos: number, value: number): void {
  view.setUint32(pos, Math.floor(value / 2 ** 32));
  view.setUint32(pos + 4, value % 2 ** 32);
}

function readU64(view: DataView, pos: number, name: string): number {
  const hi = view.getUint32(pos);
  if (hi > 0x1fffff) throw new FrameError("bad-field", `${name} exceeds 2^53-1`);
  return hi * 2 ** 32 + view.getUint32(pos + 4);
}

/**
 * Writes `fields` in layout order at `pos`. `sharePad` (64 bytes) encrypts the share when the layout
 * carries one (`withShare`). Returns the position after the last field.
 */
function writeFields(
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
function readFields(
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
function readHeader(frame: Uint8Array): number {
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

function writeHeader(out: Uint8Array, type: number): void {
  const view = viewOf(out);
  view.setUint16(0, FRAME_MAGIC);
  out[2] = frameVersionOf(type);
  out[3] = type;
  view.setUint32(4, out.length);
}

// ---------------------------------------------------------------------------------------------------
// Client ↔ hub frames

/** True for the frame types that carry Auth (client ↔ hub messages). */
export function isHubFrameType(type: number): boolean {
  return HUB_LAYOUTS.has(type);
}

/** True for the frame types without PSRD Auth: KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC and ERROR. */
export function isPeerFrameType(type: number): boolean {
  return type === FrameType.KEY_OFFER || type === FrameType.KEY_RESULT || type === FrameType.KEY_ABORT ||
    type === FrameType.KEY_SYNC || type === FrameType.ERROR;
}

function carriesShare(m: HubMessage): boolean {
  return m.type === FrameType.SHARE_PUT || (m.type === FrameType.SHARE_GET_RESP && m.status === HubStatus.OK);
}

/**
 * Exact size of a hub frame: header + body + auth. `status` matters only for SHARE_GET_RESP (216 bytes
 * with status OK, 152 otherwise). Throws FrameError("bad-type") for a type without Auth.
 */
export function hubFrameLength(type: number, status: number = HubStatus.OK): number {
  const layout = HUB_LAYOUTS.get(type);
  if (layout === undefined) throw new FrameError("bad-type");
  const withShare = type === FrameType.SHARE_PUT ||
    (type === FrameType.SHARE_GET_RESP && status === HubStatus.OK);
  return HEADER_LEN + layoutLength(layout, withShare) + AUTH_LEN;
}

/** Bytes of PSRD a hub message consumes: 32 + OTP field lengths (96 for SHARE_PUT and OK SHARE_GET_RESP, else 32). */
export function padLength(m: HubMessage): number {
  return MAC_KEY_LEN + (carriesShare(m) ? SHARE_LEN : 0);
}

/**
 * Seals a hub message: pad = exactly padLength(m) bytes from the sender's region at `offset` of block
 * `blockId` (the MAC key first, then the share pad). The caller must have persisted
 * `tx_next = offset + padLength(m)` before the returned bytes leave the process (§1.6 invariant 2).
 * Throws FrameError("bad-field") for out-of-range fields, a share of the wrong size, or a SHARE_GET_RESP
 * whose `share` is not null exactly when its status is not OK; FrameError("bad-pad") for a pad of the
 * wrong length.
 */
export function sealHubFrame(
  m: HubMessage,
  blockId: Uint8Array,
  offset: number,
  pad: Uint8Array,
): Uint8Array {
  const layout = HUB_LAYOUTS.get(m.type);
  if (layout === undefined) throw new FrameError("bad-type");
  const withShare = carriesShare(m);
  if (m.type === FrameType.SHARE_GET_RESP && !withShare && m.share !== null) {
    throw new FrameError("bad-field", "share must be null when status is not OK");
  }
  const used = padLength(m);
  if (!(pad instanceof Uint8Array) || pad.length !== used) {
    throw new FrameError("bad-pad", `pad must be exactly ${used} bytes`);
  }
  checkBytes("blockId", blockId, BLOCK_ID_LEN);
  checkUint("offset", offset, Number.MAX_SAFE_INTEGER - used);

  const frame = new Uint8Array(HEADER_LEN + layoutLength(layout, withShare) + AUTH_LEN);
  writeHeader(frame, m.type);
  const sharePad = withShare ? pad.subarray(MAC_KEY_LEN, MAC_KEY_LEN + SHARE_LEN) : null;
  let pos = writeFields(frame, HEADER_LEN, layout, m as unknown as Fields, withShare, sharePad);
  const view = viewOf(frame);
  frame.set(blockId, pos);
  writeU64(view, pos + 16, offset);
  view.setUint32(pos + 24, used);
  // pos + 28: reserved u32 = 0 (zero-filled)
  pos += AUTH_LEN - TAG_LEN;
  frame.set(oneTimeTag(pad.subarray(0, MAC_KEY_LEN), frame.subarray(0, pos)), pos);
  return frame;
}

/** Structural facts of a hub frame, checked without the pad. */
type HubFrameShape = {
  type: number;
  layout: readonly Field[];
  withShare: boolean;
  blockId: Uint8Array;
  offset: number;
  used: number;
};

function hubFrameShape(frame: Uint8Array): HubFrameShape {
  const type = readHeader(frame);
  const layout = HUB_LAYOUTS.get(type);
  if (layout === undefined) throw new FrameError("bad-type");
  if (frame[2] !== FRAME_VERSION) throw new FrameError("bad-version");
  const withShare = type === FrameType.SHARE_PUT ||
    (type === FrameType.SHARE_GET_RESP && frame.length > GET_RESP_STATUS_OFFSET &&
      frame[GET_RESP_STATUS_OFFSET] === HubStatus.OK);
  const bodyLen = layoutLength(layout, withShare);
  if (frame.length !== HEADER_LEN + bodyLen + AUTH_LEN) {
    throw new FrameError("bad-length", "wrong size for the frame type");
  }
  readFields(frame, HEADER_LEN, layout, withShare, null); // reserved bytes, share_len, u64 ranges

  const view = viewOf(frame);
  const auth = HEADER_LEN + bodyLen;
  const used = view.getUint32(auth + 24);
  if (used !== MAC_KEY_LEN + (withShare ? SHARE_LEN : 0)) throw new FrameError("bad-used");
  if (view.getUint32(auth + 28) !== 0) throw new FrameError("bad-field", "auth reserved must be zero");
  const offset = readU64(view, auth + 16, "offset");
  if (offset > Number.MAX_SAFE_INTEGER - used) {
    throw new FrameError("bad-field", "offset + used exceeds 2^53-1");
  }
  return { type, layout, withShare, blockId: frame.slice(auth, auth + BLOCK_ID_LEN), offset, used };
}

/**
 * Parses header + auth WITHOUT verifying (so the receiver can check offset ≥ rx_next and fetch the pad);
 * validates magic, version, type, length = exact expected size for the type (and status/share_len for
 * SHARE_GET_RESP), reserved bytes = 0, used = 32 + OTP lengths, and offset + used ≤ 2^53 − 1.
 * Nothing returned is authenticated yet. Throws FrameError.
 */
export function peekHubFrame(
  frame: Uint8Array,
): { type: number; blockId: Uint8Array; offset: number; used: number } {
  const { type, blockId, offset, used } = hubFrameShape(frame);
  return { type, blockId, offset, used };
}

/**
 * Verifies the tag in constant time with pad[0..32] FIRST, then removes the OTP and decodes. `pad` must
 * be exactly `used` bytes (FrameError("bad-pad") otherwise). Throws FrameError("bad-tag") without
 * touching anything else on failure; once the tag verifies, decoding cannot fail. The returned share is
 * a fresh buffer the caller owns (and should zeroize); `pad` is left to the caller as well.
 */
export function openHubFrame(frame: Uint8Array, pad: Uint8Array): HubMessage {
  const shape = hubFrameShape(frame);
  if (!(pad instanceof Uint8Array) || pad.length !== shape.used) {
    throw new FrameError("bad-pad", `pad must be exactly ${shape.used} bytes`);
  }
  const tagStart = frame.length - TAG_LEN;
  const authentic = verifyOneTimeTag(
    pad.subarray(0, MAC_KEY_LEN),
    frame.subarray(0, tagStart),
    frame.subarray(tagStart),
  ); // constant time
  if (!authentic) throw new FrameError("bad-tag");

  const sharePad = shape.withShare ? pad.subarray(MAC_KEY_LEN, MAC_KEY_LEN + SHARE_LEN) : null;
  const fields = readFields(frame, HEADER_LEN, shape.layout, shape.withShare, sharePad);
  if (shape.type === FrameType.SHARE_GET_RESP && !shape.withShare) fields.share = null;
  return { type: shape.type, ...fields } as unknown as HubMessage;
}

// ---------------------------------------------------------------------------------------------------
// Node ↔ node frames and ERROR

/**
 * Encodes a node ↔ node frame (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC) and appends its tag under
 * `sendKey` (this node's send key of the pair, peer-auth.ts), or an ERROR frame (no tag; `sendKey` is
 * not used). Throws FrameError: "bad-field" for out-of-range fields, a KEY_OFFER whose `n` differs from
 * `hubs.length` or a missing key, "too-long" when the lists do not fit in MAX_FRAME_LEN.
 */
export function encodePeerFrame(m: PeerMessage, sendKey?: Uint8Array): Uint8Array {
  if (m.type === FrameType.ERROR) {
    const frame = new Uint8Array(HEADER_LEN + layoutLength(ERROR_BODY, false));
    writeHeader(frame, m.type);
    writeFields(frame, HEADER_LEN, ERROR_BODY, m as unknown as Fields, false, null);
    return frame;
  }
  const key = checkBytes("sendKey", sendKey, 32);
  let body: { len: number; write: (frame: Uint8Array) => void };
  switch (m.type) {
    case FrameType.KEY_OFFER: {
      if (!Array.isArray(m.hubs) || m.n !== m.hubs.length) {
        throw new FrameError("bad-field", "KEY_OFFER n must equal the number of hubs listed");
      }
      if (m.hubs.length > MAX_KEY_OFFER_HUBS) throw new FrameError("too-long");
      const fixed = layoutLength(KEY_OFFER_FIXED, false);
      body = {
        len: fixed + layoutLength(KEY_OFFER_HUB, false) * m.hubs.length,
        write: (frame) => {
          let pos = writeFields(frame, HEADER_LEN, KEY_OFFER_FIXED, m as unknown as Fields, false, null);
          for (const hub of m.hubs) pos = writeFields(frame, pos, KEY_OFFER_HUB, hub, false, null);
        },
      };
      break;
    }
    case FrameType.KEY_RESULT: {
      if (!Array.isArray(m.badHubs)) throw new FrameError("bad-field", "badHubs must be an array");
      if (m.badHubs.length > MAX_KEY_RESULT_BAD_HUBS) throw new FrameError("too-long");
      body = {
        len: layoutLength(KEY_RESULT_FIXED, false) + HUB_ID_LEN * m.badHubs.length,
        write: (frame) => {
          const head = { ...m, badHubCount: m.badHubs.length };
          let pos = writeFields(frame, HEADER_LEN, KEY_RESULT_FIXED, head, false, null);
          for (const hubId of m.badHubs) {
            pos = writeFields(frame, pos, KEY_RESULT_BAD_HUB, { hubId }, false, null);
          }
        },
      };
      break;
    }
    case FrameType.KEY_ABORT:
      body = {
        len: layoutLength(KEY_ABORT_BODY, false),
        write: (frame) => writeFields(frame, HEADER_LEN, KEY_ABORT_BODY, m as unknown as Fields, false, null),
      };
      break;
    case FrameType.KEY_SYNC: {
      if (!Array.isArray(m.epochs)) throw new FrameError("bad-field", "epochs must be an array");
      if (m.epochs.length > MAX_SYNC_EPOCHS) throw new FrameError("too-long");
      body = {
        len: layoutLength(KEY_SYNC_FIXED, false) + 8 * m.epochs.length,
        write: (frame) => {
          const head = { timeMs: m.timeMs, count: m.epochs.length };
          let pos = writeFields(frame, HEADER_LEN, KEY_SYNC_FIXED, head, false, null);
          for (const epoch of m.epochs) pos = writeFields(frame, pos, KEY_SYNC_EPOCH, { epoch }, false, null);
        },
      };
      break;
    }
    default:
      throw new FrameError("bad-type");
  }
  const frame = new Uint8Array(HEADER_LEN + body.len + PEER_TAG_LEN);
  writeHeader(frame, m.type);
  body.write(frame);
  const end = HEADER_LEN + body.len;
  frame.set(peerFrameTag(key, frame.subarray(0, end)), end);
  return frame;
}

/** Reads `count` list entries of `layout` starting at `pos`. */
function readList(frame: Uint8Array, pos: number, layout: readonly Field[], count: number): Fields[] {
  const entryLen = layoutLength(layout, false);
  const entries: Fields[] = [];
  for (let i = 0; i < count; i++, pos += entryLen) entries.push(readFields(frame, pos, layout, false, null));
  return entries;
}

/** Requires the frame to be exactly `expected` bytes long. */
function requireLength(frame: Uint8Array, expected: number): void {
  if (frame.length !== expected) throw new FrameError("bad-length", "wrong size for the frame type");
}

/**
 * The frame type of a complete frame (header checked: magic, version, length), without reading the body
 * or checking any tag. Throws FrameError.
 */
export function peekFrameType(frame: Uint8Array): number {
  return readHeader(frame);
}

/**
 * Decodes a node ↔ node frame: first verifies its tag under `receiveKey` (the pair's key for frames from
 * that peer; constant time; FrameError "bad-tag" otherwise), then the fields: the length must equal the
 * size its type and list counts imply, and reserved bytes must be zero. ERROR frames carry no tag and
 * are decoded without the key. Throws FrameError ("bad-type" for hub frame types).
 */
export function decodePeerFrame(frame: Uint8Array, receiveKey?: Uint8Array): PeerMessage {
  const type = readHeader(frame);
  if (type === FrameType.ERROR) {
    if (frame[2] !== FRAME_VERSION) throw new FrameError("bad-version");
    requireLength(frame, HEADER_LEN + layoutLength(ERROR_BODY, false));
    return { type, ...readFields(frame, HEADER_LEN, ERROR_BODY, false, null) } as unknown as PeerMessage;
  }
  if (!isPeerFrameType(type)) throw new FrameError("bad-type");
  if (frame[2] !== PEER_FRAME_VERSION) throw new FrameError("bad-version");
  const key = checkBytes("receiveKey", receiveKey, 32);
  if (frame.length < HEADER_LEN + PEER_TAG_LEN) throw new FrameError("bad-length", "shorter than a tag");
  const end = frame.length - PEER_TAG_LEN;
  if (!verifyPeerFrameTag(key, frame.subarray(0, end), frame.subarray(end))) throw new FrameError("bad-tag");
  const body = frame.subarray(0, end);
  switch (type) {
    case FrameType.KEY_OFFER: {
      const fixed = layoutLength(KEY_OFFER_FIXED, false);
      if (body.length < HEADER_LEN + fixed) throw new FrameError("bad-length", "shorter than KEY_OFFER");
      const head = readFields(body, HEADER_LEN, KEY_OFFER_FIXED, false, null);
      const n = head.n as number;
      requireLength(body, HEADER_LEN + fixed + layoutLength(KEY_OFFER_HUB, false) * n);
      const hubs = readList(body, HEADER_LEN + fixed, KEY_OFFER_HUB, n) as KeyOffer["hubs"];
      return { type, ...head, hubs } as unknown as KeyOffer;
    }
    case FrameType.KEY_RESULT: {
      const fixed = layoutLength(KEY_RESULT_FIXED, false);
      if (body.length < HEADER_LEN + fixed) throw new FrameError("bad-length", "shorter than KEY_RESULT");
      const head = readFields(body, HEADER_LEN, KEY_RESULT_FIXED, false, null);
      const count = head.badHubCount as number;
      requireLength(body, HEADER_LEN + fixed + HUB_ID_LEN * count);
      const badHubs = readList(body, HEADER_LEN + fixed, KEY_RESULT_BAD_HUB, count).map((e) =>
        e.hubId as Uint8Array
      );
      return {
        type,
        keyId: head.keyId as Uint8Array,
        epoch: head.epoch as number,
        status: head.status as number,
        confirm: head.confirm as Uint8Array,
        badHubs,
      };
    }
    case FrameType.KEY_ABORT:
      requireLength(body, HEADER_LEN + layoutLength(KEY_ABORT_BODY, false));
      return { type, ...readFields(body, HEADER_LEN, KEY_ABORT_BODY, false, null) } as unknown as KeyAbort;
    default: { // KEY_SYNC
      const fixed = layoutLength(KEY_SYNC_FIXED, false);
      if (body.length < HEADER_LEN + fixed) throw new FrameError("bad-length", "shorter than KEY_SYNC");
      const head = readFields(body, HEADER_LEN, KEY_SYNC_FIXED, false, null);
      const count = head.count as number;
      if (count > MAX_SYNC_EPOCHS) throw new FrameError("bad-field", `more than ${MAX_SYNC_EPOCHS} epochs`);
      requireLength(body, HEADER_LEN + fixed + 8 * count);
      const epochs = readList(body, HEADER_LEN + fixed, KEY_SYNC_EPOCH, count).map((e) => e.epoch as number);
      return { type: FrameType.KEY_SYNC, timeMs: head.timeMs as number, epochs };
    }
  }
}
