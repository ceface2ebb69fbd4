/**
 * Issue 10, items 1, 5 and 8 on real nodes: two `twofold up` nodes in namespaces (tfcf-a, tfcf-b) with
 * manual PSK files; node A runs under an open-file limit of 256 (soft and hard, so its own raise at
 * start cannot lift it) with its admin API on a unix socket in the test's directory. While A pings B
 * through aes0 (inside wg0) every 20 ms, the test holds thousands of silent connections on A's admin
 * socket and both of A's UAPI sockets, dribbles slowloris heads and opens never-reading event streams.
 * Asserts: node A stays up, every ping is answered, `/healthz`, `twofold status` and `wg show` answer
 * during the flood, refusals are logged at most about once per second, the node log has no Deno.serve
 * warning after event clients came and went, and everything answers normally afterwards. Prints the
 * figures. Needs root, /dev/net/tun, iproute2, ping and wg.
 */
import assert from "node:assert/strict";
import { raiseFileDescriptorLimit } from "../../ffi/libc.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping, waitForPing } from "../helpers/measure.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** Node A's open-file limit (soft and hard). */
const NODE_NOFILE = 256;
const ADMIN_SILENT = 3000;
const UAPI_SILENT = 1000;
const SLOWLORIS = 50;
const EVENT_CLIENTS = 200;
const PINGS = 500;
const PING_INTERVAL_S = 0.02;

const A: LabNode = {
  name: "cf-a",
  keys: genKeyPair(),
  underlay: "10.239.0.1",
  wgIp: "100.64.9.1",
  aesIp: "100.127.9.1",
};
const B: LabNode = {
  name: "cf-b",
  keys: genKeyPair(),
  underlay: "10.239.0.2",
  wgIp: "100.64.9.2",
  aesIp: "100.127.9.2",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nodeConfig(dir: string, self: LabNode, peer: LabNode, pskFile: string): Promise<string> {
  const path = await writeNodeConfig(dir, self, [peer]);
  const cfg = JSON.parse(await Deno.readTextFile(path));
  cfg.peers[0].pskFile = pskFile;
  cfg.admin = { listen: `unix:${dir}/${self.name}.sock` };
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

/** Starts `twofold up` in `ns`, under `nofile` open files when given; waits for its admin API. */
async function startNode(ns: Netns, config: string, nofile?: number): Promise<Proc> {
  const cmd = [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, "up", "--config", config];
  const wrapped = nofile === undefined ? cmd : ["sh", "-c", `ulimit -n ${nofile} && exec "$@"`, "sh", ...cmd];
  const p = ns.spawn(wrapped);
  const ok = await waitUntil(() => p.exited || /admin API listening on/.test(p.output()), 20_000);
  assert.ok(ok && !p.exited, `the node did not start:\n${p.output()}`);
  return p;
}

/** One GET over a fresh unix connection: the status line and the time it took (ms). */
async function unixGet(path: string, target: string): Promise<{ status: string; ms: number }> {
  const t0 = performance.now();
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    return { status: `connect failed: ${(e as Error).message}`, ms: performance.now() - t0 };
  }
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await conn.write(encoder.encode(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = "";
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n));
    }
    return { status: text.split("\r\n")[0], ms: performance.now() - t0 };
  } catch (e) {
    return { status: `failed: ${(e as Error).message}`, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

/** Opens up to `count` connections to a unix socket, waiting a little when its backlog is full. */
async function holdMany(path: string, count: number, first?: Uint8Array): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  let backlogFull = 0;
  while (conns.length < count && backlogFull < 2000) {
    try {
      const c = await Deno.connect({ transport: "unix", path });
      conns.push(c);
      if (first) await c.write(first).catch(() => 0);
    } catch (e) {
      if (!(e instanceof Deno.errors.WouldBlock)) throw e;
      backlogFull++;
      await sleep(5);
    }
  }
  return conns;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed by the node */ }
  }
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

integrationTest(
  "control sockets of a real node under a connection flood: the node lives, pings pass, management answers",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async () => {
    try {
      raiseFileDescriptorLimit();
    } catch { /* the test's own connections then stay within what it has */ }
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfcf-" });
    const held: Deno.Conn[] = [];
    try {
      const a = await topo.netns("tfcf-a", { replaceExisting: true });
      const b = await topo.netns("tfcf-b", { replaceExisting: true });
      await vethPair(a, "tfcf-va", `${A.underlay}/24`, b, "tfcf-vb", `${B.underlay}/24`);
      const psk = genPresharedKey();
      for (const name of ["a", "b"]) {
        await Deno.writeTextFile(`${dir}/${name}.psk`, psk + "\n", { mode: 0o600 });
        await Deno.chmod(`${dir}/${name}.psk`, 0o600);
      }
      const procA = await startNode(a, await nodeConfig(dir, A, B, `${dir}/a.psk`), NODE_NOFILE);
      await startNode(b, await nodeConfig(dir, B, A, `${dir}/b.psk`));
      assert.ok(await waitForPing(a, B.aesIp, 15_000), "aes0 carries pings before the flood");
      const adminSock = `${dir}/${A.name}.sock`;
      const uapiWg0 = `${a.runDir}/wg0.sock`;
      const uapiAes0 = `${a.runDir}/aes0.sock`;
      const token = (await Deno.readTextFile(`${dir}/state-${A.name}/admin.token`)).trim();

      const t0 = performance.now();
      const pinging = ping(a, B.aesIp, { count: PINGS, interval: PING_INTERVAL_S, timeoutS: 2 });
      // Silent connections on all three sockets, slowloris heads and never-reading event streams.
      held.push(...await holdMany(adminSock, ADMIN_SILENT));
      held.push(...await holdMany(uapiWg0, UAPI_SILENT));
      held.push(...await holdMany(uapiAes0, UAPI_SILENT));
      held.push(...await holdMany(adminSock, SLOWLORIS, encoder.encode("GET /healthz HTTP/1.1\r\nX-Slow: ")));
      held.push(
        ...await holdMany(
          adminSock,
          EVENT_CLIENTS,
          encoder.encode(`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`),
        ),
      );
      const floodMs = performance.now() - t0;
      // Management during the flood (the held connections stay open).
      const health = await unixGet(adminSock, "/healthz");
      const wgShow = await timed(() => a.exec(["wg", "show", "wg0", "dump"], { check: false }));
      const aesShow = await timed(() => a.exec(["wg", "show", "aes0", "dump"], { check: false }));
      const status = await timed(() =>
        a.exec([
          Deno.execPath(),
          "run",
          "--allow-all",
          "--quiet",
          MAIN,
          "status",
          "--json",
          "--admin",
          adminSock,
        ], {
          check: false,
        })
      );
      const pinged = await pinging;
      const seconds = (performance.now() - t0) / 1000;
      closeAll(held.splice(0));
      const after = await unixGet(adminSock, "/healthz");
      const wgAfter = await a.exec(["wg", "show", "wg0"], { check: false });
      const log = procA.output();
      const lines = (re: RegExp) => log.split("\n").filter((l) => re.test(l)).length;
      const adminLines = lines(/admin: admin API: /);
      const uapiLines = lines(/UAPI .*(closed the oldest|accepting a connection failed|refused)/);
      const acceptFailures = lines(/accepting a connection failed/);
      console.log(
        `  node A (open files ${NODE_NOFILE}) under ${ADMIN_SILENT} silent admin + 2 × ${UAPI_SILENT} silent ` +
          `UAPI + ${SLOWLORIS} slowloris + ${EVENT_CLIENTS} never-reading event connections (opened in ` +
          `${floodMs.toFixed(0)} ms): pings ${pinged.received}/${pinged.sent} through aes0; during the ` +
          `flood /healthz ${health.status} in ${health.ms.toFixed(0)} ms, wg show wg0 in ` +
          `${wgShow.ms.toFixed(0)} ms, aes0 in ${aesShow.ms.toFixed(0)} ms, twofold status in ` +
          `${status.ms.toFixed(0)} ms; log lines over ${seconds.toFixed(1)} s: admin ${adminLines}, UAPI ` +
          `${uapiLines} (failed accepts ${acceptFailures}); after: /healthz ${after.status}`,
      );
      assert.equal(procA.exited, false, `node A must stay up:\n${log}`);
      assert.equal(pinged.received, pinged.sent, "the data plane loses nothing");
      assert.match(health.status, /^HTTP\/1\.1 200/);
      assert.equal(wgShow.value.code, 0, wgShow.value.stderr);
      assert.match(wgShow.value.stdout, new RegExp(B.keys.publicKey.replace(/[+/]/g, "\\$&")));
      assert.equal(aesShow.value.code, 0, aesShow.value.stderr);
      assert.equal(status.value.code, 0, status.value.stderr);
      assert.match(after.status, /^HTTP\/1\.1 200/);
      assert.equal(wgAfter.code, 0);
      // At most one line per kind per second per listener (3 kinds × 3 listeners), with slack.
      assert.ok(adminLines + uapiLines <= 9 * (Math.ceil(seconds) + 1), `${adminLines + uapiLines} lines`);
      assert.doesNotMatch(log, /Deno\.serve|request\.signal/, "no Deno.serve warning in the node log");
      assert.doesNotMatch(log, /^\s+at /m, "no stack trace in the node log");
      // The data plane still answers after the flood, too.
      assert.equal((await ping(a, B.aesIp, { count: 3, interval: 0.2 })).received, 3);
    } finally {
      closeAll(held);
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
