/**
 * Protocol profiles. V02 is the released Rosenpass (v0.2.x): keyed hash "incorrect HMAC-BLAKE2b",
 * static KEM Classic McEliece 460896 round 2 (ciphertext 188 B). V03 is upstream main's protocol
 * version 3: SHAKE256 keyed hash and McEliece round 4 (ciphertext 156 B). The two are not
 * wire-compatible; both peers of an exchange must use the same profile.
 */
import {
  AEAD_TAG_LEN,
  BISCUIT_CT_LEN,
  EKEM_CT_LEN,
  EKEM_PK_LEN,
  ENVELOPE_OVERHEAD,
  KEY_LEN,
  SESSION_ID_LEN,
} from "./constants.ts";
import { incorrectHmacBlake2b, type KeyedHash, keyedShake256 } from "./keyed-hash.ts";
import type { McElieceRound } from "./mceliece.ts";

/** Profile names as they appear in configuration. */
export type ProfileName = "v02" | "v03";

/** All profile names, default first. */
export const PROFILE_NAMES: readonly ProfileName[] = ["v02", "v03"];

/** The profile used when the configuration names none. */
export const DEFAULT_PROFILE: ProfileName = "v02";

/** Wire sizes of the four messages, envelope included. */
export interface MessageSizes {
  initHello: number;
  respHello: number;
  initConf: number;
  emptyData: number;
}

/** Everything that differs between protocol versions. */
export interface Profile {
  readonly name: ProfileName;
  /** The PROTOCOL string at the root of the hash tree. */
  readonly protocolId: string;
  readonly keyedHash: KeyedHash;
  readonly mcElieceRound: McElieceRound;
  readonly staticCiphertextLength: number;
  readonly sizes: MessageSizes;
}

function sizesFor(staticCiphertextLength: number): MessageSizes {
  const sid = SESSION_ID_LEN;
  return {
    initHello: ENVELOPE_OVERHEAD + sid + EKEM_PK_LEN + staticCiphertextLength + KEY_LEN + AEAD_TAG_LEN +
      AEAD_TAG_LEN,
    respHello: ENVELOPE_OVERHEAD + sid + sid + EKEM_CT_LEN + staticCiphertextLength + AEAD_TAG_LEN +
      BISCUIT_CT_LEN,
    initConf: ENVELOPE_OVERHEAD + sid + sid + BISCUIT_CT_LEN + AEAD_TAG_LEN,
    emptyData: ENVELOPE_OVERHEAD + sid + 8 + AEAD_TAG_LEN,
  };
}

const MCELIECE_ROUND2_CT_LEN = 188;
const MCELIECE_ROUND4_CT_LEN = 156;

/** Released Rosenpass: incorrect HMAC-BLAKE2b (its PROTOCOL string says BLAKE2s; kept for compatibility). */
export const PROFILE_V02: Profile = {
  name: "v02",
  protocolId: "Rosenpass v1 mceliece460896 Kyber512 ChaChaPoly1305 BLAKE2s",
  keyedHash: incorrectHmacBlake2b,
  mcElieceRound: 2,
  staticCiphertextLength: MCELIECE_ROUND2_CT_LEN,
  sizes: sizesFor(MCELIECE_ROUND2_CT_LEN),
};

/** Upstream protocol version 3: SHAKE256 and McEliece round 4. */
export const PROFILE_V03: Profile = {
  name: "v03",
  protocolId: "Rosenpass v1 mceliece460896 Kyber512 ChaChaPoly1305 SHAKE256",
  keyedHash: keyedShake256,
  mcElieceRound: 4,
  staticCiphertextLength: MCELIECE_ROUND4_CT_LEN,
  sizes: sizesFor(MCELIECE_ROUND4_CT_LEN),
};

/** The profile of a given name. */
export function profileByName(name: ProfileName): Profile {
  return name === "v03" ? PROFILE_V03 : PROFILE_V02;
}
