/**
 * DSKE when a hub or the network misbehaves (issue 12), end to end: two `twofold up` nodes and three
 * `twofold hub`s in namespaces (tfv-*), k = 2, rotation every 3 s, maximum key age 9 s.
 * - a hub that injects forged KEY_ABORT / KEY_OFFER frames (old unauthenticated layout and a tagged one)
 *   for the key ids it sees: the nodes drop and count them, nothing closes, rotations go on;
 * - lost KEY_RESULTs (the recoverer drops every second one): the two nodes' installed epochs never
 *   differ for a rotation interval or longer;
 * - k = 2 hubs colluding on a consistent forged key: `key-confirmation-failed` naming them, nothing
 *   installed, the gate stays on the previous key and closes at the maximum age, the honest hub is never
 *   named.
 * Fault injection: the test-only TWOFOLD_TEST_FAULT switch (docs/dske.md). Needs root, /dev/net/tun,
 * iproute2 and ping.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { sleep, waitUntil } from "../helpers/netns.ts";
import { waitForPing } from "../helpers/measure.ts";
import { DskeLab } from "../../src/lab/dske-lab.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import type { AesPeerStatus, NodeStatus } from "../../src/admin/model.ts";

const ROTATION_S = 3;

/** `dske key-agreed with <peer> epoch N` lines of a node's log, in order. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

integrationTest(
  "DSKE under attack: forged node frames, lost KEY_RESULTs, k colluding hubs",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping")],
  async (t) => {
    const opts = {
      prefix: "tfv-",
      underlayNet: "10.239.0",
      wgNet: "100.64.9",
      aesNet: "100.127.9",
      k: 2,
      rotationIntervalSeconds: ROTATION_S,
      persistentKeepalive: 1,
      logDir: Deno.env.get("TWOFOLD_TEST_LOG_DIR"),
    };
    await DskeLab.run(opts, async (lab) => {
      const status = async (i: number): Promise<NodeStatus> => {
        const client = new AdminClient({ kind: "unix", path: lab.adminSocket(i) });
        try {
          return await client.json<NodeStatus>("GET", "/v1/status");
        } finally {
          client.close();
        }
      };
      const aesOf = (s: NodeStatus): AesPeerStatus => s.peers.find((p) => p.aes0?.dske)!.aes0!;
      /** Whether node `i`'s gate is open (false while its admin socket is not up yet, e.g. just restarted). */
      const gateOpen = (i: number) => status(i).then((s) => aesOf(s).gate.state === "open", () => false);
      const [a] = lab.nodeNs;
      const B = lab.nodes[1];
      const out = (i: number) => lab.nodeProcs[i]!.output();

      await lab.startNodes();
      await lab.startHubs();
      assert.ok(
        await waitUntil(() => [0, 1].every((i) => /gate gate-opened .*via dske/.test(out(i))), 30_000, 100),
        "both gates open through DSKE",
      );
      const gen = aesOf(await status(0)).dske!.role === "generator" ? 0 : 1;
      const rec = 1 - gen;

      await t.step(
        "a hub injecting forged KEY_ABORT / KEY_OFFER: dropped, counted, never acted on",
        async () => {
          await lab.stopHub(0);
          await lab.startHub(0, { TWOFOLD_TEST_FAULT: "inject-peer-frames" });
          const marks = [out(0).length, out(1).length];
          const before = agreedEpochs(out(rec)).length;
          assert.ok(
            await waitUntil(async () => (await status(rec)).dske!.rejectedPeerFrames >= 6, 20_000, 250),
            "the recoverer counts the forged frames",
          );
          assert.ok(
            await waitUntil(() => agreedEpochs(out(rec)).length >= before + 3, 15_000, 100),
            "rotations go on",
          );
          for (const i of [0, 1]) {
            const since = out(i).slice(marks[i]);
            assert.doesNotMatch(since, /psrd-exhausted|gate-closed/, "no forged frame closed a gate");
          }
          assert.match(
            out(rec).slice(marks[rec]),
            /dske peer-frame-rejected: dropped \d+ node-to-node frame/,
          );
          const st = await status(rec);
          assert.equal(aesOf(st).gate.state, "open");
          assert.ok(st.dske!.rejectedPeerFrames > 0);
          assert.ok(await waitForPing(a, B.aesIp, 3000), "aes0 carries traffic");
          console.log(`recoverer dropped ${st.dske!.rejectedPeerFrames} forged frames; gate open`);
          await lab.stopHub(0);
          await lab.startHub(0);
        },
      );

      await t.step(
        "lost KEY_RESULTs: the installed epochs never differ for a rotation interval",
        async () => {
          await lab.restartNode(rec, "SIGTERM", { TWOFOLD_TEST_FAULT: "drop-key-result" });
          assert.ok(
            await waitUntil(() => gateOpen(rec), 20_000, 200),
            "the restarted recoverer gets a key",
          );
          const markGen = out(gen).length;
          let mismatchSince: number | null = null;
          let longest = 0;
          let samples = 0;
          const end = Date.now() + 24_000;
          while (Date.now() < end) {
            const [g, r] = [aesOf(await status(gen)), aesOf(await status(rec))];
            const now = Date.now();
            samples++;
            if (g.keyEpoch !== r.keyEpoch) {
              mismatchSince ??= now;
              longest = Math.max(longest, now - mismatchSince);
            } else {
              mismatchSince = null;
            }
            await sleep(100);
          }
          const lost = (out(gen).slice(markGen).match(/did not complete the exchange/g) ?? []).length;
          console.log(`${samples} samples, ${lost} KEY_RESULTs lost, longest epoch mismatch ${longest} ms`);
          assert.ok(lost >= 2, `KEY_RESULTs were lost (${lost})`);
          assert.ok(
            longest < ROTATION_S * 1000,
            `no mismatch as long as a rotation interval (${longest} ms)`,
          );
          await lab.restartNode(rec);
          assert.ok(await waitUntil(() => gateOpen(rec), 20_000, 200));
        },
      );

      await t.step(
        "k colluding hubs: key-confirmation-failed, nothing installed, no honest hub named",
        async () => {
          const ids = lab.hubProcs.map((p) => (p!.output().match(/up: id ([0-9a-f]{32})/) ?? [])[1]);
          await lab.stopHub(0);
          await lab.stopHub(1);
          const marks = [out(0).length, out(1).length];
          await lab.startHub(0, { TWOFOLD_TEST_FAULT: "collude" });
          await lab.startHub(1, { TWOFOLD_TEST_FAULT: "collude" });
          const failedAt = await waitUntil(
            () => /dske key-confirmation-failed/.test(out(rec).slice(marks[rec])),
            15_000,
            100,
          );
          assert.ok(failedAt, "the recoverer detects the forged key");
          const atFailure = aesOf(await status(rec)).keyEpoch;
          const after = [out(0).length, out(1).length];
          const line = out(rec).slice(marks[rec]).match(/dske key-confirmation-failed.*/)![0];
          assert.match(
            line,
            new RegExp(
              `${ids[0].slice(0, 8)}.*${ids[1].slice(0, 8)}|${ids[1].slice(0, 8)}.*${ids[0].slice(0, 8)}`,
            ),
          );
          // The gate stays on the previous key, then closes at the maximum age (9 s).
          const closed = await waitUntil(
            () => /gate gate-closed .*maximum age/.test(out(rec).slice(after[rec])),
            20_000,
            100,
          );
          assert.ok(closed, "the gate closes at the maximum key age");
          for (const i of [0, 1]) {
            assert.deepEqual(agreedEpochs(out(i).slice(after[i])), [], "nothing installed");
            assert.doesNotMatch(
              out(i).slice(marks[i]),
              new RegExp(`hub-misbehaved .*hub ${ids[2].slice(0, 8)}`),
            );
          }
          const st = await status(rec);
          assert.ok(st.dske!.hubs.every((h) => !h.misbehaving), "no hub named misbehaving");
          assert.match(aesOf(st).dske!.problem ?? "", /^key confirmation failed for epoch \d+/);
          assert.equal(aesOf(st).gate.state, "closed");
          console.log(`key confirmation failed at epoch ${atFailure}; gate closed at the maximum age`);
          await lab.stopHub(0);
          await lab.stopHub(1);
          await lab.startHub(0);
          await lab.startHub(1);
          assert.ok(
            await waitUntil(
              () => /gate gate-opened .*via dske/.test(out(rec).slice(after[rec])),
              20_000,
              100,
            ),
            "honest hubs again: the gate reopens",
          );
        },
      );
    });
  },
);
