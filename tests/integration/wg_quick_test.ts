/**
 * Acceptance test of `bin/twofold-wg` as wg-quick's userspace implementation: in namespace tfq-a,
 * `WG_QUICK_USERSPACE_IMPLEMENTATION=bin/twofold-wg wg-quick up tfq0.conf` brings up a working
 * interface to a wireguard-go peer in tfq-b, `wg show` / `wg showconf` describe it and
 * `wg showconf | wg setconf` round-trips, and `wg-quick down` removes the interface and ends the daemon.
 * @module
 */
import assert from "node:assert/strict";
import { listNamespaces, type Netns, type Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import {
  genKeyPair,
  genPresharedKey,
  startWireguardGo,
  uapiSocketExists,
  wgShowDump,
} from "../helpers/wg_device.ts";
import { ping, waitForPing } from "../helpers/measure.ts";
import { denoBin } from "../helpers/deno.ts";

const PREFIX = "tfq-";
const IFNAME = "tfq0";
/** The wg-quick launcher under test, resolved from this file. */
const TWOFOLD_WG = new URL("../../bin/twofold-wg", import.meta.url).pathname;
const UNDERLAY_A = "10.231.2.1";
const UNDERLAY_B = "10.231.2.2";
const PORT_A = 51820;
const PORT_B = 51821;
const TUNNEL_A = "100.64.0.1";
const TUNNEL_B = "100.64.0.2";
/** How long wg-quick up/down may take (Deno start-up included). */
const WG_QUICK_TIMEOUT_MS = 45_000;

const checks = [
  requireRoot(),
  requireTun(),
  requireBinary("ip"),
  requireBinary("ping"),
  requireBinary("wireguard-go"),
  requireBinary("wg"),
  requireBinary("wg-quick"),
];

/** PIDs of all live descendants of `root` (from the PPid field of /proc/PID/stat), parents first. */
function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry.name)]);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie. */
function pidRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function signalPid(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Inode of network namespace `ns` (as `ip netns add` bind-mounted it). */
function netnsInode(ns: Netns): number | null {
  for (const dir of ["/run/netns", "/var/run/netns"]) {
    try {
      return Deno.statSync(`${dir}/${ns.name}`).ino;
    } catch {
      // try the next location
    }
  }
  return null;
}

/**
 * PIDs of twofold processes for `ifname` running in namespace `ns`: command line `… wg … IFNAME` and
 * /proc/PID/ns/net pointing at `ns` (so nothing outside the namespaces this test created matches).
 * `foregroundOnly` keeps only the daemon itself (`wg --foreground IFNAME`), not the launcher.
 */
function twofoldPids(ns: Netns, ifname: string, foregroundOnly: boolean): number[] {
  const inode = netnsInode(ns);
  if (inode === null) return [];
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${entry.name}/ns/net`) !== `net:[${inode}]`) continue;
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0").filter((a) => a !== "");
      const wgAt = args.indexOf("wg");
      if (wgAt < 0 || args[args.length - 1] !== ifname) continue;
      if (foregroundOnly && !args.slice(wgAt).some((a) => a === "--foreground" || a === "-f")) continue;
      if (pidRunning(Number(entry.name))) pids.push(Number(entry.name));
    } catch {
      // exited while we looked, or not ours to read
    }
  }
  return pids;
}

/**
 * Runs wg-quick inside `ns` (with its private run dir) and waits up to {@link WG_QUICK_TIMEOUT_MS}.
 * Spawned rather than exec'd so that a hung launcher can be stopped: on timeout, every descendant
 * (launcher, daemon) and wg-quick itself are killed by PID, and the result says so.
 */
async function runWgQuick(
  ns: Netns,
  args: string[],
  env: Record<string, string>,
): Promise<{ finished: boolean; code: number | null; output: string }> {
  const proc: Proc = ns.spawn(["wg-quick", ...args], { env });
  const finished = await proc.waitFor(WG_QUICK_TIMEOUT_MS);
  if (!finished) {
    const stuck = descendantPids(proc.pid);
    for (const pid of [...stuck].reverse()) signalPid(pid, "SIGTERM");
    await proc.kill();
    await waitUntil(() => stuck.every((pid) => !pidRunning(pid)), 3000);
    for (const pid of stuck) if (pidRunning(pid)) signalPid(pid, "SIGKILL");
  }
  await proc.wait();
  return { finished, code: finished ? proc.exitCode : null, output: proc.output() };
}

async function linkExists(ns: Netns, ifname: string): Promise<boolean> {
  return (await ns.exec(["ip", "link", "show", "dev", ifname], { check: false })).code === 0;
}

integrationTest("wg-quick up/down with bin/twofold-wg against wireguard-go", checks, async (t) => {
  const leftovers = (await listNamespaces()).filter((n) => n.startsWith(PREFIX));
  assert.deepEqual(leftovers, [], `left-over ${PREFIX} namespaces (delete them with ip netns del)`);
  const topo = new Topology();
  // Holds the config and, through TMPDIR, the log file the launcher creates for its daemon.
  const tmp = await Deno.makeTempDir({ prefix: "tfq-" });
  let daemonPid: number | null = null;
  let nsA: Netns | null = null;
  /** Set once wg-quick up succeeded; the later steps need the interface. */
  let isUp = false;
  const requireUp = () => assert.ok(isUp, "skipped: wg-quick up failed (see the first step)");
  try {
    const a = nsA = await topo.netns(`${PREFIX}a`);
    const b = await topo.netns(`${PREFIX}b`);
    await vethPair(a, "tfq-va", `${UNDERLAY_A}/24`, b, "tfq-vb", `${UNDERLAY_B}/24`);
    const keysA = genKeyPair();
    const keysB = genKeyPair();
    const psk = genPresharedKey();
    await startWireguardGo(b, "wg0", {
      privateKey: keysB.privateKey,
      listenPort: PORT_B,
      address: `${TUNNEL_B}/10`,
      peers: [{
        publicKey: keysA.publicKey,
        psk,
        endpoint: `${UNDERLAY_A}:${PORT_A}`,
        allowedIps: [`${TUNNEL_A}/32`],
      }],
    });
    const conf = `${tmp}/${IFNAME}.conf`;
    await Deno.writeTextFile(
      conf,
      [
        "[Interface]",
        `Address = ${TUNNEL_A}/10`,
        `ListenPort = ${PORT_A}`,
        `PrivateKey = ${keysA.privateKey}`,
        "",
        "[Peer]",
        `PublicKey = ${keysB.publicKey}`,
        `PresharedKey = ${psk}`,
        `AllowedIPs = ${TUNNEL_B}/32`,
        `Endpoint = ${UNDERLAY_B}:${PORT_B}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const env = { WG_QUICK_USERSPACE_IMPLEMENTATION: TWOFOLD_WG, DENO_BIN: denoBin(), TMPDIR: tmp };

    await t.step("wg-quick up returns with the interface up and twofold serving it", async () => {
      const up = await runWgQuick(a, ["up", conf], env);
      const daemons = twofoldPids(a, IFNAME, true);
      daemonPid = daemons[0] ?? null; // before asserting, so that cleanup finds it
      assert.ok(
        up.finished,
        `wg-quick up did not return within ${WG_QUICK_TIMEOUT_MS} ms (bin/twofold-wg must return once ` +
          `the daemon's socket is up); output:\n${up.output}`,
      );
      assert.equal(up.code, 0, `wg-quick up failed:\n${up.output}`);
      assert.ok(uapiSocketExists(a, IFNAME), "no UAPI socket");
      assert.equal(daemons.length, 1, `expected one twofold daemon for ${IFNAME}, found PIDs [${daemons}]`);
      assert.deepEqual(twofoldPids(a, IFNAME, false), daemons, "the launcher is still running");
      const addr = await a.exec(["ip", "-o", "-4", "addr", "show", "dev", IFNAME]);
      assert.match(addr.stdout, new RegExp(`inet ${TUNNEL_A.replaceAll(".", "\\.")}/10`));
      const link = await a.exec(["ip", "-o", "link", "show", "dev", IFNAME]);
      assert.match(link.stdout, /[<,]UP[,>]/, "interface not up");
      assert.match(link.stdout, /mtu 1420/);
      isUp = true;
    });

    await t.step("ping through the interface both ways", async () => {
      requireUp();
      assert.ok(await waitForPing(a, TUNNEL_B, 15_000), "no reply from the wireguard-go peer");
      assert.equal((await ping(a, TUNNEL_B, { count: 3, interval: 0.05 })).received, 3);
      assert.equal((await ping(b, TUNNEL_A, { count: 3, interval: 0.05 })).received, 3);
      const peer = (await wgShowDump(a, IFNAME)).peers[0];
      assert.equal(peer.endpoint, `${UNDERLAY_B}:${PORT_B}`);
      assert.deepEqual(peer.allowedIps, [`${TUNNEL_B}/32`]);
      assert.equal(peer.hasPresharedKey, true);
      assert.ok(peer.latestHandshake > 0 && peer.rxBytes > 0 && peer.txBytes > 0);
    });

    await t.step("wg show describes the interface", async () => {
      requireUp();
      const out = (await a.exec(["wg", "show", IFNAME])).stdout;
      for (
        const expected of [
          `interface: ${IFNAME}`,
          `public key: ${keysA.publicKey}`,
          "private key: (hidden)",
          `listening port: ${PORT_A}`,
          `peer: ${keysB.publicKey}`,
          "preshared key: (hidden)",
          `endpoint: ${UNDERLAY_B}:${PORT_B}`,
          `allowed ips: ${TUNNEL_B}/32`,
          "latest handshake:",
          "transfer:",
        ]
      ) {
        assert.ok(out.includes(expected), `missing "${expected}" in wg show output`);
      }
      assert.ok(!out.includes(keysA.privateKey) && !out.includes(psk), "wg show leaked a secret");
    });

    await t.step("wg showconf | wg setconf leaves the configuration unchanged", async () => {
      requireUp();
      const before = (await a.exec(["wg", "showconf", IFNAME])).stdout;
      for (
        const expected of [
          `ListenPort = ${PORT_A}`,
          `PrivateKey = ${keysA.privateKey}`,
          `PublicKey = ${keysB.publicKey}`,
          `PresharedKey = ${psk}`,
          `AllowedIPs = ${TUNNEL_B}/32`,
          `Endpoint = ${UNDERLAY_B}:${PORT_B}`,
        ]
      ) {
        assert.ok(
          before.includes(expected),
          `wg showconf lacks a line like "${expected.split(" = ")[0]} = …"`,
        );
      }
      await a.exec(["wg", "setconf", IFNAME, "/dev/stdin"], { stdin: before });
      const after = (await a.exec(["wg", "showconf", IFNAME])).stdout;
      assert.ok(after === before, "wg showconf differs after wg setconf of its own output");
      assert.ok(await waitForPing(a, TUNNEL_B, 10_000), "no traffic after wg setconf");
    });

    await t.step("wg-quick down removes the interface and the daemon exits", async () => {
      requireUp();
      const down = await runWgQuick(a, ["down", conf], env);
      assert.ok(down.finished, `wg-quick down did not return; output:\n${down.output}`);
      assert.equal(down.code, 0, `wg-quick down failed:\n${down.output}`);
      assert.equal(await linkExists(a, IFNAME), false, `${IFNAME} still exists`);
      assert.ok(await waitUntil(() => !uapiSocketExists(a, IFNAME), 5000), "UAPI socket still there");
      assert.ok(await waitUntil(() => !pidRunning(daemonPid!), 5000), `daemon ${daemonPid} still running`);
      assert.equal((await a.exec(["wg", "show", "interfaces"])).stdout.trim(), "");
    });

    await t.step("the daemon's log has no stack trace", async () => {
      let logs = "";
      for await (const e of Deno.readDir(tmp)) {
        if (e.name.endsWith(".log")) logs += await Deno.readTextFile(`${tmp}/${e.name}`);
      }
      assert.ok(!logs.includes("    at "), `stack trace in the daemon log:\n${logs}`);
    });
  } finally {
    // The daemon is detached from wg-quick: stop it by its PID if a failed step left it running.
    const found = nsA === null ? [] : twofoldPids(nsA, IFNAME, false);
    const stray = [...new Set([...(daemonPid === null ? [] : [daemonPid]), ...found])];
    for (const pid of stray) if (pidRunning(pid)) signalPid(pid, "SIGTERM");
    if (!(await waitUntil(() => stray.every((pid) => !pidRunning(pid)), 3000))) {
      for (const pid of stray) if (pidRunning(pid)) signalPid(pid, "SIGKILL");
    }
    await topo.cleanup();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const after = (await listNamespaces()).filter((n) => n.startsWith(PREFIX));
  assert.deepEqual(after, [], "namespaces left after cleanup");
});
