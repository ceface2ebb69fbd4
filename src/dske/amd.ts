/**
 * Systematic algebraic-manipulation-detection (AMD) code of docs/design.md §3.8
 * (Cramer–Dodis–Fehr–Padró–Wichs 2008), over GF(2^128) as encoded in ./gf128.ts.
 *
 * The 32-byte secret s is read as (s1, s2) ∈ GF(2^128)²; with a random α the tag is
 * t = α^5 + s1·α + s2·α² (the d = 3 code with s3 = 0; d + 2 = 5 is odd as characteristic 2 requires) and
 * the codeword is s ‖ α ‖ t (64 bytes). Any additive offset Δ ≠ 0 chosen independently of the codeword is
 * detected except with probability ≤ 4/2^128 = 2^-126.
 * @module
 */

import { constantTimeEqual } from "../crypto/constant-time.ts";
import { GF128_BYTES, gf128Mul } from "./gf128.ts";

/** Length of the protected secret in bytes. */
export const AMD_SECRET_BYTES = 32;
/** Length of a codeword s ‖ α ‖ t in bytes. */
export const AMD_CODEWORD_BYTES = 64;

/** t = α^5 + s1·α + s2·α², wiping every intermediate product. */
function amdTag(secret: Uint8Array, alpha: Uint8Array): Uint8Array {
  const s1 = secret.subarray(0, GF128_BYTES);
  const s2 = secret.subarray(GF128_BYTES, 2 * GF128_BYTES);
  const alpha2 = gf128Mul(alpha, alpha);
  const alpha4 = gf128Mul(alpha2, alpha2);
  const alpha5 = gf128Mul(alpha4, alpha);
  const s1Alpha = gf128Mul(s1, alpha);
  const s2Alpha2 = gf128Mul(s2, alpha2);
  const tag = new Uint8Array(GF128_BYTES);
  for (let i = 0; i < GF128_BYTES; i++) tag[i] = alpha5[i] ^ s1Alpha[i] ^ s2Alpha2[i];
  for (const temp of [alpha2, alpha4, alpha5, s1Alpha, s2Alpha2]) temp.fill(0);
  return tag;
}

/**
 * Encodes a 32-byte secret as the 64-byte codeword s ‖ α ‖ t. `alpha16` (16 bytes) is for tests and
 * deterministic callers; when omitted, α comes from the system CSPRNG.
 * @throws RangeError if the secret is not 32 bytes or alpha16 is not 16 bytes.
 */
export function amdEncode(secret32: Uint8Array, alpha16?: Uint8Array): Uint8Array {
  if (secret32.length !== AMD_SECRET_BYTES) throw new RangeError(`secret must be ${AMD_SECRET_BYTES} bytes`);
  if (alpha16 !== undefined && alpha16.length !== GF128_BYTES) {
    throw new RangeError(`alpha must be ${GF128_BYTES} bytes`);
  }
  const alpha = alpha16 ?? crypto.getRandomValues(new Uint8Array(GF128_BYTES));
  const tag = amdTag(secret32, alpha);
  const codeword = new Uint8Array(AMD_CODEWORD_BYTES);
  codeword.set(secret32, 0);
  codeword.set(alpha, AMD_SECRET_BYTES);
  codeword.set(tag, AMD_SECRET_BYTES + GF128_BYTES);
  tag.fill(0);
  if (alpha16 === undefined) alpha.fill(0);
  return codeword;
}

/**
 * Checks a 64-byte codeword and returns a copy of its 32-byte secret if the tag verifies (constant-time
 * comparison), otherwise null.
 * @throws RangeError if the codeword is not 64 bytes.
 */
export function amdDecode(codeword64: Uint8Array): Uint8Array | null {
  if (codeword64.length !== AMD_CODEWORD_BYTES) {
    throw new RangeError(`codeword must be ${AMD_CODEWORD_BYTES} bytes`);
  }
  const secret = codeword64.subarray(0, AMD_SECRET_BYTES);
  const alpha = codeword64.subarray(AMD_SECRET_BYTES, AMD_SECRET_BYTES + GF128_BYTES);
  const tag = codeword64.subarray(AMD_SECRET_BYTES + GF128_BYTES);
  const expected = amdTag(secret, alpha);
  const valid = constantTimeEqual(expected, tag);
  expected.fill(0);
  return valid ? secret.slice() : null;
}
