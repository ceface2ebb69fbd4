/**
 * PSRD exhaustion fails closed (docs/design.md §4 invariant 7): two `twofold up` nodes and three
 * `twofold hub`s in namespaces (tfx-*), k = 2, rotation every 1 s, with tiny PSRD blocks (1 KiB per
 * direction: 8 generator rounds). The gate opens and rotates; once the PSRD is used up both nodes
 * report `psrd-exhausted` and close the aes0 gate at once (the maximum key age is set far away, so only
 * exhaustion can close it), aes0 stops carrying traffic while wg0 still works, nothing more is sent on
 * the used-up blocks (no wrap), and a restarted node stays closed. Needs root, /dev/net/tun, iproute2, ping.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Proc, sleep, waitUntil } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { DskeLab } from "../../src/lab/dske-lab.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { decodeBase64 } from "../../src/encoding.ts";

/** Per direction and (node, hub) pair: 8 generator rounds of SHARE_PUT 96 B + SHARE_DELETE 32 B. */
const PSRD_BYTES = 1024;
const GENERATOR_ROUNDS = PSRD_BYTES / 128;

function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

integrationTest(
  "DSKE PSRD exhaustion: the node reports it and the aes0 gate fails closed at once",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping")],
  async (t) => {
    const opts = {
      prefix: "tfx-",
      underlayNet: "10.237.0",
      wgNet: "100.64.5",
      aesNet: "100.127.5",
      k: 2,
      rotationIntervalSeconds: 1,
      maxKeyAgeSeconds: 600, // only exhaustion can close the gate in this test
      psrdBytes: PSRD_BYTES,
      logDir: Deno.env.get("TWOFOLD_TEST_LOG_DIR"),
    };
    await DskeLab.run(opts, async (lab) => {
      const [A, B] = lab.nodes;
      const gen = compare(decodeBase64(A.keys.publicKey), decodeBase64(B.keys.publicKey)) < 0 ? 0 : 1;
      await t.step(
        "a node whose PSRD was made for another node's key refuses to start (exit 2)",
        async () => {
          const stateDir = `${lab.dir}/state-foreign`;
          const store = await PsrdStore.open(stateDir);
          // node b's key, in node a's state dir
          for (let i = 0; i < lab.hubs.length; i++) store.ingest(lab.psrdPair(i, B.keys.publicKey).client);
          store.close();
          const cfg = JSON.parse(await Deno.readTextFile(lab.nodeConfigs[0]));
          cfg.node.stateDir = stateDir;
          const path = `${lab.dir}/foreign.json`;
          await Deno.writeTextFile(path, JSON.stringify(cfg));
          const main = new URL("../../main.ts", import.meta.url).pathname;
          const r = await lab.nodeNs[0].exec([
            Deno.execPath(),
            "run",
            "-A",
            "--quiet",
            main,
            "up",
            "--config",
            path,
          ], {
            check: false,
          });
          assert.equal(r.code, 2, r.stderr);
          // Preflight refuses it before wg0/aes0 come up: one line, nothing logged before it.
          const lines = r.stderr.trim().split("\n");
          assert.equal(lines.length, 1, r.stderr);
          const line = lines[0];
          assert.match(line, /PSRD block [0-9a-f]{32} for hub hub-\d .* was made for another node/);
          assert.ok(line.includes(A.keys.publicKey), "names this node's key");
        },
      );

      await lab.startHubs();
      const nodes = await lab.startNodes();
      const [a] = lab.nodeNs;

      await t.step("the gate opens through DSKE and aes0 carries traffic", async () => {
        assert.ok(
          await waitUntil(
            () => nodes.every((p) => /gate gate-opened .*via dske/.test(p.output())),
            20_000,
            50,
          ),
          `both gates open:\n${nodes.map((p) => p.output().slice(-1500)).join("\n")}`,
        );
        assert.ok(await waitForPing(a, B.aesIp, 5_000), "aes0 carries traffic");
      });

      await t.step(
        "PSRD used up: psrd-exhausted reported, both gates closed at once, naming PSRD",
        async () => {
          const closed = (p: Proc) => /aes0 gate gate-closed .*PSRD exhausted/.test(p.output());
          assert.ok(
            await waitUntil(() => nodes.every(closed), 30_000, 50),
            `both gates closed for PSRD exhaustion:\n${nodes.map((p) => p.output().slice(-2500)).join("\n")}`,
          );
          for (const p of nodes) {
            assert.match(p.output(), /dske psrd-exhausted .*PSRD exhausted/);
            assert.doesNotMatch(p.output(), /maximum age/, "closed by exhaustion, not by the key age");
          }
          const epochs = nodes.map((p) => agreedEpochs(p.output()));
          assert.equal(
            epochs[gen].length,
            GENERATOR_ROUNDS,
            `exactly the rounds the PSRD pays for: ${epochs[gen]}`,
          );
          assert.deepEqual(epochs[1 - gen], epochs[gen], "both sides agreed the same epochs");
          console.log(`${epochs[gen].length} keys agreed, then the gates closed for PSRD exhaustion`);
        },
      );

      await t.step("aes0 carries nothing any more; wg0 still does", async () => {
        const r = await ping(a, B.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
        assert.equal(r.received, 0, "no ping through aes0");
        assert.equal((await ping(a, B.wgIp, { count: 2, interval: 0.2, timeoutS: 2 })).received, 2);
      });

      await t.step("nothing more is sent on the used-up blocks (never wraps)", async () => {
        const snapshot = async () => {
          const store = await PsrdStore.open(lab.stateDir(lab.nodes[gen]), { readOnly: true });
          const blocks = store.blocks();
          store.close();
          return blocks.map((b) => ({ tx: b.txNext, rx: b.rxNext, left: b.txRemaining }));
        };
        const before = await snapshot();
        for (const b of before) {
          assert.equal(b.left, 0, "the generator's send regions are used to the last byte");
        }
        await sleep(3_000); // three rotation intervals
        assert.deepEqual(await snapshot(), before);
      });

      await t.step("a restarted node stays closed and says why", async () => {
        const p = await lab.restartNode(gen, "SIGTERM");
        nodes[gen] = p;
        assert.ok(
          await waitUntil(() => /dske psrd-exhausted .*PSRD exhausted/.test(p.output()), 10_000, 50),
          `the restarted node reports the exhaustion:\n${p.output().slice(-2000)}`,
        );
        assert.doesNotMatch(p.output(), /gate-opened/);
        assert.equal((await ping(a, B.aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received, 0);
      });
    });
  },
);
