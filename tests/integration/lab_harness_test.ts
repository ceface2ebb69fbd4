/**
 * Proves the namespace harness itself: private /var/run/wireguard per namespace, PID-tracked
 * processes, SIGKILL escalation, wireguard-go on both sides of a veth pair, ping through wg0, and
 * that cleanup leaves no namespace or process behind. Namespaces: tfh-*.
 */
import assert from "node:assert/strict";
import {
  isCI,
  listNamespaces,
  requireBinary,
  requireRoot,
  requireTun,
  skipReason,
  Topology,
  vethPair,
  wireguardRunDir,
} from "../helpers/netns.ts";
import { assertPrerequisites, integrationTest } from "../helpers/prereq.ts";
import {
  genKeyPair,
  genPresharedKey,
  parseWgDump,
  renderWgConfig,
  startWireguardGo,
  uapiSocketExists,
  wgShowDump,
} from "../helpers/wg_device.ts";
import {
  median,
  parseIperf3Json,
  parsePingOutput,
  percentile,
  ping,
  waitForPing,
} from "../helpers/measure.ts";

const PREFIX = "tfh-";

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function ourNamespaces(): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(PREFIX));
}

Deno.test("harness parsers and helpers (no root needed)", async (t) => {
  await t.step("parseWgDump reads interface and peers, hides secrets", () => {
    const text = "PRIVKEY=\tPUBA=\t51820\toff\n" +
      "PUBB=\tPSK=\t10.0.0.2:51820\t100.64.0.2/32,10.9.0.0/16\t1700000000\t1234\t5678\t25\n" +
      "PUBC=\t(none)\t(none)\t(none)\t0\t0\t0\toff\n";
    const d = parseWgDump(text);
    assert.deepEqual(d.iface, { publicKey: "PUBA=", listenPort: 51820, fwmark: null });
    assert.equal(d.peers.length, 2);
    assert.deepEqual(d.peers[0], {
      publicKey: "PUBB=",
      hasPresharedKey: true,
      endpoint: "10.0.0.2:51820",
      allowedIps: ["100.64.0.2/32", "10.9.0.0/16"],
      latestHandshake: 1700000000,
      rxBytes: 1234,
      txBytes: 5678,
      persistentKeepalive: 25,
    });
    assert.equal(d.peers[1].endpoint, null);
    assert.deepEqual(d.peers[1].allowedIps, []);
    assert.equal(d.peers[1].hasPresharedKey, false);
    assert.ok(!JSON.stringify(d).includes("PRIVKEY") && !JSON.stringify(d).includes("PSK="));
    assert.throws(() => parseWgDump(""));
    assert.throws(() => parseWgDump("a\tb\n"));
  });

  await t.step("parsePingOutput counts loss and RTT percentiles", () => {
    const text = "PING 100.64.0.2 (100.64.0.2) 56(84) bytes of data.\n" +
      "64 bytes from 100.64.0.2: icmp_seq=1 ttl=64 time=0.500 ms\n" +
      "64 bytes from 100.64.0.2: icmp_seq=3 ttl=64 time=1.50 ms\n" +
      "\n--- 100.64.0.2 ping statistics ---\n" +
      "3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n" +
      "rtt min/avg/max/mdev = 0.500/1.000/1.500/0.500 ms\n";
    const r = parsePingOutput(text);
    assert.equal(r.sent, 3);
    assert.equal(r.received, 2);
    assert.equal(r.rttAvgMs, 1);
    assert.equal(r.rttP50Ms, 0.5);
    assert.equal(r.rttP99Ms, 1.5);
    assert.throws(() => parsePingOutput("ping: connect: Network is unreachable"));
  });

  await t.step("parseIperf3Json returns Gbit/s or iperf3's error", () => {
    const ok = JSON.stringify({
      end: { sum_received: { bits_per_second: 2.5e9, bytes: 3.125e9 }, sum_sent: { retransmits: 7 } },
    });
    assert.deepEqual(parseIperf3Json(ok), { gbps: 2.5, retransmits: 7, bytes: 3.125e9 });
    assert.throws(() => parseIperf3Json(JSON.stringify({ error: "unable to connect" })), /unable to connect/);
    assert.throws(() => parseIperf3Json("not json"), /did not print JSON/);
  });

  await t.step("median and percentile", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.ok(Number.isNaN(median([])));
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(hundred, 50), 50);
    assert.equal(percentile(hundred, 99), 99);
    assert.equal(percentile([7], 99), 7);
  });

  await t.step("genKeyPair gives wg-format keys; renderWgConfig lays out peers", () => {
    const k = genKeyPair();
    assert.match(k.privateKey, /^[A-Za-z0-9+/]{43}=$/);
    assert.match(k.publicKey, /^[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(k.privateKey, genKeyPair().privateKey);
    const psk = genPresharedKey();
    const cfg = renderWgConfig({
      privateKey: k.privateKey,
      listenPort: 51820,
      peers: [{ publicKey: "P=", psk, allowedIps: ["100.64.0.2/32"], endpoint: "10.0.0.2:51820" }],
    });
    assert.match(cfg, /^\[Interface\]\nPrivateKey = .+\nListenPort = 51820\n\n\[Peer\]\nPublicKey = P=\n/);
    assert.match(cfg, /AllowedIPs = 100\.64\.0\.2\/32\nEndpoint = 10\.0\.0\.2:51820\n$/);
    assert.ok(!cfg.includes("PersistentKeepalive"));
  });

  await t.step("skipReason skips outside CI and runs (to fail) under CI", () => {
    const saved = Deno.env.get("CI");
    try {
      Deno.env.delete("CI");
      assert.equal(skipReason(null, null), false);
      assert.equal(skipReason(null, "needs root", "no tun"), "needs root; no tun");
      Deno.env.set("CI", "true");
      assert.equal(isCI(), true);
      assert.equal(skipReason("needs root"), false);
      assert.throws(
        () => assertPrerequisites(null, "needs root"),
        /CI: failing instead of skipping.*needs root/,
      );
      assert.doesNotThrow(() => assertPrerequisites(null));
    } finally {
      if (saved === undefined) Deno.env.delete("CI");
      else Deno.env.set("CI", saved);
    }
  });
});

const netnsChecks = [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping")];

integrationTest("netns: exec, private run dir, spawn and kill by PID", netnsChecks, async (t) => {
  assert.deepEqual(await ourNamespaces(), [], "left-over tfh- namespaces; delete them first");
  const pids: number[] = [];
  let nsName = "";
  {
    await using topo = new Topology();
    const ns = await topo.netns(`${PREFIX}c`);
    nsName = ns.name;

    await t.step("exec runs inside the namespace, passes stdin and env, checks exit codes", async () => {
      const links = await ns.exec(["ip", "-o", "link", "show"]);
      assert.deepEqual(links.stdout.trim().split("\n").map((l) => l.split(": ")[1]), ["lo"]);
      const echo = await ns.exec(["sh", "-c", 'cat; printf "%s" "$TFH_VAR"'], {
        stdin: "from-stdin ",
        env: { TFH_VAR: "from-env" },
      });
      assert.equal(echo.stdout, "from-stdin from-env");
      await assert.rejects(ns.exec(["sh", "-c", "echo oops >&2; exit 3"]), /exit 3[\s\S]*oops/);
      assert.equal((await ns.exec(["sh", "-c", "exit 4"], { check: false })).code, 4);
    });

    await t.step("the run dir is private to the namespace's commands", async () => {
      const inside = await ns.exec([
        "sh",
        "-c",
        `echo marker > ${wireguardRunDir()}/tfh-marker && ls /var/run/wireguard`,
      ]);
      assert.equal(inside.stdout.trim(), "tfh-marker");
      assert.equal(Deno.readTextFileSync(`${ns.runDir}/tfh-marker`), "marker\n");
      let onHost = false;
      try {
        Deno.statSync(`${wireguardRunDir()}/tfh-marker`);
        onHost = true;
      } catch { /* expected: the host's /run/wireguard is untouched */ }
      assert.equal(onHost, false, "bind mount leaked to the host");
    });

    await t.step("spawn tracks the daemon's own PID; kill escalates to SIGKILL", async () => {
      const p = ns.spawn(["sh", "-c", 'trap "" TERM; echo started; while :; do sleep 0.1; done']);
      pids.push(p.pid);
      assert.ok(await waitForOutput(() => p.output(), "started", 5000));
      assert.equal(Deno.readTextFileSync(`/proc/${p.pid}/comm`).trim(), "sh");
      const t0 = Date.now();
      await p.kill();
      const took = Date.now() - t0;
      assert.ok(took >= 2900 && took < 6000, `kill took ${took} ms, expected ~3 s then SIGKILL`);
      assert.equal(p.exited, true);
      assert.equal(p.exitCode, 128 + 9);
      assert.equal(pidAlive(p.pid), false);
    });

    await t.step("a well-behaved process stops on SIGTERM and its log file gets the output", async () => {
      const log = await Deno.makeTempFile({ prefix: "tfh-log-" });
      try {
        const p = ns.spawn(["sh", "-c", "echo hello-log; exec sleep 30"], { logFile: log });
        pids.push(p.pid);
        assert.ok(await waitForOutput(() => p.output(), "hello-log", 5000));
        const t0 = Date.now();
        await p.kill();
        assert.ok(Date.now() - t0 < 2000, "SIGTERM should have been enough");
        assert.equal(Deno.readTextFileSync(log), "hello-log\n");
      } finally {
        await Deno.remove(log);
      }
    });

    // leave one process running: Topology cleanup must kill it
    const left = ns.spawn(["sleep", "30"]);
    pids.push(left.pid);
    assert.ok(topo.pids.includes(left.pid));
  }
  await t.step("after cleanup no namespace and no started PID remains", async () => {
    assert.ok(!(await listNamespaces()).includes(nsName));
    for (const pid of pids) assert.equal(pidAlive(pid), false, `PID ${pid} still alive`);
  });
});

async function waitForOutput(get: () => string, needle: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (get().includes(needle)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const wgChecks = [...netnsChecks, requireBinary("wireguard-go"), requireBinary("wg")];

integrationTest(
  "wireguard-go on both sides: ping through wg0, private UAPI sockets, clean teardown",
  wgChecks,
  async (t) => {
    assert.deepEqual(await ourNamespaces(), [], "left-over tfh- namespaces; delete them first");
    const topo = new Topology();
    const pids: number[] = [];
    const keysA = genKeyPair();
    const keysB = genKeyPair();
    const psk = genPresharedKey();
    try {
      const a = await topo.netns(`${PREFIX}a`);
      const b = await topo.netns(`${PREFIX}b`);
      await vethPair(a, "tfh-va", "10.201.0.1/24", b, "tfh-vb", "10.201.0.2/24");
      assert.ok(await waitForPing(a, "10.201.0.2", 5000), "veth does not pass traffic");

      const procA = await startWireguardGo(a, "wg0", {
        privateKey: keysA.privateKey,
        listenPort: 51820,
        address: "100.64.0.1/10",
        mtu: 1420,
        peers: [{
          publicKey: keysB.publicKey,
          endpoint: "10.201.0.2:51820",
          allowedIps: ["100.64.0.2/32"],
          psk,
        }],
      });
      const procB = await startWireguardGo(b, "wg0", {
        privateKey: keysB.privateKey,
        listenPort: 51820,
        address: "100.64.0.2/10",
        mtu: 1420,
        peers: [{
          publicKey: keysA.publicKey,
          endpoint: "10.201.0.1:51820",
          allowedIps: ["100.64.0.1/32"],
          psk,
        }],
      });
      pids.push(procA.pid, procB.pid);

      await t.step("the tracked PID is the wireguard-go process itself", () => {
        for (const p of [procA, procB]) {
          assert.equal(Deno.readTextFileSync(`/proc/${p.pid}/comm`).trim(), "wireguard-go");
        }
      });

      await t.step("ping through wg0 succeeds", async () => {
        assert.ok(await waitForPing(a, "100.64.0.2", 10_000), "no reply through wg0");
        const r = await ping(a, "100.64.0.2", { count: 5, interval: 0.05, timeoutS: 1 });
        assert.equal(r.sent, 5);
        assert.equal(r.received, 5);
        assert.ok(r.rttAvgMs > 0 && r.rttAvgMs < 100, `rtt ${r.rttAvgMs} ms`);
        const back = await ping(b, "100.64.0.1", { count: 3, interval: 0.05 });
        assert.equal(back.received, 3);
      });

      await t.step("each namespace sees only its own wg0 (private run dir)", async () => {
        for (const [ns, own, other] of [[a, keysA, keysB], [b, keysB, keysA]] as const) {
          const ifaces = await ns.exec(["wg", "show", "interfaces"]);
          assert.equal(ifaces.stdout.trim(), "wg0");
          assert.deepEqual([...Deno.readDirSync(ns.runDir)].map((e) => e.name), ["wg0.sock"]);
          assert.ok(uapiSocketExists(ns, "wg0"));
          const dump = await wgShowDump(ns, "wg0");
          assert.equal(dump.iface.publicKey, own.publicKey);
          assert.equal(dump.iface.listenPort, 51820);
          assert.equal(dump.peers.length, 1);
          assert.equal(dump.peers[0].publicKey, other.publicKey);
          assert.equal(dump.peers[0].hasPresharedKey, true);
          assert.ok(dump.peers[0].latestHandshake > 0, "no handshake recorded");
          assert.ok(dump.peers[0].rxBytes > 0 && dump.peers[0].txBytes > 0);
        }
        let hostSocket = false;
        try {
          Deno.statSync(`${wireguardRunDir()}/wg0.sock`);
          hostSocket = true;
        } catch { /* expected */ }
        assert.equal(hostSocket, false, "a wg0.sock appeared in the host's run dir");
      });
    } finally {
      await topo.cleanup();
    }

    await t.step("after cleanup no tfh- namespace and no started PID remains", async () => {
      assert.deepEqual(await ourNamespaces(), []);
      assert.equal(pids.length, 2);
      for (const pid of pids) assert.equal(pidAlive(pid), false, `PID ${pid} still alive`);
    });
  },
);
