/**
 * Arithmetic in GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B), the field
 * draft-mcgrew-tss uses for per-byte Shamir sharing.
 *
 * Implementation choice: table-free. Multiplication is a fixed 8-round shift-and-add with masks instead of
 * branches, and inversion is the fixed exponentiation a^254, so no secret value ever indexes a table (no
 * cache-timing channel through log/exp lookups) and the sequence of operations does not depend on the
 * operands. JavaScript gives no hard constant-time guarantee; this is "constant-time-ish" by construction.
 * @module
 */

/** The reduction polynomial x^8 + x^4 + x^3 + x + 1. */
export const GF256_POLYNOMIAL = 0x11b;

function assertByte(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be an integer in 0..255`);
}

/** Multiplication without argument checks, for inner loops whose operands are already bytes. */
export function gfMulUnchecked(a: number, b: number): number {
  let product = 0;
  let x = a;
  let y = b;
  for (let i = 0; i < 8; i++) {
    product ^= x & -(y & 1);
    const overflow = -((x >> 7) & 1);
    x = ((x << 1) ^ (GF256_POLYNOMIAL & overflow)) & 0xff;
    y >>= 1;
  }
  return product;
}

/** Product of two field elements (each an integer 0..255); throws RangeError for non-bytes. */
export function gfMul(a: number, b: number): number {
  assertByte(a, "a");
  assertByte(b, "b");
  return gfMulUnchecked(a, b);
}

/** Multiplicative inverse a^-1 = a^254; throws RangeError for 0 (which has none) and for non-bytes. */
export function gfInv(a: number): number {
  assertByte(a, "a");
  if (a === 0) throw new RangeError("0 has no inverse in GF(2^8)");
  // 254 = 2 + 4 + ... + 128: multiply together a^(2^i) for i = 1..7.
  let power = a;
  let result = 1;
  for (let i = 0; i < 7; i++) {
    power = gfMulUnchecked(power, power);
    result = gfMulUnchecked(result, power);
  }
  return result;
}

/** Quotient a / b; throws RangeError when b is 0 or either argument is not a byte. */
export function gfDiv(a: number, b: number): number {
  assertByte(a, "a");
  return gfMulUnchecked(a, gfInv(b));
}
