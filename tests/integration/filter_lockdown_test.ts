/**
 * The packet filter on real nodes (issue 13), in namespaces flk-a, flk-b (twofold edge nodes, AES
 * peers of each other) and flk-c (Debian wireguard-go: an AES-exempt wg0 peer of node-b), joined by a
 * bridge in flk-sw. node-b has access policies: node-c may reach node-b on every TCP port but 22 and
 * by ICMP; node-a may reach node-b on aes0 on TCP 8080 and UDP 5353 only.
 * Checks: wg0 between AES peers is locked down (drops counted as `filterLockdown`), aes0 carries what
 * the policy accepts and nothing else (counted as `filterPolicy` on aes0), a lockdown change takes
 * effect at once (measured), replies to our own connections flow, unsolicited UDP is dropped, and an
 * AES-exempt peer gets the policy on wg0. Needs root, /dev/net/tun, iproute2, wg and wireguard-go.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { bridgeSegment, type Netns, type Proc, Topology, waitUntil } from "../helpers/netns.ts";
import { type LabNode, labNodeAt, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey, startWireguardGo } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const AGENT = new URL("./filter_probe_agent.ts", import.meta.url).pathname;

const A: LabNode = labNodeAt("node-a", 1);
const B: LabNode = labNodeAt("node-b", 2);
const C = { name: "node-c", keys: genKeyPair(), underlay: "10.233.0.3", wgIp: "100.64.0.3" };

/** Ports: a service on node-b (8080), one no rule opens (9090), ssh (22), a UDP echo (5353, 7070). */
const SERVICE = 8080, CLOSED = 9090, SSH = 22, UDP_SERVICE = 5353, UDP_CLOSED = 7070;
const PROBE_TIMEOUT_MS = 1500;

function agent(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", AGENT, ...args];
}

async function probe(ns: Netns, args: string[]): Promise<{ ok: boolean; at?: number }> {
  const r = await ns.exec(agent(args), { check: false });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  assert.ok(line.startsWith("{"), `probe ${args.join(" ")} printed nothing: ${r.stderr}`);
  return JSON.parse(line);
}

async function serve(ns: Netns, ports: number[]): Promise<Proc> {
  const proc = ns.spawn(agent(["serve", ...ports.map(String)]));
  assert.ok(await waitUntil(() => proc.exited || proc.output().includes('"ready"'), 15_000), "agent up");
  assert.ok(!proc.exited, proc.output());
  return proc;
}

/** `twofold_drops_total{layer,reason}` on a node's /metrics (over its unix admin socket). */
async function drops(socket: string, layer: string, reason: string): Promise<number> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const text = await (await fetch("http://localhost/metrics", { client })).text();
    const m = text.match(
      new RegExp(`^twofold_drops_total\\{layer="${layer}",reason="${reason}"\\} (\\d+)`, "m"),
    );
    assert.ok(m, `twofold_drops_total{layer="${layer}",reason="${reason}"} is on /metrics`);
    return Number(m[1]);
  } finally {
    client.close();
  }
}

integrationTest(
  "packet filter: wg0 lockdown between AES peers, policies on aes0 and for AES-exempt peers, replies",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("wg"), requireBinary("wireguard-go")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "flk-" });
    try {
      const sw = await topo.netns("flk-sw", { replaceExisting: true });
      const a = await topo.netns("flk-a", { replaceExisting: true });
      const b = await topo.netns("flk-b", { replaceExisting: true });
      const c = await topo.netns("flk-c", { replaceExisting: true });
      await bridgeSegment(sw, [
        { ns: a, ifname: "flk-va", cidr: `${A.underlay}/24` },
        { ns: b, ifname: "flk-vb", cidr: `${B.underlay}/24` },
        { ns: c, ifname: "flk-vc", cidr: `${C.underlay}/24` },
      ]);
      const cfgA = await writeNodeConfig(dir, A, [B]);
      const cfgB = await writeNodeConfig(dir, B, [A], {
        extraPeers: [{
          name: C.name,
          publicKey: C.keys.publicKey,
          wgIp: C.wgIp,
          endpoint: `${C.underlay}:51820`,
        }],
      });
      const raw = JSON.parse(await Deno.readTextFile(cfgB));
      raw.policies = {
        groups: { exempt: [C.name], edges: [A.name] },
        rules: [
          { from: "exempt", to: B.name, proto: "tcp", ports: ["1-21", "23-65535"] },
          { from: "exempt", to: B.name, proto: "icmp" },
          { from: "edges", to: B.name, proto: "tcp", ports: [String(SERVICE)] },
          { from: "edges", to: B.name, proto: "udp", ports: [String(UDP_SERVICE)] },
          { from: "edges", to: B.name, proto: "icmp" },
        ],
      };
      await Deno.writeTextFile(cfgB, JSON.stringify(raw, null, 2));
      await startTwofoldUp(a, cfgA);
      await startTwofoldUp(b, cfgB);
      await startWireguardGo(c, "wg0", {
        privateKey: C.keys.privateKey,
        listenPort: 51820,
        address: `${C.wgIp}/10`,
        peers: [{
          publicKey: B.keys.publicKey,
          allowedIps: [`${B.wgIp}/32`],
          endpoint: `${B.underlay}:51820`,
        }],
      });
      const psk = `${dir}/a-b.psk`;
      await Deno.writeTextFile(psk, genPresharedKey() + "\n", { mode: 0o600 });
      await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", psk]);
      await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", psk]);
      const sockA = `${dir}/${A.name}.admin.sock`;
      /** `twofold lockdown ARGS` against node-b's admin API. */
      const lockdown = (ns: Netns, args: string[]) =>
        ns.exec([
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          MAIN,
          "lockdown",
          ...args,
          "--admin",
          sockB,
          "--token-file",
          tokenB,
        ], {
          check: false,
        });
      const sockB = `${dir}/${B.name}.admin.sock`;
      /**
       * `twofold trace --json` on node-b (node-a with `onA`): the verdict of the first traced layer,
       * compared by the steps with what the packets did.
       */
      const trace = async (args: string[], onA = false) => {
        const [ns, sock, token] = onA ? [a, sockA, `${dir}/state-${A.name}/admin.token`] : [b, sockB, tokenB];
        const r = await ns.exec(
          [
            Deno.execPath(),
            "run",
            "-A",
            "--quiet",
            MAIN,
            "trace",
            ...args,
            "--json",
            "--admin",
            sock,
            "--token-file",
            token,
          ],
          { check: false },
        );
        assert.equal(r.code, 0, r.stderr);
        const layer = JSON.parse(r.stdout).layers[0];
        return { layer: layer.layer as string, ...layer.verdict } as {
          layer: string;
          accept: boolean;
          reason: string | null;
          match: string | null;
          rule: string | null;
        };
      };
      const tokenB = `${dir}/state-${B.name}/admin.token`;
      await serve(b, [SERVICE, CLOSED, SSH, UDP_SERVICE]);
      await serve(a, [UDP_CLOSED]);
      assert.ok(
        await waitUntil(
          async () => (await ping(a, B.aesIp, { count: 1, timeoutS: 1 })).received === 1,
          15_000,
        ),
        "aes0 between node-a and node-b comes up",
      );

      await t.step("AES peers: wg0 IP locked down, AES IP as the policy says, ICMP on wg0", async () => {
        const before = await drops(sockB, "wg0", "filterLockdown");
        assert.equal((await probe(a, ["tcp", B.wgIp, String(SERVICE), String(PROBE_TIMEOUT_MS)])).ok, false);
        const after = await drops(sockB, "wg0", "filterLockdown");
        assert.ok(after > before, `the SYN to the wg0 IP is counted as lockdown (${before} → ${after})`);
        assert.equal((await probe(a, ["tcp", B.aesIp, String(SERVICE), String(PROBE_TIMEOUT_MS)])).ok, true);
        assert.equal(
          (await ping(a, B.wgIp, { count: 2, interval: 0.2, timeoutS: 2 })).received,
          2,
          "wg0 ping",
        );
        const wg = await trace([A.wgIp, `tcp/${SERVICE}`]);
        assert.deepEqual([wg.layer, wg.accept, wg.reason], ["wg0", false, "lockdown"], JSON.stringify(wg));
        const aes = await trace([A.aesIp, `tcp/${SERVICE}`]);
        assert.deepEqual(
          [aes.layer, aes.accept, aes.match],
          ["aes0", true, "policy-rule"],
          JSON.stringify(aes),
        );
        assert.match(aes.rule!, /policies\.rules\[2\]/);
        const icmp = await trace([A.name, "icmp", "--to", "wg0"]);
        assert.deepEqual([icmp.accept, icmp.match, icmp.rule], [true, "lockdown-entry", "icmp (always)"]);
        const human = await b.exec(
          [
            Deno.execPath(),
            "run",
            "-A",
            "--quiet",
            MAIN,
            "trace",
            A.name,
            `tcp/${SERVICE}`,
            "--admin",
            sockB,
            "--token-file",
            tokenB,
          ],
          { check: false },
        );
        assert.equal(human.code, 0, human.stderr);
        console.log(human.stdout);
        assert.match(
          human.stdout,
          /on wg0[\s\S]*DROP \(lockdown\)[\s\S]*on aes0[\s\S]*ACCEPT by policy-rule/,
        );
      });

      await t.step("a policy between two AES peers is enforced on aes0, not wg0", async () => {
        const before = await drops(sockB, "aes0", "filterPolicy");
        assert.equal((await probe(a, ["tcp", B.aesIp, String(CLOSED), String(PROBE_TIMEOUT_MS)])).ok, false);
        assert.ok((await drops(sockB, "aes0", "filterPolicy")) > before, "counted as policy on aes0");
        // The lockdown list opens the port on wg0; the aes0 policy does not follow it.
        const add = await lockdown(b, ["add", `tcp/${CLOSED}`]);
        assert.equal(add.code, 0, add.stderr);
        assert.equal((await probe(a, ["tcp", B.wgIp, String(CLOSED), String(PROBE_TIMEOUT_MS)])).ok, true);
        assert.equal((await probe(a, ["tcp", B.aesIp, String(CLOSED), String(PROBE_TIMEOUT_MS)])).ok, false);
        const wg = await trace([A.wgIp, `tcp/${CLOSED}`]);
        assert.deepEqual([wg.accept, wg.rule], [true, `tcp/${CLOSED} (extra)`], JSON.stringify(wg));
        const aes = await trace([A.aesIp, `tcp/${CLOSED}`]);
        assert.deepEqual([aes.layer, aes.accept, aes.reason], ["aes0", false, "policy"], JSON.stringify(aes));
      });

      await t.step("twofold lockdown add takes effect at once; remove closes new connections", async () => {
        // node-a keeps opening fresh connections to node-b's wg0 IP while the port is closed.
        const until = a.spawn(agent(["tcp-until", B.wgIp, String(SERVICE), "20000"]));
        await new Promise((r) => setTimeout(r, 1000));
        assert.ok(!until.exited, "no connection gets through before the change");
        const add = await lockdown(b, ["add", `tcp/${SERVICE}`]);
        const applied = Date.now();
        assert.equal(add.code, 0, add.stderr);
        assert.ok(await waitUntil(() => until.exited, 21_000), "the agent finished");
        const byA = JSON.parse(until.output().trim().split("\n").pop()!);
        assert.equal(byA.ok, true, "node-a connects to node-b's wg0 IP once tcp/8080 is on the list");
        console.log(
          `lockdown add tcp/${SERVICE} → first connection through wg0: ${
            byA.at - applied
          } ms after the CLI ` +
            "returned (negative: before the CLI process had exited; attempts are 25 ms apart)",
        );
        const rm = await lockdown(b, ["remove", `tcp/${SERVICE}`]);
        assert.equal(rm.code, 0, rm.stderr);
        assert.equal((await probe(a, ["tcp", B.wgIp, String(SERVICE), String(PROBE_TIMEOUT_MS)])).ok, false);
        assert.equal(
          (await trace([A.wgIp, `tcp/${SERVICE}`])).reason,
          "lockdown",
          "trace agrees after remove",
        );
      });

      await t.step("replies to our own flows come back; unsolicited UDP to a wg0 IP is dropped", async () => {
        // node-a's own wg0 filter is a lockdown without udp/5353: the echo is let in as a reply.
        const add = await lockdown(b, ["add", `udp/${UDP_SERVICE}`]);
        assert.equal(add.code, 0, add.stderr);
        assert.equal(
          (await probe(a, ["udp", B.wgIp, String(UDP_SERVICE), String(PROBE_TIMEOUT_MS)])).ok,
          true,
        );
        assert.equal(
          (await probe(a, ["udp", B.aesIp, String(UDP_SERVICE), String(PROBE_TIMEOUT_MS)])).ok,
          true,
        );
        const before = await drops(sockA, "wg0", "filterLockdown");
        assert.equal(
          (await probe(b, ["udp", A.wgIp, String(UDP_CLOSED), String(PROBE_TIMEOUT_MS)])).ok,
          false,
        );
        assert.ok((await drops(sockA, "wg0", "filterLockdown")) > before, "counted as lockdown on node-a");
        const unsolicited = await trace([B.wgIp, `udp/${UDP_CLOSED}`], true);
        assert.deepEqual([unsolicited.accept, unsolicited.reason], [false, "lockdown"]);
      });

      await t.step(
        "an AES-exempt peer gets the policy on wg0: tcp/22 dropped, other ports open",
        async () => {
          assert.equal((await probe(c, ["tcp", B.wgIp, String(SERVICE), String(PROBE_TIMEOUT_MS)])).ok, true);
          const before = await drops(sockB, "wg0", "filterPolicy");
          assert.equal((await probe(c, ["tcp", B.wgIp, String(SSH), String(PROBE_TIMEOUT_MS)])).ok, false);
          assert.ok((await drops(sockB, "wg0", "filterPolicy")) > before, "counted as policy on wg0");
          assert.equal((await ping(c, B.wgIp, { count: 1, timeoutS: 2 })).received, 1, "icmp accepted");
          const ssh = await trace([C.name, `tcp/${SSH}`]);
          assert.deepEqual(
            [ssh.layer, ssh.accept, ssh.reason],
            ["wg0", false, "policy"],
            JSON.stringify(ssh),
          );
          const web = await trace([C.wgIp, `tcp/${SERVICE}`]);
          assert.deepEqual([web.accept, web.match], [true, "policy-rule"], JSON.stringify(web));
          assert.match(web.rule!, /policies\.rules\[0\]: exempt → node-b tcp\/1-21,23-65535/);
        },
      );
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
