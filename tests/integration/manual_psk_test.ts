/**
 * The example pair (examples/node-a.json and node-b.json, manual PSK file) run as an operator runs it,
 * in namespaces on the examples' own underlay addresses (192.0.2.1 and 192.0.2.2):
 * - a manual PSK does not expire: 30 s at a 2 s rotation interval (the maximum key age of rotated keys,
 *   3 × 2 s, passes five times; at the example's 120 s interval that is 30 minutes) with a ping every
 *   20 ms: no ping lost, the gate never stale or closed, aes0 rekeying all along;
 * - a PSK mismatch is reported on both sides, in each direction: the initiator (its responses fail to
 *   authenticate) and the responder (its responses are never confirmed), in events, status, /readyz,
 *   a WARN log line, and neither side counts an aes0 handshake (events, `wg show aes0
 *   latest-handshakes`); the same key on both sides clears it on both. The responder's own initiations
 *   are dropped by an nftables rule in its namespace, so it reports the mismatch only from the
 *   responses it answered (as the answering side of the issue did).
 * Namespaces tfpk-*. Needs root, /dev/net/tun, iproute2, ping, wg and nft.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, sleep, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { genKeyPair, genPresharedKey, type KeyPair } from "../helpers/wg_device.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { startTwofoldUp } from "../helpers/twofold_node.ts";
import { parseJsonc } from "../../src/config/jsonc.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import { followEvents } from "../../src/cli/events.ts";
import type { NodeEvent } from "../../src/events/bus.ts";
import type { NodeStatus } from "../../src/admin/model.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;
const PLACEHOLDER = {
  a: "PUBLIC+KEY+OF+NODE+A+from+twofold+pubkey+AA=",
  b: "PUBLIC+KEY+OF+NODE+B+from+twofold+pubkey+AA=",
};
const PREREQS = [
  requireRoot(),
  requireTun(),
  requireBinary("ip"),
  requireBinary("ping"),
  requireBinary("wg"),
];

/** One node of the example pair as the test runs it. */
interface ExampleNode {
  name: "node-a" | "node-b";
  keys: KeyPair;
  underlay: string;
  aesIp: string;
  wgIp: string;
  ns: Netns;
  config: string;
  pskFile: string;
  socket: string;
}

/**
 * Writes `<dir>/<name>.json` from the example config: keys, PSK file, state dir and admin socket in
 * `dir`, `keys.rotationIntervalSeconds` = `rotation`; everything else (addresses, endpoints, the
 * AES-exempt and hub peers, lockdown) as the example has it.
 */
async function writeExampleConfig(dir: string, n: ExampleNode, peer: ExampleNode, rotation: number) {
  const cfg = parseJsonc(await Deno.readTextFile(`${EXAMPLES}/${n.name}.json`)) as {
    node: Record<string, unknown>;
    keys?: Record<string, unknown>;
    admin?: Record<string, unknown>;
    peers: Record<string, unknown>[];
  };
  const keyFile = `${dir}/${n.name}.key`;
  await Deno.writeTextFile(keyFile, n.keys.privateKey + "\n", { mode: 0o600 });
  await Deno.chmod(keyFile, 0o600);
  cfg.node.privateKeyFile = keyFile;
  cfg.node.stateDir = `${dir}/state-${n.name}`;
  cfg.keys = { ...cfg.keys, rotationIntervalSeconds: rotation };
  cfg.admin = { ...cfg.admin, listen: `unix:${n.socket}`, tokenFile: `${dir}/${n.name}.token` };
  const aesPeer = cfg.peers.find((p) => p.name === peer.name)!;
  assert.equal(aesPeer.publicKey, n.name === "node-a" ? PLACEHOLDER.b : PLACEHOLDER.a);
  assert.equal(aesPeer.endpoint, `${peer.underlay}:51820`, "the example's endpoint is the lab's underlay");
  aesPeer.publicKey = peer.keys.publicKey;
  aesPeer.pskFile = n.pskFile;
  await Deno.writeTextFile(n.config, JSON.stringify(cfg, null, 2));
}

async function writePsk(path: string, psk: string): Promise<void> {
  await Deno.writeTextFile(`${path}.new`, psk + "\n", { mode: 0o600 });
  await Deno.chmod(`${path}.new`, 0o600);
  await Deno.rename(`${path}.new`, path);
}

/** Builds the two namespaces on the examples' underlay and describes both nodes. */
async function examplePair(topo: Topology, dir: string): Promise<[ExampleNode, ExampleNode]> {
  const nsA = await topo.netns("tfpk-a", { replaceExisting: true });
  const nsB = await topo.netns("tfpk-b", { replaceExisting: true });
  await vethPair(nsA, "tfpk-va", "192.0.2.1/24", nsB, "tfpk-vb", "192.0.2.2/24");
  const node = (name: "node-a" | "node-b", ns: Netns, i: number): ExampleNode => ({
    name,
    keys: genKeyPair(),
    underlay: `192.0.2.${i}`,
    wgIp: `100.64.0.${i}`,
    aesIp: `100.127.0.${i}`,
    ns,
    config: `${dir}/${name}.json`,
    pskFile: `${dir}/${name}.psk`,
    socket: `${dir}/${name}.sock`,
  });
  return [node("node-a", nsA, 1), node("node-b", nsB, 2)];
}

/** Collects a node's events (from its admin API, from the start of its history) until `stop`. */
function collectEvents(n: ExampleNode) {
  // Reads over the unix socket need no token.
  const client = new AdminClient({ kind: "unix", path: n.socket });
  const events: NodeEvent[] = [];
  const abort = new AbortController();
  const done = followEvents({
    client,
    lastEventId: "0",
    onEvent: (e) => events.push(e),
    signal: abort.signal,
  })
    .catch(() => {});
  return {
    client,
    events,
    stop: async () => {
      abort.abort();
      await done;
      client.close();
    },
  };
}

async function startNode(n: ExampleNode, logDir: string | undefined): Promise<Proc> {
  const proc = await startTwofoldUp(n.ns, n.config, {
    env: { TWOFOLD_LOG: "debug" },
    logFile: logDir && `${logDir}/${n.name}.log`,
  });
  const ok = await waitUntil(() => proc.exited || /admin API listening on/.test(proc.output()), 10_000);
  assert.ok(ok && !proc.exited, `the admin API did not start:\n${proc.output()}`);
  return proc;
}

/**
 * `wg show <aes0> latest-handshakes` of the node for its peer (aes0 under the name the example gives it:
 * node-b's is aes0b): unix seconds, 0 = never.
 */
async function latestHandshake(n: ExampleNode, peer: ExampleNode): Promise<number> {
  const ifname = (JSON.parse(await Deno.readTextFile(n.config)) as { aes0: { name?: string } }).aes0.name ??
    "aes0";
  const out = (await n.ns.exec(["wg", "show", ifname, "latest-handshakes"])).stdout;
  const line = out.split("\n").find((l) => l.startsWith(peer.keys.publicKey));
  assert.ok(line, `aes0 of ${n.name} lists ${peer.name}`);
  return Number(line.split("\t")[1]);
}

integrationTest(
  "example pair, manual PSK: the key never expires (30 s at a 2 s rotation), no ping lost",
  PREREQS,
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfpk-" });
    const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR");
    const collectors: ReturnType<typeof collectEvents>[] = [];
    try {
      const [a, b] = await examplePair(topo, dir);
      const psk = genPresharedKey();
      for (const n of [a, b]) await writePsk(n.pskFile, psk);
      await writeExampleConfig(dir, a, b, 2);
      await writeExampleConfig(dir, b, a, 2);
      const procs = [await startNode(a, logDir), await startNode(b, logDir)];
      const [evA, evB] = [collectEvents(a), collectEvents(b)];
      collectors.push(evA, evB);

      await t.step(
        "a ping every 20 ms for 30 s through aes0: none lost, the gate open throughout",
        async () => {
          assert.ok(await waitForPing(a.ns, b.aesIp, 5000), "aes0 opens with the manual key");
          const pinger = a.ns.spawn(["ping", "-n", "-i", "0.02", "-W", "1", b.aesIp], {
            logFile: logDir && `${logDir}/ping.log`,
          });
          const started = Date.now();
          const RUN_MS = 30_000;
          await sleep(RUN_MS);
          await pinger.kill("SIGINT");
          const out = pinger.output();
          const seqs = [...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
          const sent = Number(out.match(/(\d+) packets transmitted/)?.[1] ?? NaN);
          const last = Math.max(...seqs);
          const have = new Set(seqs);
          const missing = Array.from({ length: last }, (_, i) => i + 1).filter((q) => !have.has(q));
          assert.ok(seqs.length > 0 && sent - last <= 2, `ping answered until the stop (${last} of ${sent})`);
          assert.deepEqual(missing, [], `pings lost: ${missing.length} of ${last}`);

          for (const [n, ev, proc] of [[a, evA, procs[0]], [b, evB, procs[1]]] as const) {
            const bad = ev.events.filter((e) =>
              e.type === "gate-stale" || e.type === "gate-closed" || e.type === "mismatch-suspected"
            );
            assert.deepEqual(bad, [], `${n.name}: no stale, closed or mismatch event`);
            assert.doesNotMatch(proc.output(), /gate (gate-stale|gate-closed)/, `${n.name} logs no expiry`);
            const status = await ev.client.json<NodeStatus>("GET", "/v1/status");
            const peer = status.peers.find((p) => p.aes0 !== null)!;
            assert.equal(peer.aes0!.gate.state, "open", `${n.name}: gate open`);
            assert.equal(peer.aes0!.keyEpoch, 1, `${n.name}: still the key read from the file`);
            assert.ok(
              peer.aes0!.keyAgeSeconds! >= RUN_MS / 1000,
              `${n.name}: key age ${peer.aes0!.keyAgeSeconds} s`,
            );
            assert.equal((await ev.client.request("GET", "/readyz")).status, 200, `${n.name}: ready`);
            // The sessions kept renewing under the manual key all along (aes0 rekeys every ≥ 5 s here).
            const renewed = ev.events.filter((e) =>
              e.type === "handshake-completed" && e.layer === "aes0" && Date.parse(e.at) > started + 10_000
            );
            assert.ok(renewed.length >= 1, `${n.name}: aes0 handshakes in the last 20 s: ${renewed.length}`);
          }
          const rekeys = evA.events.filter((e) => e.type === "handshake-completed" && e.layer === "aes0");
          console.log(
            `${last} pings over ${((Date.now() - started) / 1000).toFixed(1)} s, 0 lost; ` +
              `${rekeys.length} aes0 handshakes on node-a; manual key ${RUN_MS / 6000}× past 3 × rotation`,
          );
        },
      );
    } finally {
      for (const c of collectors) await c.stop();
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** nftables in `ns`: drop (and count) the aes0 handshake initiations the node sends. */
async function blockInitiations(ns: Netns): Promise<void> {
  await ns.exec(["nft", "add", "table", "inet", "tfpk"]);
  await ns.exec(["nft", "add", "chain", "inet", "tfpk", "out", "{ type filter hook output priority 0 ; }"]);
  // @th,64,32: the first 4 bytes of the UDP payload, i.e. message type 1 (initiation) and 3 zero bytes.
  await ns.exec([
    "nft",
    "add",
    "rule",
    "inet",
    "tfpk",
    "out",
    "udp",
    "sport",
    "51830",
    "@th,64,32",
    "0x01000000",
    "counter",
    "drop",
  ]);
}

/** Packets the {@link blockInitiations} rule dropped so far. */
async function blockedInitiations(ns: Netns): Promise<number> {
  const out = (await ns.exec(["nft", "list", "table", "inet", "tfpk"])).stdout;
  return Number(out.match(/counter packets (\d+)/)?.[1] ?? NaN);
}

integrationTest(
  "PSK mismatch in each direction: both sides report it, neither counts an aes0 handshake",
  [...PREREQS, requireBinary("nft")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfpk-" });
    const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR");
    /** What runs for the current direction: stopped before the next one starts. */
    let running: { procs: Proc[]; events: Map<string, ReturnType<typeof collectEvents>> } | null = null;
    const stopRunning = async () => {
      if (!running) return;
      for (const c of running.events.values()) await c.stop();
      for (const p of running.procs) await p.kill();
      running = null;
    };
    try {
      const [a, b] = await examplePair(topo, dir);
      const peerOf = (n: ExampleNode) => (n === a ? b : a);
      for (const [initiator, responder] of [[b, a], [a, b]] as const) {
        await t.step(
          `${initiator.name} pings with a PSK ${responder.name} does not have; ${responder.name} only answers`,
          async () => {
            await writePsk(initiator.pskFile, genPresharedKey());
            await writePsk(responder.pskFile, genPresharedKey());
            await writeExampleConfig(dir, a, b, 120);
            await writeExampleConfig(dir, b, a, 120);
            await blockInitiations(responder.ns);
            const procs = [await startNode(a, logDir), await startNode(b, logDir)];
            const startedAt = Date.now();
            const events = new Map([[a.name, collectEvents(a)], [b.name, collectEvents(b)]]);
            const traffic = initiator.ns.spawn(["ping", "-q", "-i", "0.2", responder.aesIp]);
            procs.push(traffic);
            running = { procs, events };
            const suspected = (n: ExampleNode) =>
              events.get(n.name)!.events.find((e) => e.type === "mismatch-suspected");
            const both = await waitUntil(() => !!suspected(a) && !!suspected(b), 30_000, 100);
            const ms = (n: ExampleNode) => suspected(n) ? Date.parse(suspected(n)!.at) - startedAt : NaN;
            assert.ok(both, `both report the mismatch (node-a ${ms(a)} ms, node-b ${ms(b)} ms)`);
            console.log(
              `mismatch reported by the initiator ${initiator.name} after ${ms(initiator)} ms, ` +
                `by the responder ${responder.name} after ${ms(responder)} ms (after both nodes were up)`,
            );
            assert.match(suspected(initiator)!.reason, /failed to authenticate/);
            assert.match(suspected(responder)!.reason, /never confirmed our last \d+ handshake responses/);
            assert.ok(await blockedInitiations(responder.ns) > 0, "the responder's initiations were dropped");
            await sleep(3000); // a few more rounds of initiations and unconfirmed responses
            const lost = await ping(initiator.ns, responder.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
            assert.equal(lost.received, 0, "no traffic under disagreeing keys");

            for (const [n, proc] of [[a, procs[0]], [b, procs[1]]] as const) {
              const peer = peerOf(n);
              const { client, events: seen } = events.get(n.name)!;
              const hs = seen.filter((e) => e.type === "handshake-completed" && e.layer === "aes0");
              assert.deepEqual(hs, [], `${n.name} publishes no completed aes0 handshake`);
              assert.equal(await latestHandshake(n, peer), 0, `wg show: ${n.name} had no aes0 handshake`);
              const status = await client.json<NodeStatus>("GET", "/v1/status");
              const p = status.peers.find((x) => x.name === peer.name)!;
              assert.equal(p.aes0!.gate.mismatchSuspected, true, `${n.name} status: mismatch suspected`);
              assert.equal(p.aes0!.lastHandshake, null, `${n.name} status: no aes0 handshake`);
              assert.deepEqual(
                [p.aes0!.rxBytes, p.aes0!.txBytes],
                [0, 0],
                `${n.name} status: no aes0 bytes attributed to a session that never confirmed`,
              );
              const ready = await client.request("GET", "/readyz");
              const detail = await ready.text();
              assert.equal(ready.status, 503, `${n.name} /readyz: ${detail}`);
              assert.match(detail, /PSK mismatch suspected/);
              const metrics = await (await client.request("GET", "/metrics")).text();
              const metric = metrics.split("\n").find((l) =>
                l.startsWith("twofold_peer_gate_mismatch_suspected{") && l.includes(`"${peer.name}"`)
              );
              assert.match(metric ?? "", / 1$/, `${n.name} metric: ${metric}`);
              assert.match(
                proc.output(),
                /WARN .*aes0 gate mismatch-suspected/,
                `${n.name} logs a WARN line`,
              );
            }
          },
        );

        await t.step(
          `the same key on both sides clears it on both (${responder.name} still only answers)`,
          async () => {
            assert.ok(running, "the nodes of the previous step run");
            const { events } = running;
            const marks = new Map([...events].map(([name, c]) => [name, c.events.length]));
            const psk = genPresharedKey();
            for (const n of [a, b]) await writePsk(n.pskFile, psk);
            assert.ok(await waitForPing(initiator.ns, responder.aesIp, 10_000), "aes0 carries traffic again");
            for (const n of [a, b]) {
              const after = () => events.get(n.name)!.events.slice(marks.get(n.name));
              const ok = await waitUntil(() => after().some((e) => e.type === "mismatch-cleared"), 5000, 100);
              assert.ok(ok, `${n.name} clears the mismatch: ${after().map((e) => e.type).join(", ")}`);
              assert.ok(after().some((e) => e.type === "handshake-completed" && e.layer === "aes0"), n.name);
              assert.ok(await latestHandshake(n, peerOf(n)) > 0, `wg show: ${n.name} has an aes0 handshake`);
            }
            await stopRunning();
            await responder.ns.exec(["nft", "delete", "table", "inet", "tfpk"]);
          },
        );
      }
    } finally {
      await stopRunning();
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
