import assert from "node:assert/strict";
import {
  type GateEvent,
  type GateTarget,
  handshakeOutcomeOf,
  type KeySource,
  PskGate,
  type PskGateOptions,
  pskPolicy,
} from "../../src/keys/psk-gate.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";

type Call =
  | { kind: "set"; peer: string; psk: Uint8Array; extras: Uint8Array[] }
  | { kind: "handshake"; peer: string }
  | { kind: "drop"; peer: string };

/** A GateTarget that records every call (with copies of the keys, as the device does). */
class FakeTarget implements GateTarget {
  calls: Call[] = [];
  known = new Set<string>();
  /** The PSK and extras the "device" currently holds per peer. */
  held = new Map<string, { psk: Uint8Array; extras: Uint8Array[] }>();

  setPresharedKey(peer: Uint8Array, psk: Uint8Array, extraPsks: Uint8Array[]): boolean {
    const hex = toHex(peer);
    this.calls.push({ kind: "set", peer: hex, psk: psk.slice(), extras: extraPsks.map((k) => k.slice()) });
    if (!this.known.has(hex)) return false;
    this.held.set(hex, { psk: psk.slice(), extras: extraPsks.map((k) => k.slice()) });
    return true;
  }

  initiateHandshake(peer: Uint8Array): void {
    this.calls.push({ kind: "handshake", peer: toHex(peer) });
  }

  dropSessions(peer: Uint8Array): void {
    this.calls.push({ kind: "drop", peer: toHex(peer) });
  }

  handshakes(): number {
    return this.calls.filter((c) => c.kind === "handshake").length;
  }

  drops(): number {
    return this.calls.filter((c) => c.kind === "drop").length;
  }
}

const ROTATION = 2_000;

function setup(opts: Partial<PskGateOptions> = {}) {
  let now = 1_700_000_000_000;
  let counter = 0;
  const target = new FakeTarget();
  const events: GateEvent[] = [];
  const randoms: Uint8Array[] = [];
  const gate = new PskGate(target, {
    rotationIntervalMs: ROTATION,
    graceMs: 1_000,
    clock: () => now,
    random: (n) => {
      const r = new Uint8Array(n).fill(0xa0 + (counter++ % 64));
      r[0] = counter;
      randoms.push(r.slice());
      return r;
    },
    onEvent: (e) => events.push(e),
    ...opts,
  });
  const peer = (i: number, source: KeySource = "dske") => {
    const pk = new Uint8Array(32).fill(i);
    target.known.add(toHex(pk));
    const initial = gate.addPeer(pk, source);
    return { pk, hex: toHex(pk), initial };
  };
  return { gate, target, events, randoms, peer, advance: (ms: number) => (now += ms), now: () => now };
}

function key(b: number): Uint8Array {
  return new Uint8Array(32).fill(b);
}

Deno.test("PSK gate: state machine, rotation, expiry and refusals", async (t) => {
  await t.step("initial random PSKs differ between two gates for the same peer (real randomness)", () => {
    const pk = new Uint8Array(32).fill(7);
    const a = new FakeTarget();
    const b = new FakeTarget();
    const pa = new PskGate(a).addPeer(pk, "dske");
    const pb = new PskGate(b).addPeer(pk, "dske");
    assert.equal(pa.length, 32);
    assert.notDeepEqual(pa, pb);
    assert.ok(!pa.every((x) => x === 0));
  });

  await t.step("a new peer starts closed with the random PSK pushed to the device", () => {
    const { gate, target, peer } = setup();
    const p = peer(1);
    assert.deepEqual(target.held.get(p.hex)?.psk, p.initial);
    assert.deepEqual(target.held.get(p.hex)?.extras, []);
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "closed");
    assert.match(s.reason, /random PSK until an agreed key is installed/);
    assert.equal(s.epoch, null);
    assert.equal(target.handshakes(), 0);
  });

  await t.step("install opens the gate and triggers exactly one handshake", () => {
    const { gate, target, events, peer } = setup();
    const p = peer(1);
    assert.deepEqual(gate.install(p.pk, key(0x11), 5, "dske"), { ok: true });
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x11), extras: [] });
    assert.equal(target.handshakes(), 1);
    const last = target.calls.at(-1)!;
    assert.equal(last.kind, "handshake"); // the key was set before the handshake started
    assert.deepEqual(events.map((e) => e.type), ["key-installed", "gate-opened"]);
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "open");
    assert.equal(s.epoch, 5);
    assert.equal(s.keyAgeMs, 0);
  });

  await t.step("the caller's buffer is copied: wiping it does not change the installed key", () => {
    const { gate, target, peer } = setup();
    const p = peer(1);
    const k = key(0x22);
    gate.install(p.pk, k, 0, "dske");
    k.fill(0);
    gate.install(p.pk, key(0x23), 1, "dske");
    assert.deepEqual(target.held.get(p.hex)?.extras, [key(0x22)]);
  });

  await t.step("rotation: new PSK with the previous one as extra, no handshake", () => {
    const { gate, target, events, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    advance(ROTATION);
    events.length = 0;
    assert.deepEqual(gate.install(p.pk, key(0x12), 2, "dske"), { ok: true });
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x12), extras: [key(0x11)] });
    assert.equal(target.handshakes(), 1, "only the first opening started a handshake");
    assert.deepEqual(events.map((e) => e.type), ["key-installed"]);
    assert.match(events[0].reason, /applies at the next handshake/);
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "open");
    assert.equal(s.epoch, 2);
    assert.equal(s.graceRemainingMs, 1_000);
  });

  await t.step("a second rotation within the grace keeps only the latest previous key", () => {
    const { gate, target, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.install(p.pk, key(0x12), 2, "dske");
    advance(100);
    gate.install(p.pk, key(0x13), 3, "dske");
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x13), extras: [key(0x12)] });
  });

  await t.step("grace expiry drops the extra PSKs", () => {
    const { gate, target, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.install(p.pk, key(0x12), 2, "dske");
    advance(999);
    gate.tick();
    assert.deepEqual(target.held.get(p.hex)?.extras, [key(0x11)], "still within the grace");
    advance(1);
    gate.tick();
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x12), extras: [] });
    assert.equal(gate.status(p.pk)[0].graceRemainingMs, 0);
  });

  await t.step("graceMs 0: a rotation installs no extra PSK", () => {
    const { gate, target, peer } = setup({ graceMs: 0 });
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.install(p.pk, key(0x12), 2, "dske");
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x12), extras: [] });
  });

  await t.step("state sequence closed → open → stale → closed, each with a reason", () => {
    const { gate, target, events, peer, advance } = setup();
    const p = peer(1);
    const states = [gate.status(p.pk)[0].state];
    gate.install(p.pk, key(0x11), 1, "dske");
    states.push(gate.status(p.pk)[0].state);
    advance(2 * ROTATION - 1);
    gate.tick();
    assert.equal(gate.status(p.pk)[0].state, "open", "not stale before staleAfterMs");
    advance(1);
    gate.tick();
    states.push(gate.status(p.pk)[0].state);
    assert.match(
      gate.status(p.pk)[0].reason,
      /no rotation for 4 s \(expected every 2 s\); the gate closes at 6 s/,
    );
    advance(ROTATION - 1);
    gate.tick();
    assert.equal(gate.status(p.pk)[0].state, "stale");
    advance(1);
    gate.tick();
    states.push(gate.status(p.pk)[0].state);
    assert.deepEqual(states, ["closed", "open", "stale", "closed"]);
    const transitions = events.filter((e) => e.type.startsWith("gate-"));
    assert.deepEqual(transitions.map((e) => e.type), ["gate-opened", "gate-stale", "gate-closed"]);
    for (const e of events) assert.ok(e.reason.length > 10, `event ${e.type} has a reason`);
    assert.equal(target.handshakes(), 1);
  });

  await t.step("max age closes with a random PSK and says why (fail closed)", () => {
    const { gate, target, events, randoms, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.install(p.pk, key(0x12), 2, "dske");
    advance(3 * ROTATION);
    gate.tick();
    const held = target.held.get(p.hex)!;
    assert.deepEqual(held.psk, randoms.at(-1), "device now holds fresh random bytes");
    assert.notDeepEqual(held.psk, key(0x12));
    assert.notDeepEqual(held.psk, p.initial);
    assert.deepEqual(held.extras, [], "no previous key survives the expiry");
    assert.equal(target.drops(), 1, "sessions under the expired key end");
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "closed");
    assert.equal(s.epoch, null);
    assert.equal(s.keyAgeMs, null);
    assert.match(
      s.reason,
      /past the maximum age of 6 s: replaced by random bytes and sessions ended \(fail closed\)/,
    );
    const closed = events.at(-1)!;
    assert.equal(closed.type, "gate-closed");
    assert.equal(closed.epoch, 2);
  });

  await t.step("close: fail closed at once with the caller's reason; reopen needs a newer epoch", () => {
    const { gate, target, events, randoms, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.install(p.pk, key(0x12), 2, "dske"); // previous key in its grace
    advance(100);
    const drops = target.drops();
    assert.equal(gate.close(p.pk, "PSRD exhausted: fewer than k hubs usable"), true);
    const held = target.held.get(p.hex)!;
    assert.deepEqual(held.psk, randoms.at(-1), "device holds fresh random bytes");
    assert.deepEqual(held.extras, [], "the previous key's grace ends too");
    assert.equal(target.drops(), drops + 1, "sessions end");
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "closed");
    assert.equal(s.epoch, null);
    assert.equal(s.keyAgeMs, null);
    assert.equal(s.graceRemainingMs, 0);
    assert.equal(s.reason, "PSRD exhausted: fewer than k hubs usable");
    assert.equal(s.lastInstalledEpoch, 2, "the replay guard stays");
    const closed = events.at(-1)!;
    assert.equal(closed.type, "gate-closed");
    assert.equal(closed.epoch, 2);
    assert.equal(closed.reason, "PSRD exhausted: fewer than k hubs usable");
    // Already closed: no event, no device call, the reason is updated.
    const calls = target.calls.length;
    const n = events.length;
    assert.equal(gate.close(p.pk, "still exhausted"), false);
    assert.equal(target.calls.length, calls);
    assert.equal(events.length, n);
    assert.equal(gate.status(p.pk)[0].reason, "still exhausted");
    // Time passing does not reopen or re-expire it.
    advance(10 * ROTATION);
    gate.tick();
    assert.equal(gate.status(p.pk)[0].state, "closed");
    assert.equal(events.length, n);
    assert.equal(gate.install(p.pk, key(0x13), 2, "dske").ok, false, "old epoch refused");
    assert.deepEqual(gate.install(p.pk, key(0x14), 3, "dske"), { ok: true });
    assert.equal(gate.status(p.pk)[0].state, "open");
    assert.equal(gate.close(new Uint8Array(32).fill(9), "unknown"), false, "unknown peer: nothing");
  });

  await t.step("maxAgeMs Infinity never expires a key", () => {
    const { gate, peer, advance } = setup({ maxAgeMs: Infinity });
    const p = peer(1, "dske");
    assert.deepEqual(gate.install(p.pk, key(0x11), 1, "dske"), { ok: true });
    advance(1e9);
    gate.tick();
    assert.equal(gate.status(p.pk)[0].state, "stale");
  });

  await t.step("a manual key never goes stale or expires by default; rotated keys still do", () => {
    const { gate, target, events, peer, advance } = setup();
    const m = peer(1, "manual");
    const d = peer(2, "dske");
    gate.install(m.pk, key(0x11), 0, "manual");
    gate.install(d.pk, key(0x21), 0, "dske");
    for (let i = 0; i < 240; i++) { // 8 minutes of 2 s steps: the maximum age (6 s) passes 80 times
      advance(ROTATION);
      gate.tick();
    }
    assert.equal(gate.status(m.pk)[0].state, "open");
    assert.equal(gate.status(m.pk)[0].keyAgeMs, 240 * ROTATION);
    assert.deepEqual(target.held.get(m.hex), { psk: key(0x11), extras: [] }, "the manual key stays");
    assert.equal(gate.status(d.pk)[0].state, "closed", "a dske key expires at the maximum age");
    assert.deepEqual(
      events.filter((e) => e.peer === m.hex).map((e) => e.type),
      ["key-installed", "gate-opened"],
      "no stale or closed event for the manual key",
    );
    assert.equal(gate.manualMaxAgeMs, Infinity);
  });

  await t.step("manualMaxAgeMs: the operator's expiry, stale at two thirds, rotated keys unaffected", () => {
    const { gate, target, events, peer, advance } = setup({ manualMaxAgeMs: 60_000 });
    const m = peer(1, "manual");
    const d = peer(2, "dske");
    gate.install(m.pk, key(0x11), 0, "manual");
    gate.install(d.pk, key(0x21), 0, "dske");
    advance(3 * ROTATION);
    gate.tick();
    assert.equal(gate.status(d.pk)[0].state, "closed", "the rotated key's own maximum age applies");
    assert.equal(gate.status(m.pk)[0].state, "open");
    advance(40_000 - 3 * ROTATION - 1);
    gate.tick();
    assert.equal(gate.status(m.pk)[0].state, "open", "not stale before two thirds");
    advance(1);
    gate.tick();
    assert.equal(gate.status(m.pk)[0].state, "stale");
    assert.match(
      gate.status(m.pk)[0].reason,
      /manual key epoch 0 is 40 s old; it expires at 60 s \(the manual maximum age\): replace the PSK/,
    );
    advance(20_000 - 1);
    gate.tick();
    assert.equal(gate.status(m.pk)[0].state, "stale");
    advance(1);
    gate.tick();
    const [s] = gate.status(m.pk);
    assert.equal(s.state, "closed");
    assert.match(s.reason, /past the manual maximum age of 60 s: replaced by random bytes/);
    assert.notDeepEqual(target.held.get(m.hex)!.psk, key(0x11), "fail closed: random bytes");
    assert.deepEqual(
      events.filter((e) => e.peer === m.hex).map((e) => e.type),
      ["key-installed", "gate-opened", "gate-stale", "gate-closed"],
    );
    assert.deepEqual(gate.install(m.pk, key(0x12), 1, "manual"), { ok: true }, "a new key reopens it");
    assert.equal(gate.status(m.pk)[0].state, "open");
  });

  await t.step("reopen after expiry needs a new install (newer epoch) and starts a handshake again", () => {
    const { gate, target, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    advance(3 * ROTATION);
    gate.tick();
    assert.equal(gate.install(p.pk, key(0x11), 1, "dske").ok, false, "old epoch replay refused");
    assert.deepEqual(gate.install(p.pk, key(0x13), 2, "dske"), { ok: true });
    assert.equal(gate.status(p.pk)[0].state, "open");
    assert.deepEqual(target.held.get(p.hex), { psk: key(0x13), extras: [] });
    assert.equal(target.handshakes(), 2);
  });

  await t.step("a stale gate reopens on a fresh key without a forced handshake", () => {
    const { gate, target, events, peer, advance } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    advance(2 * ROTATION);
    gate.tick();
    events.length = 0;
    gate.install(p.pk, key(0x12), 2, "dske");
    assert.equal(gate.status(p.pk)[0].state, "open");
    assert.deepEqual(events.map((e) => e.type), ["key-installed", "gate-opened"]);
    assert.deepEqual(target.held.get(p.hex)?.extras, [key(0x11)]);
    assert.equal(target.handshakes(), 1);
  });

  await t.step("refusals: wrong length, all zeros, unknown peer, source mismatch, epoch replay", () => {
    const { gate, target, events, peer } = setup();
    const p = peer(1, "dske");
    const refused = (r: ReturnType<PskGate["install"]>) => {
      assert.equal(r.ok, false);
      return (r as { reason: string }).reason;
    };
    assert.match(refused(gate.install(p.pk, new Uint8Array(31).fill(1), 1, "dske")), /32 bytes, got 31/);
    assert.match(refused(gate.install(p.pk, new Uint8Array(32), 1, "dske")), /all-zero/);
    assert.match(refused(gate.install(key(9), key(0x11), 1, "dske")), /unknown peer/);
    assert.match(
      refused(gate.install(p.pk, key(0x11), 1, "manual")),
      /source mismatch: peer is configured for dske, key came from manual/,
    );
    assert.match(refused(gate.install(p.pk, key(0x11), -1, "dske")), /non-negative integer/);
    assert.match(refused(gate.install(p.pk, key(0x11), 1.5, "dske")), /non-negative integer/);
    assert.equal(gate.status(p.pk)[0].state, "closed", "nothing opened the gate");
    assert.deepEqual(gate.install(p.pk, key(0x11), 4, "dske"), { ok: true });
    assert.match(
      refused(gate.install(p.pk, key(0x12), 4, "dske")),
      /epoch 4 is not newer than .* 4 \(replay\?\)/,
    );
    assert.match(refused(gate.install(p.pk, key(0x12), 3, "dske")), /not newer/);
    assert.deepEqual(target.held.get(p.hex)?.psk, key(0x11), "refused keys never reach the device");
    assert.equal(events.filter((e) => e.type === "key-refused").length, 8);
  });

  await t.step("a device without the peer makes install fail without opening or consuming the epoch", () => {
    const { gate, target, peer } = setup();
    const p = peer(1);
    target.known.delete(p.hex);
    assert.match((gate.install(p.pk, key(0x11), 1, "dske") as { reason: string }).reason, /no such peer/);
    assert.equal(gate.status(p.pk)[0].state, "closed");
    target.known.add(p.hex);
    assert.deepEqual(gate.install(p.pk, key(0x11), 1, "dske"), { ok: true });
  });

  await t.step("UAPI writes: EPERM for a dske peer, allowed for a manual peer", () => {
    const { gate, target, events, peer } = setup();
    const managed = peer(1, "dske");
    const manual = peer(2, "manual");
    assert.equal(gate.uapiWrite(managed.pk, key(0x11)), -1);
    const refusal = events.at(-1)!;
    assert.equal(refusal.type, "key-refused");
    assert.match(refusal.reason, /EPERM.*key source is dske/);
    assert.deepEqual(target.held.get(managed.hex)?.psk, managed.initial);
    assert.equal(gate.status(managed.pk)[0].state, "closed");

    assert.equal(gate.uapiWrite(manual.pk, key(0x21)), 0);
    assert.equal(gate.status(manual.pk)[0].state, "open");
    assert.equal(gate.status(manual.pk)[0].epoch, 0);
    assert.equal(target.handshakes(), 1);
    assert.equal(gate.uapiWrite(manual.pk, key(0x22)), 0);
    assert.equal(gate.status(manual.pk)[0].epoch, 1);
    assert.deepEqual(target.held.get(manual.hex), { psk: key(0x22), extras: [key(0x21)] });

    assert.equal(gate.uapiWrite(manual.pk, new Uint8Array(16).fill(1)), -22);
    assert.equal(gate.uapiWrite(manual.pk, new Uint8Array(32)), -22);
    assert.equal(gate.uapiWrite(key(0x77), key(0x23)), -1, "unregistered peer");
  });

  await t.step("handshake results: epoch used, mismatch suspected while open, cleared on success", () => {
    const { gate, target, events, peer } = setup({ skewWindowMs: 0 });
    const p = peer(1);
    gate.handshakeResult(p.pk, { ok: false });
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(gate.status(p.pk)[0].failures, 2);
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "failures are expected while closed");
    gate.install(p.pk, key(0x11), 1, "dske");
    assert.equal(gate.status(p.pk)[0].failures, 0, "install resets the count");
    gate.install(p.pk, key(0x12), 2, "dske");
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 1, initiator: true });
    assert.equal(gate.status(p.pk)[0].lastHandshakeEpoch, 1, "the previous key was used");
    gate.handshakeResult(p.hex, { ok: true, pskIndex: 0, initiator: false });
    assert.equal(gate.status(p.pk)[0].lastHandshakeEpoch, 2, "hex peer ids are accepted");
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "one failure is not yet a mismatch");
    gate.handshakeResult(p.pk, { ok: false });
    const [s] = gate.status(p.pk);
    assert.equal(s.state, "open");
    assert.equal(s.mismatchSuspected, true);
    assert.match(s.reason, /PSK mismatch suspected: 2 consecutive .* epoch 2/);
    assert.equal(events.filter((e) => e.type === "mismatch-suspected").length, 1);
    assert.equal(target.drops(), 1, "a suspected mismatch ends the sessions (fail closed)");
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(events.filter((e) => e.type === "mismatch-suspected").length, 1, "reported once");
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: true });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false);
    assert.equal(gate.status(p.pk)[0].failures, 0);
    assert.equal(events.at(-1)!.type, "mismatch-cleared");
    gate.handshakeResult(p.pk, { ok: false });
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, true);
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: false });
    assert.equal(
      gate.status(p.pk)[0].mismatchSuspected,
      false,
      "a confirmed responder session proves the key too",
    );
    const used = events.filter((e) => e.type === "handshake").map((e) => e.epoch);
    assert.deepEqual(used, [1, 2, 2, 2], "each completed handshake reports the epoch it used");
  });

  await t.step("responder side: unconfirmed responses make a mismatch suspected, sessions kept", () => {
    const { gate, target, events, peer, advance } = setup({ skewWindowMs: 5_000 });
    const p = peer(1, "manual");
    const unconfirmed = { ok: false, unconfirmed: true } as const;
    gate.handshakeResult(p.pk, unconfirmed);
    advance(10_000);
    gate.handshakeResult(p.pk, unconfirmed);
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "ignored while the gate is closed");
    gate.install(p.pk, key(0x11), 0, "manual");
    assert.equal(gate.status(p.pk)[0].unconfirmed, 0, "an install starts the count over");
    gate.handshakeResult(p.pk, unconfirmed);
    advance(4_999);
    gate.handshakeResult(p.pk, unconfirmed);
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "inside the skew window");
    advance(1);
    gate.handshakeResult(p.pk, unconfirmed);
    const [s] = gate.status(p.pk);
    assert.equal(s.mismatchSuspected, true);
    assert.equal(s.state, "open", "the state stays: the key is still the agreed one");
    assert.equal(s.unconfirmed, 3);
    assert.match(s.reason, /PSK mismatch suspected: the peer never confirmed our last 3 handshake responses/);
    assert.equal(
      target.drops(),
      0,
      "unconfirmed responses alone do not end sessions (a one-way path looks alike)",
    );
    assert.equal(events.filter((e) => e.type === "mismatch-suspected").length, 1);
    // Our own initiations then fail too: that proves the mismatch, so the sessions end, still one event.
    gate.handshakeResult(p.pk, { ok: false });
    advance(5_000);
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(target.drops(), 1);
    assert.match(gate.status(p.pk)[0].reason, /2 consecutive handshake responses failed to authenticate/);
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(target.drops(), 1, "sessions end once per suspicion");
    assert.equal(events.filter((e) => e.type === "mismatch-suspected").length, 1);
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: false });
    const [c] = gate.status(p.pk);
    assert.equal(c.mismatchSuspected, false, "cleared when a session confirms");
    assert.equal(c.unconfirmed, 0);
    assert.equal(c.failures, 0);
    assert.equal(events.at(-1)!.type, "mismatch-cleared");
  });

  await t.step("a responder session confirmed after a rotation reports the key it was derived under", () => {
    const { gate, events, peer, advance, now } = setup({ graceMs: 30_000 });
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    advance(ROTATION);
    const respondedAt = now(); // our response: session keys derived under epoch 1
    advance(10);
    gate.install(p.pk, key(0x12), 2, "dske"); // rotation between our response and its confirmation
    advance(10);
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: false, derivedAt: respondedAt });
    assert.equal(gate.status(p.pk)[0].lastHandshakeEpoch, 1);
    assert.match(events.at(-1)!.reason, /responder under key epoch 1 \(the previous key/);
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: false, derivedAt: respondedAt + 10 });
    assert.equal(gate.status(p.pk)[0].lastHandshakeEpoch, 2, "derived after the install: the new key");
    gate.handshakeResult(p.pk, {
      ok: true,
      pskIndex: 0,
      initiator: false,
      derivedAt: respondedAt - ROTATION - 1,
    });
    assert.equal(gate.status(p.pk)[0].lastHandshakeEpoch, null, "older than every key held: unknown");
  });

  await t.step("a mismatch is suspected only outside the install skew window; a fix re-handshakes", () => {
    const { gate, target, events, peer, advance } = setup({ skewWindowMs: 1_000 });
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    for (let i = 0; i < 5; i++) gate.handshakeResult(p.pk, { ok: false });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "inside the window: skew, not mismatch");
    assert.equal(target.drops(), 0);
    advance(1_000);
    gate.handshakeResult(p.pk, { ok: false });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, true);
    assert.equal(target.drops(), 1);
    const before = target.handshakes();
    gate.install(p.pk, key(0x12), 2, "dske");
    assert.equal(target.handshakes(), before + 1, "installing a key after a mismatch handshakes at once");
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, true, "an install alone proves nothing");
    gate.handshakeResult(p.pk, { ok: true, pskIndex: 0, initiator: true });
    assert.equal(gate.status(p.pk)[0].mismatchSuspected, false, "a handshake we initiated proves the key");
    assert.ok(events.some((e) => e.type === "mismatch-suspected"));
  });

  await t.step("install skew: a failed response soon after an install is retried with backoff", () => {
    const { gate, target, peer, advance } = setup({ skewWindowMs: 1_000, skewRetryMs: 100 });
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    assert.equal(target.handshakes(), 1, "the opening handshake");
    gate.handshakeResult(p.pk, { ok: false }); // the other side still had its old key
    gate.tick();
    assert.equal(target.handshakes(), 1, "not before the retry delay");
    advance(100);
    gate.tick();
    assert.equal(target.handshakes(), 2, "retried after 100 ms");
    gate.tick();
    assert.equal(target.handshakes(), 2, "one retry per failure");
    gate.handshakeResult(p.pk, { ok: false });
    advance(150);
    gate.tick();
    assert.equal(target.handshakes(), 2, "the delay doubles");
    advance(50);
    gate.tick();
    assert.equal(target.handshakes(), 3);
    advance(800); // now outside the window: WireGuard's own retry timer takes over
    gate.handshakeResult(p.pk, { ok: false });
    advance(10_000);
    gate.tick();
    assert.equal(target.handshakes(), 3, "no skew retry outside the window");

    const q = peer(2);
    gate.handshakeResult(q.pk, { ok: false });
    advance(1_000);
    gate.tick();
    assert.equal(target.handshakes(), 3, "a closed gate never retries");
    gate.install(q.pk, key(0x21), 1, "dske");
    gate.handshakeResult(q.pk, { ok: false });
    gate.handshakeResult(q.pk, { ok: true, pskIndex: 0, initiator: true });
    advance(1_000);
    gate.tick();
    assert.equal(target.handshakes(), 4, "a confirmed handshake cancels the pending retry");
  });

  await t.step("handshakeOutcomeOf maps device events; unrelated failures are ignored", () => {
    assert.deepEqual(
      handshakeOutcomeOf({
        type: "handshake-completed",
        peer: "ab",
        initiator: true,
        pskIndex: 1,
        derivedAt: 42,
      }),
      { peer: "ab", outcome: { ok: true, pskIndex: 1, initiator: true, derivedAt: 42 } },
    );
    assert.deepEqual(
      handshakeOutcomeOf({ type: "response-unconfirmed", peer: "ab", reason: "never confirmed" }),
      { peer: "ab", outcome: { ok: false, unconfirmed: true } },
    );
    assert.deepEqual(
      handshakeOutcomeOf({
        type: "handshake-failed",
        peer: "ab",
        cause: "response-unauthenticated",
        reason: "response did not authenticate (PSK mismatch or corrupted)",
      }),
      { peer: "ab", outcome: { ok: false } },
    );
    assert.equal(
      handshakeOutcomeOf({
        type: "handshake-failed",
        peer: "ab",
        cause: "initiation-flood",
        reason: "initiation flood guard",
      }),
      null,
    );
  });

  await t.step("removePeer wipes, pushes random bytes and closes", () => {
    const { gate, target, events, randoms, peer } = setup();
    const p = peer(1);
    gate.install(p.pk, key(0x11), 1, "dske");
    gate.removePeer(p.pk);
    assert.deepEqual(target.held.get(p.hex)?.psk, randoms.at(-1));
    assert.equal(gate.status(p.pk).length, 0);
    assert.equal(gate.has(p.pk), false);
    assert.equal(events.at(-1)!.type, "gate-closed");
    assert.equal(gate.install(p.pk, key(0x12), 2, "dske").ok, false);
  });

  await t.step("replaced keys are wiped (the gate's buffers are zeroed, not just dropped)", () => {
    const pk = key(3);
    const seen: Uint8Array[] = [];
    const target: GateTarget = {
      setPresharedKey: (_p, psk, extras) => {
        seen.push(psk, ...extras); // the live buffers the gate owns
        return true;
      },
      initiateHandshake: () => {},
      dropSessions: () => {},
    };
    let now = 0;
    const gate = new PskGate(target, { rotationIntervalMs: ROTATION, graceMs: 1_000, clock: () => now });
    gate.addPeer(pk, "dske");
    gate.install(pk, key(0x11), 1, "dske");
    gate.install(pk, key(0x12), 2, "dske");
    now += 3 * ROTATION;
    gate.tick();
    const [randomInitial, k1, k2, k1asExtra] = seen;
    for (const [name, b] of Object.entries({ randomInitial, k1, k2, k1asExtra })) {
      assert.ok(b.every((x) => x === 0), `${name} wiped`);
    }
  });

  await t.step("pskPolicy adapter: device-created peers get random PSKs; UAPI goes through the gate", () => {
    const { gate, target, events, randoms } = setup();
    const policy = pskPolicy(gate);
    const unknown = key(0x41);
    const initial = policy.onPeerCreated(unknown)!;
    assert.deepEqual(initial, randoms.at(-1));
    assert.equal(gate.status(unknown)[0].source, "manual", "adopted as manual by default");
    target.known.add(toHex(unknown));
    assert.equal(policy.onUapiPsk(unknown, key(0x42)), 0);
    assert.equal(gate.status(unknown)[0].state, "open");

    // The device re-creates an open peer: the agreed key is not handed out again; the gate closes.
    const again = policy.onPeerCreated(unknown)!;
    assert.notDeepEqual(again, key(0x42));
    assert.equal(gate.status(unknown)[0].state, "closed");
    assert.match(events.at(-1)!.reason, /re-created the peer/);

    const strict = pskPolicy(gate, { adoptUnknownAs: null });
    const stranger = key(0x43);
    const r = strict.onPeerCreated(stranger)!;
    assert.equal(r.length, 32);
    assert.ok(!r.every((b) => b === 0));
    assert.equal(gate.has(stranger), false);
    assert.equal(strict.onUapiPsk(stranger, key(0x44)), -1);

    const managed = key(0x45);
    gate.addPeer(managed, "ska");
    assert.equal(policy.onUapiPsk(managed, key(0x46)), -1);
  });

  await t.step("pskPolicy check: judges a UAPI PSK write like onUapiPsk, without installing it", () => {
    const { gate } = setup();
    const manual = key(0x51), managed = key(0x52), stranger = key(0x53);
    gate.addPeer(manual, "manual");
    gate.addPeer(managed, "dske");
    const adopting = pskPolicy(gate);
    const strict = pskPolicy(gate, { adoptUnknownAs: null });
    assert.equal(adopting.checkUapiPsk!(manual, key(0x61), false), 0);
    assert.equal(gate.status(manual)[0].state, "closed", "a check installs nothing");
    assert.equal(adopting.checkUapiPsk!(managed, key(0x61), false), -1, "EPERM for a DSKE peer");
    assert.equal(adopting.checkUapiPsk!(manual, new Uint8Array(32), false), -22, "all-zero PSK");
    // A peer the same request creates is judged by the source it will be adopted as.
    assert.equal(adopting.checkUapiPsk!(stranger, key(0x61), true), 0);
    assert.equal(strict.checkUapiPsk!(stranger, key(0x61), true), -1);
    assert.equal(adopting.checkUapiPsk!(stranger, key(0x61), false), -1, "unknown and not created");
    assert.equal(gate.has(stranger), false, "a check registers nothing");
  });

  await t.step("bad options are refused", () => {
    const target = new FakeTarget();
    assert.throws(() => new PskGate(target, { graceMs: 30_001 }), /graceMs/);
    assert.throws(() => new PskGate(target, { rotationIntervalMs: 0 }), /rotationIntervalMs/);
    assert.throws(() => new PskGate(target, { staleAfterMs: 10, maxAgeMs: 5 }), /staleAfterMs/);
    assert.throws(() => new PskGate(target, { mismatchThreshold: 0 }), /mismatchThreshold/);
  });

  await t.step("no key material in any event, status, reason or refusal", () => {
    const { gate, target, events, randoms, peer, advance } = setup();
    const texts: string[] = [];
    const a = peer(1, "dske");
    const b = peer(2, "manual");
    const used = [key(0x51), key(0x52), key(0x53), key(0x54), new Uint8Array(31).fill(0x55)];
    texts.push(JSON.stringify(gate.install(a.pk, used[0], 1, "dske")));
    texts.push(JSON.stringify(gate.install(a.pk, used[1], 2, "dske")));
    texts.push(JSON.stringify(gate.install(a.pk, used[2], 2, "dske")));
    texts.push(JSON.stringify(gate.install(a.pk, used[4], 3, "dske")));
    texts.push(JSON.stringify(gate.install(b.pk, used[3], 1, "dske")));
    texts.push(String(gate.uapiWrite(a.pk, used[3])), String(gate.uapiWrite(b.pk, used[3])));
    gate.handshakeResult(a.pk, { ok: false });
    gate.handshakeResult(a.pk, { ok: false });
    texts.push(JSON.stringify(gate.status()));
    advance(2 * ROTATION);
    gate.tick();
    texts.push(JSON.stringify(gate.status()));
    advance(ROTATION);
    gate.tick();
    texts.push(JSON.stringify(gate.status()));
    try {
      new PskGate(target, { graceMs: -1 });
    } catch (e) {
      texts.push(String(e));
    }
    texts.push(JSON.stringify(events));
    const all = texts.join("\n");
    const secrets = [...used, ...randoms, a.initial, b.initial];
    for (const s of secrets) {
      for (const form of [toHex(s), encodeBase64(s), toHex(s).toUpperCase()]) {
        assert.ok(!all.includes(form), "a key appears in gate output");
      }
    }
    assert.ok(events.length >= 8, "the scenario produced events to check");
  });
});
