/**
 * wg0's PSKs under Rosenpass (RosenpassPskManager) on a fake PSK target: random at start for managed
 * peers only (fail closed), each exchanged key installed with the previous one as the initiator's
 * fallback, stale → random in strict mode and untouched in permissive mode, UAPI writes refused with
 * EPERM for managed peers and applied for the others, events naming epochs and never keys.
 */
import assert from "node:assert/strict";
import { type PqEvent, RosenpassPskManager } from "../../src/node/rosenpass-psk.ts";
import { toHex } from "../../src/encoding.ts";
import { wg0PskCell } from "../../src/cli/status.ts";
import type { Wg0PeerStatus } from "../../src/admin/model.ts";

const STRICT = new Uint8Array(32).fill(1);
const LOOSE = new Uint8Array(32).fill(2);
const STOCK = new Uint8Array(32).fill(3);

function setup() {
  const installed = new Map<string, { psk: Uint8Array; extras: Uint8Array[] }>();
  const events: PqEvent[] = [];
  const dropped: string[] = [];
  let counter = 0;
  let now = 1_000_000;
  const manager = new RosenpassPskManager(
    {
      setPresharedKey: (peer, psk, extras) => {
        installed.set(toHex(peer), { psk: psk.slice(), extras: extras.map((e) => e.slice()) });
        return true;
      },
      dropSessions: (peer) => dropped.push(toHex(peer)),
    },
    [
      { name: "strict-peer", publicKey: STRICT, mode: "strict" },
      { name: "loose-peer", publicKey: LOOSE, mode: "permissive" },
      { name: "stock-peer", publicKey: STOCK, mode: "off" },
    ],
    {
      random: (n) => new Uint8Array(n).fill(0xa0 + (counter++ % 16)),
      clock: () => now,
      onEvent: (e) => events.push(e),
    },
  );
  return { manager, installed, events, dropped, advance: (ms: number) => (now += ms) };
}

const key = (b: number) => new Uint8Array(32).fill(b);

Deno.test("rosenpass psk: managed peers start closed with distinct random PSKs; off peers are untouched", () => {
  const { manager, installed } = setup();
  manager.closeAll();
  assert.deepEqual(manager.managedPeers(), ["strict-peer", "loose-peer"]);
  const a = installed.get(toHex(STRICT))!.psk;
  const b = installed.get(toHex(LOOSE))!.psk;
  assert.ok(a.some((x) => x !== 0) && b.some((x) => x !== 0));
  assert.notDeepEqual(a, b);
  assert.equal(installed.has(toHex(STOCK)), false, "a peer in mode off keeps its PSK");
  assert.equal(manager.status("strict-peer")?.state, "waiting");
  assert.equal(manager.status("strict-peer")?.closed, true);
  assert.equal(manager.status("stock-peer")?.state, "off");
});

Deno.test("rosenpass psk: exchanged keys are installed with the previous key as fallback; epochs count", () => {
  const { manager, installed, events, advance } = setup();
  manager.closeAll();
  manager.keyExchanged("strict-peer", key(7));
  assert.deepEqual(installed.get(toHex(STRICT)), { psk: key(7), extras: [] }, "no fallback to a random key");
  advance(3_000);
  manager.keyExchanged("strict-peer", key(8));
  assert.deepEqual(installed.get(toHex(STRICT)), { psk: key(8), extras: [key(7)] });
  const s = manager.status("strict-peer")!;
  assert.equal(s.state, "exchanged");
  assert.equal(s.epoch, 2);
  assert.equal(s.exchanges, 2);
  assert.equal(s.closed, false);
  assert.deepEqual(events.map((e) => [e.type, e.peer, e.epoch]), [
    ["pq-key-exchanged", "strict-peer", 1],
    ["pq-key-exchanged", "strict-peer", 2],
  ]);
  for (const e of events) assert.deepEqual(Object.keys(e).sort(), ["epoch", "peer", "reason", "type"]);
  // Keys for off or unknown peers, or of the wrong length, are ignored.
  manager.keyExchanged("stock-peer", key(9));
  manager.keyExchanged("nobody", key(9));
  manager.keyExchanged("loose-peer", new Uint8Array(16));
  assert.equal(installed.has(toHex(STOCK)), false);
  assert.equal(manager.status("loose-peer")?.state, "waiting");
});

Deno.test("rosenpass psk: a stale key closes wg0 in strict mode and stays in permissive mode; recovery reopens", () => {
  const { manager, installed, events, dropped } = setup();
  manager.closeAll();
  manager.keyExchanged("strict-peer", key(7));
  manager.keyExchanged("loose-peer", key(8));
  manager.keyStale("strict-peer");
  manager.keyStale("loose-peer");
  const strict = installed.get(toHex(STRICT))!;
  assert.notDeepEqual(strict.psk, key(7), "strict: the stale key is gone");
  assert.deepEqual(strict.extras, [], "strict: no fallback to the stale key either");
  assert.equal(manager.status("strict-peer")?.closed, true);
  assert.deepEqual(dropped, [toHex(STRICT)], "strict: wg0 sessions end now; permissive: untouched");
  assert.deepEqual(installed.get(toHex(LOOSE))!.psk, key(8), "permissive: the stale key stays");
  assert.equal(manager.status("loose-peer")?.closed, false);
  assert.equal(manager.status("strict-peer")?.state, "stale");
  assert.equal(manager.status("loose-peer")?.state, "stale");
  assert.deepEqual(events.slice(2).map((e) => [e.type, e.peer]), [
    ["pq-key-stale", "strict-peer"],
    ["pq-key-stale", "loose-peer"],
  ]);
  // The exchange resumes: the new key is installed without the stale key as fallback.
  manager.keyExchanged("strict-peer", key(9));
  assert.deepEqual(installed.get(toHex(STRICT)), { psk: key(9), extras: [] });
  assert.equal(manager.status("strict-peer")?.state, "exchanged");
  manager.handshakeFailed("strict-peer", "RespHello: authentication failed");
  assert.equal(events.at(-1)?.type, "pq-handshake-failed");
});

Deno.test("rosenpass psk: UAPI PSK writes are refused (EPERM) for managed peers and applied for others", () => {
  const { manager, installed } = setup();
  const policy = manager.pskPolicy();
  assert.equal(policy.checkUapiPsk!(STRICT, key(5), false), -1);
  assert.equal(policy.onUapiPsk(STRICT, key(5)), -1);
  assert.equal(policy.onUapiPsk(LOOSE, key(5)), -1);
  assert.equal(installed.has(toHex(STRICT)), false, "a refused write installs nothing");
  assert.equal(policy.onUapiPsk(STOCK, key(5)), 0);
  assert.deepEqual(installed.get(toHex(STOCK))?.psk, key(5));
  assert.equal(policy.onUapiPsk(STOCK, new Uint8Array(5)), -22);
  // A peer the device creates: random for managed peers, the default for the others.
  assert.equal(policy.onPeerCreated(STRICT)?.length, 32);
  assert.equal(policy.onPeerCreated(STOCK), null);
  assert.equal(policy.onPeerCreated(key(99)), null);
});

Deno.test("twofold status: the WG0 PSK cell shows the post-quantum state", () => {
  const cell = (pq: Wg0PeerStatus["pq"], source: Wg0PeerStatus["psk"]["source"] = "rosenpass") =>
    wg0PskCell({ psk: { source, epoch: null, ageSeconds: null }, pq } as Wg0PeerStatus);
  assert.equal(
    cell({ mode: "off", state: "off", epoch: null, ageSeconds: null, exchanges: 0 }, "static"),
    "static",
  );
  assert.equal(
    cell({ mode: "strict", state: "waiting", epoch: null, ageSeconds: null, exchanges: 0 }),
    "pq waiting",
  );
  assert.match(
    cell({ mode: "strict", state: "exchanged", epoch: 12, ageSeconds: 41, exchanges: 12 }),
    /^pq #12 41/,
  );
  assert.equal(
    cell({ mode: "permissive", state: "stale", epoch: 3, ageSeconds: 200, exchanges: 3 }),
    "pq STALE (permissive)",
  );
});
