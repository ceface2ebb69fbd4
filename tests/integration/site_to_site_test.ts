/**
 * Site-to-site (issue 20) on real kernels: two sites, each a router node (`twofold up`, map-driven,
 * `site.lan`) with a LAN namespace behind it:
 *
 *   tfs2s-la (192.168.10.2) — lan0 tfs2s-ra ══ underlay 192.0.2.0/24 ══ tfs2s-rb lan0 — tfs2s-lb (192.168.20.2)
 *
 * Checks, in order: an advertised route that is not accepted carries nothing, and accepting it through
 * a map change applies live (and a reloaded `routes.accept` too); LAN A reaches LAN B (ping, TCP, a
 * 100 MB transfer with matching SHA-256) through aes0 (its counters grow), with nothing but UDP 51820
 * on the underlay; `route get`, status and trace tell the same; a policy on site B denying a port to
 * its LAN blocks it; traffic forced onto wg0 is dropped by the lockdown; a stale key (A's manual key past
 * `keys.manualMaxAgeSeconds`) closes A's gate and stops LAN-to-LAN traffic until the key returns; at
 * stop every forwarding switch is back and twofold's nftables table is gone. Then the same two sites run
 * from inline peers (`peers[].routes`, `routes.accept: "all"`): routed, and undone at stop.
 * Namespaces tfs2s-*. Needs root, /dev/net/tun, ip, ping, wg, nft, tcpdump, sha256sum.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, sleep, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { genKeyPair, genPresharedKey, type KeyPair } from "../helpers/wg_device.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { startTwofoldUp } from "../helpers/twofold_node.ts";
import { twofoldOk, writeSecretFile } from "../helpers/twofold_cli.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import type { NodeStatus, PeerRoute } from "../../src/admin/model.ts";

const TCP_TOOL = new URL("./site_to_site_tcp.ts", import.meta.url).pathname;
const LAN_IF = "lan0";
/** A's manual key expires this long after it was last installed (the stale-key step lets it). */
const MANUAL_MAX_AGE_S = 8;
const TRANSFER_BYTES = 100 * 1024 * 1024;
const PREREQS = [
  requireRoot(),
  requireTun(),
  requireBinary("ip"),
  requireBinary("ping"),
  requireBinary("wg"),
  requireBinary("nft"),
  requireBinary("tcpdump"),
  requireBinary("sha256sum"),
];

interface Site {
  name: "site-a" | "site-b";
  keys: KeyPair;
  router: Netns;
  host: Netns;
  underlayIf: string;
  underlay: string;
  lan: string;
  routerLanIp: string;
  hostIp: string;
  config: string;
  socket: string;
  pskFile: string;
  proc?: Proc;
}

async function api<T>(s: Site, path: string): Promise<T> {
  const client = new AdminClient({ kind: "unix", path: s.socket });
  try {
    return await client.json<T>("GET", path);
  } finally {
    client.close();
  }
}

const status = (s: Site) => api<NodeStatus>(s, "/v1/status");
const routes = (s: Site) => api<{ routes: PeerRoute[] }>(s, "/v1/routes").then((r) => r.routes);

/** aes0 bytes A sent to and received from its peer, from the status. */
async function aes0Bytes(s: Site): Promise<{ tx: number; rx: number; gate: string }> {
  const p = (await status(s)).peers[0];
  return { tx: p.aes0!.txBytes, rx: p.aes0!.rxBytes, gate: p.aes0!.gate.state };
}

/** Whether the LAN host of `from` gets echo replies from the LAN host of `to` (3 tries). */
async function lanReaches(from: Site, to: Site): Promise<boolean> {
  return (await ping(from.host, to.hostIp, { count: 3, interval: 0.2, timeoutS: 1 })).received > 0;
}

function tcpTool(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", TCP_TOOL, ...args];
}

/** Fetches what the server on `to`'s LAN host serves on `port`; the exit code (2: no connection). */
async function fetchFrom(from: Site, to: Site, port: number, out: string, timeoutMs = 3000): Promise<number> {
  const r = await from.host.exec(tcpTool(["fetch", to.hostIp, String(port), out, String(timeoutMs)]), {
    check: false,
  });
  return r.code;
}

/** The forwarding switches the site router may touch, and the global ones it must leave alone. */
async function forwardingSwitches(r: Netns): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (
    const key of [`net/ipv4/conf/${LAN_IF}/forwarding`, "net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]
  ) {
    out[key] = (await r.exec(["cat", `/proc/sys/${key}`])).stdout.trim();
  }
  return out;
}

async function nftTable(r: Netns): Promise<boolean> {
  return (await r.exec(["nft", "list", "table", "inet", "twofold"], { check: false })).code === 0;
}

integrationTest(
  "site-to-site: LAN to LAN through aes0 between two router nodes, accepted live, filtered, gated, undone at stop",
  PREREQS,
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfs2s-" });
    const logDir = Deno.env.get("TWOFOLD_TEST_LOG_DIR");
    const mapPath = `${dir}/netmap.json`;
    let refresher: ReturnType<typeof setInterval> | undefined;
    try {
      const mk = async (name: "site-a" | "site-b", x: "a" | "b", n: number): Promise<Site> => ({
        name,
        keys: genKeyPair(),
        router: await topo.netns(`tfs2s-r${x}`, { replaceExisting: true }),
        host: await topo.netns(`tfs2s-l${x}`, { replaceExisting: true }),
        underlayIf: `tfs2s-u${x}`,
        underlay: `192.0.2.${n}`,
        lan: `192.168.${n}0.0/24`,
        routerLanIp: `192.168.${n}0.1`,
        hostIp: `192.168.${n}0.2`,
        config: `${dir}/${name}.json`,
        socket: `${dir}/${name}.sock`,
        pskFile: `${dir}/${name}.psk`,
      });
      const a = await mk("site-a", "a", 1);
      const b = await mk("site-b", "b", 2);
      await vethPair(a.router, a.underlayIf, `${a.underlay}/24`, b.router, b.underlayIf, `${b.underlay}/24`);
      for (const s of [a, b]) {
        await vethPair(s.router, LAN_IF, `${s.routerLanIp}/24`, s.host, "eth0", `${s.hostIp}/24`);
        await s.host.exec(["ip", "route", "add", "default", "via", s.routerLanIp]);
      }
      const switchesBefore = { a: await forwardingSwitches(a.router), b: await forwardingSwitches(b.router) };

      // One manual aes0 key, each side its own copy; A's copy expires (keys.manualMaxAgeSeconds)
      // unless it is installed again, which the refresher does until the stale-key step.
      const psk = genPresharedKey();
      for (const s of [a, b]) await writeSecretFile(s.pskFile, psk);
      const refresh = () => writeSecretFile(a.pskFile, psk);
      const startRefresher = () => refresher = setInterval(() => void refresh(), 2000);
      startRefresher();

      const writeConfig = async (s: Site, accept: unknown) => {
        const other = s === a ? b : a;
        await writeSecretFile(`${dir}/${s.name}.key`, s.keys.privateKey);
        await Deno.writeTextFile(
          s.config,
          JSON.stringify({
            node: {
              name: s.name,
              privateKeyFile: `${dir}/${s.name}.key`,
              stateDir: `${dir}/state-${s.name}`,
              advertise: [s.lan],
            },
            wg0: {},
            aes0: {},
            netmap: { file: mapPath },
            pskFiles: { [other.name]: s.pskFile },
            admin: { listen: `unix:${s.socket}`, tokenFile: `${dir}/${s.name}.token` },
            routes: { accept },
            site: { lan: LAN_IF },
            ...(s === a ? { keys: { manualMaxAgeSeconds: MANUAL_MAX_AGE_S } } : {
              // Site B: its LAN takes TCP from site A on every port but 5201, and pings.
              policies: {
                rules: [
                  { from: "site-a", to: b.lan, proto: "tcp", ports: ["1-5200", "5202-65535"] },
                  { from: "site-a", to: b.lan, proto: "icmp" },
                  { from: "site-a", to: "site-b" },
                ],
              },
            }),
          }),
        );
      };
      const groups = { groups: ["sites"] };
      for (const s of [a, b]) await writeConfig(s, groups);
      await twofoldOk(
        dir,
        "netmap",
        "init",
        "--domain",
        "sites.test",
        "--aes-subnet",
        "100.127.0.0/16",
        "--map",
        mapPath,
      );
      // A is in "sites" (B accepts A's LAN); B is not yet (A does not accept B's LAN).
      for (const s of [a, b]) {
        await twofoldOk(
          dir,
          "netmap",
          "add",
          s.name,
          "--public-key",
          s.keys.publicKey,
          "--endpoint",
          `${s.underlay}:51820`,
          "--route",
          s.lan,
          ...(s === a ? ["--groups", "sites"] : []),
          "--map",
          mapPath,
        );
      }
      const editMap = async (change: (doc: { serial: number; nodes: Record<string, unknown>[] }) => void) => {
        const doc = JSON.parse(await Deno.readTextFile(mapPath));
        change(doc);
        doc.serial += 1;
        await Deno.writeTextFile(`${mapPath}.tmp`, JSON.stringify(doc));
        await Deno.rename(`${mapPath}.tmp`, mapPath);
        return doc.serial as number;
      };
      for (const s of [a, b]) {
        s.proc = await startTwofoldUp(s.router, s.config, {
          env: { TWOFOLD_LOG: "debug" },
          logFile: logDir && `${logDir}/${s.name}.log`,
        });
        assert.ok(await waitUntil(() => /admin API listening on/.test(s.proc!.output()), 10_000));
      }
      const admin = (s: Site) => ["--admin", `unix:${s.socket}`, "--token-file", `${dir}/${s.name}.token`];

      await t.step("advertised but not accepted: no route, nothing carried", async () => {
        assert.ok(await waitForPing(a.router, "100.127.0.2", 10_000), "the routers reach each other on aes0");
        const [r] = JSON.parse(await twofoldOk(dir, "route", "get", b.hostIp, "--json", ...admin(a)));
        assert.deepEqual([r.destination, r.kind, r.accepted, r.peer], [b.lan, "network", false, "site-b"]);
        const kernel = await a.router.exec(["ip", "route", "get", b.hostIp], { check: false });
        assert.doesNotMatch(kernel.stdout, /dev aes0/, "no kernel route into aes0");
        const before = await aes0Bytes(a);
        assert.equal(await lanReaches(a, b), false, "LAN A does not reach LAN B");
        const after = await aes0Bytes(a);
        assert.ok(after.tx - before.tx < 500, `aes0 carried nothing of it (${after.tx - before.tx} bytes)`);
        const bRoute = (await routes(b)).find((x) => x.destination === a.lan)!;
        assert.equal(bRoute.accepted, true, "B accepts A's LAN (A is in group sites)");
      });

      await t.step("accepted through a map change: live, no restart", async () => {
        const pids = [a.proc!.pid, b.proc!.pid];
        const serial = await editMap((doc) => doc.nodes.find((n) => n.name === "site-b")!.groups = ["sites"]);
        assert.ok(
          await waitUntil(async () => (await status(a)).netmap?.serial === serial, 5_000),
          "A applies the map",
        );
        assert.match((await a.router.exec(["ip", "route", "get", b.hostIp])).stdout, /dev aes0 /);
        assert.ok(await waitForPing(a.host, b.hostIp, 10_000), "LAN A reaches LAN B");
        assert.ok(await lanReaches(b, a), "and back");
        assert.deepEqual([a.proc!.pid, b.proc!.pid], pids);
        const s = await status(a);
        assert.deepEqual(s.peers[0].routes, { advertised: [b.lan], accepted: [b.lan] });
        assert.deepEqual(s.routes, { advertise: [a.lan], accept: "groups sites" });
        const table = await twofoldOk(dir, "status", ...admin(a));
        assert.match(
          table,
          /^routed networks: this node advertises 192\.168\.10\.0\/24; accepts groups sites$/m,
        );
        assert.match(table, /^site-b .* 192\.168\.20\.0\/24$/m);
      });

      await t.step("routes.accept reloaded: none withdraws the route, groups brings it back", async () => {
        await writeConfig(a, "none");
        assert.match(await twofoldOk(dir, "reload", ...admin(a)), /routes applied/);
        assert.doesNotMatch((await a.router.exec(["ip", "route", "show"])).stdout, /192\.168\.20\.0\/24/);
        assert.equal(await lanReaches(a, b), false, "withdrawn");
        await writeConfig(a, groups);
        assert.match(await twofoldOk(dir, "reload", ...admin(a)), /routes applied/);
        assert.ok(await waitForPing(a.host, b.hostIp, 10_000), "back");
      });

      await t.step(
        "ping, TCP and 100 MB with matching SHA-256 through aes0; the underlay carries UDP 51820 only",
        async () => {
          const pcap = `${dir}/underlay.pcap`;
          const cap = a.router.spawn([
            "tcpdump",
            "-i",
            a.underlayIf,
            "--immediate-mode",
            "-U",
            "-n",
            "-w",
            pcap,
            "ip",
          ]);
          assert.ok(
            await waitUntil(() => cap.exited || /listening on/.test(cap.output()), 5000),
            cap.output(),
          );
          const file = `${dir}/payload.bin`;
          const data = new Uint8Array(TRANSFER_BYTES);
          for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
          await Deno.writeFile(file, data);
          const server = b.host.spawn(tcpTool(["serve", "8080", file]));
          assert.ok(await waitUntil(() => server.exited || /listening/.test(server.output()), 10_000));
          const before = await aes0Bytes(a);
          const p = await ping(a.host, b.hostIp, { count: 10, interval: 0.2 });
          assert.equal(p.received, 10, "10 of 10 pings");
          const got = `${dir}/received.bin`;
          const t0 = Date.now();
          assert.equal(await fetchFrom(a, b, 8080, got, 10_000), 0, "TCP connects");
          const seconds = (Date.now() - t0) / 1000;
          const sums = (await a.host.exec(["sha256sum", file, got])).stdout.trim().split("\n").map((l) =>
            l.split(" ")[0]
          );
          assert.equal((await Deno.stat(got)).size, TRANSFER_BYTES);
          assert.equal(sums[0], sums[1], "same SHA-256");
          const after = await aes0Bytes(a);
          assert.ok(after.rx - before.rx >= TRANSFER_BYTES, `aes0 rx grew by ${after.rx - before.rx}`);
          console.log(
            `100 MB LAN B → LAN A in ${seconds.toFixed(1)} s (${
              (TRANSFER_BYTES * 8 / seconds / 1e6).toFixed(0)
            } Mbit/s)`,
          );
          await sleep(300);
          await cap.kill("SIGINT");
          const text = (await a.router.exec(["tcpdump", "-r", pcap, "-n"], { check: false })).stdout;
          const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
          assert.ok(lines.length > 1000, `captured ${lines.length} packets`);
          const other = lines.filter((l) => !/ 192\.0\.2\.[12]\.51820 > 192\.0\.2\.[12]\.51820: UDP/.test(l));
          assert.deepEqual(other.slice(0, 5), [], `${other.length} packet(s) other than UDP 51820`);
          await server.kill();
        },
      );

      await t.step("route get, status and trace agree", async () => {
        const r = (await routes(a)).find((x) => x.destination === b.lan)!;
        assert.deepEqual([r.interface, r.layer, r.accepted, r.gateOpen], ["aes0", "aes0", true, true]);
        const line = await twofoldOk(dir, "route", "get", b.hostIp, ...admin(a));
        assert.match(line, /^192\.168\.20\.0\/24 dev aes0 peer site-b \(aes, accepted\): .*; gate open$/m);
        const trace = await twofoldOk(
          dir,
          "trace",
          "site-a",
          "tcp/22",
          "--destination",
          b.hostIp,
          ...admin(b),
        );
        assert.match(trace, /to 192\.168\.20\.2 on aes0[\s\S]*ACCEPT by policy-rule: policies\.rules\[0\]/);
      });

      await t.step("a policy on site B denying TCP 5201 into its LAN blocks it", async () => {
        const servers = ["5201", "8080"].map((port) =>
          b.host.spawn(tcpTool(["serve", port, `${dir}/payload.bin`]))
        );
        for (const server of servers) {
          assert.ok(await waitUntil(() => server.exited || /listening/.test(server.output()), 10_000));
        }
        const drops = (await status(b)).interfaces.aes0.filterDrops!.policy;
        assert.equal(await fetchFrom(a, b, 5201, `${dir}/denied.bin`), 2, "no connection on 5201");
        assert.ok((await status(b)).interfaces.aes0.filterDrops!.policy > drops, "counted as a policy drop");
        assert.equal(await fetchFrom(a, b, 8080, `${dir}/allowed.bin`, 10_000), 0, "8080 still connects");
        for (const server of servers) await server.kill();
      });

      await t.step("forced onto wg0, LAN-to-LAN traffic is dropped by the lockdown", async () => {
        const force = async (s: Site, peer: Site, allowed: string, dev: string) => {
          await s.router.exec(["wg", "set", "wg0", "peer", peer.keys.publicKey, "allowed-ips", allowed]);
          await s.router.exec(["ip", "route", "replace", peer.lan, "dev", dev]);
        };
        try {
          await force(a, b, `100.64.0.2/32,${b.lan}`, "wg0");
          await force(b, a, `100.64.0.1/32,${a.lan}`, "wg0");
          assert.equal(await lanReaches(a, b), false, "nothing from LAN A gets through wg0");
          // Router A's own LAN address as the source: past A's forwarding confinement, so B's lockdown decides.
          const drops = (await status(b)).interfaces.wg0.filterDrops!.lockdown;
          const pinged = await a.router.exec(
            ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", a.routerLanIp, b.hostIp],
            { check: false },
          );
          assert.notEqual(pinged.code, 0, "no reply through wg0");
          assert.ok(
            (await status(b)).interfaces.wg0.filterDrops!.lockdown > drops,
            "B's wg0 lockdown dropped it",
          );
        } finally {
          await force(a, b, "100.64.0.2/32", "aes0");
          await force(b, a, "100.64.0.1/32", "aes0");
        }
        assert.ok(await waitForPing(a.host, b.hostIp, 10_000), "back on aes0");
      });

      await t.step(
        "a stale key closes A's gate: LAN-to-LAN stops, and resumes when the key returns",
        async () => {
          clearInterval(refresher);
          refresher = undefined;
          assert.ok(
            await waitUntil(
              async () => (await aes0Bytes(a)).gate === "closed",
              (MANUAL_MAX_AGE_S + 5) * 1000,
            ),
            "A's gate closes when its key is past the maximum age",
          );
          assert.equal(await lanReaches(a, b), false, "no LAN-to-LAN traffic");
          assert.match(
            await twofoldOk(dir, "route", "get", b.hostIp, ...admin(a)),
            /dev aes0 .*gate closed: traffic to this network goes nowhere .* never falls back to wg0/,
          );
          const kernel = (await a.router.exec(["ip", "route", "get", b.hostIp])).stdout;
          assert.match(kernel, /dev aes0 /, "still routed into aes0: no fallback to wg0");
          await refresh();
          startRefresher();
          assert.ok(await waitForPing(a.host, b.hostIp, 15_000), "resumes with the key");
        },
      );

      await t.step("at stop: forwarding switches restored, nftables table and routes gone", async () => {
        for (const s of [a, b]) {
          assert.ok(await nftTable(s.router), `${s.name}: twofold's table while running`);
          assert.equal((await forwardingSwitches(s.router))[`net/ipv4/conf/${LAN_IF}/forwarding`], "1");
        }
        clearInterval(refresher);
        refresher = undefined;
        for (const s of [a, b]) {
          await s.proc!.kill("SIGTERM");
          assert.equal(s.proc!.exitCode, 0, s.proc!.output().slice(-2000));
          assert.deepEqual(await forwardingSwitches(s.router), switchesBefore[s === a ? "a" : "b"]);
          assert.equal(await nftTable(s.router), false, `${s.name}: table removed`);
          assert.doesNotMatch(
            (await s.router.exec(["ip", "route", "show"])).stdout,
            /192\.168\.[12]0\.0\/24 dev aes0/,
          );
        }
      });

      await t.step(
        "inline peers: the same two sites without a map (routes on the peer entries, accept all)",
        async () => {
          for (const s of [a, b]) {
            const other = s === a ? b : a;
            const n = (x: Site) => (x === a ? 1 : 2);
            await Deno.writeTextFile(
              `${dir}/${s.name}-inline.json`,
              JSON.stringify({
                node: {
                  name: s.name,
                  privateKeyFile: `${dir}/${s.name}.key`,
                  stateDir: `${dir}/state-${s.name}`,
                  advertise: [s.lan],
                },
                wg0: { address: `100.64.0.${n(s)}/10` },
                aes0: { address: `100.127.0.${n(s)}/16` },
                peers: [{
                  name: other.name,
                  publicKey: other.keys.publicKey,
                  wgIp: `100.64.0.${n(other)}`,
                  aesIp: `100.127.0.${n(other)}`,
                  endpoint: `${other.underlay}:51820`,
                  pskFile: s.pskFile,
                  routes: [other.lan],
                }],
                admin: { listen: `unix:${s.socket}`, tokenFile: `${dir}/${s.name}.token` },
                routes: { accept: "all" },
                site: { lan: LAN_IF },
              }),
            );
            s.proc = await startTwofoldUp(s.router, `${dir}/${s.name}-inline.json`, {
              logFile: logDir && `${logDir}/${s.name}-inline.log`,
            });
          }
          assert.match((await a.router.exec(["ip", "route", "get", b.hostIp])).stdout, /dev aes0 /);
          assert.ok(await waitForPing(a.host, b.hostIp, 15_000), "LAN A reaches LAN B");
          assert.equal(
            await fetchFrom(b, a, 5201, `${dir}/none.bin`),
            2,
            "no server: no connection, nothing hangs",
          );
          for (const s of [a, b]) {
            await s.proc!.kill("SIGTERM");
            assert.equal(s.proc!.exitCode, 0, s.proc!.output().slice(-2000));
            assert.doesNotMatch(
              (await s.router.exec(["ip", "route", "show"])).stdout,
              /192\.168\.[12]0\.0\/24 dev (aes0|wg0)/,
            );
            assert.deepEqual(await forwardingSwitches(s.router), switchesBefore[s === a ? "a" : "b"]);
            assert.equal(await nftTable(s.router), false);
          }
        },
      );
    } finally {
      clearInterval(refresher);
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
