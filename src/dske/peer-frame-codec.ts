/**
 * The node ↔ node frames (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC), each ending with a 32-byte tag
 * under a key only the two nodes can compute (peer-auth.ts; docs/dske.md), verified in constant time
 * before any field is read; and ERROR, which carries no tag (advisory only, never acted on).
 * @module
 */
import { PEER_TAG_LEN, peerFrameTag, verifyPeerFrameTag } from "./peer-auth.ts";
import { CONFIRM_TAG_LEN } from "./key-confirm.ts";
import {
  FRAME_VERSION,
  FrameError,
  FrameType,
  HEADER_LEN,
  HUB_ID_LEN,
  isPeerFrameType,
  type KeyAbort,
  type KeyOffer,
  MAX_KEY_OFFER_HUBS,
  MAX_KEY_RESULT_BAD_HUBS,
  MAX_SYNC_EPOCHS,
  PEER_FRAME_VERSION,
  type PeerMessage,
} from "./frame-types.ts";
import {
  bytes,
  checkBytes,
  type Field,
  type Fields,
  GENERATOR_PEER,
  HUB_ID,
  KEY_ID,
  layoutLength,
  readFields,
  readHeader,
  RECOVERER_PEER,
  reserved,
  u16,
  u64,
  u8,
  writeFields,
  writeHeader,
} from "./frame-fields.ts";

/** Fixed parts of the unauthenticated frames (docs/design.md §3.7, and ERROR §3.5). */
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
