/**
 * Known-answer tests for the crypto primitives (X25519, BLAKE2s, HMAC/KDF, WireGuard constants,
 * ChaCha20-Poly1305, AES-256-GCM, XChaCha20-Poly1305), with every AEAD test run on both backends.
 * The libcrypto steps are skipped with a message when libcrypto.so.3 is missing, and fail
 * instead when the `CI` environment variable is set.
 */
import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac as referenceHmac } from "@noble/hashes/hmac.js";
import { blake2sRaw, hash, hmac, mac } from "../../src/crypto/blake2s.ts";
import { kdf1, kdf2, kdf3 } from "../../src/crypto/kdf.ts";
import { dh, publicKey } from "../../src/crypto/x25519.ts";
import {
  type Aead,
  type AeadBackendName,
  type AeadName,
  TAG_LEN,
  writeNonce,
} from "../../src/crypto/aead.ts";
import { aeadFrom, getAead, loadNobleAead } from "../../src/crypto/backend.ts";
import {
  libcryptoAvailable,
  libcryptoOpenWithNonce,
  libcryptoSealWithNonce,
} from "../../src/crypto/aead-libcrypto.ts";
import { xopen, xseal } from "../../src/crypto/xaead.ts";
import { concatBytes } from "../../src/encoding.ts";

// ---------------------------------------------------------------------------------------------
// helpers

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

const BACKENDS: readonly AeadBackendName[] = ["noble", "libcrypto"];
const ALGORITHMS: readonly AeadName[] = ["chacha20-poly1305", "aes-256-gcm"];
const LIBCRYPTO = libcryptoAvailable();
// Both backends are compared: noble loads on request when libcrypto serves the process.
await loadNobleAead();
const IN_CI = (Deno.env.get("CI") ?? "") !== "";

/**
 * Runs `body` as a step for `backend`. A missing libcrypto skips the step with a message, except
 * under CI, where the step runs and fails.
 */
async function forBackend(
  t: Deno.TestContext,
  label: string,
  backend: AeadBackendName,
  body: (backend: AeadBackendName) => void | Promise<void>,
): Promise<void> {
  if (backend === "libcrypto" && !LIBCRYPTO) {
    if (IN_CI) {
      await t.step(`${label} [libcrypto]`, () => {
        assert.fail("libcrypto.so.3 could not be loaded, and CI is set: the native backend must be tested");
      });
    } else {
      await t.step({
        name: `${label} [libcrypto] SKIPPED: libcrypto.so.3 could not be loaded`,
        ignore: true,
        fn: () => {},
      });
    }
    return;
  }
  await t.step(`${label} [${backend}]`, () => body(backend));
}

function aeadOf(backend: AeadBackendName, name: AeadName): Aead {
  const aead = aeadFrom(backend, name);
  assert.ok(aead, `${backend} ${name} unavailable`);
  assert.equal(aead.backend, backend);
  assert.equal(aead.name, name);
  return aead;
}

/** Seal with a raw 12-byte nonce: @noble directly, or the libcrypto FFI. */
function sealRaw(
  backend: AeadBackendName,
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  pt: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  if (backend === "libcrypto") return libcryptoSealWithNonce(name, key, nonce, pt, ad);
  const cipher = name === "aes-256-gcm" ? gcm : chacha20poly1305;
  return cipher(key, nonce, ad).encrypt(pt);
}

/** Open with a raw 12-byte nonce; null on authentication failure. */
function openRaw(
  backend: AeadBackendName,
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  ct: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  if (backend === "libcrypto") return libcryptoOpenWithNonce(name, key, nonce, ct, ad);
  const cipher = name === "aes-256-gcm" ? gcm : chacha20poly1305;
  try {
    return cipher(key, nonce, ad).decrypt(ct);
  } catch {
    return null;
  }
}

function wgNonce(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  writeNonce(n, counter);
  return n;
}

/** Every single-bit flip of `sealed` (at a spread of positions) must make `open` fail. */
function assertTamperDetected(sealed: Uint8Array, open: (c: Uint8Array) => Uint8Array | null): void {
  const positions = new Set<number>([
    0,
    sealed.length - 1,
    sealed.length - TAG_LEN,
    sealed.length - TAG_LEN - 1,
  ]);
  for (let i = 0; i < sealed.length; i += Math.max(1, Math.floor(sealed.length / 23))) positions.add(i);
  for (const pos of positions) {
    if (pos < 0 || pos >= sealed.length) continue;
    for (const bit of [0x01, 0x80]) {
      const bad = sealed.slice();
      bad[pos] ^= bit;
      assert.equal(open(bad), null, `flip of bit ${bit} at byte ${pos} went undetected`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// X25519 (RFC 7748)

Deno.test("X25519 (RFC 7748)", async (t) => {
  await t.step("§5.2 scalar multiplication vectors", () => {
    const vectors = [
      {
        k: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        u: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        out: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
      },
      {
        k: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        out: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
      },
    ];
    for (const v of vectors) {
      const out = dh(hex(v.k), hex(v.u));
      assert.ok(out);
      assert.equal(toHex(out), v.out);
    }
  });

  await t.step("§6.1 Alice/Bob key agreement", () => {
    const alicePriv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const bobPriv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const alicePub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const bobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert.equal(toHex(publicKey(alicePriv)), alicePub);
    assert.equal(toHex(publicKey(bobPriv)), bobPub);
    assert.equal(toHex(dh(alicePriv, hex(bobPub))!), shared);
    assert.equal(toHex(dh(bobPriv, hex(alicePub))!), shared);
  });

  await t.step("a low-order public key gives null, not an all-zero secret", () => {
    const priv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    assert.equal(dh(priv, new Uint8Array(32)), null);
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.equal(dh(priv, one), null);
  });
});

// ---------------------------------------------------------------------------------------------
// BLAKE2s, HMAC-BLAKE2s, KDF

/** RFC 7693 Appendix E deterministic byte sequence. */
function selftestSequence(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

Deno.test("BLAKE2s (RFC 7693) and its MAC", async (t) => {
  await t.step('Appendix B: BLAKE2s-256("abc")', () => {
    assert.equal(
      toHex(hash(utf8("abc"))),
      "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982",
    );
    assert.equal(toHex(hash(utf8("a"), utf8("bc"))), toHex(hash(utf8("abc"))), "multi-part = one part");
  });

  await t.step("Appendix E self-test (unkeyed and keyed, 16..32-byte digests)", () => {
    const grand = blake2s.create({ dkLen: 32 });
    for (const outLen of [16, 20, 28, 32]) {
      for (const inLen of [0, 3, 64, 65, 255, 1024]) {
        const input = selftestSequence(inLen, inLen);
        grand.update(blake2sRaw(input, outLen));
        const key = selftestSequence(outLen, outLen);
        grand.update(blake2sRaw(input, outLen, key));
      }
    }
    assert.equal(
      toHex(grand.digest()),
      "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe",
    );
  });

  await t.step("keyed BLAKE2s-256 KAT (blake2s-kat, key 00..1f)", () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    assert.equal(
      toHex(blake2sRaw(new Uint8Array(0), 32, key)),
      "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49",
    );
    assert.equal(
      toHex(blake2sRaw(Uint8Array.of(0), 32, key)),
      "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1",
    );
  });

  await t.step("mac() is keyed BLAKE2s-128 over the concatenated parts", () => {
    const key = selftestSequence(32, 32);
    const a = selftestSequence(65, 65);
    const b = selftestSequence(255, 255);
    const m = mac(key, a, b);
    assert.equal(m.length, 16);
    assert.deepEqual(m, blake2sRaw(concat(a, b), 16, key));
    // a 16-byte digest is not a truncated 32-byte one (the length is in the parameter block)
    assert.notDeepEqual(m, blake2sRaw(concat(a, b), 32, key).subarray(0, 16));
    const otherKey = key.slice();
    otherKey[0] ^= 1;
    assert.notDeepEqual(mac(otherKey, a, b), m);
  });
});

Deno.test("HMAC-BLAKE2s and the WireGuard KDF", async (t) => {
  await t.step("hmac() matches an independent HMAC(BLAKE2s) for short, block-size and long keys", () => {
    for (const keyLen of [0, 8, 32, 64, 65, 100]) {
      const key = selftestSequence(keyLen, keyLen + 1);
      const msg = selftestSequence(77, 3);
      const want = referenceHmac(blake2s, key, msg);
      assert.deepEqual(hmac(key, msg), want, `key length ${keyLen}`);
      assert.deepEqual(hmac(key, msg.subarray(0, 10), msg.subarray(10)), want, "multi-part");
    }
  });

  // wireguard-go device/kdf_test.go
  const vectors = [
    {
      key: "746573742d6b6579",
      input: "746573742d696e707574",
      t0: "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
      t1: "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
      t2: "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24",
    },
    {
      key: "776972656775617264",
      input: "776972656775617264",
      t0: "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
      t1: "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
      t2: "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160",
    },
    {
      key: "",
      input: "",
      t0: "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
      t1: "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
      t2: "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e",
    },
  ];

  await t.step("KDF3 (wireguard-go kdf_test.go)", () => {
    for (const v of vectors) {
      const [t0, t1, t2] = kdf3(hex(v.key), hex(v.input));
      assert.deepEqual([toHex(t0), toHex(t1), toHex(t2)], [v.t0, v.t1, v.t2]);
    }
  });
  await t.step("KDF2 (wireguard-go kdf_test.go)", () => {
    for (const v of vectors) {
      const [t0, t1] = kdf2(hex(v.key), hex(v.input));
      assert.deepEqual([toHex(t0), toHex(t1)], [v.t0, v.t1]);
    }
  });
  await t.step("KDF1 (wireguard-go kdf_test.go)", () => {
    for (const v of vectors) assert.equal(toHex(kdf1(hex(v.key), hex(v.input))), v.t0);
  });
  await t.step("KDF is HMAC-based: prk = HMAC(key, input), t0 = HMAC(prk, 0x01)", () => {
    const v = vectors[0];
    const prk = hmac(hex(v.key), hex(v.input));
    assert.equal(toHex(hmac(prk, Uint8Array.of(1))), v.t0);
  });
});

Deno.test("WireGuard constants (docs/design.md §2.1, §2.7)", async (t) => {
  await t.step("Ci and Hi for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", () => {
    const ci = hash(utf8("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
    assert.equal(toHex(ci), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
    const hi = hash(ci, utf8("WireGuard v1 zx2c4 Jason@zx2c4.com"));
    assert.equal(toHex(hi), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
  });
  await t.step("Ci for the aes0 construction Noise_IKpsk2_25519_AESGCM_BLAKE2s", () => {
    assert.equal(
      toHex(hash(utf8("Noise_IKpsk2_25519_AESGCM_BLAKE2s"))),
      "efcbbfa70d80ee23dcf7edf43fb988de6dea88fe25feac3851bb4b2b0d09d3b2",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// AEADs

const SUNSCREEN = utf8(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, " +
    "sunscreen would be it.",
);

Deno.test("ChaCha20-Poly1305 (RFC 8439 §2.8.2) on both backends", async (t) => {
  const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hex("070000004041424344454647");
  const ad = hex("50515253c0c1c2c3c4c5c6c7");
  const want = hex(
    `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
     1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
     3ff4def08e4b7a9de576d26586cec64b6116 1ae10b594f09e26a7e902ecbd0600691`,
  );
  for (const backend of BACKENDS) {
    await forBackend(t, "seal and open the RFC vector", backend, (b) => {
      const sealed = sealRaw(b, "chacha20-poly1305", key, nonce, SUNSCREEN, ad);
      assert.equal(toHex(sealed), toHex(want));
      assert.deepEqual(openRaw(b, "chacha20-poly1305", key, nonce, want, ad), SUNSCREEN);
      assertTamperDetected(want, (c) => openRaw(b, "chacha20-poly1305", key, nonce, c, ad));
      assert.equal(openRaw(b, "chacha20-poly1305", key, nonce, want, ad.subarray(1)), null, "wrong AD");
    });
  }
});

// McGrew–Viega, "The Galois/Counter Mode of Operation", test cases 13–16 (AES-256, 96-bit IV).
const GCM_KEY_B = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GCM_PT_60 =
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GCM_CT_60 =
  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
const GCM_CASES = [
  {
    n: 13,
    key: "00".repeat(32),
    iv: "00".repeat(12),
    pt: "",
    ad: "",
    ct: "",
    tag: "530f8afbc74536b9a963b4f1c4cb738b",
  },
  {
    n: 14,
    key: "00".repeat(32),
    iv: "00".repeat(12),
    pt: "00".repeat(16),
    ad: "",
    ct: "cea7403d4d606b6e074ec5d3baf39d18",
    tag: "d0d1c8a799996bf0265b98b5d48ab919",
  },
  {
    n: 15,
    key: GCM_KEY_B,
    iv: "cafebabefacedbaddecaf888",
    pt: GCM_PT_60 + "1aafd255",
    ad: "",
    ct: GCM_CT_60 + "898015ad",
    tag: "b094dac5d93471bdec1a502270e3cc6c",
  },
  {
    n: 16,
    key: GCM_KEY_B,
    iv: "cafebabefacedbaddecaf888",
    pt: GCM_PT_60,
    ad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    ct: GCM_CT_60,
    tag: "76fc6ece0f4e1768cddf8853bb2d551b",
  },
];

Deno.test("AES-256-GCM (GCM spec test cases 13-16) on both backends", async (t) => {
  for (const backend of BACKENDS) {
    await forBackend(t, "test cases 13, 14, 15, 16", backend, (b) => {
      for (const c of GCM_CASES) {
        const [key, iv, pt, ad] = [hex(c.key), hex(c.iv), hex(c.pt), hex(c.ad)];
        const sealed = sealRaw(b, "aes-256-gcm", key, iv, pt, ad);
        assert.equal(toHex(sealed), c.ct + c.tag, `test case ${c.n}`);
        assert.deepEqual(openRaw(b, "aes-256-gcm", key, iv, sealed, ad), pt, `test case ${c.n} open`);
        assertTamperDetected(sealed, (x) => openRaw(b, "aes-256-gcm", key, iv, x, ad));
      }
    });
    // The all-zero IV of cases 13 and 14 is exactly WireGuard's nonce for counter 0.
    await forBackend(t, "test cases 13 and 14 through the Aead interface (counter 0)", backend, (b) => {
      const aead = aeadOf(b, "aes-256-gcm");
      for (const c of GCM_CASES.slice(0, 2)) {
        const sealed = aead.seal(hex(c.key), 0, hex(c.pt), new Uint8Array(0));
        assert.equal(toHex(sealed), c.ct + c.tag, `test case ${c.n}`);
        assert.deepEqual(aead.open(hex(c.key), 0, sealed, new Uint8Array(0)), hex(c.pt));
        assert.equal(aead.open(hex(c.key), 1, sealed, new Uint8Array(0)), null, "wrong counter");
      }
    });
  }
});

Deno.test("XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha §A.3.1)", async (t) => {
  const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const ad = hex("50515253c0c1c2c3c4c5c6c7");
  const want = hex(
    `bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39
     ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
     21f9664c97637da9768812f615c68b13b52e c0875924c1c7987947deafd8780acf49`,
  );
  await t.step("xseal produces the vector", () => {
    assert.equal(toHex(xseal(key, nonce, SUNSCREEN, ad)), toHex(want));
  });
  await t.step("xopen recovers the plaintext and rejects tampering", () => {
    assert.deepEqual(xopen(key, nonce, want, ad), SUNSCREEN);
    assertTamperDetected(want, (c) => xopen(key, nonce, c, ad));
    const otherNonce = nonce.slice();
    otherNonce[23] ^= 1;
    assert.equal(xopen(key, otherNonce, want, ad), null);
  });
});

Deno.test("WireGuard nonce layout and one-shot AEAD behaviour, both algorithms and backends", async (t) => {
  await t.step("writeNonce is 0^4 ‖ LE64(counter)", () => {
    assert.equal(toHex(wgNonce(0)), "000000000000000000000000");
    assert.equal(toHex(wgNonce(1)), "000000000100000000000000");
    assert.equal(toHex(wgNonce(0x0102030405)), "000000000504030201000000");
    assert.equal(toHex(wgNonce(2 ** 53 - 1)), "00000000ffffffffffff1f00");
  });
  const key = randomBytes(32);
  const pt = randomBytes(100);
  const ad = randomBytes(32);
  for (const name of ALGORITHMS) {
    for (const backend of BACKENDS) {
      await forBackend(t, `${name}: seal = raw seal with the WG nonce; round trip; tamper`, backend, (b) => {
        const aead = aeadOf(b, name);
        for (const counter of [0, 1, 255, 2 ** 32 + 7, 2 ** 53 - 1]) {
          const sealed = aead.seal(key, counter, pt, ad);
          assert.equal(sealed.length, pt.length + TAG_LEN);
          assert.deepEqual(sealed, sealRaw(b, name, key, wgNonce(counter), pt, ad), `counter ${counter}`);
          assert.deepEqual(aead.open(key, counter, sealed, ad), pt);
          assert.equal(aead.open(key, counter + 1, sealed, ad), null, "wrong counter");
        }
        const sealed = aead.seal(key, 9, pt, ad);
        assertTamperDetected(sealed, (c) => aead.open(key, 9, c, ad));
        const badAd = ad.slice();
        badAd[0] ^= 1;
        assert.equal(aead.open(key, 9, sealed, badAd), null, "wrong AD");
        const badKey = key.slice();
        badKey[31] ^= 1;
        assert.equal(aead.open(badKey, 9, sealed, ad), null, "wrong key");
        assert.equal(aead.open(key, 9, sealed.subarray(0, TAG_LEN - 1), ad), null, "shorter than a tag");
        const empty = aead.seal(key, 3, new Uint8Array(0), new Uint8Array(0));
        assert.equal(empty.length, TAG_LEN);
        assert.deepEqual(aead.open(key, 3, empty, new Uint8Array(0)), new Uint8Array(0));
      });
    }
    await forBackend(t, `${name}: libcrypto and noble produce identical bytes`, "libcrypto", () => {
      const native = aeadOf("libcrypto", name);
      const noble = aeadOf("noble", name);
      for (const len of [0, 1, 15, 16, 17, 63, 64, 65, 1420, 9000]) {
        const p = randomBytes(len);
        const a = randomBytes(len % 40);
        const counter = len * 1000 + 3;
        const sealed = native.seal(key, counter, p, a);
        assert.deepEqual(sealed, noble.seal(key, counter, p, a), `length ${len}`);
        assert.deepEqual(noble.open(key, counter, sealed, a), p);
      }
    });
  }
});

Deno.test("sealInPlace/openInPlace equal one-shot seal/open, both algorithms and backends", async (t) => {
  const key = randomBytes(32);
  const lengths = [0, 1, 15, 16, 17, 64, 100, 1420, 1500, 8192];
  for (const name of ALGORITHMS) {
    for (const backend of BACKENDS) {
      await forBackend(t, `${name}: in place on ArrayBuffer and SharedArrayBuffer views`, backend, (b) => {
        const aead = aeadOf(b, name);
        const keyed = aead.keyed(key);
        try {
          const plain = new Uint8Array(20000);
          const shared = new Uint8Array(new SharedArrayBuffer(32768), 24, 20000);
          for (const buf of [plain, shared]) {
            for (const [i, len] of lengths.entries()) {
              const off = 7 + i * 3;
              const counter = 2 ** 40 + i;
              const pt = randomBytes(len);
              buf.fill(0xee);
              buf.set(pt, off);
              keyed.sealInPlace(counter, buf, off, len);
              const oneShot = aead.seal(key, counter, pt, new Uint8Array(0));
              assert.deepEqual(buf.slice(off, off + len + TAG_LEN), oneShot, `seal length ${len}`);
              assert.equal(buf[off - 1], 0xee, "byte before the range untouched");
              assert.equal(buf[off + len + TAG_LEN], 0xee, "byte after the tag untouched");
              assert.equal(keyed.openInPlace(counter, buf, off, len + TAG_LEN), true, `open length ${len}`);
              assert.deepEqual(buf.slice(off, off + len), pt);
              // the keyed context keeps working across packets (only the IV changes)
              buf.set(oneShot, off);
              assert.equal(keyed.openInPlace(counter + 1, buf, off, len + TAG_LEN), false, "wrong counter");
              buf.set(oneShot, off);
              buf[off + (len >> 1)] ^= 0x20;
              assert.equal(keyed.openInPlace(counter, buf, off, len + TAG_LEN), false, "tampered");
            }
          }
          assert.equal(keyed.openInPlace(0, plain, 0, TAG_LEN - 1), false, "shorter than a tag");
        } finally {
          keyed.free();
        }
      });
    }
    await forBackend(
      t,
      `${name}: in place, libcrypto seals what noble opens and vice versa`,
      "libcrypto",
      () => {
        const native = aeadOf("libcrypto", name).keyed(key);
        const noble = aeadOf("noble", name).keyed(key);
        try {
          const a = new Uint8Array(new SharedArrayBuffer(4096), 100, 2000);
          const pt = randomBytes(1420);
          a.set(pt, 5);
          native.sealInPlace(77, a, 5, 1420);
          const viaNative = a.slice(5, 5 + 1436);
          assert.equal(noble.openInPlace(77, a, 5, 1436), true);
          assert.deepEqual(a.slice(5, 5 + 1420), pt);
          noble.sealInPlace(77, a, 5, 1420);
          assert.deepEqual(a.slice(5, 5 + 1436), viaNative, "identical ciphertext and tag");
          assert.equal(native.openInPlace(77, a, 5, 1436), true);
          assert.deepEqual(a.slice(5, 5 + 1420), pt);
        } finally {
          native.free();
          noble.free();
        }
      },
    );
  }
});

Deno.test("libcrypto backend: selection, bounds and lifetime", async (t) => {
  await forBackend(t, "getAead prefers libcrypto when it loads", "libcrypto", () => {
    const forced = Deno.env.get("TWOFOLD_AEAD_BACKEND");
    if (forced === undefined) {
      for (const name of ALGORITHMS) assert.equal(getAead(name).backend, "libcrypto");
    } else {
      for (const name of ALGORITHMS) assert.equal(getAead(name).backend, forced);
    }
  });
  await forBackend(t, "out-of-range in-place calls throw instead of touching memory", "libcrypto", () => {
    const keyed = aeadOf("libcrypto", "chacha20-poly1305").keyed(randomBytes(32));
    try {
      const buf = new Uint8Array(new SharedArrayBuffer(256), 128, 64);
      assert.throws(() => keyed.sealInPlace(0, buf, 0, 64 - TAG_LEN + 1), RangeError);
      assert.throws(() => keyed.sealInPlace(0, buf, -1, 8), RangeError);
      assert.throws(() => keyed.sealInPlace(0, buf, 1.5, 8), RangeError);
      assert.throws(() => keyed.openInPlace(0, buf, 10, 64), RangeError);
      keyed.sealInPlace(0, buf, 0, 64 - TAG_LEN); // exactly fits
      assert.equal(keyed.openInPlace(0, buf, 0, 64), true);
    } finally {
      keyed.free();
    }
  });
  await forBackend(t, "bad key or nonce lengths are rejected", "libcrypto", () => {
    const aead = aeadOf("libcrypto", "aes-256-gcm");
    assert.throws(() => aead.keyed(new Uint8Array(16)), RangeError);
    assert.throws(() => aead.seal(new Uint8Array(31), 0, new Uint8Array(1), new Uint8Array(0)), RangeError);
    assert.throws(
      () =>
        libcryptoSealWithNonce(
          "aes-256-gcm",
          new Uint8Array(32),
          new Uint8Array(8),
          new Uint8Array(1),
          new Uint8Array(0),
        ),
      RangeError,
    );
  });
  await forBackend(t, "a freed key refuses to work; a failed open leaves no plaintext", "libcrypto", () => {
    const keyed = aeadOf("libcrypto", "aes-256-gcm").keyed(randomBytes(32));
    const buf = new Uint8Array(64);
    buf.fill(0x41, 0, 32);
    keyed.sealInPlace(5, buf, 0, 32);
    buf[47] ^= 1; // break the tag
    assert.equal(keyed.openInPlace(5, buf, 0, 48), false);
    assert.deepEqual(buf.subarray(0, 32), new Uint8Array(32), "unauthenticated plaintext wiped");
    keyed.free();
    assert.throws(() => keyed.sealInPlace(6, buf, 0, 32), /after free/);
    assert.throws(() => keyed.openInPlace(6, buf, 0, 48), /after free/);
    keyed.free(); // idempotent
  });
});
