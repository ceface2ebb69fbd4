/**
 * The client ↔ hub frames (HELLO … SHARE_DELETE and their responses): each carries Auth — the PSRD
 * block, the start offset in the sender's region, the PSRD bytes used (32 for the one-time MAC key plus
 * the OTP field lengths) and a Poly1305 tag keyed with the first 32 pad bytes over every frame byte
 * before the tag. The only OTP-encrypted field is `enc_share`. Receiving is two steps (docs/design.md §4
 * invariant 3): `peekHubFrame` checks the structure without the pad, the caller checks the offset and fetches the
 * pad, then `openHubFrame` verifies the tag in constant time before it touches the OTP field.
 * @module
 */
import { oneTimeTag, verifyOneTimeTag } from "./one-time-mac.ts";
import {
  AUTH_LEN,
  BLOCK_ID_LEN,
  CLIENT_ID_LEN,
  FRAME_VERSION,
  FrameError,
  FrameType,
  HEADER_LEN,
  HUB_ID_LEN,
  type HubMessage,
  HubStatus,
  KEY_ID_LEN,
  MAC_KEY_LEN,
  PEER_ID_LEN,
  SHARE_LEN,
  TAG_LEN,
} from "./frame-types.ts";
import {
  bytes,
  checkBytes,
  checkUint,
  CLIENT_ID,
  ENC_SHARE_FIELD,
  type Field,
  type Fields,
  GENERATOR_PEER,
  HUB_ID,
  KEY_ID,
  layoutLength,
  readFields,
  readHeader,
  readU64,
  RECOVERER_PEER,
  reserved,
  SHARE_LEN_FIELD,
  u16,
  u64,
  u8,
  viewOf,
  writeFields,
  writeHeader,
  writeU64,
} from "./frame-fields.ts";

/** Body layouts of the hub messages, in wire order (docs/design.md §3.5). */
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

/** True for the frame types that carry Auth (client ↔ hub messages). */
export function isHubFrameType(type: number): boolean {
  return HUB_LAYOUTS.has(type);
}

/** Offset of the status byte in a SHARE_GET_RESP frame (after header, client_id, hub_id, key_id). */
const GET_RESP_STATUS_OFFSET = HEADER_LEN + CLIENT_ID_LEN + HUB_ID_LEN + KEY_ID_LEN;

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
 * `tx_next = offset + padLength(m)` before the returned bytes leave the process (docs/design.md §4 invariant 2).
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
