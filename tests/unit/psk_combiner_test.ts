import assert from "node:assert/strict";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { combinedEpoch, type CombinerEvent, PskCombiner } from "../../src/keyplane/psk-combiner.ts";
import { type GateEvent, type GateTarget, PskGate } from "../../src/keys/psk-gate.ts";
import { toHex } from "../../src/encoding.ts";
import type { KeyPlaneName } from "../../src/keyplane/keyplane-listener.ts";
import { planeInstall } from "../../src/keyplane/node-keyplanes.ts";

const PEER = new Uint8Array(32).fill(0x42);
const ROTATION = 2_000;
const key = (b: number) => new Uint8Array(32).fill(b);
/** The combination computed here from its definition: HMAC-SHA256(dske, "twofold-combined" ‖ ska). */
const expected = (dske: Uint8Array, ska: Uint8Array) =>
  hmac(sha256, dske, new Uint8Array([...new TextEncoder().encode("twofold-combined"), ...ska]));

/** A combiner that records what it installs, with a settable clock. */
function node(freshForMs = 2 * ROTATION) {
  let now = 1_000_000;
  const installed: { psk: Uint8Array; epoch: number; ageFrom: number }[] = [];
  const events: CombinerEvent[] = [];
  const c = new PskCombiner({
    install: (_peer, psk, epoch, ageFrom) => {
      installed.push({ psk: psk.slice(), epoch, ageFrom });
      return true;
    },
    freshForMs,
    now: () => now,
    onEvent: (e) => events.push(e),
  });
  c.addPeer(PEER);
  return {
    c,
    installed,
    events,
    offer: (plane: KeyPlaneName, k: Uint8Array, epoch: number) => c.offer(plane, PEER, k, epoch),
    advance: (ms: number) => now += ms,
    get now() {
      return now;
    },
  };
}

Deno.test("combiner: one plane alone installs nothing; both install HMAC(dske, label ‖ ska) at dske + ska", () => {
  const n = node();
  assert.equal(n.offer("dske", key(1), 100), true);
  assert.equal(n.installed.length, 0, "a DSKE key without an SKA key opens nothing");
  assert.equal(n.offer("ska", key(2), 5000), true);
  assert.equal(n.installed.length, 1);
  assert.deepEqual(n.installed[0].psk, expected(key(1), key(2)));
  assert.notDeepEqual(n.installed[0].psk, key(1));
  assert.notDeepEqual(n.installed[0].psk, key(2));
  assert.equal(n.installed[0].epoch, 5100);
  assert.equal(combinedEpoch(100, 5000), 5100);
  assert.equal(n.c.status().get(toHex(PEER))?.combinedEpoch, 5100);
});

Deno.test("combiner: SKA alone installs nothing either", () => {
  const n = node();
  n.offer("ska", key(2), 7);
  n.offer("ska", key(3), 8);
  assert.equal(n.installed.length, 0);
  assert.deepEqual(n.c.status().get(toHex(PEER)), { dskeEpoch: null, skaEpoch: 8, combinedEpoch: null });
});

Deno.test("combiner: two nodes whose planes finish in different orders install the same key at the same epoch", () => {
  const a = node();
  const b = node();
  // Round 1 of both planes, then a DSKE rotation and an SKA rotation, in opposite orders.
  a.offer("dske", key(1), 10);
  a.offer("ska", key(2), 20);
  a.offer("dske", key(3), 11);
  a.offer("ska", key(4), 21);
  b.offer("ska", key(2), 20);
  b.offer("dske", key(1), 10);
  b.offer("ska", key(4), 21);
  b.offer("dske", key(3), 11);
  const lastA = a.installed.at(-1)!;
  const lastB = b.installed.at(-1)!;
  assert.equal(lastA.epoch, 32);
  assert.equal(lastB.epoch, 32);
  assert.deepEqual(lastA.psk, lastB.psk);
  assert.deepEqual(lastA.psk, expected(key(3), key(4)));
  // The epochs each node installed only went up.
  for (const n of [a, b]) {
    const epochs = n.installed.map((i) => i.epoch);
    assert.deepEqual(epochs, [...epochs].sort((x, y) => x - y));
    assert.equal(new Set(epochs).size, epochs.length);
  }
});

Deno.test("combiner: an epoch not newer than the plane's last is refused (the plane counts it as not installed)", () => {
  const n = node();
  n.offer("dske", key(1), 10);
  n.offer("ska", key(2), 20);
  assert.equal(n.offer("dske", key(9), 10), false);
  assert.equal(n.offer("ska", key(9), 19), false);
  assert.equal(n.installed.length, 1);
  assert.equal(n.c.offer("dske", new Uint8Array(32).fill(1), key(1), 99), false, "unknown peer");
});

Deno.test("combiner: a combined key is as old as its older part; a stale part is not combined into a new key", () => {
  const n = node();
  n.offer("ska", key(2), 20);
  const skaAt = n.now;
  n.advance(ROTATION);
  n.offer("dske", key(1), 10);
  assert.equal(n.installed.length, 1);
  assert.equal(n.installed[0].ageFrom, skaAt, "age counts from the SKA key");
  // SKA stops (broker down); DSKE keeps rotating: no new combined key once SKA's key is stale.
  n.advance(ROTATION);
  n.offer("dske", key(3), 11);
  assert.equal(n.installed.length, 1);
  assert.equal(n.events.at(-1)?.type, "part-too-old");
  // SKA comes back: the next SKA key combines with the fresh DSKE key.
  n.advance(100);
  n.offer("ska", key(4), 21);
  assert.equal(n.installed.length, 2);
  assert.equal(n.installed[1].epoch, 32);
  assert.deepEqual(n.installed[1].psk, expected(key(3), key(4)));
});

Deno.test("combiner: close wipes the held parts", () => {
  const n = node();
  const d = key(1);
  n.offer("dske", d, 1);
  n.c.close();
  assert.deepEqual(n.c.status().get(toHex(PEER)), { dskeEpoch: null, skaEpoch: null, combinedEpoch: null });
  assert.deepEqual(d, key(1), "the caller's copy is the caller's");
});

/** A device stand-in that knows PEER. */
const target: GateTarget = {
  setPresharedKey: () => true,
  initiateHandshake: () => {},
  dropSessions: () => {},
};

Deno.test("gate + combiner: SKA stops while DSKE rotates → stale at 2 × rotation, closed at max age, counted from the last SKA key", () => {
  let now = 5_000_000;
  const events: GateEvent[] = [];
  const gate = new PskGate(target, {
    rotationIntervalMs: ROTATION,
    clock: () => now,
    onEvent: (e) => events.push(e),
  });
  gate.addPeer(PEER, "ska+dske");
  const c = new PskCombiner({
    install: (peer, psk, epoch, ageFrom) => gate.install(peer, psk, epoch, "ska+dske", ageFrom).ok,
    freshForMs: gate.staleAfterMs,
    now: () => now,
  });
  c.addPeer(PEER);
  c.offer("dske", PEER, key(1), 100);
  assert.equal(gate.status(PEER)[0].state, "closed", "one plane is not enough to open");
  c.offer("ska", PEER, key(2), 200);
  assert.equal(gate.status(PEER)[0].state, "open");
  assert.equal(gate.status(PEER)[0].epoch, 300);
  const skaAt = now;
  // The broker is gone: DSKE rotates every interval, SKA never again.
  let dskeEpoch = 100;
  const states: string[] = [];
  for (let t = 0; t < 4 * ROTATION; t += 100) {
    now += 100;
    if (t % ROTATION === 0) c.offer("dske", PEER, key(3 + (dskeEpoch % 50)), ++dskeEpoch);
    gate.tick();
    states.push(`${now - skaAt}:${gate.status(PEER)[0].state}`);
  }
  const firstStale = states.find((s) => s.endsWith("stale"));
  const firstClosed = states.find((s) => s.endsWith("closed"));
  assert.equal(firstStale, `${2 * ROTATION}:stale`);
  assert.equal(firstClosed, `${3 * ROTATION}:closed`);
  assert.ok(events.some((e) => e.type === "gate-stale"));
  assert.ok(events.some((e) => e.type === "gate-closed"));
  // The broker is back: the next SKA key reopens the gate at once.
  c.offer("ska", PEER, key(9), 201);
  assert.equal(gate.status(PEER)[0].state, "open");
  assert.equal(gate.status(PEER)[0].epoch, dskeEpoch + 201);
});

Deno.test("gate: a key whose age starts before the maximum age is refused; keys of other sources are refused for ska+dske", () => {
  const now = 9_000_000;
  const gate = new PskGate(target, { rotationIntervalMs: ROTATION, clock: () => now });
  gate.addPeer(PEER, "ska+dske");
  assert.equal(gate.install(PEER, key(1), 1, "ska+dske", now - 3 * ROTATION).ok, false);
  assert.equal(gate.install(PEER, key(1), 2, "ska").ok, false);
  assert.equal(gate.install(PEER, key(1), 3, "dske").ok, false);
  assert.equal(gate.install(PEER, key(1), 4, "ska+dske", now - ROTATION).ok, true);
  assert.equal(gate.status(PEER)[0].keyAgeMs, ROTATION);
});

Deno.test("planeInstall: a ska+dske peer's keys go to the combiner, other peers' straight to the gate", () => {
  const now = 7_000_000;
  const gate = new PskGate(target, { rotationIntervalMs: ROTATION, clock: () => now });
  const DSKE_PEER = new Uint8Array(32).fill(0x11);
  gate.addPeer(PEER, "ska+dske");
  gate.addPeer(DSKE_PEER, "dske");
  const combiner = new PskCombiner({
    install: (peer, psk, epoch, ageFrom) => gate.install(peer, psk, epoch, "ska+dske", ageFrom).ok,
    freshForMs: gate.staleAfterMs,
    now: () => now,
  });
  combiner.addPeer(PEER);
  const dske = planeInstall(gate, combiner, "dske");
  const ska = planeInstall(gate, combiner, "ska");
  assert.equal(dske(DSKE_PEER, key(1), 5), true);
  assert.equal(gate.status(DSKE_PEER)[0].state, "open");
  assert.equal(dske(PEER, key(2), 5), true);
  assert.equal(gate.status(PEER)[0].state, "closed");
  assert.equal(ska(PEER, key(3), 6), true);
  assert.equal(gate.status(PEER)[0].state, "open");
  assert.equal(gate.status(PEER)[0].epoch, 11);
  // Without a combiner (no ska+dske peer on the node) an SKA key for a dske peer is refused by the gate.
  assert.equal(planeInstall(gate, null, "ska")(DSKE_PEER, key(4), 9), false);
});
