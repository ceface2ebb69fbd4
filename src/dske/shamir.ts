/**
 * Shamir secret sharing applied byte by byte over GF(2^8) (AES polynomial), docs/design.md
 * §3.8. Byte j of the secret is the constant term of its own random polynomial of degree k−1;
 * the share for x-coordinate x is the string of values p_j(x). x-coordinates are public and lie in 1..255.
 * @module
 */

import { constantTimeEqual } from "../crypto/constant-time.ts";
import { gfInv, gfMulUnchecked } from "./gf256.ts";

/** One share together with its x-coordinate. */
export interface SharePoint {
  /** The x-coordinate, an integer in 1..255. */
  x: number;
  /** p_j(x) for every byte position j. */
  share: Uint8Array;
}

/** Source of uniformly random bytes; returns exactly `n` bytes. */
export type RandomBytes = (n: number) => Uint8Array;

/** The CSPRNG used when no random source is injected. */
export const systemRandomBytes: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

function isCoordinate(x: number): boolean {
  return Number.isInteger(x) && x >= 1 && x <= 255;
}

function assertDistinctCoordinates(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!isCoordinate(x)) throw new RangeError("every x-coordinate must be an integer in 1..255");
    if (seen.has(x)) throw new RangeError("x-coordinates must be distinct");
    seen.add(x);
  }
}

/**
 * Splits `secret` into one share per entry of `xs` (each the length of the secret) so that any `k` of them
 * recover it and any k−1 reveal nothing.
 *
 * Randomness: `random` is called once for (k−1)·secret.length bytes; the coefficient of x^d for byte j is
 * at index (d−1)·secret.length + j. That buffer is wiped before returning.
 *
 * @throws RangeError unless 2 ≤ k ≤ xs.length ≤ 255 and the xs are distinct integers in 1..255.
 */
export function splitSecret(
  secret: Uint8Array,
  k: number,
  xs: readonly number[],
  random: RandomBytes = systemRandomBytes,
): Uint8Array[] {
  if (!Number.isInteger(k) || k < 2) throw new RangeError("threshold k must be an integer ≥ 2");
  if (xs.length < k) throw new RangeError("need at least k x-coordinates");
  if (xs.length > 255) throw new RangeError("at most 255 shares");
  assertDistinctCoordinates(xs);

  const len = secret.length;
  const coefficients = random((k - 1) * len);
  if (coefficients.length !== (k - 1) * len) throw new RangeError("random source returned the wrong length");
  const shares: Uint8Array[] = [];
  for (const x of xs) {
    const share = new Uint8Array(len);
    for (let j = 0; j < len; j++) {
      // Horner: ((c_{k-1}·x + c_{k-2})·x + ... + c_1)·x + secret[j].
      let y = 0;
      for (let d = k - 1; d >= 1; d--) y = gfMulUnchecked(y, x) ^ coefficients[(d - 1) * len + j];
      share[j] = gfMulUnchecked(y, x) ^ secret[j];
    }
    shares.push(share);
  }
  coefficients.fill(0);
  return shares;
}

function assertPoints(points: readonly SharePoint[]): number {
  if (points.length === 0) throw new RangeError("need at least one point");
  assertDistinctCoordinates(points.map((p) => p.x));
  const len = points[0].share.length;
  for (const p of points) {
    if (p.share.length !== len) throw new RangeError("all shares must have the same length");
  }
  return len;
}

/**
 * Evaluates, at `x` (0..255), the per-byte polynomials of degree < points.length that pass through the
 * given points (Lagrange interpolation). Throws RangeError on duplicate or out-of-range x-coordinates or
 * unequal share lengths.
 */
export function interpolateAt(points: readonly SharePoint[], x: number): Uint8Array {
  const len = assertPoints(points);
  if (!Number.isInteger(x) || x < 0 || x > 255) throw new RangeError("evaluation point must be in 0..255");
  // Lagrange basis L_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j); subtraction is XOR in characteristic 2.
  // Depends only on public x-coordinates, so it is computed once for all bytes.
  const basis = points.map((pi, i) => {
    let numerator = 1;
    let denominator = 1;
    points.forEach((pj, j) => {
      if (j === i) return;
      numerator = gfMulUnchecked(numerator, x ^ pj.x);
      denominator = gfMulUnchecked(denominator, pi.x ^ pj.x);
    });
    return gfMulUnchecked(numerator, gfInv(denominator));
  });
  const out = new Uint8Array(len);
  for (let j = 0; j < len; j++) {
    let y = 0;
    for (let i = 0; i < points.length; i++) y ^= gfMulUnchecked(basis[i], points[i].share[j]);
    out[j] = y;
  }
  return out;
}

/**
 * Recovers the secret from exactly the given points (the caller passes k of them): interpolation at 0.
 * Throws RangeError for fewer than 2 points, duplicate or out-of-range x, or unequal lengths.
 */
export function combineShares(points: readonly SharePoint[]): Uint8Array {
  if (points.length < 2) throw new RangeError("need at least 2 shares (k ≥ 2)");
  return interpolateAt(points, 0);
}

/**
 * Whether `check` lies on the polynomials defined by `points` (k points define degree k−1). `check.x` may
 * coincide with one of the points, in which case its share must equal that point's. The comparison is in
 * constant time; the interpolated value is wiped.
 */
export function shareConsistent(points: readonly SharePoint[], check: SharePoint): boolean {
  const len = assertPoints(points);
  if (!isCoordinate(check.x)) throw new RangeError("x-coordinate must be an integer in 1..255");
  if (check.share.length !== len) return false;
  const expected = interpolateAt(points, check.x);
  const same = constantTimeEqual(expected, check.share);
  expected.fill(0);
  return same;
}
