/**
 * SKA end to end: two `twofold up` nodes (keySource "ska"), a third node that is only a broker peer,
 * and `twofold broker` with its root key in a SoftHSM2 token made by the test (key imported through
 * PKCS#11 as sensitive and non-extractable), in namespaces (tfska-*) on one bridged segment. Rotation
 * every 3 s, maximum key age 9 s. Needs root, /dev/net/tun, iproute2, ping, wg and SoftHSM2.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { bridgeSegment, type Netns, type Proc, sleep, Topology, waitUntil } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair } from "../helpers/wg_device.ts";
import { makeSoftHsmToken, requireSoftHsm } from "../helpers/softhsm.ts";
import { CKR, Pkcs11Module } from "../../ffi/pkcs11.ts";
import { SkaStatus } from "../../src/ska/frames.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const AGENT = new URL("./ska_request_agent.ts", import.meta.url).pathname;
const P = "tfska-";
const node = (s: string, i: number): LabNode => ({
  name: `node-${s}`,
  keys: genKeyPair(),
  underlay: `10.242.0.${i}`,
  wgIp: `100.64.42.${i}`,
  aesIp: `100.127.42.${i}`,
});
const A = node("a", 1);
const B = node("b", 2);
const C = node("c", 3);
const BROKER = { name: "broker", keys: genKeyPair(), underlay: "10.242.0.10", wgIp: "100.64.42.10" };
const KEY_LABEL = "ska-root";

/** `ska key-agreed with <peer> epoch N` epochs of a node's log, in order. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/ska key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

async function twofold(ns: Netns | null, args: string[], env: Record<string, string> = {}) {
  const cmd = [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
  if (ns) return await ns.exec(cmd, { env, check: false });
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), env, stdout: "piped", stderr: "piped" })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function pskOf(ns: Netns, peer: LabNode): Promise<string> {
  const out = (await ns.exec(["wg", "show", "aes0", "preshared-keys"])).stdout;
  return out.split("\n").find((l) => l.startsWith(peer.keys.publicKey))?.split(/\s+/)[1] ?? "";
}

integrationTest(
  "SKA: 2 nodes + broker with the root key in SoftHSM2: gate opens via SKA, rotates, refuses a third node, fails closed",
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
    const dir = await Deno.makeTempDir({ prefix: P });
    await Deno.chmod(dir, 0o700);
    const token = await makeSoftHsmToken("twofold-ska-it", "2718-it");
    const procs: Proc[] = [];
    try {
      // The root key: imported through PKCS#11 as a sensitive, non-extractable generic secret.
      const m = Pkcs11Module.open(token.module);
      try {
        const s = m.openSession(m.findSlot(token.label), true);
        s.login(new TextEncoder().encode(token.pin));
        const key = s.importSecretKey(KEY_LABEL, crypto.getRandomValues(new Uint8Array(32)));
        assert.deepEqual(s.protection(key), { sensitive: true, extractable: false });
        const read = s.tryReadValue(key);
        assert.equal(read.revealed, false);
        assert.equal(read.rv, CKR.ATTRIBUTE_SENSITIVE);
        s.close();
      } finally {
        m.close();
      }

      const sw = await topo.netns(`${P}sw`, { replaceExisting: true });
      const ns: Record<string, Netns> = {};
      for (const s of ["a", "b", "c", "k"]) ns[s] = await topo.netns(`${P}${s}`, { replaceExisting: true });
      await bridgeSegment(sw, [
        { ns: ns.a, ifname: `${P}va`, cidr: `${A.underlay}/24` },
        { ns: ns.b, ifname: `${P}vb`, cidr: `${B.underlay}/24` },
        { ns: ns.c, ifname: `${P}vc`, cidr: `${C.underlay}/24` },
        { ns: ns.k, ifname: `${P}vk`, cidr: `${BROKER.underlay}/24` },
      ]);

      // Broker config, then one enrolment per node (wg0 PSK files, 0600), then the full config.
      const brokerKey = `${dir}/broker.key`;
      await Deno.writeTextFile(brokerKey, BROKER.keys.privateKey + "\n", { mode: 0o600 });
      await Deno.chmod(brokerKey, 0o600);
      const brokerCfg = (peers: unknown[], pinFile = token.pinFile, keyLabel = KEY_LABEL) => ({
        broker: {
          name: BROKER.name,
          privateKeyFile: brokerKey,
          rootKey: { pkcs11: { module: token.module, tokenLabel: token.label, keyLabel, pinFile } },
        },
        wg0: { listenPort: 51820, address: `${BROKER.wgIp}/10` },
        peers,
      });
      const brokerConfig = `${dir}/broker.json`;
      await Deno.writeTextFile(brokerConfig, JSON.stringify(brokerCfg([])));
      const brokerPeers: unknown[] = [];
      const nodePsk: Record<string, string> = {};
      for (const n of [A, B, C]) {
        const r = await twofold(null, [
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
        assert.match(r.stdout, /"role":"broker"/);
        const copy = `${dir}/${n.name}.broker-broker.wg0.psk`;
        assert.equal((await Deno.stat(copy)).mode! & 0o777, 0o600);
        assert.equal((await Deno.stat(`${dir}/${n.name}.wg0.psk`)).mode! & 0o777, 0o600);
        nodePsk[n.name] = copy;
        brokerPeers.push({
          name: n.name,
          publicKey: n.keys.publicKey,
          wgIp: n.wgIp,
          endpoint: `${n.underlay}:51820`,
          wgPskFile: `${dir}/${n.name}.wg0.psk`,
        });
      }
      const again = await twofold(null, [
        "broker",
        "enroll",
        A.name,
        "--public-key",
        A.keys.publicKey,
        "--wg-ip",
        A.wgIp,
        "--config",
        brokerConfig,
      ]);
      assert.equal(again.code, 2, "enrol never overwrites a PSK file");
      await Deno.writeTextFile(brokerConfig, JSON.stringify(brokerCfg(brokerPeers)));

      const brokerEntry = (n: LabNode) => ({
        name: BROKER.name,
        role: "broker",
        publicKey: BROKER.keys.publicKey,
        wgIp: BROKER.wgIp,
        endpoint: `${BROKER.underlay}:51820`,
        wgPskFile: nodePsk[n.name],
        persistentKeepalive: 5,
      });
      const configs: Record<string, string> = {};
      for (const [n, peers] of [[A, [B]], [B, [A]], [C, []]] as const) {
        const path = await writeNodeConfig(dir, n, [...peers], {
          rotationIntervalSeconds: 3,
          maxKeyAgeSeconds: 9,
          extraPeers: [brokerEntry(n)],
        });
        const cfg = JSON.parse(await Deno.readTextFile(path));
        for (const p of cfg.peers) if (p.role !== "broker") p.keySource = "ska";
        await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
        configs[n.name] = path;
      }

      let brokerProc: Proc | null = null;
      const startBroker = async () => {
        const proc = ns.k.spawn([
          Deno.execPath(),
          "run",
          "--allow-all",
          "--quiet",
          MAIN,
          "broker",
          "--config",
          brokerConfig,
        ], {
          env: token.env,
        });
        procs.push(proc);
        const up = await waitUntil(() => proc.exited || / up: wg0 .*SKA on/.test(proc.output()), 20_000);
        assert.ok(up && !proc.exited, `broker did not start:\n${proc.output()}`);
        brokerProc = proc;
        return proc;
      };

      await t.step("a wrong PIN or a missing key label stops the broker at start with one line", async () => {
        const badPin = `${dir}/bad.pin`;
        await Deno.writeTextFile(badPin, "0000\n", { mode: 0o600 });
        await Deno.chmod(badPin, 0o600);
        for (
          const [cfg, re] of [
            [brokerCfg(brokerPeers, badPin), /C_Login: CKR_PIN_INCORRECT/],
            [brokerCfg(brokerPeers, token.pinFile, "no-such-key"), /no secret key labelled "no-such-key"/],
          ] as const
        ) {
          const path = `${dir}/broker-bad.json`;
          await Deno.writeTextFile(path, JSON.stringify(cfg));
          const r = await twofold(ns.k, ["broker", "--config", path], token.env);
          assert.equal(r.code, 2);
          assert.match(r.stderr, re);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
          assert.ok(!r.stderr.includes(token.pin));
        }
      });

      const nodeProcs: Proc[] = [];
      await t.step(
        "without the broker aes0 stays closed and the nodes report broker-unreachable",
        async () => {
          for (const [n, s] of [[A, "a"], [B, "b"]] as const) {
            const p = await startTwofoldUp(ns[s], configs[n.name]);
            procs.push(p);
            nodeProcs.push(p);
          }
          const reported = await waitUntil(
            () => nodeProcs.some((p) => /ska broker-unreachable/.test(p.output())),
            15_000,
          );
          assert.ok(reported, nodeProcs.map((p) => p.output()).join("\n"));
          assert.equal((await ping(ns.a, B.aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received, 0);
          for (const p of nodeProcs) assert.doesNotMatch(p.output(), /gate-opened/);
        },
      );

      await t.step("with the broker up SKA opens aes0 on both sides", async () => {
        await startBroker();
        const opened = await waitUntil(
          () => nodeProcs.every((p) => /gate gate-opened/.test(p.output())),
          30_000,
        );
        assert.ok(opened, nodeProcs.map((p) => p.output()).join("\n"));
        assert.ok(await waitForPing(ns.a, B.aesIp, 10_000));
      });

      await t.step(
        "rotations every 3 s: no ping lost, same epochs and the same PSK on both sides",
        async () => {
          const before = agreedEpochs(nodeProcs[0].output()).length;
          const r = await ping(ns.a, B.aesIp, { count: 150, interval: 0.2, timeoutS: 2 });
          assert.equal(r.received, r.sent, `lost ${r.sent - r.received} of ${r.sent}`);
          const ea = agreedEpochs(nodeProcs[0].output());
          const eb = agreedEpochs(nodeProcs[1].output());
          assert.ok(ea.length - before >= 8, `only ${ea.length - before} rotations in 30 s`);
          const common = Math.min(ea.length, eb.length);
          assert.deepEqual(ea.slice(0, common - 1), eb.slice(0, common - 1));
          let same = false;
          for (let i = 0; i < 10 && !same; i++) {
            const [pa, pb] = [await pskOf(ns.a, B), await pskOf(ns.b, A)];
            same = pa !== "" && pa !== "(none)" && pa === pb;
            if (!same) await sleep(300);
          }
          assert.ok(same, "both aes0 devices hold the same PSK");
          console.log(`  rotations: ${ea.length - before} in 30 s; ping ${r.received}/${r.sent}`);
        },
      );

      await t.step(
        "twofold status shows the broker reachable and the last intermediate epoch per peer",
        async () => {
          const r = await twofold(null, ["status", "--json", "--admin", `unix:${dir}/${A.name}.admin.sock`]);
          assert.equal(r.code, 0, r.stderr);
          const status = JSON.parse(r.stdout);
          assert.equal(status.ska.broker, BROKER.name);
          assert.equal(status.ska.brokerReachable, true);
          const peer = status.peers.find((p: { name: string }) => p.name === B.name);
          assert.equal(peer.aes0.keySource, "ska");
          assert.ok(peer.aes0.ska.lastIntermediateEpoch >= peer.aes0.ska.lastEpoch);
          assert.ok(peer.aes0.ska.rotationsOk >= 8);
          assert.equal(status.peers.find((p: { name: string }) => p.name === BROKER.name).role, "broker");
          assert.equal(
            status.peers.find((p: { name: string }) => p.name === BROKER.name).wg0.psk.source,
            "static",
          );
          const text = await twofold(null, ["status", "--admin", `unix:${dir}/${A.name}.admin.sock`]);
          assert.match(text.stdout, /SKA: broker broker reachable/);
        },
      );

      await t.step("a third node asking for the A–B intermediate is refused, without key bytes", async () => {
        const pc = await startTwofoldUp(ns.c, configs[C.name]);
        procs.push(pc);
        let out = "";
        const answered = await waitUntil(
          async () => {
            const r = await ns.c.exec([
              Deno.execPath(),
              "run",
              "--allow-all",
              "--quiet",
              AGENT,
              BROKER.wgIp,
              A.keys.publicKey,
              B.keys.publicKey,
              "7",
            ], { check: false });
            out = r.stdout.trim();
            return r.code === 0 && out.startsWith("{");
          },
          20_000,
          500,
        );
        assert.ok(answered, out);
        assert.deepEqual(JSON.parse(out), { status: SkaStatus.PAIR_REFUSED, keyBytes: false });
        assert.ok(
          await waitUntil(() => /broker refused node-c.*not part of/.test(brokerProc!.output()), 5_000),
        );
      });

      await t.step(
        "broker stopped → gates close at the maximum key age; broker back → they reopen",
        async () => {
          await brokerProc!.kill("SIGTERM");
          const closed = await waitUntil(
            () => nodeProcs.every((p) => /gate gate-closed/.test(p.output())),
            25_000,
          );
          assert.ok(closed, nodeProcs.map((p) => p.output()).join("\n"));
          assert.equal((await ping(ns.a, B.aesIp, { count: 2, interval: 0.3, timeoutS: 1 })).received, 0);
          const opened = nodeProcs.map((p) => p.output().match(/gate gate-opened/g)!.length);
          await startBroker();
          const reopened = await waitUntil(
            () => nodeProcs.every((p, i) => p.output().match(/gate gate-opened/g)!.length > opened[i]),
            30_000,
          );
          assert.ok(reopened, nodeProcs.map((p) => p.output()).join("\n"));
          assert.ok(await waitForPing(ns.a, B.aesIp, 10_000));
        },
      );
    } finally {
      for (const p of procs.reverse()) await p.kill().catch(() => {});
      await topo.cleanup();
      token.remove();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
