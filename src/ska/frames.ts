/**
 * SKA frames (docs/ska.md): the small request/response format spoken over TCP 51831 inside wg0,
 * between an endpoint and the broker and between the two endpoints of a pair.
 *
 * Every frame: magic `0x53 0x4b` ("SK"), version 1, type (1 byte), body length (u16 big-endian), body.
 *
 * | type | name                  | body                                                        |
 * |------|-----------------------|-------------------------------------------------------------|
 * | 0x01 | INTERMEDIATE_REQUEST  | id A (32) ‖ id B (32) ‖ epoch (u64): the pair and epoch asked for |
 * | 0x81 | INTERMEDIATE_RESPONSE | status (1) ‖ epoch (u64) ‖ intermediate (32, zero unless OK)|
 * | 0x10 | DH_OFFER              | epoch (u64) ‖ ephemeral X25519 public key (32)              |
 * | 0x90 | DH_ANSWER             | status (1) ‖ epoch (u64) ‖ ephemeral public key (32, zero unless OK) |
 *
 * The requester's identity never comes from a body: the broker and the responding endpoint take it
 * from the wg0 address the connection came from (wg0 only delivers a packet from an address inside
 * the sending peer's allowed IPs). The broker then checks the requester is one of the pair.
 * @module
 */

/** Frame magic, "SK". */
export const SKA_MAGIC = 0x534b;
/** Format version. */
export const SKA_VERSION = 1;
/** Header: magic (2), version (1), type (1), body length (2). */
export const SKA_HEADER_LEN = 6;
/** Largest body any frame has. */
export const SKA_MAX_BODY = 128;
const KEY_LEN = 32;
const EPOCH_LEN = 8;

/** Frame types. */
export const SkaType = {
  INTERMEDIATE_REQUEST: 0x01,
  INTERMEDIATE_RESPONSE: 0x81,
  DH_OFFER: 0x10,
  DH_ANSWER: 0x90,
} as const;

/** Status codes of responses. */
export const SkaStatus = {
  OK: 0,
  /** The requester is not a configured peer of the broker / the offerer is not an SKA peer. */
  UNKNOWN_REQUESTER: 1,
  /** The requester asked for a pair it is not part of, or one the broker does not serve. */
  PAIR_REFUSED: 2,
  /** The epoch is not newer than the last one agreed (replay) or is malformed. */
  BAD_EPOCH: 3,
  /** The responder could not get its intermediate key from the broker. */
  BROKER_UNREACHABLE: 4,
  /** The root key (HSM) failed. */
  ROOT_KEY_FAILED: 5,
} as const;

/** A status code's name, for messages. */
export function statusName(status: number): string {
  return Object.entries(SkaStatus).find(([, v]) => v === status)?.[0] ?? `status ${status}`;
}

/** A decoded frame. */
export type SkaMessage =
  | { type: typeof SkaType.INTERMEDIATE_REQUEST; idA: Uint8Array; idB: Uint8Array; epoch: number }
  | { type: typeof SkaType.INTERMEDIATE_RESPONSE; status: number; epoch: number; intermediate: Uint8Array }
  | { type: typeof SkaType.DH_OFFER; epoch: number; ephemeral: Uint8Array }
  | { type: typeof SkaType.DH_ANSWER; status: number; epoch: number; ephemeral: Uint8Array };

/** A frame that does not parse; the message names what is wrong (never bytes of the frame). */
export class SkaFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SkaFrameError";
  }
}

const BODY_LEN: Record<number, number> = {
  [SkaType.INTERMEDIATE_REQUEST]: 2 * KEY_LEN + EPOCH_LEN,
  [SkaType.INTERMEDIATE_RESPONSE]: 1 + EPOCH_LEN + KEY_LEN,
  [SkaType.DH_OFFER]: EPOCH_LEN + KEY_LEN,
  [SkaType.DH_ANSWER]: 1 + EPOCH_LEN + KEY_LEN,
};

/** Encodes `m` into a fresh frame. */
export function encodeSkaFrame(m: SkaMessage): Uint8Array {
  const bodyLen = BODY_LEN[m.type];
  const out = new Uint8Array(SKA_HEADER_LEN + bodyLen);
  const v = new DataView(out.buffer);
  v.setUint16(0, SKA_MAGIC);
  out[2] = SKA_VERSION;
  out[3] = m.type;
  v.setUint16(4, bodyLen);
  let o = SKA_HEADER_LEN;
  const put32 = (b: Uint8Array) => {
    if (b.length !== KEY_LEN) throw new RangeError("SKA keys are 32 bytes");
    out.set(b, o);
    o += KEY_LEN;
  };
  const putEpoch = (e: number) => {
    v.setBigUint64(o, BigInt(e));
    o += EPOCH_LEN;
  };
  switch (m.type) {
    case SkaType.INTERMEDIATE_REQUEST:
      put32(m.idA);
      put32(m.idB);
      putEpoch(m.epoch);
      break;
    case SkaType.INTERMEDIATE_RESPONSE:
      out[o++] = m.status;
      putEpoch(m.epoch);
      put32(m.intermediate);
      break;
    case SkaType.DH_OFFER:
      putEpoch(m.epoch);
      put32(m.ephemeral);
      break;
    case SkaType.DH_ANSWER:
      out[o++] = m.status;
      putEpoch(m.epoch);
      put32(m.ephemeral);
      break;
  }
  return out;
}

/** Total frame length announced by a complete header, after checking it; throws SkaFrameError. */
export function frameLength(header: Uint8Array): number {
  const v = new DataView(header.buffer, header.byteOffset, SKA_HEADER_LEN);
  if (v.getUint16(0) !== SKA_MAGIC) throw new SkaFrameError("not an SKA frame (bad magic)");
  if (header[2] !== SKA_VERSION) throw new SkaFrameError(`unsupported SKA version ${header[2]}`);
  const len = v.getUint16(4);
  if (len > SKA_MAX_BODY) throw new SkaFrameError(`SKA body of ${len} bytes is too long`);
  return SKA_HEADER_LEN + len;
}

/** Decodes one whole frame; throws SkaFrameError. */
export function decodeSkaFrame(frame: Uint8Array): SkaMessage {
  if (frame.length < SKA_HEADER_LEN) throw new SkaFrameError("SKA frame shorter than its header");
  const total = frameLength(frame);
  const type = frame[3];
  const want = BODY_LEN[type];
  if (want === undefined) throw new SkaFrameError(`unknown SKA frame type 0x${type.toString(16)}`);
  if (total !== frame.length || total !== SKA_HEADER_LEN + want) {
    throw new SkaFrameError(`SKA frame type 0x${type.toString(16)} has the wrong length`);
  }
  const v = new DataView(frame.buffer, frame.byteOffset, frame.length);
  let o = SKA_HEADER_LEN;
  const take32 = () => frame.slice(o, o += KEY_LEN);
  const takeEpoch = () => {
    const e = v.getBigUint64(o);
    o += EPOCH_LEN;
    if (e > BigInt(Number.MAX_SAFE_INTEGER)) throw new SkaFrameError("SKA epoch out of range");
    return Number(e);
  };
  switch (type) {
    case SkaType.INTERMEDIATE_REQUEST: {
      const idA = take32();
      const idB = take32();
      return { type, idA, idB, epoch: takeEpoch() };
    }
    case SkaType.INTERMEDIATE_RESPONSE: {
      const status = frame[o++];
      const epoch = takeEpoch();
      return { type, status, epoch, intermediate: take32() };
    }
    case SkaType.DH_OFFER: {
      const epoch = takeEpoch();
      return { type, epoch, ephemeral: take32() };
    }
    default: {
      const status = frame[o++];
      const epoch = takeEpoch();
      return { type: SkaType.DH_ANSWER, status, epoch, ephemeral: take32() };
    }
  }
}
