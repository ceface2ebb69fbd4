import assert from "node:assert/strict";
import { ghash } from "@noble/ciphers/_polyval.js";
import { AMD_CODEWORD_BYTES, amdDecode, amdEncode } from "../../src/dske/amd.ts";
import { gf128Add, gf128Mul } from "../../src/dske/gf128.ts";
import { combineShares, splitSecret } from "../../src/dske/shamir.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

const toBig = (b: Uint8Array) => b.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
const fromBig = (v: bigint) =>
  Uint8Array.from({ length: 16 }, (_, i) => Number((v >> BigInt(8 * (15 - i))) & 0xffn));

/** Reference GF(2^128) product with BigInt: carry-less multiply, then reduce by x^128 + x^7 + x^2 + x + 1. */
function referenceMul(a: Uint8Array, b: Uint8Array): Uint8Array {
  const x = toBig(a);
  const y = toBig(b);
  let wide = 0n;
  for (let i = 0n; i < 128n; i++) if ((y >> i) & 1n) wide ^= x << i;
  const modulus = (1n << 128n) | 0x87n;
  for (let bit = 254n; bit >= 128n; bit--) if ((wide >> bit) & 1n) wide ^= modulus << (bit - 128n);
  return fromBig(wide);
}

/** Reverses all 128 bits: converts between this encoding and GCM's bit-reflected one. */
function reverseBits(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    let r = 0;
    for (let bit = 0; bit < 8; bit++) r |= ((b[i] >> bit) & 1) << (7 - bit);
    out[15 - i] = r;
  }
  return out;
}

function referenceTag(s: Uint8Array, alpha: Uint8Array): Uint8Array {
  const a2 = referenceMul(alpha, alpha);
  const a5 = referenceMul(referenceMul(a2, a2), alpha);
  return fromBig(
    toBig(a5) ^ toBig(referenceMul(s.subarray(0, 16), alpha)) ^ toBig(referenceMul(s.subarray(16), a2)),
  );
}

Deno.test("GF(2^128) multiplication", async (t) => {
  const random = seededRandom(5);
  const one = fromBig(1n);
  const x = fromBig(2n);

  await t.step("x^127 · x reduces to x^7 + x^2 + x + 1; 1 is the identity", () => {
    assert.deepEqual(gf128Mul(fromBig(1n << 127n), x), fromBig(0x87n));
    const a = random(16);
    assert.deepEqual(gf128Mul(a, one), a);
    assert.deepEqual(gf128Mul(one, a), a);
    assert.deepEqual(gf128Mul(a, new Uint8Array(16)), new Uint8Array(16));
  });

  await t.step("matches a BigInt reference and noble's GHASH (bit-reflected) on random operands", () => {
    for (let i = 0; i < 200; i++) {
      const a = random(16);
      const b = random(16);
      const product = gf128Mul(a, b);
      assert.deepEqual(product, referenceMul(a, b));
      assert.deepEqual(product, reverseBits(ghash(reverseBits(a), reverseBits(b))));
      assert.deepEqual(product, gf128Mul(b, a));
    }
  });

  await t.step("distributes over addition", () => {
    for (let i = 0; i < 50; i++) {
      const [a, b, c] = [random(16), random(16), random(16)];
      assert.deepEqual(gf128Mul(a, gf128Add(b, c)), gf128Add(gf128Mul(a, b), gf128Mul(a, c)));
    }
  });

  await t.step("operands of the wrong length are rejected", () => {
    assert.throws(() => gf128Mul(new Uint8Array(15), one), RangeError);
    assert.throws(() => gf128Add(one, new Uint8Array(17)), RangeError);
  });
});

Deno.test("AMD code", async (t) => {
  const random = seededRandom(99);

  await t.step("codeword is s ‖ α ‖ t with t = α^5 + s1·α + s2·α², and decodes to s", () => {
    for (let i = 0; i < 20; i++) {
      const secret = random(32);
      const alpha = random(16);
      const codeword = amdEncode(secret, alpha);
      assert.equal(codeword.length, AMD_CODEWORD_BYTES);
      assert.deepEqual(codeword.subarray(0, 32), secret);
      assert.deepEqual(codeword.subarray(32, 48), alpha);
      assert.deepEqual(codeword.subarray(48), referenceTag(secret, alpha));
      assert.deepEqual(amdDecode(codeword), secret);
    }
  });

  await t.step("without an injected α, a fresh random α is drawn each time", () => {
    const secret = random(32);
    const first = amdEncode(secret);
    const second = amdEncode(secret);
    assert.notDeepEqual(first.subarray(32, 48), second.subarray(32, 48));
    assert.deepEqual(amdDecode(first), secret);
    assert.deepEqual(amdDecode(second), secret);
  });

  await t.step("the decoded secret is a copy, not a view of the codeword", () => {
    const codeword = amdEncode(random(32), random(16));
    const secret = amdDecode(codeword)!;
    codeword.fill(0);
    assert.notDeepEqual(secret, new Uint8Array(32));
  });

  await t.step("every single-bit flip anywhere in the codeword (s, α or t) is rejected", () => {
    const codeword = amdEncode(random(32), random(16));
    for (let bit = 0; bit < 512; bit++) {
      const tampered = codeword.slice();
      tampered[bit >> 3] ^= 1 << (bit & 7);
      if (amdDecode(tampered) !== null) assert.fail(`bit ${bit} flip accepted`);
    }
  });

  await t.step("every nonzero change of any single α or t byte is rejected", () => {
    const codeword = amdEncode(random(32), random(16));
    for (let position = 32; position < 64; position++) {
      for (let delta = 1; delta < 256; delta++) {
        const tampered = codeword.slice();
        tampered[position] ^= delta;
        if (amdDecode(tampered) !== null) assert.fail(`byte ${position} ^ ${delta} accepted`);
      }
    }
  });

  await t.step("wrong lengths are rejected", () => {
    assert.throws(() => amdEncode(new Uint8Array(31)), RangeError);
    assert.throws(() => amdEncode(new Uint8Array(32), new Uint8Array(15)), RangeError);
    assert.throws(() => amdDecode(new Uint8Array(63)), RangeError);
  });
});

Deno.test("AMD over Shamir (k = 2, n = 3): tampering with one share is always detected", async (t) => {
  const random = seededRandom(2024);
  const xs = [1, 2, 3];
  const fresh = () => {
    const secret = random(32);
    const codeword = amdEncode(secret, random(16));
    return { secret, shares: splitSecret(codeword, 2, xs, random) };
  };
  const combineWith = (shares: Uint8Array[], bad: number, tampered: Uint8Array, honest: number) =>
    amdDecode(combineShares([{ x: xs[bad], share: tampered }, { x: xs[honest], share: shares[honest] }]));

  await t.step("honest pairs decode to the secret", () => {
    const { secret, shares } = fresh();
    for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) {
      assert.deepEqual(
        amdDecode(combineShares([{ x: xs[a], share: shares[a] }, { x: xs[b], share: shares[b] }])),
        secret,
      );
    }
  });

  await t.step("1200 random nonzero 64-byte offsets, across all hubs and honest partners", () => {
    let detected = 0;
    for (let trial = 0; trial < 1200; trial++) {
      const { shares } = fresh();
      const bad = trial % 3;
      const honest = (bad + 1 + ((trial / 3) | 0) % 2) % 3;
      let offset = random(64);
      while (offset.every((b) => b === 0)) offset = random(64);
      const tampered = shares[bad].map((b, i) => b ^ offset[i]);
      if (combineWith(shares, bad, tampered, honest) === null) detected++;
    }
    assert.equal(detected, 1200);
  });

  await t.step("every single-bit flip and 600 random single-byte changes in any one share", () => {
    const { shares } = fresh();
    for (let bad = 0; bad < 3; bad++) {
      for (const honest of [0, 1, 2].filter((h) => h !== bad)) {
        for (let bit = 0; bit < 512; bit++) {
          const tampered = shares[bad].slice();
          tampered[bit >> 3] ^= 1 << (bit & 7);
          if (combineWith(shares, bad, tampered, honest) !== null) {
            assert.fail(`hub ${bad} bit ${bit} accepted`);
          }
        }
      }
    }
    for (let trial = 0; trial < 600; trial++) {
      const bad = trial % 3;
      const honest = (bad + 1) % 3;
      const [position, delta] = random(2);
      const tampered = shares[bad].slice();
      tampered[position % 64] ^= delta === 0 ? 1 : delta;
      if (combineWith(shares, bad, tampered, honest) !== null) assert.fail(`trial ${trial} accepted`);
    }
  });
});
