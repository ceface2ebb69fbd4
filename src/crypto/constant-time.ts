/**
 * Constant-time byte-string comparison (MACs, cookies, AMD tags, shares, self-test answers).
 * @module
 */

/**
 * Whether `a` and `b` hold the same bytes. The running time depends only on the lengths (which are
 * public in every use here), never on where the first difference is.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
