/**
 * Randomized malformed input into the handshake parsers: ≥100 000 inputs per message type
 * (initiation, response, cookie reply) built from random bytes, truncations/extensions, header
 * mutations and bit flips of valid messages. Inputs pass through `messageType` and `checkMac1`
 * like the device does; those with a valid mac1 (bit flips re-MACed, flips confined to mac2) and
 * every input the type check rejects go on into the Noise consume functions. Nothing may throw, and
 * the identity/peer/initiator state objects must be unchanged after every failed consume.
 *
 * Reproduce a run with FUZZ_SEED=<seed printed in the failure message>.
 */
import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { aesSuite, chachaSuite, type Suite } from "../../src/noise/suite.ts";
import { CookieChecker, CookieGenerator } from "../../src/wireguard/cookie.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type InitiatorState,
  type PeerKeys,
  precomputeStaticStatic,
  type StaticIdentity,
} from "../../src/wireguard/noise-protocol.ts";
import { messageType } from "../../src/wireguard/messages.ts";
import { tai64n } from "../../src/wireguard/tai64n.ts";

const INPUTS_PER_TYPE = 100_000;
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? (Date.now() >>> 0));

/** mulberry32: small, fast, reproducible. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
}

type Rng = ReturnType<typeof prng>;

function identity(): StaticIdentity {
  const privateKey = generatePrivateKey();
  return { privateKey, publicKey: publicKey(privateKey) };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function flipBits(rng: Rng, m: Uint8Array, lo: number, hi: number): Uint8Array {
  const flips = 1 + rng.int(4);
  for (let i = 0; i < flips; i++) m[lo + rng.int(hi - lo)] ^= 1 << rng.int(8);
  return m;
}

/** True when `input` differs from `valid` only at positions `allowed` accepts. */
function differsOnlyWhere(input: Uint8Array, valid: Uint8Array, allowed: (pos: number) => boolean): boolean {
  if (input.length !== valid.length) return false;
  for (let i = 0; i < input.length; i++) if (input[i] !== valid[i] && !allowed(i)) return false;
  return true;
}

/** A malformed variant of `valid`; `remac` writes a valid mac1 (for inputs meant to reach Noise). */
function mutate(rng: Rng, valid: Uint8Array, remac: (m: Uint8Array) => void): Uint8Array {
  const size = valid.length;
  const r = rng.next();
  if (r < 0.1) return rng.bytes(rng.int(size * 2 + 1));
  if (r < 0.15) {
    // random body with a correct header and size
    const m = rng.bytes(size);
    m[0] = valid[0];
    m[1] = m[2] = m[3] = 0;
    if (rng.next() < 0.3) remac(m);
    return m;
  }
  if (r < 0.25) {
    // truncation or extension
    const len = rng.int(size * 2 + 1);
    const m = new Uint8Array(len);
    m.set(valid.subarray(0, Math.min(len, size)));
    if (len > size) m.set(rng.bytes(len - size), size);
    return m;
  }
  if (r < 0.3) {
    // header mutation: type or reserved bytes
    const m = valid.slice();
    m[rng.int(4)] = rng.int(256);
    return m;
  }
  const m = valid.slice();
  if (r < 0.34) {
    // flips before the macs, then a valid mac1 so the Noise path runs
    flipBits(rng, m, 4, size - 32);
    remac(m);
    return m;
  }
  // raw flips; mostly outside mac2 (flips confined to mac2 keep mac1 valid and reach Noise)
  return flipBits(rng, m, 0, rng.next() < 0.9 ? size - 16 : size);
}

interface World {
  suite: Suite;
  alice: StaticIdentity;
  bob: StaticIdentity;
  aliceSeesBob: PeerKeys;
  bobSeesAlice: PeerKeys;
  state: InitiatorState;
  initiation: Uint8Array;
  response: Uint8Array;
  toBob: CookieGenerator;
  toAlice: CookieGenerator;
  bobChecker: CookieChecker;
  aliceChecker: CookieChecker;
}

function world(suite: Suite): World {
  const clock = () => 1_000_000;
  const alice = identity();
  const bob = identity();
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const aliceSeesBob = {
    remoteStatic: bob.publicKey,
    presharedKey: psk,
    staticStatic: precomputeStaticStatic(alice, bob.publicKey),
  };
  const bobSeesAlice = {
    remoteStatic: alice.publicKey,
    presharedKey: psk.slice(),
    staticStatic: precomputeStaticStatic(bob, alice.publicKey),
  };
  const toBob = new CookieGenerator(bob.publicKey, clock);
  const toAlice = new CookieGenerator(alice.publicKey, clock);
  const { message: initiation, state } = createInitiation(
    suite,
    alice,
    aliceSeesBob,
    0x01020304,
    tai64n(1e12),
  );
  toBob.addMacs(initiation);
  const consumed = consumeInitiation(suite, bob, initiation, () => bobSeesAlice)!;
  const { message: response } = createResponse(suite, bob, bobSeesAlice, consumed, 0x0a0b0c0d);
  toAlice.addMacs(response);
  return {
    suite,
    alice,
    bob,
    aliceSeesBob,
    bobSeesAlice,
    state,
    initiation,
    response,
    toBob,
    toAlice,
    bobChecker: new CookieChecker(bob.publicKey, clock),
    aliceChecker: new CookieChecker(alice.publicKey, clock),
  };
}

function snapshot(w: World) {
  return structuredClone({
    alice: w.alice,
    bob: w.bob,
    aliceSeesBob: w.aliceSeesBob,
    bobSeesAlice: w.bobSeesAlice,
    state: w.state,
  });
}

type Snapshot = ReturnType<typeof snapshot>;

function unchanged(w: World, s: Snapshot): boolean {
  return sameBytes(w.alice.privateKey, s.alice.privateKey) && sameBytes(w.bob.privateKey, s.bob.privateKey) &&
    sameBytes(w.aliceSeesBob.presharedKey, s.aliceSeesBob.presharedKey) &&
    sameBytes(w.bobSeesAlice.presharedKey, s.bobSeesAlice.presharedKey) &&
    sameBytes(w.aliceSeesBob.staticStatic, s.aliceSeesBob.staticStatic) &&
    sameBytes(w.bobSeesAlice.staticStatic, s.bobSeesAlice.staticStatic) &&
    sameBytes(w.state.chainKey, s.state.chainKey) && sameBytes(w.state.hash, s.state.hash) &&
    sameBytes(w.state.ephemeralPrivate, s.state.ephemeralPrivate) &&
    sameBytes(w.state.remoteStatic, s.state.remoteStatic) && w.state.localIndex === s.state.localIndex;
}

function restoreInitiatorState(w: World, s: Snapshot): void {
  w.state.chainKey.set(s.state.chainKey);
  w.state.hash.set(s.state.hash);
  w.state.ephemeralPrivate.set(s.state.ephemeralPrivate);
}

Deno.test("fuzz: malformed handshake input never throws and never changes state", async (t) => {
  const worlds = [world(chachaSuite()), world(aesSuite())];
  const snaps = worlds.map(snapshot);
  const src = new Uint8Array([10, 0, 0, 1, 0xca, 0x6c]);
  const ctx = (i: number) => `seed ${SEED}, input ${i}`;

  await t.step(`initiation: ${INPUTS_PER_TYPE} inputs`, () => {
    const rng = prng(SEED);
    let noisePath = 0;
    let accepted = 0;
    for (let i = 0; i < INPUTS_PER_TYPE; i++) {
      const w = worlds[i & 1];
      const s = snaps[i & 1];
      const input = mutate(rng, w.initiation, (m) => w.toBob.addMacs(m));
      const type = messageType(input, input.length);
      const mac1 = w.bobChecker.checkMac1(input);
      if ((i & 7) === 0) w.bobChecker.checkMac2(input, src);
      if (!mac1 && type !== 0 && rng.next() >= 0.01) continue; // dropped before Noise, as the device does
      if (mac1 && type === 1) noisePath++;
      const result = consumeInitiation(
        w.suite,
        w.bob,
        input,
        (rs) => sameBytes(rs, w.alice.publicKey) ? w.bobSeesAlice : null,
      );
      if (result) {
        accepted++;
        // only the sender index and the macs are outside the Noise transcript
        assert.ok(differsOnlyWhere(input, w.initiation, (p) => (p >= 4 && p < 8) || p >= 116), ctx(i));
      }
      assert.ok(unchanged(w, s), ctx(i));
    }
    assert.ok(noisePath >= INPUTS_PER_TYPE * 0.04, `only ${noisePath} inputs reached the Noise path`);
    assert.ok(accepted > 0 && accepted < noisePath, "both outcomes were exercised");
  });

  await t.step(`response: ${INPUTS_PER_TYPE} inputs`, () => {
    const rng = prng(SEED ^ 0x5bd1e995);
    let noisePath = 0;
    let accepted = 0;
    for (let i = 0; i < INPUTS_PER_TYPE; i++) {
      const w = worlds[i & 1];
      const s = snaps[i & 1];
      const input = mutate(rng, w.response, (m) => w.toAlice.addMacs(m));
      const type = messageType(input, input.length);
      const mac1 = w.aliceChecker.checkMac1(input);
      if ((i & 7) === 0) w.aliceChecker.checkMac2(input, src);
      if (!mac1 && type !== 0 && rng.next() >= 0.01) continue;
      if (mac1 && type === 2) noisePath++;
      const extra = rng.next() < 0.2 ? [crypto.getRandomValues(new Uint8Array(32))] : undefined;
      const result = consumeResponse(w.suite, w.alice, w.state, w.aliceSeesBob, input, extra);
      if (result) {
        accepted++;
        assert.ok(differsOnlyWhere(input, w.response, (p) => (p >= 4 && p < 8) || p >= 60), ctx(i));
        restoreInitiatorState(w, s); // success spends the state by design
      }
      assert.ok(unchanged(w, s), ctx(i));
    }
    assert.ok(noisePath >= INPUTS_PER_TYPE * 0.04, `only ${noisePath} inputs reached the Noise path`);
    assert.ok(accepted > 0 && accepted < noisePath, "both outcomes were exercised");
  });

  await t.step(`cookie reply: ${INPUTS_PER_TYPE} inputs`, () => {
    const rng = prng(SEED ^ 0x27d4eb2f);
    const w = worlds[0];
    const generator = new CookieGenerator(w.bob.publicKey, () => 1_000_000);
    const init = w.initiation.slice();
    generator.addMacs(init);
    const reply = w.bobChecker.createReply(init, 0x01020304, src);
    let accepted = 0;
    for (let i = 0; i < INPUTS_PER_TYPE; i++) {
      const input = mutate(rng, reply, () => {});
      messageType(input, input.length);
      w.bobChecker.checkMac1(input);
      if (generator.consumeReply(input)) {
        accepted++;
        assert.ok(differsOnlyWhere(input, reply, (p) => p >= 4 && p < 8), ctx(i));
      }
    }
    assert.ok(accepted > 0, "the unmodified receiver-index flips are accepted");
  });

  await t.step("state objects deep-equal their snapshots", () => {
    worlds.forEach((w, i) => assert.deepStrictEqual(snapshot(w), snaps[i]));
  });
});
