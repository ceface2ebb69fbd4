import assert from "node:assert/strict";
import { GF256_POLYNOMIAL, gfDiv, gfInv, gfMul } from "../../src/dske/gf256.ts";
import { combineShares, interpolateAt, shareConsistent, splitSecret } from "../../src/dske/shamir.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

/** Independent reference: carry-less product, then polynomial long division by 0x11B. */
function referenceMul(a: number, b: number): number {
  let wide = 0;
  for (let i = 0; i < 8; i++) if ((b >> i) & 1) wide ^= a << i;
  for (let bit = 14; bit >= 8; bit--) if ((wide >> bit) & 1) wide ^= GF256_POLYNOMIAL << (bit - 8);
  return wide;
}

/** Every k-element subset of 0..n−1. */
function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k), ...subsets(n - 1, k - 1).map((s) => [...s, n - 1])];
}

Deno.test("GF(2^8) arithmetic", async (t) => {
  await t.step("FIPS-197 worked examples", () => {
    assert.equal(gfMul(0x57, 0x83), 0xc1);
    assert.equal(gfMul(0x57, 0x13), 0xfe);
    assert.deepEqual([0x02, 0x04, 0x08, 0x10].map((b) => gfMul(0x57, b)), [0xae, 0x47, 0x8e, 0x07]);
    assert.equal(gfInv(0x53), 0xca);
  });

  await t.step("multiplication matches a long-division reference for all 65536 pairs", () => {
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        if (gfMul(a, b) !== referenceMul(a, b)) assert.fail(`mismatch at ${a}·${b}`);
      }
    }
  });

  await t.step("every nonzero a has a·inv(a) = 1 and division inverts multiplication", () => {
    for (let a = 1; a < 256; a++) {
      assert.equal(gfMul(a, gfInv(a)), 1, `a = ${a}`);
      for (const b of [1, 2, 0x53, 0xff]) assert.equal(gfDiv(gfMul(a, b), b), a);
    }
  });

  await t.step("0 has no inverse; non-bytes are rejected", () => {
    assert.throws(() => gfInv(0), RangeError);
    assert.throws(() => gfDiv(5, 0), RangeError);
    assert.throws(() => gfMul(256, 1), RangeError);
    assert.throws(() => gfMul(1, -1), RangeError);
    assert.throws(() => gfMul(1.5, 1), RangeError);
  });
});

Deno.test("Shamir per-byte sharing", async (t) => {
  await t.step("every k-subset (and every larger subset) reconstructs, for several (k, n)", () => {
    const random = seededRandom(7);
    for (const [k, n] of [[2, 2], [2, 3], [3, 5], [5, 5], [4, 7]]) {
      const secret = random(64);
      const xs = Array.from({ length: n }, (_, i) => i + 1);
      const shares = splitSecret(secret, k, xs, random);
      assert.equal(shares.length, n);
      for (const share of shares) assert.equal(share.length, secret.length);
      for (let size = k; size <= n; size++) {
        for (const subset of subsets(n, size)) {
          const points = subset.map((i) => ({ x: xs[i], share: shares[i] }));
          assert.deepEqual(combineShares(points), secret, `k=${k} n=${n} subset=${subset}`);
        }
      }
    }
  });

  await t.step("non-consecutive x-coordinates, including 255, work", () => {
    const random = seededRandom(11);
    const secret = random(32);
    const xs = [255, 3, 128, 17];
    const shares = splitSecret(secret, 3, xs, random);
    assert.deepEqual(combineShares([1, 2, 3].map((i) => ({ x: xs[i], share: shares[i] }))), secret);
    assert.deepEqual(combineShares([0, 3, 1].map((i) => ({ x: xs[i], share: shares[i] }))), secret);
  });

  await t.step("the injected random bytes are the coefficients, laid out degree-major", () => {
    const secret = Uint8Array.of(0x11, 0x22);
    const coefficients = Uint8Array.of(0xa1, 0xa2, 0xb1, 0xb2); // x^1: [a1, a2], x^2: [b1, b2]
    let requested = -1;
    const shares = splitSecret(secret, 3, [1, 2, 9], (n) => {
      requested = n;
      return coefficients.slice();
    });
    assert.equal(requested, 4);
    [1, 2, 9].forEach((x, i) => {
      const expected = [0, 1].map((j) =>
        secret[j] ^ gfMul(coefficients[j], x) ^ gfMul(coefficients[2 + j], gfMul(x, x))
      );
      assert.deepEqual([...shares[i]], expected);
    });
  });

  await t.step("k = 2: one share byte is uniform over the coefficient whatever the secret byte", () => {
    for (const x of [1, 2, 0x8d, 255]) {
      for (let s = 0; s < 256; s++) {
        const seen = new Set<number>();
        for (let c = 0; c < 256; c++) {
          seen.add(splitSecret(Uint8Array.of(s), 2, [x, x === 1 ? 2 : 1], () => Uint8Array.of(c))[0][0]);
        }
        // 256 coefficients → 256 distinct share values: each share value is consistent with every secret.
        if (seen.size !== 256) assert.fail(`x=${x} s=${s}: only ${seen.size} share values`);
      }
    }
  });

  await t.step("k = 3: any two share bytes are jointly uniform whatever the secret byte", () => {
    for (const s of [0x00, 0x5a, 0xff]) {
      const seen = new Set<number>();
      for (let c1 = 0; c1 < 256; c1++) {
        for (let c2 = 0; c2 < 256; c2++) {
          const [a, b] = splitSecret(Uint8Array.of(s), 3, [4, 200, 1], () => Uint8Array.of(c1, c2));
          seen.add((a[0] << 8) | b[0]);
        }
      }
      assert.equal(seen.size, 65536, `secret byte ${s}`);
    }
  });

  await t.step("the random coefficient buffer is wiped", () => {
    const buffer = Uint8Array.of(9, 8, 7);
    splitSecret(Uint8Array.of(1, 2, 3), 2, [1, 2], () => buffer);
    assert.deepEqual([...buffer], [0, 0, 0]);
  });

  await t.step("bad parameters are rejected with RangeError", () => {
    const secret = new Uint8Array(4);
    const cases: [number, number[]][] = [
      [1, [1, 2]],
      [2.5, [1, 2, 3]],
      [3, [1, 2]],
      [2, [1, 1, 2]],
      [2, [0, 1]],
      [2, [1, 256]],
      [2, [1, 1.5]],
      [2, Array.from({ length: 256 }, (_, i) => (i % 255) + 1)],
    ];
    for (const [k, xs] of cases) {
      assert.throws(() => splitSecret(secret, k, xs), RangeError, `k=${k} xs=${xs.slice(0, 4)}`);
    }
    assert.throws(() => splitSecret(secret, 2, [1, 2], () => new Uint8Array(3)), RangeError);
    const share = new Uint8Array(4);
    assert.throws(() => combineShares([{ x: 1, share }]), RangeError);
    assert.throws(() => combineShares([{ x: 1, share }, { x: 1, share }]), RangeError);
    assert.throws(() => combineShares([{ x: 0, share }, { x: 1, share }]), RangeError);
    assert.throws(() => combineShares([{ x: 1, share }, { x: 2, share: new Uint8Array(5) }]), RangeError);
    assert.throws(() => interpolateAt([{ x: 1, share }], 256), RangeError);
  });
});

Deno.test("share consistency against a polynomial", async (t) => {
  const random = seededRandom(3);
  const secret = random(64);
  const xs = [1, 2, 3, 4, 5];
  const shares = splitSecret(secret, 3, xs, random);
  const basis = [0, 1, 2].map((i) => ({ x: xs[i], share: shares[i] }));

  await t.step("honest extra shares lie on the polynomial", () => {
    assert.equal(shareConsistent(basis, { x: 4, share: shares[3] }), true);
    assert.equal(shareConsistent(basis, { x: 5, share: shares[4] }), true);
    assert.deepEqual(interpolateAt(basis, 5), shares[4]);
  });

  await t.step("a share with any altered byte, or under the wrong x, does not", () => {
    for (let j = 0; j < 64; j++) {
      const altered = shares[3].slice();
      altered[j] ^= 1 << (j % 8);
      assert.equal(shareConsistent(basis, { x: 4, share: altered }), false, `byte ${j}`);
    }
    assert.equal(shareConsistent(basis, { x: 5, share: shares[3] }), false);
    assert.equal(shareConsistent(basis, { x: 4, share: shares[3].subarray(0, 63) }), false);
  });

  await t.step("a check at one of the basis x-coordinates compares with that point", () => {
    assert.equal(shareConsistent(basis, { x: 2, share: shares[1] }), true);
    assert.equal(shareConsistent(basis, { x: 2, share: shares[3] }), false);
  });
});
