/**
 * The two keyed hash functions Rosenpass uses for every derivation (32-byte key, 32-byte output):
 * the released protocol's "incorrect HMAC" over keyed BLAKE2b (V02) and SHAKE256 over key ‖ data (V03).
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { shake256 } from "@noble/hashes/sha3.js";
import { KEY_LEN } from "./constants.ts";

/** A keyed hash: 32-byte key, any data, 32-byte output. */
export type KeyedHash = (key: Uint8Array, data: Uint8Array) => Uint8Array;

const HMAC_INNER_PAD = 0x36;
const HMAC_OUTER_PAD = 0x5c;

function padKey(key: Uint8Array, pad: number): Uint8Array {
  if (key.length !== KEY_LEN) throw new RangeError(`keyed hash key must be ${KEY_LEN} bytes`);
  return key.map((b) => b ^ pad);
}

/**
 * Rosenpass' HMAC variant: HMAC's pads, but the two hash calls are keyed BLAKE2b (32-byte output)
 * instead of hashing pad ‖ data. Required for wire compatibility with released Rosenpass (V02).
 */
export const incorrectHmacBlake2b: KeyedHash = (key, data) => {
  const inner = blake2b(data, { key: padKey(key, HMAC_INNER_PAD), dkLen: KEY_LEN });
  return blake2b(inner, { key: padKey(key, HMAC_OUTER_PAD), dkLen: KEY_LEN });
};

/** SHAKE256(key ‖ data) truncated to 32 bytes: the keyed hash of protocol V03. */
export const keyedShake256: KeyedHash = (key, data) => {
  if (key.length !== KEY_LEN) throw new RangeError(`keyed hash key must be ${KEY_LEN} bytes`);
  return shake256.create({ dkLen: KEY_LEN }).update(key).update(data).digest();
};
