/**
 * Startup self-test of a cipher suite (docs/design.md §1 invariant 8): before an interface comes up, its
 * suite must reproduce known answers, or the node refuses to start and says which check failed.
 *
 * Checks, in order:
 * 1. the construction string yields the known initial chaining key `Ci = HASH(construction)` and
 *    initial hash `Hi = HASH(Ci ‖ IDENTIFIER)` (docs/design.md §2.1, §2.7);
 * 2. the suite's AEAD reproduces fixed known-answer vectors for the algorithm the suite must use,
 *    through the one-shot `seal`/`open` and through the keyed in-place path, with WireGuard's nonce
 *    layout `0^4 ‖ LE64(counter)`;
 * 3. an in-memory IKpsk2 handshake between two fresh identities with a PSK derives matching
 *    transport keys (and a wrong PSK is rejected);
 * 4. one data packet each way with those keys through the keyed in-place path, and a tampered
 *    packet is rejected.
 *
 * Reports and errors never contain key material: only public constants and vector outputs.
 * @module
 */
import type { AeadKey, AeadName } from "../crypto/aead.ts";
import { TAG_LEN } from "../crypto/aead.ts";
import { hash } from "../crypto/blake2s.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { generatePrivateKey, publicKey } from "../crypto/x25519.ts";
import { fromHex, toHex } from "../encoding.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type PeerKeys,
  precomputeStaticStatic,
  type SessionKeys,
  type StaticIdentity,
} from "../wireguard/noise-protocol.ts";
import { protocolNameHash } from "./handshake-state.ts";
import { AES_CONSTRUCTION, CHACHA_CONSTRUCTION, IDENTIFIER, type Suite } from "./suite.ts";

/** What a suite must reproduce. */
export interface SuiteExpectations {
  /** The construction string the constants come from (named in failure messages). */
  construction: string;
  /** Expected `Ci = HASH(construction)`, lowercase hex. */
  initialChainKey: string;
  /** Expected `Hi = HASH(Ci ‖ IDENTIFIER)`, lowercase hex. */
  initialHash: string;
  /** The AEAD algorithm whose known answers the suite's AEAD must reproduce. */
  aead: AeadName;
}

/** Known constants of the two suites, keyed by suite name (verified with two BLAKE2s implementations). */
export const SUITE_EXPECTATIONS: Readonly<Record<Suite["name"], SuiteExpectations>> = {
  wg: {
    construction: CHACHA_CONSTRUCTION,
    initialChainKey: "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36",
    initialHash: "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3",
    aead: "chacha20-poly1305",
  },
  aes: {
    construction: AES_CONSTRUCTION,
    initialChainKey: "efcbbfa70d80ee23dcf7edf43fb988de6dea88fe25feac3851bb4b2b0d09d3b2",
    initialHash: "ea35bc019515f03b9d0d6e0acdfc425621b9d058353b9805cbf49663b0c94530",
    aead: "aes-256-gcm",
  },
};

/** One AEAD known-answer vector in WireGuard's nonce layout (all fields lowercase hex). */
export interface AeadKnownAnswer {
  /** Where the vector comes from. */
  source: string;
  /** 32-byte key. */
  key: string;
  /** Nonce counter; the nonce is `0^4 ‖ LE64(counter)`. */
  counter: number;
  /** Plaintext. */
  plaintext: string;
  /** Associated data (empty for vectors that also run through the in-place path). */
  ad: string;
  /** Ciphertext ‖ 16-byte tag. */
  sealed: string;
}

const ZERO_KEY = "00".repeat(32);
const TEST_KEY = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const TEST_PLAINTEXT = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324";
const TEST_AD = "50515253c0c1c2c3c4c5c6c7";
/** 0x0102030405: the nonce bytes differ between LE64 and BE64 layouts. */
const LAYOUT_COUNTER = 0x0102030405;

/**
 * Known answers per algorithm. The first vector (all-zero key, nonce and plaintext) is published:
 * NIST GCM test case 14 for AES-256-GCM; for ChaCha20-Poly1305 its ciphertext is RFC 8439 A.1
 * test vector #2's keystream. The others check the nonce layout and associated data; they were
 * computed with @noble/ciphers and reproduced with OpenSSL (tests cross-check both backends).
 */
export const AEAD_KNOWN_ANSWERS: Readonly<Record<AeadName, readonly AeadKnownAnswer[]>> = {
  "chacha20-poly1305": [
    {
      source: "RFC 8439 A.1 #2 keystream, zero key and nonce",
      key: ZERO_KEY,
      counter: 0,
      plaintext: "00".repeat(16),
      ad: "",
      sealed: "9f07e7be5551387a98ba977c732d080dc34a88047320f52aa2c6683ef8084d2f",
    },
    {
      source: "LE64 nonce layout, no AD",
      key: TEST_KEY,
      counter: LAYOUT_COUNTER,
      plaintext: TEST_PLAINTEXT,
      ad: "",
      sealed:
        "28e8403d6bdd907dd95ee3cdbeef9db1f6c628be6043d97969a1f3b399a7bdb8f1b22961808813b8fd1b2d28b7c7118254a042a5c1",
    },
    {
      source: "LE64 nonce layout, with AD",
      key: TEST_KEY,
      counter: LAYOUT_COUNTER,
      plaintext: TEST_PLAINTEXT,
      ad: TEST_AD,
      sealed:
        "28e8403d6bdd907dd95ee3cdbeef9db1f6c628be6043d97969a1f3b399a7bdb8f1b229618031f59bafde9ab3e605e989e7020f7034",
    },
  ],
  "aes-256-gcm": [
    {
      source: "NIST GCM test case 14",
      key: ZERO_KEY,
      counter: 0,
      plaintext: "00".repeat(16),
      ad: "",
      sealed: "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
    },
    {
      source: "LE64 nonce layout, no AD",
      key: TEST_KEY,
      counter: LAYOUT_COUNTER,
      plaintext: TEST_PLAINTEXT,
      ad: "",
      sealed:
        "0aa621aa2a58af7c2bb5fa0e7d4cad8701473f846f8256f94006d800d8ec1b08d5b8b240c61374c5889d4cbf1d4ddd7596b0728953",
    },
    {
      source: "LE64 nonce layout, with AD",
      key: TEST_KEY,
      counter: LAYOUT_COUNTER,
      plaintext: TEST_PLAINTEXT,
      ad: TEST_AD,
      sealed:
        "0aa621aa2a58af7c2bb5fa0e7d4cad8701473f846f8256f94006d800d8ec1b08d5b8b240c6176306b7f2c50060dde68c853fb77129",
    },
  ],
};

/** Names of the checks, in the order they run. */
export const SELF_TEST_CHECKS = [
  "initial chaining key",
  "initial hash",
  "AEAD known answer",
  "AEAD in-place known answer",
  "handshake",
  "data round trip",
] as const;

/** The name of one self-test check. */
export type SelfTestCheckName = typeof SELF_TEST_CHECKS[number];

/** Outcome of one check. `detail` never contains key material. */
export interface SelfTestCheck {
  /** Which check. */
  name: SelfTestCheckName;
  /** True when it passed. */
  ok: boolean;
  /** What was verified, or what went wrong. */
  detail: string;
}

/** Outcome of {@link selfTestSuite}. */
export interface SelfTestReport {
  /** The suite's short name. */
  suite: Suite["name"];
  /** The suite's construction string. */
  construction: string;
  /** The AEAD algorithm and backend under test, e.g. "aes-256-gcm (libcrypto)". */
  aead: string;
  /** True when every check passed. */
  ok: boolean;
  /** Every check, in order. */
  checks: SelfTestCheck[];
  /** Wall time of the whole test in milliseconds. */
  elapsedMs: number;
}

/** The interface a suite runs as, for messages: "wg0" or "aes0". */
export function interfaceNameOf(suite: Suite): string {
  return suite.name === "aes" ? "aes0" : "wg0";
}

const textEncoder = new TextEncoder();

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 16)}…` : hex;
}

/** A check body returns its success detail or throws `CheckFailure` with the failure detail. */
class CheckFailure extends Error {}

function fail(detail: string): never {
  throw new CheckFailure(detail);
}

function checkInitialChainKey(suite: Suite, expected: SuiteExpectations): string {
  const computed = toHex(protocolNameHash(suite.construction));
  if (computed !== expected.initialChainKey) {
    fail(
      `${suite.construction} hashes to ${short(computed)}, expected ${short(expected.initialChainKey)} ` +
        `(construction string wrong? ${expected.construction} expected)`,
    );
  }
  const held = toHex(suite.initialChainKey);
  if (held !== expected.initialChainKey) {
    fail(`suite holds Ci ${short(held)}, expected ${short(expected.initialChainKey)} (suite built wrongly?)`);
  }
  return `${suite.construction} → Ci ${short(computed)}`;
}

function checkInitialHash(suite: Suite, expected: SuiteExpectations): string {
  const computed = toHex(hash(fromHex(expected.initialChainKey), textEncoder.encode(IDENTIFIER)));
  if (computed !== expected.initialHash) {
    fail(`HASH(Ci ‖ IDENTIFIER) is ${short(computed)}, expected ${short(expected.initialHash)}`);
  }
  const held = toHex(suite.initialHash);
  if (held !== expected.initialHash) {
    fail(
      `suite holds Hi ${short(held)}, expected ${short(expected.initialHash)} (prologue not IDENTIFIER?)`,
    );
  }
  return `Hi ${short(computed)}`;
}

function describeVector(v: AeadKnownAnswer): string {
  return `${v.source} (counter ${v.counter})`;
}

function checkAeadOneShot(suite: Suite, expected: SuiteExpectations): string {
  const vectors = AEAD_KNOWN_ANSWERS[expected.aead];
  for (const v of vectors) {
    const key = fromHex(v.key);
    const plaintext = fromHex(v.plaintext);
    const ad = fromHex(v.ad);
    const sealed = fromHex(v.sealed);
    const got = toHex(suite.aead.seal(key, v.counter, plaintext, ad));
    if (got !== v.sealed) {
      fail(
        `${expected.aead} ${describeVector(v)}: seal gave ${short(got)}, expected ${short(v.sealed)} ` +
          `(suite AEAD is ${suite.aead.name})`,
      );
    }
    const opened = suite.aead.open(key, v.counter, sealed, ad);
    if (!opened || !constantTimeEqual(opened, plaintext)) {
      fail(`${expected.aead} ${describeVector(v)}: open did not return the plaintext`);
    }
    const tampered = sealed.slice();
    tampered[tampered.length - 1] ^= 0x01;
    if (suite.aead.open(key, v.counter, tampered, ad) !== null) {
      fail(`${expected.aead} ${describeVector(v)}: open accepted a tampered tag`);
    }
    if (ad.length > 0) {
      const otherAd = ad.slice();
      otherAd[0] ^= 0x01;
      if (suite.aead.open(key, v.counter, sealed, otherAd) !== null) {
        fail(`${expected.aead} ${describeVector(v)}: open accepted different associated data`);
      }
    }
  }
  return `${expected.aead}: ${vectors.length} vectors through seal/open`;
}

/** Offset of the payload in the in-place buffers, as in a WireGuard data message. */
const IN_PLACE_OFFSET = 16;

function checkAeadInPlace(suite: Suite, expected: SuiteExpectations): string {
  const vectors = AEAD_KNOWN_ANSWERS[expected.aead].filter((v) => v.ad === "");
  for (const v of vectors) {
    const plaintext = fromHex(v.plaintext);
    const keyed = suite.aead.keyed(fromHex(v.key));
    try {
      const buf = new Uint8Array(IN_PLACE_OFFSET + plaintext.length + TAG_LEN + 8);
      buf.set(plaintext, IN_PLACE_OFFSET);
      keyed.sealInPlace(v.counter, buf, IN_PLACE_OFFSET, plaintext.length);
      const got = toHex(buf.subarray(IN_PLACE_OFFSET, IN_PLACE_OFFSET + plaintext.length + TAG_LEN));
      if (got !== v.sealed) {
        fail(
          `${expected.aead} ${describeVector(v)}: sealInPlace gave ${short(got)}, expected ${
            short(v.sealed)
          }`,
        );
      }
      if (!keyed.openInPlace(v.counter, buf, IN_PLACE_OFFSET, plaintext.length + TAG_LEN)) {
        fail(`${expected.aead} ${describeVector(v)}: openInPlace rejected the vector`);
      }
      if (!constantTimeEqual(buf.subarray(IN_PLACE_OFFSET, IN_PLACE_OFFSET + plaintext.length), plaintext)) {
        fail(`${expected.aead} ${describeVector(v)}: openInPlace did not restore the plaintext`);
      }
    } finally {
      keyed.free();
    }
  }
  return `${expected.aead}: ${vectors.length} vectors through keyed sealInPlace/openInPlace`;
}

/** Keys derived by the handshake check, handed to the data round trip and wiped afterwards. */
interface HandshakeOutcome {
  initiator: SessionKeys;
  responder: SessionKeys;
}

function identity(): StaticIdentity {
  const privateKey = generatePrivateKey();
  return { privateKey, publicKey: publicKey(privateKey) };
}

function peerKeys(local: StaticIdentity, remote: StaticIdentity, psk: Uint8Array): PeerKeys {
  return {
    remoteStatic: remote.publicKey,
    presharedKey: psk,
    staticStatic: precomputeStaticStatic(local, remote.publicKey),
  };
}

/** A fixed TAI64N (2^62 + 10 + 1, 0 ns): the responder's replay rule is the device's, not ours. */
const FIXED_TIMESTAMP = fromHex("400000000000000b00000000");
const INITIATOR_INDEX = 0x11111111;
const RESPONDER_INDEX = 0x22222222;

function checkHandshake(
  suite: Suite,
  wipeLater: Uint8Array[],
): { detail: string; outcome: HandshakeOutcome } {
  const alice = identity();
  const bob = identity();
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const wrongPsk = psk.slice();
  wrongPsk[0] ^= 0x01;
  wipeLater.push(alice.privateKey, bob.privateKey, psk, wrongPsk);
  const aliceSeesBob = peerKeys(alice, bob, psk);
  const bobSeesAlice = peerKeys(bob, alice, psk);
  if (!aliceSeesBob.staticStatic || !bobSeesAlice.staticStatic) fail("X25519 produced a zero shared secret");
  wipeLater.push(aliceSeesBob.staticStatic, bobSeesAlice.staticStatic);

  const { message: initiation, state } = createInitiation(
    suite,
    alice,
    aliceSeesBob,
    INITIATOR_INDEX,
    FIXED_TIMESTAMP,
  );
  wipeLater.push(state.ephemeralPrivate, state.chainKey, state.hash);
  const consumed = consumeInitiation(
    suite,
    bob,
    initiation,
    (rs) => constantTimeEqual(rs, alice.publicKey) ? bobSeesAlice : null,
  );
  if (!consumed) fail("the responder rejected the initiation");
  wipeLater.push(consumed.chainKey, consumed.hash);
  if (!constantTimeEqual(consumed.remoteStatic, alice.publicKey)) {
    fail("the responder decrypted the wrong initiator static key");
  }
  if (!constantTimeEqual(consumed.timestamp, FIXED_TIMESTAMP)) {
    fail("the responder decrypted the wrong timestamp");
  }
  if (consumed.senderIndex !== INITIATOR_INDEX) fail("the responder read the wrong sender index");

  const { message: response, keys: responder } = createResponse(
    suite,
    bob,
    bobSeesAlice,
    consumed,
    RESPONDER_INDEX,
  );
  wipeLater.push(responder.sendKey, responder.recvKey);
  const withWrongPsk = consumeResponse(
    suite,
    alice,
    state,
    { ...aliceSeesBob, presharedKey: wrongPsk },
    response,
  );
  if (withWrongPsk) {
    wipeLater.push(withWrongPsk.keys.sendKey, withWrongPsk.keys.recvKey);
    fail("the initiator accepted a response made with a different PSK");
  }
  const consumedResponse = consumeResponse(suite, alice, state, aliceSeesBob, response);
  if (!consumedResponse) fail("the initiator rejected the response");
  const initiator = consumedResponse.keys;
  wipeLater.push(initiator.sendKey, initiator.recvKey);
  if (
    !constantTimeEqual(initiator.sendKey, responder.recvKey) ||
    !constantTimeEqual(initiator.recvKey, responder.sendKey)
  ) {
    fail("initiator and responder derived different transport keys");
  }
  if (constantTimeEqual(initiator.sendKey, initiator.recvKey)) fail("both directions derived the same key");
  if (initiator.remoteIndex !== RESPONDER_INDEX || responder.remoteIndex !== INITIATOR_INDEX) {
    fail("the indices were not exchanged");
  }
  return {
    detail: "initiation → response with a PSK: matching transport keys; a wrong PSK is rejected",
    outcome: { initiator, responder },
  };
}

/** Seals `payload` at `counter` with `sender`, opens it with `receiver`; also checks a tampered copy. */
function roundTrip(
  sender: AeadKey,
  receiver: AeadKey,
  counter: number,
  payload: Uint8Array,
  direction: string,
): void {
  const len = payload.length;
  const packet = new Uint8Array(IN_PLACE_OFFSET + len + TAG_LEN);
  packet.set(payload, IN_PLACE_OFFSET);
  sender.sealInPlace(counter, packet, IN_PLACE_OFFSET, len);
  if (constantTimeEqual(packet.subarray(IN_PLACE_OFFSET, IN_PLACE_OFFSET + len), payload)) {
    fail(`${direction}: sealInPlace left the payload in clear`);
  }
  const tampered = packet.slice();
  tampered[IN_PLACE_OFFSET + 3] ^= 0x80;
  if (receiver.openInPlace(counter, tampered, IN_PLACE_OFFSET, len + TAG_LEN)) {
    fail(`${direction}: a packet with a flipped byte was accepted`);
  }
  if (!receiver.openInPlace(counter, packet, IN_PLACE_OFFSET, len + TAG_LEN)) {
    fail(`${direction}: the packet was rejected`);
  }
  if (!constantTimeEqual(packet.subarray(IN_PLACE_OFFSET, IN_PLACE_OFFSET + len), payload)) {
    fail(`${direction}: the packet decrypted to different bytes`);
  }
}

function checkDataRoundTrip(suite: Suite, outcome: HandshakeOutcome): string {
  const contexts: AeadKey[] = [];
  try {
    const initiatorSend = suite.aead.keyed(outcome.initiator.sendKey);
    contexts.push(initiatorSend);
    const initiatorRecv = suite.aead.keyed(outcome.initiator.recvKey);
    contexts.push(initiatorRecv);
    const responderSend = suite.aead.keyed(outcome.responder.sendKey);
    contexts.push(responderSend);
    const responderRecv = suite.aead.keyed(outcome.responder.recvKey);
    contexts.push(responderRecv);
    const payload = new Uint8Array(64);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 1) & 0xff;
    roundTrip(initiatorSend, responderRecv, 0, payload, "initiator → responder");
    roundTrip(responderSend, initiatorRecv, 0, payload, "responder → initiator");
    roundTrip(initiatorSend, responderRecv, 1, payload, "initiator → responder (counter 1)");
    return "one packet each way through keyed sealInPlace/openInPlace; flipped byte rejected";
  } finally {
    for (const c of contexts) c.free();
  }
}

/** Runs one check, turning any exception into a failure (engine errors never carry key material). */
function run(name: SelfTestCheckName, body: () => string): SelfTestCheck {
  try {
    return { name, ok: true, detail: body() };
  } catch (e) {
    if (e instanceof CheckFailure) return { name, ok: false, detail: e.message };
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { name, ok: false, detail: `threw ${what.slice(0, 200)}` };
  }
}

/**
 * Runs every check against `suite`. `expected` defaults to {@link SUITE_EXPECTATIONS} for the suite's
 * name. All checks run even after a failure; the report lists them in order.
 */
export function selfTestSuite(suite: Suite, expected?: SuiteExpectations): SelfTestReport {
  const started = performance.now();
  const want = expected ?? SUITE_EXPECTATIONS[suite.name];
  if (!want) throw new Error(`no self-test expectations for suite ${JSON.stringify(suite.name)}`);
  const wipeLater: Uint8Array[] = [];
  const checks: SelfTestCheck[] = [];
  try {
    checks.push(run("initial chaining key", () => checkInitialChainKey(suite, want)));
    checks.push(run("initial hash", () => checkInitialHash(suite, want)));
    checks.push(run("AEAD known answer", () => checkAeadOneShot(suite, want)));
    checks.push(run("AEAD in-place known answer", () => checkAeadInPlace(suite, want)));
    let outcome: HandshakeOutcome | undefined;
    checks.push(run("handshake", () => {
      const result = checkHandshake(suite, wipeLater);
      outcome = result.outcome;
      return result.detail;
    }));
    checks.push(
      outcome
        ? run("data round trip", () => checkDataRoundTrip(suite, outcome!))
        : { name: "data round trip", ok: false, detail: "not run: the handshake failed" },
    );
  } finally {
    for (const secret of wipeLater) secret.fill(0);
  }
  return {
    suite: suite.name,
    construction: suite.construction,
    aead: `${suite.aead.name} (${suite.aead.backend})`,
    ok: checks.every((c) => c.ok),
    checks,
    elapsedMs: performance.now() - started,
  };
}

/**
 * Runs {@link selfTestSuite} and throws when any check fails, naming the interface and the first
 * failed check, e.g. `aes0 self-test failed: initial chaining key: … (construction string wrong?)`.
 * Returns the report when everything passed.
 */
export function assertSuiteSelfTest(suite: Suite, expected?: SuiteExpectations): SelfTestReport {
  const report = selfTestSuite(suite, expected);
  const failed = report.checks.find((c) => !c.ok);
  if (failed) throw new Error(`${interfaceNameOf(suite)} self-test failed: ${failed.name}: ${failed.detail}`);
  return report;
}
