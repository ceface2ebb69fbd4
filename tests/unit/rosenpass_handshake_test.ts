/**
 * Protocol V02 (released Rosenpass) between two in-process RosenpassServer instances with fresh
 * McEliece round-2 key pairs: both sides derive the same output key; tampering with any byte before
 * the cookie field of any message makes the receiver refuse it (also when the attacker recomputes
 * the MAC, which needs only public keys), and the genuine message still completes afterwards; and
 * the timers: retransmission back-off, giving up, rekeying by role, stale keys, InitConf retransmission.
 */
import assert from "node:assert/strict";
import { toHex } from "../../src/encoding.ts";
import { COOKIE_LEN, ENVELOPE_HEADER_LEN, MAC_LEN } from "../../src/rosenpass/constants.ts";
import { hashDomains } from "../../src/rosenpass/hash-domains.ts";
import type { KemKeyPair } from "../../src/rosenpass/kyber512.ts";
import { mcEliece460896 } from "../../src/rosenpass/mceliece.ts";
import { PROFILE_V02 } from "../../src/rosenpass/profile.ts";
import { defaultProtocolCrypto } from "../../src/rosenpass/protocol-crypto.ts";
import { type RosenpassAction, RosenpassServer, type RosenpassTimers } from "../../src/rosenpass/server.ts";

let keys: Promise<[KemKeyPair, KemKeyPair]> | undefined;

/** Two round-2 key pairs, generated once per file on worker threads (≈ 10–20 s). */
function keyPairs(): Promise<[KemKeyPair, KemKeyPair]> {
  const kem = mcEliece460896(2);
  return keys ??= Promise.all([kem.keygenAsync(), kem.keygenAsync()]);
}

/** Jitter factor fixed near its maximum, so retransmission delays are 0.5, 1, 2, 4, 8, 10, 10 … s. */
const ALMOST_ONE = 1 - 2 ** -20;

async function pair(timers?: Partial<RosenpassTimers>) {
  const [ka, kb] = await keyPairs();
  const crypto = { ...defaultProtocolCrypto(PROFILE_V02), randomUnit: () => ALMOST_ONE };
  const a = new RosenpassServer({
    profile: PROFILE_V02,
    secretKey: ka.secretKey,
    publicKey: ka.publicKey,
    crypto,
    timers,
  });
  const b = new RosenpassServer({
    profile: PROFILE_V02,
    secretKey: kb.secretKey,
    publicKey: kb.publicKey,
    crypto,
    timers,
  });
  a.addPeer({ id: "b", publicKey: kb.publicKey });
  b.addPeer({ id: "a", publicKey: ka.publicKey });
  return { a, b, ka, kb };
}

function sent(actions: RosenpassAction[]): Uint8Array {
  const send = actions.find((x) => x.kind === "send");
  assert.ok(send?.kind === "send", `expected a message, got ${JSON.stringify(actions.map((x) => x.kind))}`);
  return send.message;
}

function keyOf(actions: RosenpassAction[]): Uint8Array | undefined {
  const done = actions.find((x) => x.kind === "key-exchanged");
  return done?.kind === "key-exchanged" ? done.key : undefined;
}

function refused(actions: RosenpassAction[]): boolean {
  return actions.length > 0 && actions.every((x) => x.kind === "rejected" || x.kind === "handshake-failed");
}

Deno.test("rosenpass V02: a handshake between two instances yields the same key on both sides", async () => {
  const { a, b } = await pair();
  const now = 10;
  const initHello = sent(a.initiate("b", now));
  assert.equal(initHello.length, 1092);
  const respHello = sent(b.handleMessage(now, initHello));
  assert.equal(respHello.length, 1132);
  const initiatorDone = a.handleMessage(now, respHello);
  const initConf = sent(initiatorDone);
  assert.equal(initConf.length, 176);
  const responderDone = b.handleMessage(now, initConf);
  const emptyData = sent(responderDone);
  assert.equal(emptyData.length, 64);
  assert.deepEqual(a.handleMessage(now, emptyData), []);
  const ka = keyOf(initiatorDone);
  const kb = keyOf(responderDone);
  assert.ok(ka && kb);
  assert.equal(ka.length, 32);
  assert.equal(toHex(ka), toHex(kb));
  assert.notEqual(toHex(ka), "00".repeat(32));
  assert.deepEqual(a.peerStatus("b"), {
    state: "exchanged",
    role: "initiator",
    exchangedAt: now,
    exchanges: 1,
  });
  assert.deepEqual(b.peerStatus("a"), {
    state: "exchanged",
    role: "responder",
    exchangedAt: now,
    exchanges: 1,
  });

  const again = sent(a.initiate("b", now + 1));
  const second = keyOf(a.handleMessage(now + 1, sent(b.handleMessage(now + 1, again))));
  assert.ok(second);
  assert.notEqual(toHex(second), toHex(ka), "every exchange yields a fresh key");
});

/** Byte positions to tamper with: header, first/middle/last payload byte, first/last MAC byte. */
function positions(length: number): number[] {
  const macAt = length - COOKIE_LEN - MAC_LEN;
  return [
    0,
    1,
    3,
    ENVELOPE_HEADER_LEN,
    ENVELOPE_HEADER_LEN + 5,
    Math.floor(length / 2),
    macAt - 1,
    macAt,
    macAt + MAC_LEN - 1,
  ];
}

function flip(message: Uint8Array, at: number): Uint8Array {
  const copy = message.slice();
  copy[at] ^= 0x01;
  return copy;
}

/** A tampered payload byte with a MAC recomputed for the receiver, as an attacker can (the MAC key is public). */
function flipAndRemac(message: Uint8Array, at: number, receiverPublicKey: Uint8Array): Uint8Array {
  const copy = flip(message, at);
  const macAt = copy.length - COOKIE_LEN - MAC_LEN;
  copy.set(hashDomains(PROFILE_V02).mac(receiverPublicKey, copy.subarray(0, macAt)), macAt);
  return copy;
}

function payloadPositions(length: number): number[] {
  const macAt = length - COOKIE_LEN - MAC_LEN;
  return [ENVELOPE_HEADER_LEN, ENVELOPE_HEADER_LEN + 5, Math.floor(macAt / 2), macAt - 1];
}

Deno.test("rosenpass V02: tampering with any message is refused, even with a recomputed MAC", async (t) => {
  const { a, b, ka, kb } = await pair();
  const now = 50;
  const forgeries = (message: Uint8Array, receiverPk: Uint8Array) => [
    ...positions(message.length).map((at) => ({ at, bytes: flip(message, at), remac: false })),
    ...payloadPositions(message.length).map((at) => ({
      at,
      bytes: flipAndRemac(message, at, receiverPk),
      remac: true,
    })),
  ];

  const initHello = sent(a.initiate("b", now));
  await t.step("InitHello", () => {
    for (const f of forgeries(initHello, kb.publicKey)) {
      assert.ok(refused(b.handleMessage(now, f.bytes)), `InitHello byte ${f.at} (re-MAC ${f.remac})`);
    }
  });
  const respHello = sent(b.handleMessage(now, initHello));
  await t.step("RespHello", () => {
    for (const f of forgeries(respHello, ka.publicKey)) {
      assert.ok(refused(a.handleMessage(now, f.bytes)), `RespHello byte ${f.at} (re-MAC ${f.remac})`);
    }
  });
  const initiatorDone = a.handleMessage(now, respHello);
  const initConf = sent(initiatorDone);
  await t.step("InitConf", () => {
    for (const f of forgeries(initConf, kb.publicKey)) {
      assert.ok(refused(b.handleMessage(now, f.bytes)), `InitConf byte ${f.at} (re-MAC ${f.remac})`);
    }
  });
  const responderDone = b.handleMessage(now, initConf);
  const emptyData = sent(responderDone);
  await t.step("EmptyData", () => {
    for (const f of forgeries(emptyData, ka.publicKey)) {
      assert.ok(refused(a.handleMessage(now, f.bytes)), `EmptyData byte ${f.at} (re-MAC ${f.remac})`);
    }
  });
  await t.step("the genuine messages still complete the exchange after every forgery", () => {
    assert.deepEqual(a.handleMessage(now, emptyData), []);
    assert.equal(toHex(keyOf(initiatorDone)!), toHex(keyOf(responderDone)!));
    assert.deepEqual(a.poll(now + 30), [], "confirmed: no InitConf retransmission");
  });
  await t.step("the cookie field is outside the MAC and ignored (it is only checked under load)", () => {
    const { a: a2, b: b2 } = { a, b };
    const hello = sent(a2.initiate("b", now + 1));
    assert.ok(sent(b2.handleMessage(now + 1, flip(hello, hello.length - 1))));
  });
});

Deno.test("rosenpass timers: retransmission backs off 0.5 s doubling to 10 s and gives up after 120 s", async () => {
  const { a } = await pair();
  const first = sent(a.initiate("b", 0));
  const delays: number[] = [];
  let now = 0;
  while (true) {
    const deadline = a.nextDeadline();
    assert.ok(deadline !== undefined);
    const actions = a.poll(deadline);
    if (actions.some((x) => x.kind === "handshake-failed")) {
      now = deadline;
      const restart = sent(actions);
      assert.notEqual(
        toHex(restart),
        toHex(first),
        "a new handshake (new session id and keys) starts at once",
      );
      break;
    }
    delays.push(deadline - now);
    now = deadline;
    assert.equal(toHex(sent(actions)), toHex(first), "the same InitHello is retransmitted");
  }
  const rounded = delays.map((d) => Math.round(d * 100) / 100);
  assert.deepEqual(rounded.slice(0, 7), [0.5, 1, 2, 4, 8, 10, 10]);
  assert.equal(now, 120, "gives up 120 s after starting");
});

Deno.test("rosenpass timers: the responder rekeys at 120 s, the initiator would at 130 s; keys go stale at 180 s", async () => {
  const { a, b } = await pair();
  const initConf = sent(a.handleMessage(0, sent(b.handleMessage(0, sent(a.initiate("b", 0))))));
  const emptyData = sent(b.handleMessage(0, initConf));
  a.handleMessage(0, emptyData);
  assert.equal(b.nextDeadline(), 120);
  assert.equal(a.nextDeadline(), 130);
  assert.deepEqual(a.poll(125), []);
  const rekey = b.poll(120);
  assert.equal(rekey.length, 1);
  assert.equal(sent(rekey).length, 1092, "the previous responder initiates");

  // Nobody answers: both keys go stale 180 s after the exchange (fail closed).
  const staleA = a.poll(180).filter((x) => x.kind === "key-stale");
  assert.equal(staleA.length, 1);
  assert.deepEqual(a.peerStatus("b"), { state: "stale", since: 180, exchanges: 1 });
  assert.ok(b.poll(180).some((x) => x.kind === "key-stale"));
  assert.deepEqual(a.poll(181).filter((x) => x.kind === "key-stale"), [], "reported once");
});

Deno.test("rosenpass: a retransmitted InitConf gets the cached confirmation, no second key; an old one is refused", async () => {
  const { a, b } = await pair();
  const initConf = sent(a.handleMessage(0, sent(b.handleMessage(0, sent(a.initiate("b", 0))))));
  const first = b.handleMessage(0, initConf);
  const again = b.handleMessage(1, initConf);
  assert.equal(toHex(sent(again)), toHex(sent(first)));
  assert.equal(keyOf(again), undefined);

  // A newer exchange replaces the cache; replaying the old InitConf then hits the used biscuit number.
  const newer = sent(a.handleMessage(2, sent(b.handleMessage(2, sent(a.initiate("b", 2))))));
  assert.ok(keyOf(b.handleMessage(2, newer)));
  const replay = b.handleMessage(3, initConf);
  assert.ok(refused(replay));
  assert.match(JSON.stringify(replay), /biscuit already used/);
});

Deno.test("rosenpass: completing an exchange as responder aborts our own initiation to that peer", async () => {
  const { a, b } = await pair();
  sent(b.initiate("a", 0)); // b starts too; then completes a's exchange as responder
  const initConf = sent(a.handleMessage(0, sent(b.handleMessage(0, sent(a.initiate("b", 0))))));
  assert.ok(keyOf(b.handleMessage(0, initConf)));
  assert.deepEqual(b.poll(1), [], "no retransmission of b's abandoned InitHello");
  assert.equal(b.nextDeadline(), 120);
});

Deno.test("rosenpass: test-only timers shorten rotation (e.g. every 3 s)", async () => {
  const { a, b } = await pair({ rekeyAfterResponder: 3, rekeyAfterInitiator: 4, rejectAfter: 6 });
  const initConf = sent(a.handleMessage(0, sent(b.handleMessage(0, sent(a.initiate("b", 0))))));
  a.handleMessage(0, sent(b.handleMessage(0, initConf)));
  assert.equal(b.nextDeadline(), 3);
  assert.equal(sent(b.poll(3)).length, 1092);
});

Deno.test("rosenpass: admission is asked only for a MAC-valid InitHello, and a refusal costs no KEM work", async () => {
  const [ka, kb] = await keyPairs();
  let decapsulations = 0;
  const real = defaultProtocolCrypto(PROFILE_V02);
  const crypto = {
    ...real,
    staticDecapsulate: (ct: Uint8Array, sk: Uint8Array) => {
      decapsulations++;
      return real.staticDecapsulate(ct, sk);
    },
  };
  const b = new RosenpassServer({
    profile: PROFILE_V02,
    secretKey: kb.secretKey,
    publicKey: kb.publicKey,
    crypto,
  });
  b.addPeer({ id: "a", publicKey: ka.publicKey });
  const { a } = await pair();
  const initHello = sent(a.initiate("b", 0));
  let asked = 0;
  const refuse = () => {
    asked++;
    return false;
  };
  assert.ok(refused(b.handleMessage(0, flip(initHello, 100), refuse)));
  assert.equal(asked, 0, "a bad MAC is dropped before admission");
  assert.match(JSON.stringify(b.handleMessage(0, initHello, refuse)), /not admitted/);
  assert.equal(asked, 1);
  assert.equal(decapsulations, 0, "no decapsulation for a refused InitHello");
  assert.ok(sent(b.handleMessage(0, initHello, () => true)));
  assert.equal(decapsulations, 1);
});
