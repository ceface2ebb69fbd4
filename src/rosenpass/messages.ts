/**
 * Encoding and decoding of the four handshake messages inside the Rosenpass envelope
 * (type, 3 reserved bytes, payload, MAC 16, cookie 16). Field layouts depend on the profile only
 * through the static KEM ciphertext length. Decoding checks type and exact length; the MAC is
 * checked separately (it needs the receiver's public key).
 */
import {
  AEAD_TAG_LEN,
  BISCUIT_CT_LEN,
  COOKIE_LEN,
  EKEM_CT_LEN,
  EKEM_PK_LEN,
  ENVELOPE_HEADER_LEN,
  KEY_LEN,
  MAC_LEN,
  MessageType,
  type MessageTypeByte,
  SESSION_ID_LEN,
} from "./constants.ts";
import type { Profile } from "./profile.ts";

/** InitHello payload (initiator → responder). */
export interface InitHello {
  kind: "init-hello";
  sidi: Uint8Array;
  epki: Uint8Array;
  sctr: Uint8Array;
  pidiCt: Uint8Array;
  auth: Uint8Array;
}

/** RespHello payload (responder → initiator). */
export interface RespHello {
  kind: "resp-hello";
  sidr: Uint8Array;
  sidi: Uint8Array;
  ecti: Uint8Array;
  scti: Uint8Array;
  auth: Uint8Array;
  biscuit: Uint8Array;
}

/** InitConf payload (initiator → responder). */
export interface InitConf {
  kind: "init-conf";
  sidi: Uint8Array;
  sidr: Uint8Array;
  biscuit: Uint8Array;
  auth: Uint8Array;
}

/** EmptyData payload: the responder's confirmation (ends InitConf retransmission). */
export interface EmptyData {
  kind: "empty-data";
  sid: Uint8Array;
  ctr: Uint8Array;
  auth: Uint8Array;
}

/** Any handshake message payload. */
export type Payload = InitHello | RespHello | InitConf | EmptyData;

/** A decoded envelope: the payload, the MAC and the bytes it covers. */
export interface DecodedMessage {
  payload: Payload;
  mac: Uint8Array;
  macCovered: Uint8Array;
}

type FieldList = readonly (readonly [string, number])[];

function layouts(profile: Profile): Record<Payload["kind"], { type: MessageTypeByte; fields: FieldList }> {
  const sct = profile.staticCiphertextLength;
  return {
    "init-hello": {
      type: MessageType.InitHello,
      fields: [["sidi", SESSION_ID_LEN], ["epki", EKEM_PK_LEN], ["sctr", sct], [
        "pidiCt",
        KEY_LEN + AEAD_TAG_LEN,
      ], ["auth", AEAD_TAG_LEN]],
    },
    "resp-hello": {
      type: MessageType.RespHello,
      fields: [["sidr", SESSION_ID_LEN], ["sidi", SESSION_ID_LEN], ["ecti", EKEM_CT_LEN], ["scti", sct], [
        "auth",
        AEAD_TAG_LEN,
      ], ["biscuit", BISCUIT_CT_LEN]],
    },
    "init-conf": {
      type: MessageType.InitConf,
      fields: [["sidi", SESSION_ID_LEN], ["sidr", SESSION_ID_LEN], ["biscuit", BISCUIT_CT_LEN], [
        "auth",
        AEAD_TAG_LEN,
      ]],
    },
    "empty-data": {
      type: MessageType.EmptyData,
      fields: [["sid", SESSION_ID_LEN], ["ctr", 8], ["auth", AEAD_TAG_LEN]],
    },
  };
}

const KIND_BY_TYPE = new Map<number, Payload["kind"]>([
  [MessageType.InitHello, "init-hello"],
  [MessageType.RespHello, "resp-hello"],
  [MessageType.InitConf, "init-conf"],
  [MessageType.EmptyData, "empty-data"],
]);

/**
 * Encodes a payload into an envelope. `mac` computes the MAC over the bytes before the MAC field;
 * `cookie`, when given, computes the cookie field over the bytes before it (otherwise it stays zero).
 */
export function encodeMessage(
  profile: Profile,
  payload: Payload,
  mac: (covered: Uint8Array) => Uint8Array,
  cookie?: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  const layout = layouts(profile)[payload.kind];
  const payloadLen = layout.fields.reduce((sum, [, len]) => sum + len, 0);
  const out = new Uint8Array(ENVELOPE_HEADER_LEN + payloadLen + MAC_LEN + COOKIE_LEN);
  out[0] = layout.type;
  let offset = ENVELOPE_HEADER_LEN;
  const fields = payload as unknown as Record<string, Uint8Array>;
  for (const [name, len] of layout.fields) {
    const value = fields[name];
    if (value.length !== len) throw new RangeError(`${payload.kind}.${name} must be ${len} bytes`);
    out.set(value, offset);
    offset += len;
  }
  out.set(mac(out.subarray(0, offset)), offset);
  if (cookie) out.set(cookie(out.subarray(0, offset + MAC_LEN)), offset + MAC_LEN);
  return out;
}

/** Decodes an envelope; null when the type is unknown, a reserved byte is set or the length is wrong. */
export function decodeMessage(profile: Profile, bytes: Uint8Array): DecodedMessage | null {
  const kind = KIND_BY_TYPE.get(bytes[0]);
  if (kind === undefined) return null;
  if (bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) return null;
  const layout = layouts(profile)[kind];
  const payloadLen = layout.fields.reduce((sum, [, len]) => sum + len, 0);
  if (bytes.length !== ENVELOPE_HEADER_LEN + payloadLen + MAC_LEN + COOKIE_LEN) return null;
  const payload: Record<string, unknown> = { kind };
  let offset = ENVELOPE_HEADER_LEN;
  for (const [name, len] of layout.fields) {
    payload[name] = bytes.slice(offset, offset + len);
    offset += len;
  }
  return {
    payload: payload as unknown as Payload,
    mac: bytes.slice(offset, offset + MAC_LEN),
    macCovered: bytes.subarray(0, offset),
  };
}

/** The message type byte of a datagram, if it is one of the handshake messages. */
export function messageKind(bytes: Uint8Array): Payload["kind"] | undefined {
  return bytes.length > 0 ? KIND_BY_TYPE.get(bytes[0]) : undefined;
}
