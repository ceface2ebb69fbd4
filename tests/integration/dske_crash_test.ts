/**
 * DSKE crash safety (protocols.md §1.6 invariants 1-3): two `twofold up` nodes and three `twofold hub`s
 * in namespaces (tfk-*), k = 2, rotation every 2 s. A node and a hub are killed with SIGKILL at random
 * points during rotations (after a random delay, or just after a hub stored a share, i.e. mid-round),
 * at least 20 kills in all, each restarted at once; after every cycle a new epoch must be agreed on both
 * nodes. tcpdump records TCP 51831 on every wg0 for the whole run (restarted with its interface); the
 * captures are then reassembled and every (block, offset, used) of every client ↔ hub frame is checked:
 * no PSRD byte is used twice (byte-identical repeats aside), and nothing on the wire lies above the
 * watermark the sender persisted. Needs root, /dev/net/tun, iproute2 and tcpdump.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import {
  bridgeSegment,
  hostExec,
  type Netns,
  type Proc,
  sleep,
  Topology,
  waitUntil,
} from "../helpers/netns.ts";
import { genKeyPair } from "../helpers/wg_device.ts";
import { seededRandom } from "../helpers/seeded_random.ts";
import {
  hubPeerEntry,
  type LabHub,
  type LabNode,
  startTwofoldHub,
  startTwofoldUp,
  writeHubConfig,
  writeNodeConfig,
} from "../helpers/twofold_node.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { auditCaptures } from "../../src/dske/wire-audit.ts";
import { decodeBase64 } from "../../src/encoding.ts";

const ROTATION_S = 2;
/** Kill cycles; each kills one node and one hub. */
const CYCLES = 14;

const NODES: LabNode[] = ["a", "b"].map((s, i) => ({
  name: `crash-${s}`,
  keys: genKeyPair(),
  underlay: `10.236.0.${i + 1}`,
  wgIp: `100.64.4.${i + 1}`,
  aesIp: `100.127.4.${i + 1}`,
}));
const HUBS: LabHub[] = [1, 2, 3].map((i) => ({
  name: `hub-${i}`,
  keys: genKeyPair(),
  underlay: `10.236.0.${10 + i}`,
  wgIp: `100.64.4.${10 + i}`,
}));

/**
 * Adjusts a lab node config: a 5 s persistent keepalive on every peer, so that a restarted node
 * handshakes on wg0 at once (otherwise its peers keep sending on the dead session for up to 15 s, as
 * WireGuard does); and the admin API off unless the lab config already places it (the nodes share the
 * host's /run, so two of them would claim the same default socket).
 */
async function tuneNodeConfig(path: string): Promise<string> {
  const cfg = JSON.parse(await Deno.readTextFile(path));
  for (const p of cfg.peers) p.persistentKeepalive ??= 5;
  cfg.admin ??= { enabled: false };
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

/** Epochs in `dske key-agreed … epoch N` lines. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

integrationTest(
  "DSKE crash safety: SIGKILLed nodes and hubs never reuse a PSRD byte, agreement resumes",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("tcpdump")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfk-" });
    const seed = Number(Deno.env.get("TWOFOLD_TEST_SEED") ?? Date.now() % 1e9);
    const rnd = seededRandom(seed);
    const uniform = (max: number) => ((rnd(4).reduce((a, b) => a * 256 + b, 0) >>> 0) / 2 ** 32) * max;
    const captures: string[] = [];
    const tcpdumps: Proc[] = [];
    try {
      const sw = await topo.netns("tfk-sw", { replaceExisting: true });
      const nodeNs: Netns[] = [];
      const hubNs: Netns[] = [];
      for (const n of NODES) {
        nodeNs.push(await topo.netns(`tfk-${n.name.slice(6)}`, { replaceExisting: true }));
      }
      for (const h of HUBS) hubNs.push(await topo.netns(`tfk-${h.name}`, { replaceExisting: true }));
      await bridgeSegment(sw, [
        ...NODES.map((n, i) => ({ ns: nodeNs[i], ifname: `tfk-v${i}`, cidr: `${n.underlay}/24` })),
        ...HUBS.map((h, i) => ({ ns: hubNs[i], ifname: `tfk-h${i}`, cidr: `${h.underlay}/24` })),
      ]);

      const hubIds = HUBS.map(() => crypto.getRandomValues(new Uint8Array(16)));
      for (const n of NODES) {
        for (const [i, h] of HUBS.entries()) {
          const pair = createPsrdPair({
            hubId: hubIds[i],
            hubEndpoint: `${h.wgIp}:51831`,
            peerId: decodeBase64(n.keys.publicKey),
            c2hLen: 256 * 1024,
            h2cLen: 256 * 1024,
          });
          for (
            const [state, copy] of [[`state-${n.name}`, pair.client], [`state-${h.name}`, pair.hub]] as const
          ) {
            const store = await PsrdStore.open(`${dir}/${state}`);
            store.ingest(copy);
            store.close();
          }
        }
      }

      /** Starts tcpdump on the namespace's wg0 as soon as the interface is up (its process creates it). */
      const captureWhenUp = async (ns: Netns) => {
        const up = await waitUntil(
          async () => {
            const r = await hostExec(["ip", "-n", ns.name, "-o", "link", "show", "wg0"], { check: false });
            return r.code === 0 && /[<,]UP[,>]/.test(r.stdout);
          },
          20_000,
          10,
        );
        assert.ok(up, `wg0 came up in ${ns.name}`);
        const file = `${dir}/${ns.name}-${captures.length}.pcap`;
        const p = ns.spawn([
          "tcpdump",
          "-i",
          "wg0",
          "-U",
          "-n",
          "-Z",
          "root",
          "-w",
          file,
          "tcp",
          "port",
          "51831",
        ]);
        assert.ok(
          await waitUntil(() => p.exited || /listening on wg0/.test(p.output()), 10_000, 10) && !p.exited,
          `tcpdump started in ${ns.name}: ${p.output()}`,
        );
        captures.push(file);
        tcpdumps.push(p);
      };

      const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR");
      let starts = 0;
      const logFile = (name: string) => logDir ? `${logDir}/${name}-${starts++}.log` : undefined;
      const nodeCfgs: string[] = [];
      for (const n of NODES) {
        nodeCfgs.push(
          await tuneNodeConfig(
            await writeNodeConfig(dir, n, NODES.filter((o) => o !== n), {
              rotationIntervalSeconds: ROTATION_S,
              keySource: "dske",
              dskeThreshold: 2,
              extraPeers: HUBS.map(hubPeerEntry),
            }),
          ),
        );
      }
      const hubCfgs: string[] = [];
      for (const h of HUBS) hubCfgs.push(await writeHubConfig(dir, h, NODES));
      const nodes: Proc[] = [];
      const hubs: Proc[] = [];
      /** Every node process ever started, per node (their logs, for the epochs). */
      const history: Proc[][] = [[], []];
      const startNode = async (i: number) => {
        const [p] = await Promise.all([
          startTwofoldUp(nodeNs[i], nodeCfgs[i], { logFile: logFile(NODES[i].name) }),
          captureWhenUp(nodeNs[i]),
        ]);
        nodes[i] = p;
        history[i].push(p);
      };
      // Hubs log share-stored at debug level: the mid-round kill trigger.
      const startHub = async (i: number) => {
        const [p] = await Promise.all([
          startTwofoldHub(hubNs[i], hubCfgs[i], {
            env: { TWOFOLD_LOG: "debug" },
            logFile: logFile(HUBS[i].name),
          }),
          captureWhenUp(hubNs[i]),
        ]);
        hubs[i] = p;
      };
      for (let i = 0; i < HUBS.length; i++) await startHub(i);
      for (let i = 0; i < NODES.length; i++) await startNode(i);

      /** Highest epoch agreed by both nodes' current processes. */
      const commonEpochs = () => {
        const b = new Set(agreedEpochs(nodes[1].output()));
        return agreedEpochs(nodes[0].output()).filter((e) => b.has(e));
      };
      const allAgreed = () => new Set(history.flat().flatMap((p) => agreedEpochs(p.output())));

      await t.step("DSKE agrees a first key", async () => {
        assert.ok(
          await waitUntil(() => commonEpochs().length > 0, 20_000, 50),
          `a key is agreed:\n${nodes.map((p) => p.output().slice(-2000)).join("\n")}`,
        );
      });

      let kills = 0;
      const cycleMs: number[] = [];
      let midRound = 0;
      /** Waits for the kill point: a random delay, or (`mid`) 0-40 ms after some hub stored a share. */
      const killPoint = async (mid: boolean): Promise<void> => {
        if (!mid) {
          await sleep(uniform(ROTATION_S * 1000));
          return;
        }
        const marks = hubs.map((h) => h.output().length);
        const stored = await waitUntil(
          () => hubs.some((h, i) => /hub share-stored/.test(h.output().slice(marks[i]))),
          3 * ROTATION_S * 1000,
          5,
        );
        if (stored) midRound++;
        await sleep(uniform(40));
      };

      await t.step(
        `${CYCLES} cycles: SIGKILL a node and a hub, restart them, agreement resumes`,
        async () => {
          for (let c = 0; c < CYCLES; c++) {
            const started = Date.now();
            const before = Math.max(...allAgreed());
            const ni = c % 2;
            const hi = c % 3;
            await killPoint(c % 2 === 1);
            await nodes[ni].kill("SIGKILL");
            kills++;
            await startNode(ni);
            await killPoint(c % 2 === 0);
            await hubs[hi].kill("SIGKILL");
            kills++;
            await startHub(hi);
            const resumed = await waitUntil(() => commonEpochs().some((e) => e > before), 30_000, 50);
            assert.ok(
              resumed,
              `cycle ${c} (seed ${seed}): a new epoch agreed on both nodes after restarting ${
                NODES[ni].name
              } ` +
                `and ${HUBS[hi].name}:\n${nodes.map((p) => p.output().slice(-3000)).join("\n")}`,
            );
            cycleMs.push(Date.now() - started);
          }
          assert.ok(kills >= 20, `${kills} kills`);
          console.log(`cycle times (s): ${cycleMs.map((ms) => (ms / 1000).toFixed(1)).join(" ")}`);
        },
      );

      await t.step("the captures: no PSRD byte used twice, nothing above a persisted watermark", async () => {
        for (const p of tcpdumps) await p.kill("SIGINT");
        for (const p of [...nodes, ...hubs]) await p.kill("SIGTERM");
        const files: Uint8Array[] = [];
        for (const f of captures) files.push(await Deno.readFile(f));
        const audit = auditCaptures(files);
        const agreed = allAgreed().size;
        console.log(
          `seed ${seed}: ${kills} kills (${midRound} mid-round), ${agreed} keys agreed, ${captures.length} captures, ` +
            `${audit.packets} packets, ${audit.streams} streams (${audit.gaps} with gaps), ` +
            `${audit.uses.length} client-hub frames (${audit.repeats} repeats), ${audit.peerFrames} peer frames`,
        );
        assert.deepEqual(audit.reuses, [], "no PSRD range used twice");
        // Each agreed key needs at least k SHARE_PUT + k ACK + k SHARE_GET + k RESP (k = 2).
        assert.ok(
          audit.uses.length >= 8 * agreed,
          `the captures hold every round: ${audit.uses.length} frames for ${agreed} keys`,
        );
        assert.ok(audit.peerFrames >= 2 * agreed, `KEY_OFFER/KEY_RESULT seen: ${audit.peerFrames}`);
        // Every block and both of its regions appear on the wire, and nothing above a persisted watermark.
        const wireEnd = new Map<string, number>();
        for (const u of audit.uses) {
          const key = `${u.blockId}/${u.region}`;
          wireEnd.set(key, Math.max(wireEnd.get(key) ?? 0, u.offset + u.used));
        }
        let blocks = 0;
        for (const n of NODES) {
          const store = await PsrdStore.open(`${dir}/state-${n.name}`, { readOnly: true });
          for (const b of store.blocks()) {
            blocks++;
            const c2h = wireEnd.get(`${b.blockId}/c2h`);
            const h2c = wireEnd.get(`${b.blockId}/h2c`);
            assert.ok(
              c2h !== undefined && h2c !== undefined,
              `block ${b.blockId} used both ways on the wire`,
            );
            assert.ok(
              c2h <= b.txNext,
              `C2H on the wire (${c2h}) ≤ the node's persisted tx_next (${b.txNext})`,
            );
          }
          store.close();
        }
        for (const h of HUBS) {
          const store = await PsrdStore.open(`${dir}/state-${h.name}`, { readOnly: true });
          for (const b of store.blocks()) {
            const h2c = wireEnd.get(`${b.blockId}/h2c`) ?? 0;
            assert.ok(
              h2c <= b.txNext,
              `H2C on the wire (${h2c}) ≤ the hub's persisted tx_next (${b.txNext})`,
            );
          }
          store.close();
        }
        assert.equal(blocks, 6);
      });
    } finally {
      for (const p of tcpdumps) await p.kill("SIGINT").catch(() => {});
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
