/**
 * DSKE crash safety (docs/design.md §4 invariants 1-3): two `twofold up` nodes and three `twofold hub`s
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
import { hostExec, type Netns, type Proc, sleep, waitUntil } from "../helpers/netns.ts";
import { seededRandom } from "../helpers/seeded_random.ts";
import { DskeLab } from "../../src/lab/dske-lab.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { auditCaptures } from "../../src/dske/wire-audit.ts";

const ROTATION_S = 2;
/** Kill cycles; each kills one node and one hub. */
const CYCLES = 14;

/** Epochs in `dske key-agreed … epoch N` lines. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

integrationTest(
  "DSKE crash safety: SIGKILLed nodes and hubs never reuse a PSRD byte, agreement resumes",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("tcpdump")],
  async (t) => {
    const seed = Number(Deno.env.get("TWOFOLD_TEST_SEED") ?? Date.now() % 1e9);
    const rnd = seededRandom(seed);
    const uniform = (max: number) => ((rnd(4).reduce((a, b) => a * 256 + b, 0) >>> 0) / 2 ** 32) * max;
    const captures: string[] = [];
    const tcpdumps: Proc[] = [];
    // A 5 s persistent keepalive on every peer, so that a restarted node handshakes on wg0 at once
    // (otherwise its peers keep sending on the dead session for up to 15 s, as WireGuard does).
    const opts = {
      prefix: "tfk-",
      underlayNet: "10.236.0",
      wgNet: "100.64.4",
      aesNet: "100.127.4",
      k: 2,
      rotationIntervalSeconds: ROTATION_S,
      persistentKeepalive: 5,
      logDir: Deno.env.get("TWOFOLD_TEST_LOG_DIR"),
    };
    await DskeLab.run(opts, async (lab) => {
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
        const file = `${lab.dir}/${ns.name}-${captures.length}.pcap`;
        const p = lab.spawnIn(ns, [
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

      const nodes = lab.nodeProcs as Proc[];
      const hubs = lab.hubProcs as Proc[];
      /** Every node process ever started, per node (their logs, for the epochs). */
      const history: Proc[][] = [[], []];
      const startNode = async (i: number) => {
        const [p] = await Promise.all([lab.startNode(i), captureWhenUp(lab.nodeNs[i])]);
        history[i].push(p);
      };
      // Hubs log share-stored at debug level: the mid-round kill trigger.
      const startHub = async (i: number) => {
        await Promise.all([lab.startHub(i, { TWOFOLD_LOG: "debug" }), captureWhenUp(lab.hubNs[i])]);
      };
      for (let i = 0; i < lab.hubs.length; i++) await startHub(i);
      for (let i = 0; i < lab.nodes.length; i++) await startNode(i);

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
            await lab.stopNode(ni, "SIGKILL");
            kills++;
            await startNode(ni);
            await killPoint(c % 2 === 0);
            await lab.stopHub(hi, "SIGKILL");
            kills++;
            await startHub(hi);
            const resumed = await waitUntil(() => commonEpochs().some((e) => e > before), 30_000, 50);
            assert.ok(
              resumed,
              `cycle ${c} (seed ${seed}): a new epoch agreed on both nodes after restarting ${
                lab.nodes[ni].name
              } ` +
                `and ${lab.hubs[hi].name}:\n${nodes.map((p) => p.output().slice(-3000)).join("\n")}`,
            );
            cycleMs.push(Date.now() - started);
          }
          assert.ok(kills >= 20, `${kills} kills`);
          console.log(`cycle times (s): ${cycleMs.map((ms) => (ms / 1000).toFixed(1)).join(" ")}`);
        },
      );

      await t.step("the captures: no PSRD byte used twice, nothing above a persisted watermark", async () => {
        for (const p of tcpdumps) await p.kill("SIGINT");
        for (let i = 0; i < lab.nodes.length; i++) await lab.stopNode(i);
        for (let i = 0; i < lab.hubs.length; i++) await lab.stopHub(i);
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
        for (const n of lab.nodes) {
          const store = await PsrdStore.open(lab.stateDir(n), { readOnly: true });
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
        for (const h of lab.hubs) {
          const store = await PsrdStore.open(lab.stateDir(h), { readOnly: true });
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
    });
  },
);
