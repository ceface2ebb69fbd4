/**
 * DSKE end to end: two `twofold up` nodes and three `twofold hub`s in namespaces (tfd-*) on one
 * bridged segment, k = 2, rotation every 3 s. aes0 opens only through DSKE; rotations lose nothing;
 * a stopped hub and a lying hub do not stop agreement (the liar is named); with every hub down past
 * the maximum key age the gate closes, and it reopens when the hubs return.
 * Needs root, /dev/net/tun, iproute2, ping and wg.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { sleep, waitUntil } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { DskeLab } from "../../src/lab/dske-lab.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import type { NodeStatus } from "../../src/admin/model.ts";

/** `dske key-agreed with <peer> epoch N` lines of a node's log, in order. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

integrationTest(
  "DSKE: 2 nodes + 3 hubs, k = 2: aes0 keys only from DSKE, rotation, hub faults",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async (t) => {
    const opts = {
      prefix: "tfd-",
      underlayNet: "10.234.0",
      wgNet: "100.64.2",
      aesNet: "100.127.2",
      k: 2,
      rotationIntervalSeconds: 3,
      logDir: Deno.env.get("TWOFOLD_TEST_LOG_DIR"),
    };
    await DskeLab.run(opts, async (lab) => {
      const nodes = await lab.startNodes();
      const hubs = lab.hubProcs;
      const [a] = lab.nodeNs;
      const B = lab.nodes[1];

      await t.step("without hubs aes0 stays closed: no key, no traffic", async () => {
        const r = await ping(a, B.aesIp, { count: 2, interval: 0.3, timeoutS: 1 });
        assert.equal(r.received, 0);
        for (const p of nodes) assert.doesNotMatch(p.output(), /gate-opened/, "no gate opens without DSKE");
        const reported = await waitUntil(
          () => nodes.some((p) => /dske (rotation-failed|hub-unreachable)/.test(p.output())),
          15_000,
          100,
        );
        assert.ok(reported, "the generator reports its failed rounds");
        assert.ok((await ping(a, B.wgIp, { count: 2, interval: 0.2, timeoutS: 2 })).received === 2);
      });

      await t.step("with the hubs up DSKE opens aes0 on both sides", async () => {
        await lab.startHubs();
        const opened = await waitUntil(
          () => nodes.every((p) => /gate gate-opened .*via dske/.test(p.output())),
          20_000,
          100,
        );
        assert.ok(
          opened,
          `both gates open through DSKE:\n${nodes.map((p) => p.output().slice(-1500)).join("\n")}`,
        );
        assert.ok(await waitForPing(a, B.aesIp, 5000), "aes0 carries traffic");
      });

      await t.step(
        "rotations every 3 s for 30 s with a ping every 10 ms: zero lost, epochs agree",
        async () => {
          const before = nodes.map((p) => agreedEpochs(p.output()).length);
          const pinger = a.spawn(["ping", "-n", "-i", "0.01", "-W", "1", B.aesIp]);
          await sleep(30_000);
          await pinger.kill("SIGINT");
          const out = pinger.output();
          const seqs = [...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
          const last = Math.max(...seqs);
          const have = new Set(seqs);
          const missing = Array.from({ length: last }, (_, i) => i + 1).filter((q) => !have.has(q));
          assert.ok(last > 1000, `pinged through the run (${last})`);
          assert.deepEqual(missing, [], "no ping lost across the rotations");
          const epochs = nodes.map((p, i) => agreedEpochs(p.output()).slice(before[i]));
          assert.ok(epochs[0].length >= 6, `rotations happened: ${epochs[0]}`);
          for (const e of epochs) {
            assert.ok(e.every((x, i) => i === 0 || x > e[i - 1]), `epochs increase: ${e}`);
          }
          const common = epochs[0].filter((x) => epochs[1].includes(x));
          assert.ok(
            common.length >= epochs[0].length - 1,
            `both sides installed the same epochs: ${epochs[0]} / ${epochs[1]}`,
          );
          console.log(
            `${epochs[0].length} rotations in 30 s, epochs ${epochs[0][0]}…${
              epochs[0].at(-1)
            }, 0/${last} pings lost`,
          );
        },
      );

      await t.step("one hub stopped: rotations continue", async () => {
        await lab.stopHub(1);
        const before = agreedEpochs(nodes[0].output()).length;
        const went = await waitUntil(() => agreedEpochs(nodes[0].output()).length >= before + 2, 15_000, 100);
        assert.ok(went, "two more keys agreed with a hub down");
        assert.ok(await waitForPing(a, B.aesIp, 3000));
      });

      await t.step("a hub altering its shares: keys still agreed, the hub named", async () => {
        await lab.startHub(1);
        await lab.stopHub(2);
        await lab.startHub(2, { TWOFOLD_TEST_FAULT: "alter-shares" });
        const liarId = (hubs[2]!.output().match(/up: id ([0-9a-f]{32})/) ?? [])[1];
        assert.ok(liarId, "the hub reports its id");
        // The log names it as the config does (hubs[2] is hub-3), not by an id prefix.
        const named = await waitUntil(
          () => nodes.some((p) => /hub-misbehaved .*hub hub-3:/.test(p.output())),
          15_000,
          100,
        );
        assert.ok(named, "the lying hub is named");
        // …and named in the node's status (the admin API), with its name, as misbehaving.
        const misbehaving = async (i: number) => {
          const client = new AdminClient({ kind: "unix", path: lab.adminSocket(i) });
          try {
            const st = await client.json<NodeStatus>("GET", "/v1/status");
            return st.dske?.hubs.filter((h) => h.misbehaving).map((h) => h.hubId) ?? [];
          } finally {
            client.close();
          }
        };
        const inStatus = [...await misbehaving(0), ...await misbehaving(1)];
        assert.ok(inStatus.includes(liarId), `status names the lying hub: ${inStatus}`);
        assert.ok(inStatus.every((id) => id === liarId), `only the lying hub is named: ${inStatus}`);
        const before = agreedEpochs(nodes[0].output()).length;
        assert.ok(await waitUntil(() => agreedEpochs(nodes[0].output()).length >= before + 1, 10_000, 100));
        assert.ok(await waitForPing(a, B.aesIp, 3000));
        await lab.stopHub(2);
        await lab.startHub(2);
      });

      await t.step(
        "all hubs down past the maximum key age: the gate closes, and reopens with the hubs",
        async () => {
          for (let i = 0; i < lab.hubs.length; i++) await lab.stopHub(i);
          const mark = nodes[0].output().length;
          const closed = await waitUntil(
            () => /gate gate-closed .*maximum age/.test(nodes[0].output().slice(mark)),
            15_000,
            100,
          );
          assert.ok(closed, "the gate closes after 9 s without a new key");
          assert.equal((await ping(a, B.aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received, 0);
          await lab.startHubs();
          const reopened = await waitUntil(
            () => /gate gate-opened .*via dske/.test(nodes[0].output().slice(mark)),
            20_000,
            100,
          );
          assert.ok(reopened, "the gate reopens when the hubs return");
          assert.ok(await waitForPing(a, B.aesIp, 5000));
        },
      );
    });
  },
);
