/**
 * Information-theoretic one-time authenticator for DSKE client↔hub frames (docs/design.md §3.4):
 * Poly1305 (RFC 8439) keyed by 32 never-reused PSRD bytes laid out as r ‖ s. With a uniformly random key
 * used once, forgery succeeds with probability ≤ 8⌈L/16⌉/2^106 per attempt, without computational
 * assumptions. A key MUST NOT authenticate two different messages.
 * @module
 */

import { Poly1305 } from "@noble/ciphers/_poly1305.js";
import { constantTimeEqual } from "../crypto/constant-time.ts";

/** Length of a one-time key (r ‖ s) in bytes. */
export const ONE_TIME_KEY_BYTES = 32;
/** Length of a tag in bytes. */
export const ONE_TIME_TAG_BYTES = 16;

/**
 * The 16-byte Poly1305 tag of `message` under the one-time `key32` (r ‖ s, RFC 8439 layout).
 * @throws RangeError if the key is not 32 bytes.
 */
export function oneTimeTag(key32: Uint8Array, message: Uint8Array): Uint8Array {
  if (key32.length !== ONE_TIME_KEY_BYTES) throw new RangeError(`key must be ${ONE_TIME_KEY_BYTES} bytes`);
  const mac = new Poly1305(key32);
  mac.update(message);
  return mac.digest(); // digest() wipes the MAC's internal key state
}

/**
 * Whether `tag16` is the tag of `message` under `key32`, compared in constant time. A tag of the wrong
 * length is simply rejected.
 * @throws RangeError if the key is not 32 bytes.
 */
export function verifyOneTimeTag(key32: Uint8Array, message: Uint8Array, tag16: Uint8Array): boolean {
  const expected = oneTimeTag(key32, message);
  const valid = tag16.length === ONE_TIME_TAG_BYTES && constantTimeEqual(expected, tag16);
  expected.fill(0);
  return valid;
}
