/**
 * The vocabulary of the DSKE wire frames (docs/dske.md; docs/design.md §3): magic, versions, sizes,
 * frame types, status codes, the message types of both frame families and why a frame is refused.
 * The codecs are hub-frames.ts (client ↔ hub, PSRD-authenticated) and peer-frame-codec.ts (node ↔
 * node, pair-key-authenticated); frames.ts gathers all three.
 * @module
 */
import { PEER_TAG_LEN } from "./peer-auth.ts";

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

/** True for the frame types without PSRD Auth: KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC and ERROR. */
export function isPeerFrameType(type: number): boolean {
  return type === FrameType.KEY_OFFER || type === FrameType.KEY_RESULT || type === FrameType.KEY_ABORT ||
    type === FrameType.KEY_SYNC || type === FrameType.ERROR;
}
