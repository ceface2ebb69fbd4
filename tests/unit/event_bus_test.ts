/** The node's event bus: ids, timestamps, bounded history, since(), listener isolation. */
import assert from "node:assert/strict";
import { EventBus, NODE_EVENT_TYPES, type NodeEvent } from "../../src/events/bus.ts";

Deno.test("event bus", async (t) => {
  await t.step("ids start at 1 and increase; at is the clock's ISO time; lastId follows", () => {
    let now = Date.UTC(2025, 0, 1, 12, 0, 0);
    const bus = new EventBus({ clock: () => now });
    assert.equal(bus.lastId, 0);
    const a = bus.publish({ type: "gate-opened", peer: "a", reason: "r" });
    now += 1500;
    const b = bus.publish({ type: "gate-closed", peer: "a", reason: "r2", data: { n: 1 } });
    assert.equal(a.id, 1);
    assert.equal(b.id, 2);
    assert.equal(a.at, "2025-01-01T12:00:00.000Z");
    assert.equal(b.at, "2025-01-01T12:00:01.500Z");
    assert.deepEqual(b.data, { n: 1 });
    assert.equal(bus.lastId, 2);
  });

  await t.step("history is bounded: the oldest events go first", () => {
    const bus = new EventBus({ historySize: 3 });
    for (let i = 0; i < 5; i++) bus.publish({ type: "key-rotated", epoch: i, reason: "r" });
    assert.deepEqual(bus.since(0).map((e) => e.id), [3, 4, 5]);
    assert.equal(bus.lastId, 5);
  });

  await t.step("since(id) returns exactly the later kept events; the newest id gives none", () => {
    const bus = new EventBus({ historySize: 10 });
    for (let i = 0; i < 6; i++) bus.publish({ type: "psrd-low", hub: "h", reason: "r" });
    assert.deepEqual(bus.since(4).map((e) => e.id), [5, 6]);
    assert.deepEqual(bus.since(6), []);
    assert.deepEqual(bus.since(0).map((e) => e.id), [1, 2, 3, 4, 5, 6]);
  });

  await t.step("an id newer than anything published (a restarted node) returns the whole history", () => {
    const bus = new EventBus();
    bus.publish({ type: "config-reloaded", reason: "r" });
    bus.publish({ type: "config-reloaded", reason: "r" });
    assert.deepEqual(bus.since(900).map((e) => e.id), [1, 2]);
  });

  await t.step("since() returns a copy: changing it does not change the history", () => {
    const bus = new EventBus();
    bus.publish({ type: "config-reloaded", reason: "r" });
    bus.since(0).pop();
    assert.equal(bus.since(0).length, 1);
  });

  await t.step("listeners get every event in publish order; unsubscribe stops them", () => {
    const bus = new EventBus();
    const got: number[] = [];
    const off = bus.subscribe((e) => got.push(e.id));
    assert.equal(bus.listenerCount, 1);
    bus.publish({ type: "handshake-completed", layer: "wg0", reason: "r" });
    bus.publish({ type: "handshake-failed", layer: "aes0", reason: "r" });
    off();
    assert.equal(bus.listenerCount, 0);
    bus.publish({ type: "handshake-completed", layer: "wg0", reason: "r" });
    assert.deepEqual(got, [1, 2]);
    off(); // twice is harmless
    assert.equal(bus.listenerCount, 0);
  });

  await t.step("a throwing listener reaches neither the publisher nor the other listeners", () => {
    const bus = new EventBus();
    const got: NodeEvent[] = [];
    bus.subscribe(() => {
      throw new Error("bad listener");
    });
    bus.subscribe((e) => got.push(e));
    const e = bus.publish({ type: "hub-unreachable", hub: "hub-1", reason: "timeout" });
    assert.equal(got.length, 1);
    assert.equal(got[0], e);
  });

  await t.step("a listener added while an event is delivered starts with the next one", () => {
    const bus = new EventBus();
    const late: number[] = [];
    bus.subscribe(() => {
      if (bus.listenerCount === 1) bus.subscribe((e) => late.push(e.id));
    });
    bus.publish({ type: "config-reloaded", reason: "r" });
    bus.publish({ type: "config-reloaded", reason: "r" });
    assert.deepEqual(late, [2]);
  });

  await t.step("historySize must be a positive integer", () => {
    assert.throws(() => new EventBus({ historySize: 0 }), RangeError);
    assert.throws(() => new EventBus({ historySize: 1.5 }), RangeError);
  });

  await t.step("NODE_EVENT_TYPES lists distinct types", () => {
    assert.equal(new Set(NODE_EVENT_TYPES).size, NODE_EVENT_TYPES.length);
    assert.ok(NODE_EVENT_TYPES.includes("lockdown-changed"));
  });
});
