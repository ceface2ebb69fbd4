/**
 * `keySource: "ska+dske"` end to end: the DSKE lab (two `twofold up` nodes, three `twofold hub`s, k = 2)
 * plus `twofold broker` with its root key in a SoftHSM2 token made by the test, in namespaces
 * (tfskd-*). The broker runs in the lab's switch namespace on an address of the bridge. Both planes
 * share TCP 51831 on each node; the aes0 gate opens only with a key from each. Rotation every 3 s,
 * maximum key age 9 s. Needs root, /dev/net/tun, iproute2, ping, wg and SoftHSM2.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, sleep, Topology, waitUntil } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { genKeyPair } from "../helpers/wg_device.ts";
import { makeSoftHsmToken, requireSoftHsm } from "../helpers/softhsm.ts";
import { Pkcs11Module } from "../../ffi/pkcs11.ts";
import { DskeLab, removeLab } from "../../src/lab/dske-lab.ts";
import { runTwofoldCli, TWOFOLD_MAIN } from "../helpers/twofold_cli.ts";

const P = "tfskd-";
const UNDERLAY = "10.243.0";
const BROKER = { name: "broker", keys: genKeyPair(), underlay: `${UNDERLAY}.20`, wgIp: "100.64.43.20" };
const KEY_LABEL = "ska-root";

/** Combined epochs a node's log reports installing, in order. */
function combinedEpochs(log: string): number[] {
  return [...log.matchAll(/ska\+dske combined with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}
/** The aes0 PSK `ns`'s device holds for the peer with public key `peer` (base64). */
async function pskOf(ns: Netns, peer: string): Promise<string> {
  const out = (await ns.exec(["wg", "show", "aes0", "preshared-keys"])).stdout;
  return out.split("\n").find((l) => l.startsWith(peer))?.split(/\s+/)[1] ?? "";
}
const count = (log: string, re: RegExp) => log.match(new RegExp(re, "g"))?.length ?? 0;

integrationTest(
  "SKA+DSKE: the gate opens only with both planes; rotations lose no ping; either plane down closes it at max age",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireSoftHsm(),
  ],
  async (t) => {
    const topo = new Topology();
    let dir: string | null = null;
    let lab: DskeLab | null = null;
    const token = await makeSoftHsmToken("twofold-skd-it", "3141-it");
    let brokerProc: Proc | null = null;
    const brokerProcs: Proc[] = [];
    try {
      const m = Pkcs11Module.open(token.module);
      try {
        const s = m.openSession(m.findSlot(token.label), true);
        s.login(new TextEncoder().encode(token.pin));
        s.importSecretKey(KEY_LABEL, crypto.getRandomValues(new Uint8Array(32)));
        s.close();
      } finally {
        m.close();
      }
      lab = await DskeLab.create(topo, {
        prefix: P,
        underlayNet: UNDERLAY,
        wgNet: "100.64.43",
        aesNet: "100.127.43",
        rotationIntervalSeconds: 3,
        maxKeyAgeSeconds: 9,
        persistentKeepalive: 5,
      }, (d) => dir = d);
      const L = lab;
      // The broker lives in the switch namespace, on an address of the bridge.
      await L.switchNs.exec(["ip", "addr", "add", `${BROKER.underlay}/24`, "dev", "br0"]);

      // Broker config and enrolment of both nodes (wg0 PSK files), then ska+dske on the node configs.
      const brokerKey = `${L.dir}/broker.key`;
      await Deno.writeTextFile(brokerKey, BROKER.keys.privateKey + "\n", { mode: 0o600 });
      await Deno.chmod(brokerKey, 0o600);
      const brokerCfg = (peers: unknown[]) => ({
        broker: {
          name: BROKER.name,
          privateKeyFile: brokerKey,
          rootKey: {
            pkcs11: {
              module: token.module,
              tokenLabel: token.label,
              keyLabel: KEY_LABEL,
              pinFile: token.pinFile,
            },
          },
        },
        wg0: { listenPort: 51820, address: `${BROKER.wgIp}/10` },
        peers,
      });
      const brokerConfig = `${L.dir}/broker.json`;
      await Deno.writeTextFile(brokerConfig, JSON.stringify(brokerCfg([])));
      const brokerPeers: unknown[] = [];
      for (const [i, n] of L.nodes.entries()) {
        const r = await runTwofoldCli([
          "broker",
          "enroll",
          n.name,
          "--public-key",
          n.keys.publicKey,
          "--wg-ip",
          n.wgIp,
          "--config",
          brokerConfig,
        ]);
        assert.equal(r.code, 0, r.stderr);
        brokerPeers.push({
          name: n.name,
          publicKey: n.keys.publicKey,
          wgIp: n.wgIp,
          endpoint: `${n.underlay}:51820`,
          wgPskFile: `${L.dir}/${n.name}.wg0.psk`,
        });
        const cfg = JSON.parse(await Deno.readTextFile(L.nodeConfigs[i]));
        for (const p of cfg.peers) if (p.keySource === "dske") p.keySource = "ska+dske";
        cfg.peers.push({
          name: BROKER.name,
          role: "broker",
          publicKey: BROKER.keys.publicKey,
          wgIp: BROKER.wgIp,
          endpoint: `${BROKER.underlay}:51820`,
          wgPskFile: `${L.dir}/${n.name}.broker-broker.wg0.psk`,
          persistentKeepalive: 5,
        });
        await Deno.writeTextFile(L.nodeConfigs[i], JSON.stringify(cfg, null, 2));
      }
      await Deno.writeTextFile(brokerConfig, JSON.stringify(brokerCfg(brokerPeers)));

      const startBroker = async () => {
        const proc = L.switchNs.spawn(
          [
            Deno.execPath(),
            "run",
            "--allow-all",
            "--quiet",
            TWOFOLD_MAIN,
            "broker",
            "--config",
            brokerConfig,
          ],
          { env: token.env },
        );
        brokerProcs.push(proc);
        const up = await waitUntil(() => proc.exited || / up: wg0 .*SKA on/.test(proc.output()), 20_000);
        assert.ok(up && !proc.exited, `broker did not start:\n${proc.output()}`);
        brokerProc = proc;
      };
      const nodeLogs = () => L.nodeProcs.map((p) => p?.output() ?? "");
      const dump = () => nodeLogs().join("\n----\n");

      await t.step("DSKE alone (broker down) agrees keys but opens nothing", async () => {
        await L.startHubs();
        await L.startNodes();
        const dskeAgreed = await waitUntil(() => nodeLogs().every((l) => /dske key-agreed/.test(l)), 30_000);
        assert.ok(dskeAgreed, dump());
        await sleep(1_000);
        for (const l of nodeLogs()) assert.doesNotMatch(l, /gate-opened/);
        assert.equal(
          (await ping(L.nodeNs[0], L.nodes[1].aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received,
          0,
        );
      });

      await t.step(
        "with the broker up both planes run over the one TCP 51831 listener and the gate opens",
        async () => {
          await startBroker();
          const opened = await waitUntil(() => nodeLogs().every((l) => /gate gate-opened/.test(l)), 30_000);
          assert.ok(opened, dump());
          // The key is installed (and the gate opens) before the planes' agreement lines are logged.
          await waitUntil(
            () => nodeLogs().every((l) => /ska key-agreed/.test(l) && /ska\+dske combined/.test(l)),
            5_000,
          );
          for (const l of nodeLogs()) {
            assert.match(l, /ska key-agreed/);
            assert.match(l, /ska\+dske combined/);
          }
          assert.ok(await waitForPing(L.nodeNs[0], L.nodes[1].aesIp, 10_000));
        },
      );

      await t.step("rotations for 30 s: no ping lost, the same combined epochs on both sides", async () => {
        const before = combinedEpochs(nodeLogs()[0]).length;
        const r = await ping(L.nodeNs[0], L.nodes[1].aesIp, { count: 150, interval: 0.2, timeoutS: 2 });
        assert.equal(r.received, r.sent, `lost ${r.sent - r.received} of ${r.sent}`);
        await sleep(1_000);
        const [ea, eb] = nodeLogs().map(combinedEpochs);
        assert.ok(ea.length - before >= 8, `only ${ea.length - before} combined keys in 30 s`);
        // Every combined epoch one node settled on, the other installed too.
        const common = ea.filter((e) => eb.includes(e));
        assert.ok(common.length >= ea.length - 3, `A ${ea.join(",")}\nB ${eb.join(",")}`);
        assert.equal(ea.at(-1), eb.at(-1), `A ${ea.join(",")}\nB ${eb.join(",")}`);
        // And the aes0 devices hold the same PSK (between two rotations).
        let same = false;
        for (let i = 0; i < 10 && !same; i++) {
          const pa = await pskOf(L.nodeNs[0], L.nodes[1].keys.publicKey);
          const pb = await pskOf(L.nodeNs[1], L.nodes[0].keys.publicKey);
          same = pa !== "" && pa !== "(none)" && pa === pb;
          if (!same) await sleep(300);
        }
        assert.ok(same, "both aes0 devices hold the same PSK");
        console.log(`  combined keys: ${ea.length - before} in 30 s; ping ${r.received}/${r.sent}`);
      });

      await t.step(
        "broker stopped → no new key, the gate closes at max age; broker back → reopens",
        async () => {
          const opened = nodeLogs().map((l) => count(l, /gate gate-opened/));
          await brokerProc!.kill("SIGTERM");
          const stoppedAt = Date.now();
          const closed = await waitUntil(() => nodeLogs().every((l) => /gate gate-closed/.test(l)), 25_000);
          assert.ok(closed, dump());
          const after = ((Date.now() - stoppedAt) / 1000).toFixed(1);
          console.log(`  broker stopped → both gates closed after ${after} s (max age 9 s)`);
          // The SKA initiator reports the broker (the responder is never offered a round).
          assert.ok(nodeLogs().some((l) => /ska broker-unreachable/.test(l)), dump());
          for (const l of nodeLogs()) assert.match(l, /ska\+dske part-too-old/);
          assert.equal(
            (await ping(L.nodeNs[0], L.nodes[1].aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received,
            0,
          );
          await startBroker();
          const reopened = await waitUntil(
            () => nodeLogs().every((l, i) => count(l, /gate gate-opened/) > opened[i]),
            30_000,
          );
          assert.ok(reopened, dump());
          assert.ok(await waitForPing(L.nodeNs[0], L.nodes[1].aesIp, 10_000));
        },
      );

      await t.step(
        "two of three hubs stopped (k = 2) → the gate closes at max age; hubs back → reopens",
        async () => {
          const closedBefore = nodeLogs().map((l) => count(l, /gate gate-closed/));
          await L.stopHub(1);
          await L.stopHub(2);
          const stoppedAt = Date.now();
          const closed = await waitUntil(
            () => nodeLogs().every((l, i) => count(l, /gate gate-closed/) > closedBefore[i]),
            25_000,
          );
          assert.ok(closed, dump());
          const after = ((Date.now() - stoppedAt) / 1000).toFixed(1);
          console.log(`  2 of 3 hubs stopped → both gates closed after ${after} s (max age 9 s)`);
          assert.equal(
            (await ping(L.nodeNs[0], L.nodes[1].aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received,
            0,
          );
          const opened = nodeLogs().map((l) => count(l, /gate gate-opened/));
          await L.startHub(1);
          await L.startHub(2);
          const reopened = await waitUntil(
            () => nodeLogs().every((l, i) => count(l, /gate gate-opened/) > opened[i]),
            30_000,
          );
          assert.ok(reopened, dump());
          assert.ok(await waitForPing(L.nodeNs[0], L.nodes[1].aesIp, 10_000));
        },
      );
    } finally {
      for (const p of brokerProcs.reverse()) await p.kill().catch(() => {});
      if (lab !== null) await lab.cleanup();
      else await removeLab(topo, [], dir);
      token.remove();
    }
  },
);
