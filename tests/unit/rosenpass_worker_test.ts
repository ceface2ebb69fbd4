/**
 * The Rosenpass worker and its main-isolate client, with the V03 test vector's key pairs (no key
 * generation): two workers relayed by the test agree on a key and report it in status; a burst
 * of valid-MAC InitHellos from many sources is bounded at the client's queue and by admission in the
 * worker while the real exchange between the two still completes.
 */
import assert from "node:assert/strict";
import { toHex } from "../../src/encoding.ts";
import type { RosenpassAction } from "../../src/rosenpass/server.ts";
import { RosenpassWorkerClient } from "../../src/rosenpass/worker-client.ts";
import { vectorKeys } from "../helpers/rosenpass_vector.ts";

const TIMEOUT_MS = 30_000;

interface Side {
  client: RosenpassWorkerClient;
  keys: Uint8Array[];
  sent: Uint8Array[];
  keyContexts: unknown[];
}

/** Starts two workers that know each other and relays every "send" to the other side. */
async function startPair(extra?: (from: "a" | "b", message: Uint8Array) => void) {
  const k = vectorKeys();
  const sides: Record<"a" | "b", Side> = {} as Record<"a" | "b", Side>;
  let resolveBoth: () => void;
  const both = new Promise<void>((r) => resolveBoth = r);
  const handler = (self: "a" | "b") => (actions: RosenpassAction[], context?: unknown) => {
    const other = self === "a" ? "b" : "a";
    for (const action of actions) {
      if (action.kind === "send") {
        sides[self].sent.push(action.message);
        extra?.(self, action.message);
        sides[other].client.datagram(`${self}:9999`, true, action.message, { from: self });
      } else if (action.kind === "key-exchanged") {
        sides[self].keys.push(action.key);
        sides[self].keyContexts.push(context);
        if (sides.a.keys.length > 0 && sides.b.keys.length > 0) resolveBoth();
      }
    }
  };
  const common = {
    profile: "v03" as const,
    timers: { rekeyAfterResponder: 3600, rekeyAfterInitiator: 3600 },
  };
  const [a, b] = await Promise.all([
    RosenpassWorkerClient.start(
      { ...common, ...k.a, peers: [{ id: "b", publicKey: k.b.publicKey, psk: k.psk }] },
      { onActions: handler("a") },
    ),
    RosenpassWorkerClient.start(
      { ...common, ...k.b, peers: [{ id: "a", publicKey: k.a.publicKey, psk: k.psk }] },
      { onActions: handler("b") },
    ),
  ]);
  sides.a = { client: a, keys: [], sent: [], keyContexts: [] };
  sides.b = { client: b, keys: [], sent: [], keyContexts: [] };
  return { sides, both };
}

async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS)
  );
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("rosenpass worker: two workers (relayed by the test) exchange a key and report it in status", async () => {
  const { sides, both } = await startPair();
  try {
    sides.a.client.initiate("b");
    await within(both, "key exchange");
    assert.equal(toHex(sides.a.keys[0]), toHex(sides.b.keys[0]));
    // Each key answers a datagram; its context (where a reply would go) comes back with it.
    assert.deepEqual(sides.a.keyContexts[0], { from: "b" });
    assert.deepEqual(sides.b.keyContexts[0], { from: "a" });
    const status = await sides.a.client.status();
    assert.equal(status.b.state, "exchanged");
  } finally {
    sides.a.client.close();
    sides.b.client.close();
  }
});

Deno.test("rosenpass worker: a burst of valid-MAC InitHellos is bounded and the real exchange completes", async () => {
  let captured: Uint8Array | undefined;
  const { sides, both } = await startPair((from, message) => {
    if (from === "a" && message[0] === 0x81) captured ??= message;
  });
  try {
    sides.a.client.initiate("b");
    // Replay a's valid InitHello from 500 unknown sources as fast as the loop allows.
    while (captured === undefined) await new Promise((r) => setTimeout(r, 1));
    let accepted = 0;
    for (let i = 0; i < 500; i++) {
      if (sides.b.client.datagram(`198.51.100.${i % 250}:${i}`, false, captured)) accepted++;
    }
    await within(both, "key exchange under flood");
    assert.equal(toHex(sides.a.keys.at(-1)!), toHex(sides.b.keys.at(-1)!));
    const c = sides.b.client.counters;
    assert.ok(c.droppedQueueFull >= 490, `dropped at the queue: ${c.droppedQueueFull}`);
    assert.ok(accepted <= 10, `queued: ${accepted}`);
    // However full the queue is with unknown sources, a known peer endpoint still gets a slot.
    for (let i = 0; i < 20; i++) sides.b.client.datagram(`198.51.100.${i}:1`, false, captured);
    assert.equal(sides.b.client.datagram("a:9999", true, captured), true, "known endpoints have a reserve");
    assert.ok(c.admitted <= accepted + 2, `admitted ${c.admitted}`);
  } finally {
    sides.a.client.close();
    sides.b.client.close();
  }
});
