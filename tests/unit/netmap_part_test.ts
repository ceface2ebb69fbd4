import assert from "node:assert/strict";
import { decodeBase64, encodeBase64 } from "../../src/encoding.ts";
import { EventBus, type NodeEvent } from "../../src/events/bus.ts";
import { documentDigest } from "../../src/netmap/accept.ts";
import { loadLastGood } from "../../src/netmap/last-good.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { generateSignerSeed, signDocument, signerPublicKey } from "../../src/netmap/signature.ts";
import type { NetmapSource } from "../../src/netmap/source-config.ts";
import { type RouteSettings, viewFor } from "../../src/netmap/view.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";
import type { PeerConfig } from "../../src/config/node-config.ts";
import {
  type MapFollower,
  type NetmapNodeHandle,
  NetmapPart,
  type RunningMap,
} from "../../src/node/netmap-part.ts";
import { configFromView, peersFromView } from "../../src/node/netmap-config.ts";
import type { UapiSetRequest } from "../../src/uapi/types.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;
const SELF = decodeBase64(key(0));
const enc = new TextEncoder();

function baseMap(serial = 1): Json {
  return {
    version: 1,
    serial,
    domain: "fabric.example",
    aesSubnet: "100.127.0.0/16",
    groups: ["ops"],
    nodes: [
      { name: "self", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" },
      { name: "b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
      { name: "printer", publicKey: key(3), wgIp: "100.64.0.4" },
    ],
  };
}

function withNode(j: Json, serial: number, node: Json): Json {
  return { ...j, serial, nodes: [...(j.nodes as Json[]), node] };
}

/** A device modelled as its peers: key → allowed IPs; `failNext` makes the next set refused. */
class FakeDevice {
  peers = new Map<string, string>();
  failNext = false;
  apply(req: UapiSetRequest): number {
    if (this.failNext) {
      this.failNext = false;
      return -22;
    }
    const next = new Map(this.peers);
    for (const c of req.peers) {
      const k = encodeBase64(c.publicKey);
      if (c.remove) next.delete(k);
      else next.set(k, c.allowedIps.join(","));
    }
    this.peers = next;
    return 0;
  }
}

interface Rig {
  part: NetmapPart;
  wg0: FakeDevice;
  aes0: FakeDevice;
  gate: Set<string>;
  peers: () => PeerConfig[];
  events: NodeEvent[];
  stateDir: string;
  zones: number[];
}

function running(j: Json, signature: Uint8Array | null = null): RunningMap {
  const document = enc.encode(JSON.stringify(j));
  const map = parseNetmap(JSON.stringify(j));
  return {
    document,
    signature,
    map,
    view: viewFor(map, SELF),
    record: { serial: map.serial, sha256: documentDigest(document) },
    appliedAt: 0,
  };
}

function rig(
  source: NetmapSource,
  initial: RunningMap,
  follower?: MapFollower,
  routing?: RouteSettings,
): Rig {
  const stateDir = Deno.makeTempDirSync({ prefix: "tf-netmap-part-" });
  const wg0 = new FakeDevice();
  const aes0 = new FakeDevice();
  const gate = new Set<string>();
  for (const p of initial.view.peers) {
    wg0.peers.set(encodeBase64(p.publicKey), `${p.wgIp.addr.join(".")}/32`);
    if (p.aesIp) {
      aes0.peers.set(encodeBase64(p.publicKey), `${p.aesIp.addr.join(".")}/32`);
      gate.add(encodeBase64(p.publicKey));
    }
  }
  const bus = new EventBus();
  const events: NodeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  let peers: PeerConfig[] = peersFromView(initial.view, {});
  const zones: number[] = [];
  const node: NetmapNodeHandle = {
    wg0: { device: wg0 },
    aes0: { device: aes0 },
    gate: {
      addPeer: (k) => {
        gate.add(encodeBase64(k));
        return new Uint8Array(32);
      },
      removePeer: (k) => void gate.delete(encodeBase64(k)),
    },
    events: bus,
    setPeers: (p) => void (peers = p),
    config: { node: { stateDir, publicKey: SELF }, aes0: { listenPort: 51830 } },
  };
  const dns: MapFollower = { name: "DNS", apply: (next) => void zones.push(next.record.serial) };
  const part = new NetmapPart({
    node,
    source,
    initial,
    pskFiles: { d: "/etc/twofold/d.psk" },
    followers: follower ? [dns, follower] : [dns],
    log: { info: () => {}, warn: () => {} },
    routing,
  });
  return { part, wg0, aes0, gate, peers: () => peers, events, stateDir, zones };
}

const FILE_SOURCE: NetmapSource = { kind: "file", path: "/nonexistent/netmap.json", signerPublicKey: null };
const NEW_AES = { name: "d", publicKey: key(4), wgIp: "100.64.0.5", aesIp: "100.127.0.5" };

function offer(r: Rig, j: Json | string, signature: Uint8Array | null = null) {
  const text = typeof j === "string" ? j : JSON.stringify(j);
  return r.part.offer({ document: enc.encode(text), signature }, "test");
}

Deno.test("netmap part: a new peer lands on wg0, aes0 (gate closed), peer list, DNS and the last good copy", async () => {
  const r = rig(FILE_SOURCE, running(baseMap()));
  const result = await offer(r, withNode(baseMap(), 2, NEW_AES));
  assert.equal(result.outcome, "applied");
  const k = key(4);
  assert.equal(r.wg0.peers.get(k), "100.64.0.5/32");
  assert.equal(r.aes0.peers.get(k), "100.127.0.5/32");
  assert.ok(r.gate.has(k));
  const d = r.peers().find((p) => p.name === "d")!;
  assert.equal(d.pskFile, "/etc/twofold/d.psk", "the node config's pskFiles entry reaches the map's peer");
  assert.deepEqual(r.zones, [2]);
  assert.equal(r.part.status().serial, 2);
  assert.equal(loadLastGood(r.stateDir)?.record.serial, 2);
  const applied = r.events.filter((e) => e.type === "netmap-applied");
  assert.equal(applied.length, 1);
  assert.deepEqual(applied[0].data, { serial: 2, added: 1, removed: 0, changed: 0, restartNeeded: 0 });

  // Removing it again: gone from both interfaces and the gate.
  const removed = await offer(r, baseMap(3));
  assert.equal(removed.outcome, "applied");
  assert.ok(!r.wg0.peers.has(k) && !r.aes0.peers.has(k) && !r.gate.has(k));
  assert.equal(r.peers().length, 2);
  // The same document again is no change and no event.
  assert.equal((await offer(r, baseMap(3))).outcome, "unchanged");
  assert.equal(r.events.length, 2);
});

Deno.test("netmap part: a failure part-way rolls back every step before it and keeps the running map", async () => {
  const r = rig(FILE_SOURCE, running(baseMap()));
  const before = { wg0: new Map(r.wg0.peers), aes0: new Map(r.aes0.peers), gate: new Set(r.gate) };
  r.aes0.failNext = true;
  const result = await offer(r, withNode(baseMap(), 2, NEW_AES));
  assert.equal(result.outcome, "rejected");
  assert.match(
    (result as { reason: string }).reason,
    /^applying serial 2 failed at aes0 \(aes0 refused the change \(errno 22\)\); rolled back to serial 1$/,
  );
  assert.deepEqual(r.wg0.peers, before.wg0);
  assert.deepEqual(r.aes0.peers, before.aes0);
  assert.deepEqual(r.gate, before.gate);
  assert.deepEqual(r.zones, []);
  assert.equal(r.part.status().serial, 1);
  assert.equal(loadLastGood(r.stateDir), null, "a map that did not apply is not kept");
  const rejected = r.events.filter((e) => e.type === "netmap-rejected");
  assert.equal(rejected.length, 1);
  assert.match(rejected[0].reason, /serial 1 keeps running/);
});

Deno.test("netmap part: a follower (routes) failing undoes DNS and the interfaces", async () => {
  let fail = true;
  const routes: MapFollower = {
    name: "routes",
    apply: () => {
      if (fail) throw new Error("RTM_NEWROUTE: EPERM");
    },
  };
  const r = rig(FILE_SOURCE, running(baseMap()), routes);
  const before = new Map(r.wg0.peers);
  const result = await offer(r, withNode(baseMap(), 2, NEW_AES));
  assert.equal(result.outcome, "rejected");
  assert.match(
    (result as { reason: string }).reason,
    /failed at routes \(RTM_NEWROUTE: EPERM\); rolled back/,
  );
  assert.deepEqual(r.wg0.peers, before);
  assert.deepEqual(r.zones, [2, 1], "DNS took the new zone, then the old one back");
  assert.equal(r.peers().length, 2);
  fail = false;
  assert.equal((await offer(r, withNode(baseMap(), 2, NEW_AES))).outcome, "applied");
});

Deno.test("netmap part: bad maps are refused with one line and change nothing", async (t) => {
  const seed = generateSignerSeed();
  const signed: NetmapSource = {
    kind: "url",
    url: "http://x/",
    signerPublicKey: signerPublicKey(seed),
    pollSeconds: 30,
  };
  const sign = (j: Json) => signDocument(enc.encode(JSON.stringify(j)), seed);
  const initialJson = baseMap(5);
  const cases: [string, Json | string, RegExp, "sign" | "none" | "wrong"][] = [
    [
      "duplicate address",
      withNode(initialJson, 6, { ...NEW_AES, wgIp: "100.64.0.2" }),
      /100\.64\.0\.2 is already used/,
      "sign",
    ],
    [
      "unknown group",
      withNode(initialJson, 6, { ...NEW_AES, groups: ["dev"] }),
      /unknown group "dev"/,
      "sign",
    ],
    ["lower serial", baseMap(4), /serial 4 is lower than the running map's 5/, "sign"],
    ["garbage", "{ not json", /^invalid map: /, "sign"],
    ["unsigned", withNode(initialJson, 6, NEW_AES), /unsigned/, "none"],
    ["bad signature", withNode(initialJson, 6, NEW_AES), /does not verify/, "wrong"],
    [
      "map without this node",
      { ...initialJson, serial: 6, nodes: [(initialJson.nodes as Json[])[1]] },
      /not in the map/,
      "sign",
    ],
  ];
  for (const [name, doc, pattern, how] of cases) {
    await t.step(name, async () => {
      const r = rig(signed, running(initialJson, sign(initialJson)));
      const before = new Map(r.wg0.peers);
      const text = typeof doc === "string" ? doc : JSON.stringify(doc);
      const sig = how === "none"
        ? null
        : how === "wrong"
        ? signDocument(enc.encode(text), generateSignerSeed())
        : signDocument(enc.encode(text), seed);
      const result = await offer(r, text, sig);
      assert.equal(result.outcome, "rejected");
      const reason = (result as { reason: string }).reason;
      assert.match(reason, pattern);
      assert.ok(!reason.includes("\n"), "one line");
      assert.deepEqual(r.wg0.peers, before);
      assert.equal(r.part.status().serial, 5);
      assert.match(r.part.status().lastRejected!, /refused/);
      assert.equal(r.events.filter((e) => e.type === "netmap-rejected").length, 1);
    });
  }
});

Deno.test("netmap config: the node takes its addresses from its entry; an exempt node's aes0 holds no peer's address", () => {
  const base = {
    node: { name: "n", privateKeyFile: "/k", stateDir: "/s", privateKey: null, publicKey: SELF },
    wg0: {
      listenPort: 51820,
      address: { family: 4, ip: new Uint8Array(4), prefixLength: 0, text: "x" },
      mtu: 1420,
    },
    aes0: {
      listenPort: 51830,
      subnet: { family: 4, addr: new Uint8Array(4), bits: 0 },
      address: { family: 4, ip: new Uint8Array(4), prefixLength: 0, text: "x" },
      mtu: 1360,
      mtuDerived: true,
    },
    keys: {
      rotationIntervalSeconds: 120,
      maxKeyAgeSeconds: 360,
      manualMaxAgeSeconds: null,
      dskeThreshold: 2,
    },
    peers: [],
    admin: {} as never,
    lockdown: { extraPorts: [] },
    netmap: FILE_SOURCE,
    dns: { port: 53 },
    pskFiles: {},
  } as unknown as Parameters<typeof configFromView>[0];
  const aes = configFromView(base, running(baseMap()).view);
  assert.equal(aes.wg0.address.text, "100.64.0.1/10");
  assert.equal(aes.aes0.address.text, "100.127.0.1/16");
  assert.equal(aes.peers.length, 2);
  const printerKey = decodeBase64(key(3));
  const exempt = configFromView(base, viewFor(parseNetmap(JSON.stringify(baseMap())), printerKey));
  assert.equal(exempt.wg0.address.text, "100.64.0.4/10");
  assert.equal(exempt.aes0.address.text, "100.127.0.0/16", "the subnet's network address, never allocated");
  assert.ok(exempt.peers.every((p) => p.aesIp === null));
  // DSKE peers need k hubs in the map.
  const dskeMap = baseMap();
  for (const n of dskeMap.nodes as Json[]) if (n.aesIp) n.keySource = "dske";
  assert.throws(
    () => configFromView(base, viewFor(parseNetmap(JSON.stringify(dskeMap)), SELF)),
    /k = 2 \(keys.dskeThreshold\) but the map has only 0 hub/,
  );
});

/** baseMap with b (AES) and printer (AES-exempt) advertising a LAN each; b in group ops when `bInOps`. */
function routedMap(serial: number, bInOps: boolean): Json {
  const nodes = (baseMap().nodes as Json[]).map((n) =>
    n.name === "b"
      ? { ...n, routes: ["192.168.20.0/24"], ...(bInOps ? { groups: ["ops"] } : {}) }
      : n.name === "printer"
      ? { ...n, routes: ["192.168.40.0/24"] }
      : n
  );
  return { ...baseMap(serial), nodes };
}

Deno.test("netmap part: an accepted network lands on aes0 for an AES peer, on wg0 for an exempt one, live", async () => {
  const routing: RouteSettings = { accept: { kind: "groups", groups: ["ops"] }, advertise: null };
  const initial = running(routedMap(1, false));
  const r = rig(FILE_SOURCE, initial, undefined, routing);
  assert.equal(r.aes0.peers.get(key(1)), "100.127.0.2/32", "advertised, not accepted: nothing routed");
  const applied = await offer(r, routedMap(2, true));
  assert.equal(applied.outcome, "applied");
  assert.equal(r.aes0.peers.get(key(1)), "100.127.0.2/32,192.168.20.0/24", "b joins ops: accepted on aes0");
  assert.equal(r.wg0.peers.get(key(1)), "100.64.0.2/32", "never on wg0 for an AES peer");
  assert.deepEqual(r.peers().find((p) => p.name === "b")!.acceptedRoutes, [parseCidr("192.168.20.0/24")]);

  const all = await r.part.setRouting({ accept: { kind: "all" }, advertise: null });
  assert.equal(all.outcome, "applied", "a reloaded routes.accept applies through the same path");
  assert.equal(r.wg0.peers.get(key(3)), "100.64.0.4/32,192.168.40.0/24", "the exempt printer's LAN on wg0");
  assert.equal(r.aes0.peers.has(key(3)), false);

  r.aes0.failNext = true;
  const refused = await r.part.setRouting({ accept: { kind: "none" }, advertise: null });
  assert.equal(refused.outcome, "rejected", "aes0 refusing the change refuses the settings");
  assert.equal(r.aes0.peers.get(key(1)), "100.127.0.2/32,192.168.20.0/24", "rolled back: still accepted");
  assert.equal(r.wg0.peers.get(key(3)), "100.64.0.4/32,192.168.40.0/24", "wg0 rolled back too");

  const mismatch = await r.part.setRouting({
    accept: { kind: "all" },
    advertise: [parseCidr("10.9.0.0/24")],
  });
  assert.equal(mismatch.outcome, "rejected");
  assert.match(
    (mismatch as { reason: string }).reason,
    /routes: \[\] differs from node\.advertise \[10\.9\.0\.0\/24\]/,
  );
  const later = await offer(r, routedMap(3, false));
  assert.equal(later.outcome, "applied", "the refused settings were not kept");
  assert.equal(r.aes0.peers.get(key(1)), "100.127.0.2/32,192.168.20.0/24", "accept all still in force");
});
