import assert from "node:assert/strict";
import { decodeBase64, encodeBase64 } from "../../src/encoding.ts";
import { gateKeys, planApply, summarizePlan } from "../../src/netmap/apply-plan.ts";
import { diffViews } from "../../src/netmap/diff.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { type NetmapView, viewFor } from "../../src/netmap/view.ts";
import type { UapiSetRequest } from "../../src/uapi/types.ts";
import { formatCidr, formatIp } from "../../src/wireguard/allowedips.ts";
import { formatEndpoint } from "../../src/uapi/netaddr.ts";
import { key } from "./netmap_fixtures.ts";

const AES_PORT = 51830;
type Json = Record<string, unknown>;
type DeviceState = Map<string, string>;

/** A device's peers as text: key → "allowed|endpoint|keepalive". */
function apply(state: DeviceState, req: UapiSetRequest): DeviceState {
  assert.equal(req.replacePeers, false, "a plan never replaces all peers");
  const next = new Map(state);
  for (const c of req.peers) {
    const k = encodeBase64(c.publicKey);
    if (c.remove) {
      assert.ok(next.has(k), "only existing peers are removed");
      next.delete(k);
      continue;
    }
    const endpoint = c.endpoint ? formatEndpoint(c.endpoint) : "-";
    next.set(k, `${c.allowedIps.join(",")}|${endpoint}|${c.persistentKeepalive ?? 0}`);
  }
  return next;
}

/** What wg0 and aes0 hold for a view, written the same way. */
function expected(v: NetmapView): { wg0: DeviceState; aes0: DeviceState; gate: Map<string, string> } {
  const wg0: DeviceState = new Map();
  const aes0: DeviceState = new Map();
  const gate = new Map<string, string>();
  for (const p of [...v.peers, ...v.brokers]) {
    const k = encodeBase64(p.publicKey);
    wg0.set(
      k,
      `${formatCidr(p.wgIp)}|${p.endpoint ? formatEndpoint(p.endpoint) : "-"}|${p.persistentKeepalive}`,
    );
    if (p.aesIp && p.role === "peer") {
      aes0.set(k, `${formatCidr(p.aesIp)}|${formatIp(p.wgIp.addr)}:${AES_PORT}|${p.persistentKeepalive}`);
      gate.set(k, p.keySource);
    }
  }
  return { wg0, aes0, gate };
}

function applyGate(gate: Map<string, string>, plan: ReturnType<typeof planApply>): Map<string, string> {
  const next = new Map(gate);
  for (const k of plan.gate.remove) {
    assert.ok(next.delete(encodeBase64(k)), "only gated peers leave the gate");
  }
  for (const g of plan.gate.reset) {
    assert.ok(next.has(encodeBase64(g.publicKey)));
    next.set(encodeBase64(g.publicKey), g.keySource);
  }
  for (const g of plan.gate.add) {
    assert.ok(!next.has(encodeBase64(g.publicKey)), "a peer joins the gate once");
    next.set(encodeBase64(g.publicKey), g.keySource);
  }
  return next;
}

function baseMap(): Json {
  return {
    version: 1,
    serial: 1,
    domain: "fabric.example",
    aesSubnet: "100.127.0.0/16",
    groups: ["ops"],
    nodes: [
      { name: "self", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1", keySource: "dske" },
      { name: "b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2", keySource: "dske" },
      { name: "c", publicKey: key(2), wgIp: "100.64.0.3", aesIp: "100.127.0.3", keySource: "dske" },
      { name: "printer", publicKey: key(3), wgIp: "100.64.0.4" },
      { name: "hub-1", publicKey: key(4), wgIp: "100.64.0.100", role: "hub" },
      { name: "hub-2", publicKey: key(5), wgIp: "100.64.0.101", role: "hub" },
    ],
  };
}

const SELF = decodeBase64(key(0));

function view(j: Json): NetmapView {
  return viewFor(parseNetmap(JSON.stringify(j)), SELF);
}

/** Checks the plan for a → b and its inverse against the expected device states. */
function checkTransition(a: Json, b: Json): ReturnType<typeof planApply> {
  const va = view(a);
  const vb = view(b);
  const plan = planApply(diffViews(va, vb), { aesPort: AES_PORT });
  const ea = expected(va);
  const eb = expected(vb);
  assert.deepEqual(apply(ea.wg0, plan.wg0), eb.wg0, "wg0 after the plan is wg0 of the new map");
  assert.deepEqual(apply(ea.aes0, plan.aes0), eb.aes0, "aes0 after the plan is aes0 of the new map");
  assert.deepEqual(applyGate(ea.gate, plan), eb.gate, "the gate holds the new map's AES peers");
  const back = planApply(diffViews(vb, va), { aesPort: AES_PORT });
  assert.deepEqual(apply(eb.wg0, back.wg0), ea.wg0, "rolling back restores wg0");
  assert.deepEqual(apply(eb.aes0, back.aes0), ea.aes0, "rolling back restores aes0");
  return plan;
}

function nodes(j: Json): Json[] {
  return j.nodes as Json[];
}

Deno.test("apply plan: add, remove and change peers; removals come first; untouched peers are not in the plan", () => {
  const a = baseMap();
  const b = structuredClone(a);
  b.serial = 2;
  nodes(b).splice(2, 1); // c leaves
  nodes(b).push({
    name: "d",
    publicKey: key(6),
    wgIp: "100.64.0.3",
    aesIp: "100.127.0.3",
    keySource: "dske",
  });
  nodes(b)[1].endpoints = ["192.0.2.2:51820"];
  const plan = checkTransition(a, b);
  assert.deepEqual(plan.wg0.peers.map((p) => [encodeBase64(p.publicKey), p.remove]), [
    [key(2), true],
    [key(1), false],
    [key(6), false],
  ]);
  assert.deepEqual(plan.aes0.peers.map((p) => [encodeBase64(p.publicKey), p.remove]), [[key(2), true], [
    key(6),
    false,
  ]]);
  assert.deepEqual(gateKeys(plan), { add: [key(6)], remove: [key(2)], reset: [] });
  assert.ok(plan.dnsChanged);
  assert.deepEqual(plan.restartNeeded, []);
  assert.equal(
    summarizePlan(diffViews(view(a), view(b)), plan),
    "serial 1 → 2; added d; removed c; changed b (endpoint)",
  );
});

Deno.test("apply plan: AES exempt ↔ AES, key source change, own readdress and hub changes", () => {
  const a = baseMap();
  let b = structuredClone(a);
  delete nodes(b)[2].aesIp; // c becomes AES-exempt
  delete nodes(b)[2].keySource;
  nodes(b)[3].aesIp = "100.127.0.4"; // printer becomes an AES peer
  nodes(b)[3].keySource = "dske";
  let plan = checkTransition(a, b);
  assert.deepEqual(gateKeys(plan), { add: [key(3)], remove: [key(2)], reset: [] });
  assert.deepEqual(plan.wg0.peers, [], "wg0 is untouched");

  b = structuredClone(a);
  for (const n of nodes(b)) if (n.keySource) n.keySource = "manual";
  plan = checkTransition(a, b);
  assert.deepEqual(gateKeys(plan), { add: [], remove: [], reset: [key(1), key(2)] });
  assert.equal(plan.dnsChanged, false);

  b = structuredClone(a);
  nodes(b)[0].aesIp = "100.127.0.9";
  plan = checkTransition(a, b);
  assert.match(plan.restartNeeded.join("\n"), /own entry changed \(aesAddress\): restart/);

  b = structuredClone(a);
  nodes(b).splice(5, 1);
  plan = checkTransition(a, b);
  assert.match(plan.restartNeeded.join("\n"), /DSKE hubs changed/);

  b = structuredClone(a);
  b.aesSubnet = "100.126.0.0/15";
  plan = checkTransition(a, b);
  assert.match(plan.restartNeeded.join("\n"), /aes subnet changed/);
});

Deno.test("apply plan: 300 random map changes land exactly on the new map and roll back exactly", () => {
  let seed = 0x1d872b41;
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  let current = baseMap();
  let nextKey = 10;
  let nextHost = 10;
  for (let step = 0; step < 300; step++) {
    const next = structuredClone(current);
    next.serial = (current.serial as number) + 1;
    const ns = nodes(next);
    const others = ns.slice(1);
    const pick = () => others[rand(others.length)];
    switch (rand(7)) {
      case 0: {
        const host = nextHost++;
        const aes = rand(2) === 0;
        ns.push({
          name: `n${host}`,
          publicKey: key(nextKey++ % 250),
          wgIp: `100.64.1.${host % 250}`,
          ...(aes ? { aesIp: `100.127.1.${host % 250}`, keySource: ns[0].keySource } : {}),
        });
        if (ns.filter((n) => n.publicKey === ns[ns.length - 1].publicKey).length > 1) ns.pop();
        if (ns.filter((n) => n.wgIp === ns[ns.length - 1].wgIp).length > 1) ns.pop();
        if (ns.filter((n) => n.aesIp && n.aesIp === ns[ns.length - 1].aesIp).length > 1) ns.pop();
        break;
      }
      case 1:
        if (others.length > 2) ns.splice(ns.indexOf(pick()), 1);
        break;
      case 2:
        pick().endpoints = rand(2) ? [`192.0.2.${rand(250) + 1}:${51820 + rand(10)}`] : [];
        break;
      case 3:
        pick().persistentKeepalive = rand(3) * 25;
        break;
      case 4: {
        const n = pick();
        n.name = `${n.name}-r`.slice(0, 60);
        break;
      }
      case 5: {
        const n = pick();
        if (n.role === undefined && n.aesIp === undefined) {
          n.aesIp = `100.127.2.${nextHost++ % 250}`;
          n.keySource = ns[0].keySource;
          if (ns.filter((m) => m.aesIp === n.aesIp).length > 1) {
            delete n.aesIp;
            delete n.keySource;
          }
        } else if (n.aesIp !== undefined) {
          delete n.aesIp;
          delete n.keySource;
        }
        break;
      }
      default: {
        const n = pick();
        const ip = `100.64.2.${nextHost++ % 250}`;
        if (!ns.some((m) => m.wgIp === ip)) n.wgIp = ip;
      }
    }
    checkTransition(current, next);
    current = next;
  }
});
