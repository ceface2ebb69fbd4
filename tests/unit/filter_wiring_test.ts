/**
 * The packet filter as the node wires it: policies in the node config, the tables NodeFilter compiles
 * from the devices' slots and the lockdown list (decided with the data plane's PacketFilter), and the
 * trace (node/trace.ts, CLI parsing and rendering) over real rule-table exchanges and trackers.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import type { AdminBackend } from "../../src/admin/model.ts";
import { CliError } from "../../src/cli/errors.ts";
import { renderTrace, traceQuestion } from "../../src/cli/trace.ts";
import { type NodeConfig, parseNodeConfig } from "../../src/config/node-config.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { ConnTracker, connTrackerBytes, DEFAULT_TRACKER_BUCKETS } from "../../src/filter/conn-tracker.ts";
import { FragmentTable } from "../../src/filter/fragment-table.ts";
import { PacketFilter } from "../../src/filter/packet-filter.ts";
import { buildProbePacket } from "../../src/filter/probe-packet.ts";
import { allowAllRuleTable, RULE_TABLE_CAPACITY_WORDS } from "../../src/filter/rule-compiler.ts";
import type { RuleTable } from "../../src/filter/rule-table.ts";
import { TableReader, TableWriter } from "../../src/filter/table-exchange.ts";
import type { FilterInterface } from "../../src/filter/placement.ts";
import { NodeFilter } from "../../src/node/filter-part.ts";
import { runTrace, TraceError, type TraceNode } from "../../src/node/trace.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";
import { parseIp } from "../../src/wireguard/allowedips.ts";
import { call, FakeBackend, TEST_TOKEN } from "./admin_fake_backend.ts";

const KEYS = Array.from({ length: 3 }, () => publicKey(generatePrivateKey()));
const [KEY_B, KEY_C, KEY_HUB] = KEYS;

function config(policies?: unknown, advertise?: string[]): NodeConfig {
  const raw: Record<string, unknown> = {
    node: { name: "node-a", privateKeyFile: "./node-a.key", ...(advertise ? { advertise } : {}) },
    wg0: { address: "100.64.0.1/10" },
    aes0: { address: "100.127.0.1/16" },
    peers: [
      { name: "node-b", publicKey: encodeBase64(KEY_B), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
      { name: "printer", publicKey: encodeBase64(KEY_C), wgIp: "100.64.0.10" },
      { name: "hub-1", publicKey: encodeBase64(KEY_HUB), wgIp: "100.64.0.100", role: "hub" },
    ],
  };
  if (policies !== undefined) raw.policies = policies;
  return parseNodeConfig(JSON.stringify(raw), {
    baseDir: "/etc/twofold",
    checkFiles: false,
    sourceName: "node.json",
  });
}

const POLICIES = {
  groups: { office: ["printer"] },
  rules: [
    { from: "office", to: "node-a", proto: "tcp", ports: ["631"] },
    { from: "node-b", to: "node-a", proto: "tcp", ports: ["8080"] },
  ],
};

/** A device as the filter and the trace see it: real exchange and tracker, fixed slots. */
class LabDevice {
  readonly writer = new TableWriter(allowAllRuleTable(), RULE_TABLE_CAPACITY_WORDS);
  readonly filterTracker = new SharedArrayBuffer(connTrackerBytes());
  readonly slots: Map<string, number>;
  readonly sessions = new Set<string>();
  constructor(keys: Uint8Array[]) {
    this.slots = new Map(keys.map((k, i) => [toHex(k), 10 + i]));
    new ConnTracker(this.filterTracker, DEFAULT_TRACKER_BUCKETS, 7);
  }
  get filterTables(): SharedArrayBuffer {
    return this.writer.sab;
  }
  peerSlots(): Map<string, number> {
    return new Map(this.slots);
  }
  setFilterTable(words: Int32Array): Promise<boolean> {
    return Promise.resolve(this.writer.publish(words));
  }
  peerStats(key: Uint8Array): { hasSession: boolean } | null {
    return this.slots.has(toHex(key)) ? { hasSession: this.sessions.has(toHex(key)) } : null;
  }
}

function lab(cfg: NodeConfig) {
  const devices: Record<FilterInterface, LabDevice> = {
    wg0: new LabDevice([KEY_B, KEY_C, KEY_HUB]),
    aes0: new LabDevice([KEY_B]),
  };
  const filter = new NodeFilter(cfg, devices, []);
  const node: TraceNode = {
    config: cfg,
    devices,
    gates: () => [
      {
        peer: toHex(KEY_B),
        source: "manual",
        state: "open",
        reason: "key installed",
        epoch: 3,
        lastInstalledEpoch: 3,
        keyAgeMs: 10,
      } as ReturnType<TraceNode["gates"]>[number],
    ],
    lockdownPorts: () => filter.lockdownPorts,
  };
  return { devices, filter, node };
}

/** The verdict the data plane's filter gives a probe from `src` to `dst` over the table in force. */
function decide(
  dev: LabDevice,
  slot: number,
  src: string,
  dst: string,
  proto: "tcp" | "udp" | "icmp",
  port?: number,
) {
  const pf = new PacketFilter({
    rules: { table: currentTable(dev) },
    tracker: new ConnTracker(dev.filterTracker),
    fragments: new FragmentTable(),
  });
  const pkt = buildProbePacket({ src: parseIp(src), dst: parseIp(dst), proto, dstPort: port });
  return pf.decideInbound(pkt, 0, pkt.length, slot, 0, false).toString();
}

/** The table in force, read the way the data plane reads it (a reader slot, let go at once). */
function currentTable(dev: LabDevice): RuleTable {
  const reader = new TableReader(dev.writer.sab, 5);
  const table = reader.table;
  reader.close();
  return table;
}

Deno.test("policies in the node config: resolved, or one line naming the field", () => {
  const cfg = config(POLICIES);
  assert.equal(cfg.policies?.rules.length, 2);
  assert.deepEqual(cfg.policies?.groups.get("office"), ["printer"]);
  assert.equal(config().policies, null, "no section: all-to-all");
  for (
    const [bad, field] of [
      [{ rules: [{ from: "nobody", to: "node-a" }] }, "policies.rules[0].from"],
      [{ groups: { empty: [] }, rules: [] }, "policies.groups.empty"],
      [
        { rules: [{ from: "node-b", to: "node-a", proto: "tcp", ports: ["90-80"] }] },
        "policies.rules[0].ports[0]",
      ],
    ] as const
  ) {
    assert.throws(() => config(bad), (e: unknown) => {
      assert.ok(e instanceof CliError, String(e));
      assert.ok(e.message.startsWith(`config node.json: ${field}: `), e.message);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("NodeFilter: wg0 lockdown for the AES peer, policies for the others, lockdown changes", async () => {
  const { devices, filter } = lab(config(POLICIES));
  await filter.start();
  try {
    const wg = devices.wg0, aes = devices.aes0;
    assert.equal(decide(wg, 10, "100.64.0.2", "100.64.0.1", "tcp", 8080), "drop (lockdown)");
    assert.equal(decide(wg, 10, "100.64.0.2", "100.64.0.1", "icmp"), "accept (lockdown-entry #0)");
    assert.equal(decide(wg, 10, "100.64.0.2", "100.64.0.1", "udp", 51830), "accept (lockdown-entry #1)");
    assert.equal(decide(aes, 10, "100.127.0.2", "100.127.0.1", "tcp", 8080), "accept (policy-rule #1)");
    assert.equal(decide(aes, 10, "100.127.0.2", "100.127.0.1", "tcp", 22), "drop (policy)");
    assert.equal(decide(wg, 11, "100.64.0.10", "100.64.0.1", "tcp", 631), "accept (policy-rule #0)");
    assert.equal(decide(wg, 11, "100.64.0.10", "100.64.0.1", "tcp", 22), "drop (policy)");
    assert.equal(decide(wg, 12, "100.64.0.100", "100.64.0.1", "tcp", 51831), "accept (key-plane)");
    assert.equal(decide(wg, 13, "100.64.0.7", "100.64.0.1", "tcp", 631), "drop (policy)", "an empty slot");
    await filter.setLockdown([{ proto: "tcp", from: 8080, to: 8080 }]);
    assert.equal(decide(wg, 10, "100.64.0.2", "100.64.0.1", "tcp", 8080), "accept (lockdown-entry #3)");
    await filter.setLockdown([]);
    assert.equal(decide(wg, 10, "100.64.0.2", "100.64.0.1", "tcp", 8080), "drop (lockdown)");
  } finally {
    filter.close();
  }
});

Deno.test("NodeFilter: without policies every peer is allowed, except wg0 between AES peers", async () => {
  const { devices, filter } = lab(config());
  await filter.start();
  try {
    assert.equal(decide(devices.wg0, 11, "100.64.0.10", "100.64.0.1", "tcp", 22), "accept (default-allow)");
    assert.equal(decide(devices.aes0, 10, "100.127.0.2", "100.127.0.1", "udp", 53), "accept (default-allow)");
    assert.equal(decide(devices.wg0, 10, "100.64.0.2", "100.64.0.1", "tcp", 22), "drop (lockdown)");
  } finally {
    filter.close();
  }
});

Deno.test("trace: route, verdict with its rule, gate, session and MTU, from the tables in force", async () => {
  const { devices, filter, node } = lab(config(POLICIES));
  await filter.start();
  try {
    devices.aes0.sessions.add(toHex(KEY_B));
    const both = runTrace(node, { peer: "node-b", proto: "tcp", port: 8080 }, 0);
    assert.deepEqual(both.layers.map((l) => l.layer), ["wg0", "aes0"]);
    assert.deepEqual(both.layers[0].verdict, { accept: false, reason: "lockdown", match: null, rule: null });
    assert.equal(both.layers[0].enforcement, "lockdown");
    assert.equal(both.layers[0].session, false);
    assert.deepEqual(both.layers[1].verdict, {
      accept: true,
      reason: null,
      match: "policy-rule",
      rule: "policies.rules[1]: node-b → node-a tcp/8080",
    });
    assert.equal(both.layers[1].session, true);
    assert.equal(both.layers[1].mtu, node.config.aes0.mtu);
    assert.deepEqual(both.gate, { state: "open", reason: "key installed", epoch: 3 });
    const byAesIp = runTrace(node, { peer: "100.127.0.2", proto: "icmp" }, 0);
    assert.deepEqual(byAesIp.layers.map((l) => [l.layer, l.verdict.accept]), [["aes0", false]]);
    const printer = runTrace(node, { peer: "100.64.0.10", proto: "tcp", port: 22 }, 0);
    assert.deepEqual(printer.layers.map((l) => [l.layer, l.verdict.reason]), [["wg0", "policy"]]);
    assert.equal(printer.gate, null);
    const raw = buildProbePacket({
      src: parseIp("100.64.0.2"),
      dst: parseIp("100.64.0.1"),
      proto: "udp",
      dstPort: 51830,
    });
    const fromBytes = runTrace(node, { peer: "node-b", packet: encodeBase64(raw) }, 0);
    assert.deepEqual(fromBytes.layers[0].verdict.rule, "udp/51830 (aes0)");
    assert.throws(() => runTrace(node, { peer: "nobody" }, 0), TraceError);
    assert.throws(() => runTrace(node, { peer: "printer", to: "aes0" }, 0), /no aes0/);
    // The trace's reader let go of the table: the next change publishes at once.
    assert.ok(await devices.wg0.setFilterTable(filter.compile("wg0")));
    const text = renderTrace({ peer: "node-b", proto: "tcp", port: 8080 }, both);
    assert.match(text, /^tcp\/8080 from node-b \(wg0 100\.64\.0\.2, AES 100\.127\.0\.2; AES-capable\)/);
    assert.match(text, /on wg0[\s\S]*DROP \(lockdown\)[\s\S]*on aes0[\s\S]*ACCEPT by policy-rule/);
    assert.match(text, /aes0 gate for node-b: open/);
  } finally {
    filter.close();
  }
});

Deno.test("trace: a host in a routed network — the peer's layer, the rule naming the network, wg0 forced", async () => {
  const policies = {
    groups: { office: ["printer"] },
    rules: [
      { from: "node-b", to: "192.168.10.0/24", proto: "tcp", ports: ["1-5200", "5202-65535"] },
      { from: "office", to: "192.168.10.0/24", proto: "icmp" },
    ],
  };
  const { filter, node } = lab(config(policies, ["192.168.10.0/24"]));
  await filter.start();
  try {
    const ok = runTrace(node, { peer: "node-b", proto: "tcp", port: 22, destination: "192.168.10.5" }, 0);
    assert.deepEqual(ok.layers.map((l) => [l.layer, l.destination, l.verdict.accept, l.verdict.rule]), [
      ["aes0", "192.168.10.5", true, "policies.rules[0]: node-b → 192.168.10.0/24 tcp/1-5200,5202-65535"],
    ]);
    assert.match(ok.layers[0].steering, /in 192\.168\.10\.0\/24, a network this node routes .* travels aes0/);
    const denied = runTrace(
      node,
      { peer: "node-b", proto: "tcp", port: 5201, destination: "192.168.10.5" },
      0,
    );
    assert.equal(denied.layers[0].verdict.reason, "policy");
    const forced = runTrace(
      node,
      { peer: "node-b", proto: "icmp", to: "wg0", destination: "192.168.10.5" },
      0,
    );
    assert.deepEqual(forced.layers.map((l) => [l.layer, l.verdict.reason]), [["wg0", "lockdown"]]);
    assert.match(forced.layers[0].steering, /never wg0 \(the lockdown drops it there\)/);
    const printer = runTrace(node, { peer: "printer", proto: "icmp", destination: "192.168.10.9" }, 0);
    assert.deepEqual(printer.layers.map((l) => [l.layer, l.verdict.accept]), [["wg0", true]]);
    assert.throws(
      () => runTrace(node, { peer: "node-b", destination: "10.1.1.1" }, 0),
      /destination: 10\.1\.1\.1 is not in a network this node routes \(node\.advertise: 192\.168\.10\.0\/24\)/,
    );
  } finally {
    filter.close();
  }
});

Deno.test("NodeFilter.setNetworks: a reloaded node.advertise changes the destination classes at once", async () => {
  const { devices, filter } = lab(config(POLICIES, ["192.168.10.0/24", "192.168.30.0/24"]));
  await filter.start();
  try {
    const toLan30 = () => decide(devices.aes0, 10, "100.127.0.2", "192.168.30.5", "tcp", 8080);
    assert.equal(toLan30(), "drop (policy)", "a routed network no rule names");
    await filter.setNetworks([parseCidr("192.168.10.0/24")]);
    assert.equal(toLan30(), "accept (policy-rule #1)", "no longer routed: the rules naming the node decide");
  } finally {
    filter.close();
  }
});

Deno.test("twofold trace: PEER PROTO/PORT parsing", () => {
  assert.deepEqual(traceQuestion(["node-b", "icmp"], undefined, undefined, "192.168.10.5"), {
    peer: "node-b",
    destination: "192.168.10.5",
    proto: "icmp",
  });
  assert.throws(
    () => traceQuestion(["node-b"], undefined, "RQ==", "192.168.10.5"),
    /--destination or --packet/,
  );
  assert.deepEqual(traceQuestion(["node-b", "tcp/8080"]), { peer: "node-b", proto: "tcp", port: 8080 });
  assert.deepEqual(traceQuestion(["node-b", "icmp"], "wg0"), { peer: "node-b", to: "wg0", proto: "icmp" });
  assert.deepEqual(traceQuestion(["node-b"], undefined, "RQ=="), { peer: "node-b", packet: "RQ==" });
  for (
    const [args, to, re] of [
      [[], undefined, /name the sending peer/],
      [["node-b", "tcp"], undefined, /give a port/],
      [["node-b", "icmp/3"], undefined, /ICMP has no port/],
      [["node-b", "tcp/70000"], undefined, /65535/],
      [["node-b", "sctp/1"], undefined, /not PROTO\[\/PORT\]/],
      [["node-b", "tcp/1"], "eth0", /--to must be wg0 or aes0/],
    ] as const
  ) {
    assert.throws(
      () => traceQuestion([...args], to),
      (e: unknown) => e instanceof CliError && re.test(e.message),
    );
  }
});

Deno.test("POST /v1/trace: token required, answers through the backend, one-line refusals", async () => {
  const { filter, node } = lab(config(POLICIES));
  await filter.start();
  try {
    const backend = new FakeBackend();
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const app = createAdminApp(backend, { token: TEST_TOKEN, readsNeedToken: false, log: quiet });
    assert.equal((await call(app, "POST", "/v1/trace", { json: { peer: "node-b" } })).status, 503);
    (backend as AdminBackend).trace = (q) => {
      try {
        return runTrace(node, q, 0);
      } catch (e) {
        if (e instanceof TraceError) return { error: e.message };
        throw e;
      }
    };
    const body = { peer: "node-b", proto: "tcp", port: 8080 };
    assert.equal((await call(app, "POST", "/v1/trace", { json: body, token: null })).status, 401);
    const ok = await call(app, "POST", "/v1/trace", { json: body });
    assert.equal(ok.status, 200, ok.text);
    const layers = ok.json.layers as { layer: string; verdict: { accept: boolean; reason: string | null } }[];
    assert.deepEqual(layers.map((l) => [l.layer, l.verdict.accept, l.verdict.reason]), [
      ["wg0", false, "lockdown"],
      ["aes0", true, null],
    ]);
    const unknown = await call(app, "POST", "/v1/trace", { json: { peer: "nobody" } });
    assert.equal(unknown.status, 422);
    assert.match(String(unknown.json.detail), /not a peer name/);
    const bad = await call(app, "POST", "/v1/trace", { json: { peer: "node-b", port: 70000 } });
    assert.equal(bad.status, 400);
  } finally {
    filter.close();
  }
});

Deno.test("NodeFilter.setPeers: a peer that joins live is classified at once (AES peer → wg0 lockdown)", async () => {
  const cfg = config();
  const aesPeer = cfg.peers.find((p) => toHex(p.publicKey) === toHex(KEY_B))!;
  const { devices, filter } = lab({ ...cfg, peers: cfg.peers.filter((p) => p !== aesPeer) });
  await filter.start();
  try {
    // Slot 10 holds a peer the filter does not know yet: AES-exempt, so wg0 is open to it.
    assert.equal(decide(devices.wg0, 10, "100.64.0.2", "100.64.0.1", "tcp", 22), "accept (default-allow)");
    await filter.setPeers(cfg.peers);
    assert.equal(decide(devices.wg0, 10, "100.64.0.2", "100.64.0.1", "tcp", 22), "drop (lockdown)");
  } finally {
    filter.close();
  }
});
