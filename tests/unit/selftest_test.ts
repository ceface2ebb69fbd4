/**
 * Startup self-test of the cipher suites (src/noise/selftest.ts): the real suites pass on both AEAD
 * backends; a wrong construction string, a wrong AEAD, a wrong nonce layout, a broken in-place path,
 * a broken handshake AEAD and a path that accepts tampered packets each fail at the right check.
 * The libcrypto steps are skipped with a message when libcrypto.so.3 is missing (failed under CI).
 */
import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { blake2s } from "@noble/hashes/blake2.js";
import type { Aead, AeadBackendName, AeadKey, AeadName } from "../../src/crypto/aead.ts";
import { aeadFrom, loadNobleAead } from "../../src/crypto/backend.ts";
import { libcryptoAvailable, libcryptoSealWithNonce } from "../../src/crypto/aead-libcrypto.ts";
import { fromHex, toHex } from "../../src/encoding.ts";
import { startInterface } from "../../src/wireguard/interface.ts";
import {
  AEAD_KNOWN_ANSWERS,
  assertSuiteSelfTest,
  SELF_TEST_CHECKS,
  type SelfTestReport,
  selfTestSuite,
  SUITE_EXPECTATIONS,
} from "../../src/noise/selftest.ts";
import {
  AES_CONSTRUCTION,
  aesSuite,
  CHACHA_CONSTRUCTION,
  chachaSuite,
  IDENTIFIER,
  makeSuite,
  type Suite,
} from "../../src/noise/suite.ts";

const LIBCRYPTO = libcryptoAvailable();
// Both backends are checked: noble loads on request when libcrypto serves the process.
await loadNobleAead();
const IN_CI = (Deno.env.get("CI") ?? "") !== "";
const BACKENDS: readonly AeadBackendName[] = ["noble", "libcrypto"];
const ALGORITHMS: readonly AeadName[] = ["chacha20-poly1305", "aes-256-gcm"];

/** Runs `body` as a step for `backend`; a missing libcrypto skips with a message (fails under CI). */
async function forBackend(
  t: Deno.TestContext,
  label: string,
  backend: AeadBackendName,
  body: (backend: AeadBackendName) => void,
): Promise<void> {
  if (backend === "libcrypto" && !LIBCRYPTO && !IN_CI) {
    await t.step({
      name: `${label} [libcrypto] SKIPPED: libcrypto.so.3 could not be loaded`,
      ignore: true,
      fn: () => {},
    });
    return;
  }
  await t.step(`${label} [${backend}]`, () => body(backend));
}

function aeadOf(backend: AeadBackendName, name: AeadName): Aead {
  const aead = aeadFrom(backend, name);
  assert.ok(aead, `${backend} backend for ${name} is unavailable`);
  return aead;
}

function suiteOn(kind: Suite["name"], backend: AeadBackendName): Suite {
  return kind === "aes"
    ? makeSuite("aes", AES_CONSTRUCTION, aeadOf(backend, "aes-256-gcm"))
    : makeSuite("wg", CHACHA_CONSTRUCTION, aeadOf(backend, "chacha20-poly1305"));
}

/** WireGuard's nonce `0^4 ‖ LE64(counter)`, built independently of `writeNonce`. */
function wireguardNonce(counter: number): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(counter), true);
  return nonce;
}

/** The first failed check, or undefined. */
function firstFailure(report: SelfTestReport) {
  return report.checks.find((c) => !c.ok);
}

/** Asserts that `fn` throws an Error whose message matches `pattern`, and returns the message. */
function thrownMessage(fn: () => unknown, pattern: RegExp): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.match(e.message, pattern);
    return e.message;
  }
  assert.fail("expected an error");
}

/** An AEAD that behaves like `inner` except where the overrides say. */
function wrapAead(inner: Aead, overrides: Partial<Pick<Aead, "seal" | "open" | "keyed">>): Aead {
  return {
    name: inner.name,
    backend: inner.backend,
    seal: overrides.seal ?? ((k, n, p, ad) => inner.seal(k, n, p, ad)),
    open: overrides.open ?? ((k, n, c, ad) => inner.open(k, n, c, ad)),
    keyed: overrides.keyed ?? ((k) => inner.keyed(k)),
  };
}

/** No hex run of 32+ characters (16 bytes): reports carry only shortened public values. */
function assertNoLongHex(report: SelfTestReport): void {
  assert.doesNotMatch(JSON.stringify(report), /[0-9a-f]{32,}/);
}

Deno.test("self-test constants are the documented ones", async (t) => {
  const te = new TextEncoder();
  await t.step("Ci and Hi recomputed with @noble/hashes match the table (docs/design.md §2.1, §2.7)", () => {
    for (
      const [construction, expected] of [
        [CHACHA_CONSTRUCTION, SUITE_EXPECTATIONS.wg],
        [AES_CONSTRUCTION, SUITE_EXPECTATIONS.aes],
      ] as const
    ) {
      assert.equal(expected.construction, construction);
      const ci = blake2s(te.encode(construction));
      assert.equal(toHex(ci), expected.initialChainKey);
      const both = new Uint8Array([...ci, ...te.encode(IDENTIFIER)]);
      assert.equal(toHex(blake2s(both)), expected.initialHash);
    }
    assert.equal(
      SUITE_EXPECTATIONS.wg.initialChainKey,
      "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36",
    );
    assert.equal(
      SUITE_EXPECTATIONS.wg.initialHash,
      "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3",
    );
    assert.equal(
      SUITE_EXPECTATIONS.aes.initialChainKey,
      "efcbbfa70d80ee23dcf7edf43fb988de6dea88fe25feac3851bb4b2b0d09d3b2",
    );
  });

  await t.step("published answers: NIST GCM case 14 and RFC 8439 A.1 #2 keystream", () => {
    assert.equal(
      AEAD_KNOWN_ANSWERS["aes-256-gcm"][0].sealed,
      "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919",
    );
    assert.ok(
      AEAD_KNOWN_ANSWERS["chacha20-poly1305"][0].sealed.startsWith("9f07e7be5551387a98ba977c732d080d"),
    );
  });

  await t.step("vectors use counter 0 and a counter whose LE64 and BE64 nonces differ", () => {
    for (const name of ALGORITHMS) {
      const counters = AEAD_KNOWN_ANSWERS[name].map((v) => v.counter);
      assert.ok(counters.includes(0));
      assert.ok(counters.some((n) => n > 0xffffffff), "a counter using both halves of LE64");
      assert.ok(AEAD_KNOWN_ANSWERS[name].some((v) => v.ad !== ""), "a vector with associated data");
    }
  });

  for (const name of ALGORITHMS) {
    await t.step(`${name} vectors reproduced by @noble/ciphers with an explicit nonce`, () => {
      const cipher = name === "aes-256-gcm" ? gcm : chacha20poly1305;
      for (const v of AEAD_KNOWN_ANSWERS[name]) {
        const out = cipher(fromHex(v.key), wireguardNonce(v.counter), fromHex(v.ad)).encrypt(
          fromHex(v.plaintext),
        );
        assert.equal(toHex(out), v.sealed, v.source);
      }
    });
    await forBackend(t, `${name} vectors reproduced by libcrypto with an explicit nonce`, "libcrypto", () => {
      for (const v of AEAD_KNOWN_ANSWERS[name]) {
        const out = libcryptoSealWithNonce(
          name,
          fromHex(v.key),
          wireguardNonce(v.counter),
          fromHex(v.plaintext),
          fromHex(v.ad),
        );
        assert.equal(toHex(out), v.sealed, v.source);
      }
    });
  }
});

Deno.test("the real suites pass the self-test", async (t) => {
  for (const make of [chachaSuite, aesSuite]) {
    const suite = make();
    await t.step(`${suite.name} (default backend ${suite.aead.backend})`, () => {
      const report = assertSuiteSelfTest(suite);
      assert.equal(report.ok, true);
      assert.deepEqual(report.checks.map((c) => c.name), [...SELF_TEST_CHECKS]);
      for (const c of report.checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
      assert.equal(report.construction, suite.construction);
      assertNoLongHex(report);
    });
  }

  for (const kind of ["wg", "aes"] as const) {
    for (const backend of BACKENDS) {
      await forBackend(t, `${kind} suite`, backend, (b) => {
        const report = selfTestSuite(suiteOn(kind, b));
        assert.equal(report.ok, true, JSON.stringify(firstFailure(report)));
        assert.equal(report.aead.endsWith(`(${b})`), true);
      });
    }
  }

  await t.step("explicit expectations are honoured", () => {
    const report = selfTestSuite(aesSuite(), SUITE_EXPECTATIONS.wg);
    assert.equal(report.ok, false);
    assert.equal(firstFailure(report)?.name, "initial chaining key");
    assert.equal(selfTestSuite(aesSuite(), SUITE_EXPECTATIONS.aes).ok, true);
  });

  await t.step("timing (median of 10 runs per suite and backend, printed)", () => {
    const lines: string[] = [];
    for (const kind of ["wg", "aes"] as const) {
      for (const backend of BACKENDS) {
        if (backend === "libcrypto" && !LIBCRYPTO) continue;
        const suite = suiteOn(kind, backend);
        selfTestSuite(suite); // warm-up (JIT, library loading)
        const times: number[] = [];
        for (let i = 0; i < 10; i++) times.push(selfTestSuite(suite).elapsedMs);
        times.sort((a, b) => a - b);
        const median = times[5];
        lines.push(`${kind}/${backend}: median ${median.toFixed(1)} ms, max ${times[9].toFixed(1)} ms`);
        assert.ok(median < 250, `self-test too slow: ${median} ms`);
      }
    }
    console.log(`self-test timing: ${lines.join("; ")}`);
  });
});

Deno.test("a wrong construction string fails at the first check", async (t) => {
  const wrong = "Noise_IKpsk2_25519_AESGCM_BLAKE2x";
  for (const backend of BACKENDS) {
    await forBackend(t, "aes suite with ...BLAKE2x", backend, (b) => {
      const suite = makeSuite("aes", wrong, aeadOf(b, "aes-256-gcm"));
      const report = selfTestSuite(suite);
      assert.equal(report.ok, false);
      assert.equal(report.checks[0].name, "initial chaining key");
      assert.equal(report.checks[0].ok, false);
      assert.equal(report.checks[1].ok, false, "the suite's Hi is wrong too");
      assert.equal(report.checks[2].ok, true, "the AEAD itself is fine");
      assertNoLongHex(report);
      const message = thrownMessage(
        () => assertSuiteSelfTest(suite),
        /^aes0 self-test failed: initial chaining key: Noise_IKpsk2_25519_AESGCM_BLAKE2x hashes to [0-9a-f]{16}…, expected efcbbfa70d80ee23… \(construction string wrong\?/,
      );
      assert.ok(message.includes(AES_CONSTRUCTION), "names the expected construction");
    });
  }

  await t.step("the wg suite with the AES construction string", () => {
    const suite = makeSuite("wg", AES_CONSTRUCTION, aeadOf("noble", "chacha20-poly1305"));
    thrownMessage(
      () => assertSuiteSelfTest(suite),
      /^wg0 self-test failed: initial chaining key: Noise_IKpsk2_25519_AESGCM_BLAKE2s hashes to efcbbfa70d80ee23…, expected 60e26daef327efc0…/,
    );
  });

  await t.step("a suite holding a tampered Ci fails even with the right string", () => {
    const suite = { ...aesSuite() };
    suite.initialChainKey = suite.initialChainKey.slice();
    suite.initialChainKey[0] ^= 1;
    thrownMessage(
      () => assertSuiteSelfTest(suite),
      /^aes0 self-test failed: initial chaining key: suite holds Ci/,
    );
  });

  await t.step("a suite holding a wrong Hi fails at the initial hash", () => {
    const suite = { ...chachaSuite() };
    suite.initialHash = suite.initialHash.slice();
    suite.initialHash[31] ^= 1;
    thrownMessage(() => assertSuiteSelfTest(suite), /^wg0 self-test failed: initial hash: suite holds Hi/);
  });
});

Deno.test("a wrong AEAD fails at the AEAD check", async (t) => {
  for (const backend of BACKENDS) {
    await forBackend(t, "seal flips a byte", backend, (b) => {
      const real = aeadOf(b, "aes-256-gcm");
      const broken = wrapAead(real, {
        seal: (k, n, p, ad) => {
          const out = real.seal(k, n, p, ad);
          out[0] ^= 0x01;
          return out;
        },
      });
      const report = selfTestSuite(makeSuite("aes", AES_CONSTRUCTION, broken));
      assert.equal(report.checks[0].ok, true);
      assert.equal(report.checks[1].ok, true);
      assert.equal(firstFailure(report)?.name, "AEAD known answer");
      assertNoLongHex(report);
      thrownMessage(
        () => assertSuiteSelfTest(makeSuite("aes", AES_CONSTRUCTION, broken)),
        /^aes0 self-test failed: AEAD known answer: aes-256-gcm NIST GCM test case 14 \(counter 0\): seal gave cfa7403d4d606b6e…, expected cea7403d4d606b6e…/,
      );
    });

    await forBackend(t, "ChaCha20-Poly1305 in the aes suite", backend, (b) => {
      const suite = makeSuite("aes", AES_CONSTRUCTION, aeadOf(b, "chacha20-poly1305"));
      thrownMessage(
        () => assertSuiteSelfTest(suite),
        /^aes0 self-test failed: AEAD known answer: aes-256-gcm .*\(suite AEAD is chacha20-poly1305\)/,
      );
    });

    await forBackend(t, "AES-256-GCM in the wg suite", backend, (b) => {
      const suite = makeSuite("wg", CHACHA_CONSTRUCTION, aeadOf(b, "aes-256-gcm"));
      thrownMessage(
        () => assertSuiteSelfTest(suite),
        /^wg0 self-test failed: AEAD known answer: chacha20-poly1305 /,
      );
    });
  }

  await t.step("big-endian nonce layout fails at the layout vector", () => {
    const beNonce = (n: number) => {
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setBigUint64(4, BigInt(n), false);
      return nonce;
    };
    const real = aeadOf("noble", "aes-256-gcm");
    const bigEndian = wrapAead(real, {
      seal: (k, n, p, ad) => gcm(k, beNonce(n), ad).encrypt(p),
    });
    const report = selfTestSuite(makeSuite("aes", AES_CONSTRUCTION, bigEndian));
    const failure = firstFailure(report);
    assert.equal(failure?.name, "AEAD known answer");
    assert.match(failure!.detail, /LE64 nonce layout, no AD \(counter 4328719365\)/);
  });

  await t.step("an AEAD ignoring associated data fails", () => {
    const real = aeadOf("noble", "chacha20-poly1305");
    const noAd = wrapAead(real, {
      seal: (k, n, p) => real.seal(k, n, p, new Uint8Array(0)),
      open: (k, n, c) => real.open(k, n, c, new Uint8Array(0)),
    });
    const failure = firstFailure(selfTestSuite(makeSuite("wg", CHACHA_CONSTRUCTION, noAd)));
    assert.equal(failure?.name, "AEAD known answer");
    assert.match(failure!.detail, /with AD/);
  });

  await t.step("an open that accepts anything fails", () => {
    const real = aeadOf("noble", "chacha20-poly1305");
    const lax = wrapAead(real, {
      open: (k, n, c, ad) => real.open(k, n, c, ad) ?? new Uint8Array(c.length - 16),
    });
    const failure = firstFailure(selfTestSuite(makeSuite("wg", CHACHA_CONSTRUCTION, lax)));
    assert.equal(failure?.name, "AEAD known answer");
    assert.match(failure!.detail, /accepted a tampered tag/);
  });

  for (const backend of BACKENDS) {
    await forBackend(t, "a broken in-place path fails at the in-place check", backend, (b) => {
      const real = aeadOf(b, "aes-256-gcm");
      const broken = wrapAead(real, {
        keyed: (key) => {
          const inner = real.keyed(key);
          return {
            sealInPlace(counter, buf, off, len) {
              inner.sealInPlace(counter, buf, off, len);
              buf[off + len] ^= 0x01; // corrupt the tag
            },
            openInPlace: (counter, buf, off, len) => inner.openInPlace(counter, buf, off, len),
            free: () => inner.free(),
          } satisfies AeadKey;
        },
      });
      const report = selfTestSuite(makeSuite("aes", AES_CONSTRUCTION, broken));
      assert.equal(report.checks[2].ok, true, "one-shot seal/open are fine");
      assert.equal(firstFailure(report)?.name, "AEAD in-place known answer");
      thrownMessage(
        () => assertSuiteSelfTest(makeSuite("aes", AES_CONSTRUCTION, broken)),
        /^aes0 self-test failed: AEAD in-place known answer: aes-256-gcm NIST GCM test case 14 \(counter 0\): sealInPlace gave /,
      );
    });
  }
});

Deno.test("handshake and data checks catch what the vectors cannot", async (t) => {
  await t.step("an AEAD that breaks only for handshake transcripts fails at the handshake", () => {
    const real = aeadOf("noble", "chacha20-poly1305");
    const broken = wrapAead(real, {
      // Associated data of 32 bytes is the handshake hash; no known-answer vector uses it.
      seal: (k, n, p, ad) => {
        const out = real.seal(k, n, p, ad);
        if (ad.length === 32) out[out.length - 1] ^= 0x01;
        return out;
      },
    });
    const report = selfTestSuite(makeSuite("wg", CHACHA_CONSTRUCTION, broken));
    assert.deepEqual(report.checks.map((c) => c.ok), [true, true, true, true, false, false]);
    assert.match(report.checks[4].detail, /responder rejected the initiation/);
    assert.match(report.checks[5].detail, /not run/);
    thrownMessage(
      () => assertSuiteSelfTest(makeSuite("wg", CHACHA_CONSTRUCTION, broken)),
      /^wg0 self-test failed: handshake: /,
    );
  });

  await t.step("an in-place open that accepts tampered packets fails at the data round trip", () => {
    const real = aeadOf("noble", "aes-256-gcm");
    const lax = wrapAead(real, {
      keyed: (key) => {
        const inner = real.keyed(key);
        return {
          sealInPlace: (counter, buf, off, len) => inner.sealInPlace(counter, buf, off, len),
          openInPlace: (counter, buf, off, len) => {
            inner.openInPlace(counter, buf, off, len);
            return true;
          },
          free: () => inner.free(),
        } satisfies AeadKey;
      },
    });
    const report = selfTestSuite(makeSuite("aes", AES_CONSTRUCTION, lax));
    assert.equal(firstFailure(report)?.name, "data round trip");
    assert.match(firstFailure(report)!.detail, /flipped byte was accepted/);
  });

  await t.step("an exception inside a check becomes a failure, not a crash", () => {
    const real = aeadOf("noble", "aes-256-gcm");
    const throwing = wrapAead(real, {
      keyed: () => {
        throw new Error("no context available");
      },
    });
    const report = selfTestSuite(makeSuite("aes", AES_CONSTRUCTION, throwing));
    assert.equal(report.ok, false);
    assert.equal(firstFailure(report)?.name, "AEAD in-place known answer");
    assert.match(firstFailure(report)!.detail, /threw Error: no context available/);
  });
});

Deno.test("start-up refuses a suite that fails its self-test, before any interface exists", async (t) => {
  const ifname = "tfselftest0";
  const exists = () => {
    try {
      Deno.statSync(`/sys/class/net/${ifname}`);
      return true;
    } catch {
      return false;
    }
  };
  await t.step("a wrong construction string", async () => {
    const suite = makeSuite("aes", "Noise_IKpsk2_25519_AESGCM_BLAKE2x", aeadOf("noble", "aes-256-gcm"));
    await assert.rejects(
      () => startInterface({ ifname, suite }),
      /aes0 self-test failed: initial chaining key: .*construction string wrong\?/,
    );
    assert.equal(exists(), false, "no TUN interface was created");
  });
  await t.step("a wrong AEAD known answer", async () => {
    const real = aeadOf("noble", "aes-256-gcm");
    const broken = wrapAead(real, {
      seal: (k, n, p, ad) => {
        const out = real.seal(k, n, p, ad);
        out[0] ^= 0x01;
        return out;
      },
    });
    await assert.rejects(
      () => startInterface({ ifname, suite: makeSuite("aes", AES_CONSTRUCTION, broken) }),
      /aes0 self-test failed: AEAD known answer: aes-256-gcm NIST GCM test case 14/,
    );
    assert.equal(exists(), false, "no TUN interface was created");
  });
});
