/**
 * Nodes run from one network map file, live: three nodes (two AES, one AES-exempt) from the map;
 * `twofold netmap add` a fourth → every node has it on the right interfaces within 5 s, its names
 * resolve (dig and Deno.resolveDns against a node's wg0 address), its aes0 gate opens through its
 * manual PSK files (`pskFiles`); `remove` it → it is gone from both interfaces and DNS and unreachable;
 * no process restarted and a 10 ms ping between the other two AES nodes loses nothing. A garbage map and
 * a lower serial are refused (the running map and traffic untouched, `netmap-rejected`), and a node
 * restarts from its last good copy while the map file is gone.
 * Namespaces tfnm-*. Needs root, /dev/net/tun, iproute2, ping, wg, dig.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { bridgeSegment, type Netns, type Proc, sleep, Topology, waitUntil } from "../helpers/netns.ts";
import { genKeyPair, genPresharedKey, type KeyPair } from "../helpers/wg_device.ts";
import { waitForPing } from "../helpers/measure.ts";
import { startTwofoldUp } from "../helpers/twofold_node.ts";
import { twofoldOk, writeSecretFile } from "../helpers/twofold_cli.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import type { NodeStatus, PeerRoute } from "../../src/admin/model.ts";

const DOMAIN = "fabric.test";
const PREREQS = [
  requireRoot(),
  requireTun(),
  requireBinary("ip"),
  requireBinary("ping"),
  requireBinary("wg"),
  requireBinary("dig"),
];

interface MapNode {
  name: string;
  keys: KeyPair;
  ns: Netns;
  underlay: string;
  exempt: boolean;
  wgIp: string;
  aesIp: string | null;
  config: string;
  socket: string;
  proc?: Proc;
}

async function peersOn(n: MapNode, ifname: "wg0" | "aes0"): Promise<string[]> {
  const out = await n.ns.exec(["wg", "show", ifname, "peers"], { check: false });
  return out.stdout.split("\n").filter(Boolean);
}

async function status(n: MapNode): Promise<NodeStatus> {
  const client = new AdminClient({ kind: "unix", path: n.socket });
  try {
    return await client.json<NodeStatus>("GET", "/v1/status");
  } finally {
    client.close();
  }
}

async function routesOf(n: MapNode): Promise<PeerRoute[]> {
  const client = new AdminClient({ kind: "unix", path: n.socket });
  try {
    return (await client.json<{ routes: PeerRoute[] }>("GET", "/v1/routes")).routes;
  } finally {
    client.close();
  }
}

/** `dig @server name` inside `n`'s namespace: the A answer, or the status word (NXDOMAIN, …). */
async function dig(n: MapNode, server: string, name: string, tcp = false): Promise<string> {
  const out = await n.ns.exec([
    "dig",
    `@${server}`,
    name,
    "A",
    "+time=2",
    "+tries=1",
    ...(tcp ? ["+tcp"] : []),
  ], {
    check: false,
  });
  const answer = out.stdout.match(
    new RegExp(`^${name.replace(/\./g, "\\.")}\\.\\s+\\d+\\s+IN\\s+A\\s+(\\S+)`, "m"),
  );
  if (answer) return answer[1];
  return out.stdout.match(/status: (\w+)/)?.[1] ?? `no answer: ${out.stdout}${out.stderr}`;
}

/** Deno.resolveDns inside `n`'s namespace. */
async function resolveInNs(n: MapNode, server: string, name: string): Promise<string> {
  const code = `try { console.log((await Deno.resolveDns(${JSON.stringify(name)}, "A", ` +
    `{ nameServer: { ipAddr: ${JSON.stringify(server)}, port: 53 } })).join(",")); } ` +
    `catch (e) { console.log(e.name); }`;
  const out = await n.ns.exec([Deno.execPath(), "eval", code], { check: false });
  return out.stdout.trim();
}

integrationTest(
  "network map: a node joins and leaves live (interfaces, gate, DNS), bad maps are refused, last good copy",
  PREREQS,
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfnm-" });
    const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR");
    const mapPath = `${dir}/netmap.json`;
    try {
      const sw = await topo.netns("tfnm-sw", { replaceExisting: true });
      const names = ["a", "b", "c", "d"];
      const nodes: MapNode[] = [];
      for (const [i, name] of names.entries()) {
        nodes.push({
          name: `node-${name}`,
          keys: genKeyPair(),
          ns: await topo.netns(`tfnm-${name}`, { replaceExisting: true }),
          underlay: `192.0.2.${i + 1}`,
          exempt: name === "c",
          wgIp: `100.64.0.${i + 1}`,
          aesIp: name === "c" ? null : `100.127.0.${i === 3 ? 3 : i + 1}`,
          config: `${dir}/node-${name}.json`,
          socket: `${dir}/node-${name}.sock`,
        });
      }
      const [a, b, c, d] = nodes;
      await bridgeSegment(
        sw,
        nodes.map((n) => ({ ns: n.ns, ifname: `tfnm-${n.name.slice(5)}`, cidr: `${n.underlay}/24` })),
      );

      // Manual PSKs, one per AES pair, kept locally by both sides.
      // One key per AES pair; each side holds its own copy (x's copy of its key with y).
      const pskFile = (x: MapNode, y: MapNode) => `${dir}/psk-${x.name}-with-${y.name}.psk`;
      const aesNodes = [a, b, d];
      for (const x of aesNodes) {
        for (const y of aesNodes) {
          if (x.name >= y.name) continue;
          const psk = genPresharedKey();
          await writeSecretFile(pskFile(x, y), psk);
          await writeSecretFile(pskFile(y, x), psk);
        }
      }
      for (const n of nodes) {
        await writeSecretFile(`${dir}/${n.name}.key`, n.keys.privateKey);
        const pskFiles = n.exempt
          ? {}
          : Object.fromEntries(aesNodes.filter((y) => y !== n).map((y) => [y.name, pskFile(n, y)]));
        await Deno.writeTextFile(
          n.config,
          JSON.stringify({
            node: {
              name: n.name,
              privateKeyFile: `${dir}/${n.name}.key`,
              stateDir: `${dir}/state-${n.name}`,
            },
            wg0: {},
            aes0: {},
            netmap: { file: mapPath },
            pskFiles,
            admin: { listen: `unix:${n.socket}`, tokenFile: `${dir}/${n.name}.token` },
          }),
        );
      }
      const add = (n: MapNode) =>
        twofoldOk(
          dir,
          "netmap",
          "add",
          n.name,
          "--public-key",
          n.keys.publicKey,
          "--endpoint",
          `${n.underlay}:51820`,
          ...(n.exempt ? ["--exempt"] : []),
          "--map",
          mapPath,
        );
      await twofoldOk(
        dir,
        "netmap",
        "init",
        "--domain",
        DOMAIN,
        "--aes-subnet",
        "100.127.0.0/16",
        "--map",
        mapPath,
      );
      for (const n of [a, b, c]) await add(n);
      const start = async (n: MapNode) => {
        n.proc = await startTwofoldUp(n.ns, n.config, {
          env: { TWOFOLD_LOG: "debug" },
          logFile: logDir && `${logDir}/${n.name}.log`,
        });
        assert.ok(
          await waitUntil(() => n.proc!.exited || /admin API listening on/.test(n.proc!.output()), 10_000),
          n.proc.output(),
        );
      };
      for (const n of [a, b, c]) await start(n);
      const pids = [a, b, c].map((n) => n.proc!.pid);

      await t.step("three nodes from one map: AES pair over aes0, the exempt node over wg0", async () => {
        assert.ok(await waitForPing(a.ns, b.aesIp!, 10_000), "a reaches b's AES IP");
        assert.ok(await waitForPing(a.ns, c.wgIp, 10_000), "a reaches the exempt c over wg0");
        assert.deepEqual(await peersOn(c, "aes0"), [], "the exempt node has no aes0 peer");
        assert.equal(await dig(c, a.wgIp, `node-b.aes.${DOMAIN}`), b.aesIp);
        assert.equal(await dig(c, a.wgIp, `node-c.aes.${DOMAIN}`), "NXDOMAIN", "no .aes name for exempt c");
        // Between two AES peers wg0 is locked down; DNS on wg0 is infrastructure and passes.
        assert.equal(await dig(b, a.wgIp, `node-c.${DOMAIN}`), c.wgIp, "udp through the lockdown");
        assert.equal(await dig(b, a.wgIp, `node-c.${DOMAIN}`, true), c.wgIp, "tcp through the lockdown");
        const s = await status(a);
        assert.equal(s.netmap?.serial, 4);
        assert.match(s.netmap!.source, /^file /);
      });

      await t.step("route get and /v1/routes agree with ip route get for every peer class", async () => {
        const cases: [string, string, string, "aes" | "exempt"][] = [
          [b.aesIp!, "aes0", b.name, "aes"],
          [b.wgIp, "wg0", b.name, "aes"],
          [c.wgIp, "wg0", c.name, "exempt"],
        ];
        const all = await routesOf(a);
        for (const [ip, dev, peer, cls] of cases) {
          const kernel = (await a.ns.exec(["ip", "route", "get", ip])).stdout;
          assert.match(kernel, new RegExp(`dev ${dev} `), `ip route get ${ip}: ${kernel}`);
          const [r] = JSON.parse(
            await twofoldOk(
              dir,
              "route",
              "get",
              ip,
              "--json",
              "--admin",
              `unix:${a.socket}`,
              "--token-file",
              `${dir}/node-a.token`,
            ),
          );
          assert.equal(r.interface, dev);
          assert.equal(r.peer, peer);
          assert.equal(r.peerClass, cls);
          assert.deepEqual(all.find((x) => x.destination === `${ip}/32`), r, "/v1/routes says the same");
        }
        const byName = await twofoldOk(
          dir,
          "route",
          "get",
          b.name,
          "--admin",
          `unix:${a.socket}`,
          "--token-file",
          `${dir}/node-a.token`,
        );
        assert.match(
          byName,
          new RegExp(`${b.aesIp!.replace(/\./g, "\\.")}/32 dev aes0 peer node-b \\(aes\\).*gate open`),
        );
      });

      const pinger = a.ns.spawn(["ping", "-n", "-i", "0.01", "-W", "1", b.aesIp!], {
        logFile: logDir && `${logDir}/ping.log`,
      });
      await sleep(500);

      await t.step("netmap add: within 5 s on every node, names resolve, its gate opens", async () => {
        await Deno.rename(pskFile(b, d), `${pskFile(b, d)}.off`);
        const t0 = Date.now();
        await add(d);
        const ok = await waitUntil(async () => {
          for (const n of [a, b, c]) if (!(await peersOn(n, "wg0")).includes(d.keys.publicKey)) return false;
          for (const n of [a, b]) if (!(await peersOn(n, "aes0")).includes(d.keys.publicKey)) return false;
          return true;
        }, 5_000);
        const latency = Date.now() - t0;
        assert.ok(ok, "every node has the new peer within 5 s");
        assert.ok(!(await peersOn(c, "aes0")).includes(d.keys.publicKey), "not on the exempt node's aes0");
        // b's copy of the b–d key is held back: b's gate for d stays closed until the file appears.
        const bd = pskFile(b, d);
        const gate = (await status(b)).peers.find((p) => p.name === d.name)!;
        assert.ok(gate.aes0, "an AES peer on b");
        assert.equal(gate.aes0!.gate.state, "closed", "closed until b holds the key");
        const closed = (await routesOf(b)).find((r) => r.destination === `${d.aesIp}/32`)!;
        assert.equal(closed.gateOpen, false);
        assert.match(closed.note!, /goes nowhere .* never falls back to wg0/);
        assert.match((await b.ns.exec(["ip", "route", "get", d.aesIp!])).stdout, /dev aes0 /);
        assert.equal(await dig(a, a.wgIp, `node-d.${DOMAIN}`), d.wgIp);
        assert.equal(await dig(a, a.wgIp, `NODE-D.aes.${DOMAIN}`, true), d.aesIp, "over TCP, any case");
        assert.equal(await resolveInNs(c, b.wgIp, `node-d.aes.${DOMAIN}`), d.aesIp);
        await start(d);
        assert.ok(await waitForPing(a.ns, d.aesIp!, 10_000), "a reaches d over aes0 (manual PSK files)");
        assert.equal((await status(a)).peers.find((p) => p.name === d.name)!.aes0!.gate.state, "open");
        const r = await b.ns.exec(["ping", "-c", "2", "-W", "1", d.aesIp!], { check: false });
        assert.notEqual(r.code, 0, "b's closed gate: nothing reaches d's AES IP (no fallback to wg0)");
        await Deno.rename(`${bd}.off`, bd);
        assert.ok(await waitForPing(b.ns, d.aesIp!, 10_000), "b's gate opens through its PSK file");
        console.log(`netmap add → on every node's interfaces in ${latency} ms`);
      });

      await t.step("netmap remove: gone from interfaces and DNS, unreachable", async () => {
        const t0 = Date.now();
        await twofoldOk(dir, "netmap", "remove", d.name, "--map", mapPath);
        const ok = await waitUntil(async () => {
          for (const n of [a, b, c]) if ((await peersOn(n, "wg0")).includes(d.keys.publicKey)) return false;
          return true;
        }, 5_000);
        assert.ok(ok, `removed everywhere within 5 s`);
        console.log(`netmap remove → gone from every node's interfaces in ${Date.now() - t0} ms`);
        assert.ok(!(await peersOn(a, "aes0")).includes(d.keys.publicKey));
        assert.ok(!(await routesOf(a)).some((r) => r.peer === d.name), "its routes are gone");
        assert.doesNotMatch(
          (await a.ns.exec(["ip", "route", "show"])).stdout,
          new RegExp(`^${d.wgIp} `, "m"),
        );
        assert.equal(await dig(a, a.wgIp, `node-d.${DOMAIN}`), "NXDOMAIN");
        assert.equal(await resolveInNs(c, b.wgIp, `node-d.${DOMAIN}`), "NotFound");
        const r = await a.ns.exec(["ping", "-c", "2", "-W", "1", d.aesIp!], { check: false });
        assert.notEqual(r.code, 0, "no traffic reaches the removed node");
      });

      await t.step("a garbage map and a lower serial are refused; the running map stays", async () => {
        const good = await Deno.readTextFile(mapPath);
        const serial = (await status(a)).netmap!.serial;
        const replace = async (text: string) => {
          await Deno.writeTextFile(`${mapPath}.tmp`, text);
          await Deno.rename(`${mapPath}.tmp`, mapPath);
        };
        await replace("{ garbage");
        assert.ok(
          await waitUntil(
            async () => /invalid map/.test((await status(a)).netmap?.lastRejected ?? ""),
            5_000,
          ),
          "a refuses the garbage",
        );
        const lower = JSON.parse(good);
        lower.serial = serial - 1;
        await replace(JSON.stringify(lower));
        assert.ok(
          await waitUntil(
            async () => /rollback refused/.test((await status(b)).netmap?.lastRejected ?? ""),
            5_000,
          ),
          "b refuses the lower serial",
        );
        assert.equal((await status(a)).netmap!.serial, serial);
        assert.ok((await peersOn(a, "wg0")).includes(b.keys.publicKey));
        await replace(good);
      });

      await t.step("twofold reload and SIGHUP re-read config and map without a restart", async () => {
        const out = await twofoldOk(
          dir,
          "reload",
          "--admin",
          `unix:${a.socket}`,
          "--token-file",
          `${dir}/node-a.token`,
        );
        assert.match(out, /config unchanged; network map unchanged \(serial \d+\)/);
        Deno.kill(b.proc!.pid, "SIGHUP");
        assert.ok(
          await waitUntil(() => /received SIGHUP: .*network map unchanged/.test(b.proc!.output()), 5_000),
          b.proc!.output().slice(-2000),
        );
      });

      await t.step("nothing restarted; the 10 ms ping between a and b lost nothing", async () => {
        await pinger.kill("SIGINT");
        const out = pinger.output();
        const seqs = [...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
        const last = Math.max(...seqs);
        const have = new Set(seqs);
        const missing = Array.from({ length: last }, (_, i) => i + 1).filter((q) => !have.has(q));
        assert.deepEqual(missing, [], `pings lost: ${missing.length} of ${last}`);
        console.log(`${last} pings at 10 ms across add, remove and two refused maps: 0 lost`);
        for (const [i, n] of [a, b, c].entries()) {
          assert.ok(!n.proc!.exited, `${n.name} still runs`);
          assert.equal(n.proc!.pid, pids[i]);
        }
      });

      await t.step("with the map file gone, a node restarts from its last good copy", async () => {
        await c.proc!.kill("SIGTERM");
        await Deno.rename(mapPath, `${mapPath}.away`);
        await start(c);
        assert.match(c.proc!.output(), /from the last good copy/);
        assert.ok(await waitForPing(c.ns, a.wgIp, 10_000), "c reaches a again");
        await Deno.rename(`${mapPath}.away`, mapPath);
      });
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
