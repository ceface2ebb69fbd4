/**
 * Handshake floods at a real `twofold up` node (issue 10, item 3). Four namespaces on one segment
 * (prefix tfl-): the target node, a legitimate wireguard-go peer, an attacker running
 * flood_sender.ts (sendmmsg batches) and the switch.
 *
 * 1. Junk flood: 15 000 pps of random 148-byte type-1 datagrams (no valid mac1) for 6 s. Meanwhile
 *    `/healthz`, `/v1/status` (admin socket) and a UAPI `get` (the socket `wg` talks to) are timed
 *    every 100 ms, and `wg show wg0` itself a few times. The issue's bound is 100 ms; the test asserts
 *    the median of each probe under 100 ms and every single probe under 1 s. Why not p99 < 100 ms: on a
 *    loaded 2-core machine a probe can lose the CPU for a scheduler slice or two through no fault of the
 *    node, and a timed assertion that flakes teaches nothing; before the fix every probe waited for the
 *    whole flood (seconds), which the 1 s ceiling catches every time. The percentiles are printed against
 *    the 100 ms target. The junk must be dropped in the data plane (counted as rxHandshakeBadMac1).
 * 2. Valid-mac1 flood: the same rate of initiations with a correct mac1 for the node's public key, for
 *    15 s; 1.5 s in, both legitimate peers (a wireguard-go device and a `twofold up` node, wg0 only)
 *    are restarted and must re-handshake (first ping answered) while the flood lasts. Then the same
 *    round with Debian wireguard-go as the target. The test prints the re-handshake times and the
 *    cookie-reply rate of both targets side by side (target: twofold within 2× of wireguard-go's
 *    re-handshake time; speed is reported, not asserted) and the node's RSS.
 *
 * Needs root, /dev/net/tun, iproute2, ping, wg and wireguard-go.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { bridgeSegment, type Netns, type Proc, sleep, Topology } from "../helpers/netns.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, startWireguardGo, type WgDeviceConfig } from "../helpers/wg_device.ts";
import { median, percentile, rssKb, waitForPing } from "../helpers/measure.ts";

const SENDER = new URL("./flood_sender.ts", import.meta.url).pathname;
const RATE_PPS = 15_000;
const JUNK_MS = 6_000;
/**
 * Long enough for three of a restarted peer's 5 s initiation retries: the first attempt gets a cookie
 * reply, the next carries the cookie, and a loaded machine can lose one more to the flood.
 */
const MAC1_FLOOD_MS = 25_000;
/** When the legitimate peers are restarted after the valid-mac1 flood started. */
const RESTART_AFTER_MS = 1_500;
const PROBE_EVERY_MS = 100;
/** The issue's responsiveness bound, asserted on the median of each probe. */
const TARGET_MS = 100;
/** No single probe may take this long (before the fix they waited for the whole flood). */
const CEILING_MS = 1_000;
const WG_PORT = 51820;
/** RSS growth allowed during the valid-mac1 flood (before the fix: ≈ 100 MiB in 12 s; now a few MiB). */
const RSS_GROWTH_LIMIT_KB = 50 * 1024;

const T: LabNode = {
  name: "target",
  keys: genKeyPair(),
  underlay: "10.239.7.1",
  wgIp: "100.64.0.1",
  aesIp: "100.127.0.1",
};
/** The legitimate wireguard-go peer. */
const LEGIT = { keys: genKeyPair(), underlay: "10.239.7.2", wgIp: "100.64.0.2" };
const ATTACKER = "10.239.7.3";
/** The legitimate twofold peer (the two nodes are each other's AES-exempt peers: wg0 only). */
const PEER_NODE: LabNode = {
  name: "peer",
  keys: genKeyPair(),
  underlay: "10.239.7.4",
  wgIp: "100.64.0.4",
  aesIp: "100.127.0.4",
};

/** A wg0-only peer entry of a node config for `n`. */
function exemptPeer(name: string, n: { keys: { publicKey: string }; wgIp: string; underlay: string }) {
  return { name, publicKey: n.keys.publicKey, wgIp: n.wgIp, endpoint: `${n.underlay}:${WG_PORT}` };
}

const legitConfig: WgDeviceConfig = {
  privateKey: LEGIT.keys.privateKey,
  listenPort: WG_PORT,
  address: `${LEGIT.wgIp}/10`,
  peers: [{
    publicKey: T.keys.publicKey,
    endpoint: `${T.underlay}:${WG_PORT}`,
    allowedIps: [`${T.wgIp}/32`],
  }],
};

interface FloodReport {
  sent: number;
  seconds: number;
  pps: number;
  replies: number;
  replyRate: number;
}

function startFlood(attacker: Netns, mode: "junk" | "mac1", ms: number): Proc {
  const args = [mode, T.underlay, String(WG_PORT), String(RATE_PPS), String(ms)];
  if (mode === "mac1") args.push(T.keys.publicKey);
  return attacker.spawn([Deno.execPath(), "run", "--allow-all", "--quiet", SENDER, ...args]);
}

async function floodResult(proc: Proc): Promise<FloodReport> {
  const code = await proc.wait();
  const line = proc.output().trim().split("\n").at(-1) ?? "";
  assert.equal(code, 0, `the flood sender failed:\n${proc.output()}`);
  return JSON.parse(line) as FloodReport;
}

/** One UAPI `get` on the socket `wg` uses; resolves with the whole answer. */
async function uapiGet(path: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode("get=1\n\n"));
    const buf = new Uint8Array(65536);
    let text = "";
    while (!/errno=-?\d+\n\n$/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

/** Times `fn` every PROBE_EVERY_MS until `until` resolves; returns the latencies (ms). */
async function probeUntil(until: Promise<unknown>, fn: () => Promise<void>): Promise<number[]> {
  let done = false;
  until.finally(() => done = true);
  const times: number[] = [];
  while (!done) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    await sleep(PROBE_EVERY_MS);
  }
  return times;
}

function summary(times: number[]): string {
  return `n=${times.length} p50 ${median(times).toFixed(1)} ms, p99 ${
    percentile(times, 99).toFixed(1)
  } ms, ` +
    `max ${Math.max(...times).toFixed(1)} ms`;
}

/** The value of `twofold_drops_total{layer="wg0",reason=REASON}` on the node's /metrics. */
async function dropCounter(http: Deno.HttpClient, reason: string): Promise<number> {
  const text = await (await fetch("http://localhost/metrics", { client: http })).text();
  const m = text.match(new RegExp(`^twofold_drops_total\\{layer="wg0",reason="${reason}"\\} (\\d+)`, "m"));
  return m === null ? NaN : Number(m[1]);
}

/** A legitimate peer the test restarts during a flood. */
interface LegitPeer {
  /** Its implementation, for the report. */
  label: string;
  ns: Netns;
  proc: Proc;
  /** Starts it again (after `proc` was killed); resolves once it is up. */
  start(): Promise<Proc>;
}

/** Re-handshake time (ms) per restarted peer (null: not back while the flood lasted), and the flood. */
interface Mac1Round {
  rehandshakeMs: Map<string, number | null>;
  flood: FloodReport;
}

/**
 * Restarts every legitimate peer during a valid-mac1 flood and times each one's first answered ping
 * (from the moment it is up again) until the flood ends.
 */
async function mac1Round(attacker: Netns, peers: LegitPeer[]): Promise<Mac1Round> {
  const flood = startFlood(attacker, "mac1", MAC1_FLOOD_MS);
  const startedAt = Date.now();
  await sleep(RESTART_AFTER_MS);
  const times = await Promise.all(peers.map(async (p) => {
    await p.proc.kill();
    p.proc = await p.start();
    const left = Math.floor((MAC1_FLOOD_MS - (Date.now() - startedAt)) / 1000);
    const t0 = performance.now();
    const r = await p.ns.exec(["ping", "-n", "-c", "1", "-i", "0.2", "-w", String(left), T.wgIp], {
      check: false,
    });
    return [p.label, r.code === 0 ? performance.now() - t0 : null] as const;
  }));
  return { rehandshakeMs: new Map(times), flood: await floodResult(flood) };
}

function rehandshakes(round: Mac1Round): string {
  return [...round.rehandshakeMs].map(([label, ms]) =>
    `${label} peer ${ms === null ? "not back" : `${ms.toFixed(0)} ms`}`
  ).join(", ");
}

integrationTest(
  "handshake floods: junk never reaches the control plane, cookies under a valid-mac1 flood (vs wireguard-go)",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary("wireguard-go"),
  ],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfl-" });
    let http: Deno.HttpClient | undefined;
    try {
      const sw = await topo.netns("tfl-sw", { replaceExisting: true });
      const target = await topo.netns("tfl-t", { replaceExisting: true });
      const legit = await topo.netns("tfl-l", { replaceExisting: true });
      const attacker = await topo.netns("tfl-x", { replaceExisting: true });
      const peerNs = await topo.netns("tfl-p", { replaceExisting: true });
      await bridgeSegment(sw, [
        { ns: target, ifname: "tfl-t0", cidr: `${T.underlay}/24` },
        { ns: legit, ifname: "tfl-l0", cidr: `${LEGIT.underlay}/24` },
        { ns: attacker, ifname: "tfl-x0", cidr: `${ATTACKER}/24` },
        { ns: peerNs, ifname: "tfl-p0", cidr: `${PEER_NODE.underlay}/24` },
      ]);
      const cfg = await writeNodeConfig(dir, T, [], {
        extraPeers: [exemptPeer("legit", LEGIT), exemptPeer(PEER_NODE.name, PEER_NODE)],
      });
      const peerCfg = await writeNodeConfig(dir, PEER_NODE, [], { extraPeers: [exemptPeer("target", T)] });
      let node = await startTwofoldUp(target, cfg);
      const wgPeer: LegitPeer = {
        label: "wireguard-go",
        ns: legit,
        proc: await startWireguardGo(legit, "wg0", legitConfig),
        start: () => startWireguardGo(legit, "wg0", legitConfig),
      };
      const nodePeer: LegitPeer = {
        label: "twofold",
        ns: peerNs,
        proc: await startTwofoldUp(peerNs, peerCfg),
        start: () => startTwofoldUp(peerNs, peerCfg),
      };
      const peers = [wgPeer, nodePeer];
      for (const p of peers) {
        assert.ok(await waitForPing(p.ns, T.wgIp, 10_000), `the ${p.label} peer reaches the node`);
      }
      http = Deno.createHttpClient({ proxy: { transport: "unix", path: `${dir}/${T.name}.admin.sock` } });
      const client = http;
      const uapiSock = `${target.runDir}/wg0.sock`;
      const rssStart = rssKb(node.pid);

      await t.step(
        "junk flood: admin API and UAPI answer; the junk is dropped in the data plane",
        async () => {
          const before = await dropCounter(client, "rxHandshakeBadMac1");
          const flood = startFlood(attacker, "junk", JUNK_MS);
          const result = floodResult(flood);
          await sleep(300); // the flood is running
          const failures: string[] = [];
          const [healthz, status, uapi, wgShow] = await Promise.all([
            probeUntil(result, async () => {
              const r = await fetch("http://localhost/healthz", { client });
              if (r.status !== 200) failures.push(`healthz ${r.status}`);
              await r.body?.cancel();
            }),
            probeUntil(result, async () => {
              const r = await fetch("http://localhost/v1/status", { client });
              if (r.status !== 200) failures.push(`status ${r.status}`);
              await r.text();
            }),
            probeUntil(result, async () => {
              const text = await uapiGet(uapiSock);
              if (!text.includes(`listen_port=${WG_PORT}`)) failures.push(`uapi: ${text.slice(0, 80)}`);
            }),
            (async () => {
              const times: number[] = [];
              for (let i = 0; i < 5; i++) {
                const t0 = performance.now();
                await target.exec(["wg", "show", "wg0"]);
                times.push(performance.now() - t0);
                await sleep(500);
              }
              return times;
            })(),
          ]);
          const report = await result;
          const after = await dropCounter(client, "rxHandshakeBadMac1");
          const rss = rssKb(node.pid);
          console.log(
            `junk flood: ${report.sent} packets in ${report.seconds} s (${report.pps} pps), ` +
              `${after - before} dropped as rxHandshakeBadMac1, ${report.replies} replies; ` +
              `RSS ${(rssStart / 1024).toFixed(1)} -> ${(rss / 1024).toFixed(1)} MiB\n` +
              `  /healthz   ${summary(healthz)}\n  /v1/status ${summary(status)}\n` +
              `  UAPI get   ${summary(uapi)}\n  wg show    ${
                summary(wgShow)
              } (includes spawning ip, sh, wg)\n` +
              `  target: every probe under ${TARGET_MS} ms`,
          );
          assert.deepEqual(failures, []);
          assert.ok(report.pps >= RATE_PPS * 0.8, `the sender reached ${report.pps} pps`);
          assert.equal(report.replies, 0, "junk gets no answer");
          // Most of the junk is counted by the worker's mac1 check (the rest, if any, was dropped by the
          // kernel while the worker was off the CPU: a loaded machine must not fail the test on that).
          assert.ok(after - before >= report.sent * 0.5, "the junk is counted as dropped in the data plane");
          const probes: [string, number[]][] = [
            ["/healthz", healthz],
            ["/v1/status", status],
            ["UAPI get", uapi],
            ["wg show", wgShow],
          ];
          for (const [name, times] of probes) {
            assert.ok(times.length >= 5, `${name} was probed during the flood`);
            assert.ok(median(times) < TARGET_MS, `${name} median ${median(times).toFixed(1)} ms`);
            assert.ok(Math.max(...times) < CEILING_MS, `${name} max ${Math.max(...times).toFixed(1)} ms`);
          }
          for (const p of peers) {
            assert.ok(await waitForPing(p.ns, T.wgIp, 5_000), `the ${p.label} peer still reaches the node`);
          }
        },
      );

      let ours: Mac1Round | undefined;
      await t.step("valid-mac1 flood: restarted peers re-handshake with twofold", async () => {
        const rssBefore = rssKb(node.pid);
        const reasons = ["rxHandshakeRateLimited", "rxHandshakeQueueFull"];
        const dropsBefore = await Promise.all(reasons.map((r) => dropCounter(client, r)));
        const round = mac1Round(attacker, peers);
        const statusTimes = await probeUntil(round, async () => {
          const r = await fetch("http://localhost/v1/status", { client });
          await r.text();
        });
        ours = await round;
        const rssAfter = rssKb(node.pid);
        const dropsAfter = await Promise.all(reasons.map((r) => dropCounter(client, r)));
        const drops = reasons.map((r, i) => `${r} ${dropsAfter[i] - dropsBefore[i]}`).join(", ");
        console.log(
          `valid-mac1 flood at twofold: ${ours.flood.sent} packets (${ours.flood.pps} pps), ` +
            `${ours.flood.replies} cookie replies (${ours.flood.replyRate}/s); re-handshake: ${
              rehandshakes(ours)
            }; ${drops}; /v1/status ${summary(statusTimes)}; RSS ${(rssBefore / 1024).toFixed(1)} -> ${
              (rssAfter / 1024).toFixed(1)
            } MiB`,
        );
        for (const [label, ms] of ours.rehandshakeMs) {
          assert.ok(ms !== null, `the restarted ${label} peer re-handshakes while the flood lasts`);
        }
        assert.ok(ours.flood.replies > 0, "the node answers with cookie replies under load");
        // This flood does reach the control plane (a burst of UNDER_LOAD_QUEUE initiations about once a
        // second, one X25519 each) while a twofold peer starts on the same two cores: the median is held
        // to the target, single probes to twice the junk-flood ceiling (before the fix: 12 s).
        assert.ok(median(statusTimes) < TARGET_MS, `/v1/status median ${median(statusTimes).toFixed(1)} ms`);
        assert.ok(Math.max(...statusTimes) < 2 * CEILING_MS, "/v1/status stays responsive");
        assert.ok(
          rssAfter - rssBefore < RSS_GROWTH_LIMIT_KB,
          `RSS grew by ${((rssAfter - rssBefore) / 1024).toFixed(1)} MiB during the flood`,
        );
      });

      await t.step("the same valid-mac1 flood at Debian wireguard-go, side by side", async () => {
        await node.kill();
        node = await startWireguardGo(target, "wg0", {
          privateKey: T.keys.privateKey,
          listenPort: WG_PORT,
          address: `${T.wgIp}/10`,
          peers: [LEGIT, PEER_NODE].map((p) => ({
            publicKey: p.keys.publicKey,
            endpoint: `${p.underlay}:${WG_PORT}`,
            allowedIps: [`${p.wgIp}/32`],
          })),
        });
        // The peers still hold their sessions with the twofold node: a fresh start gets new handshakes.
        for (const p of peers) {
          await p.proc.kill();
          p.proc = await p.start();
          assert.ok(await waitForPing(p.ns, T.wgIp, 10_000), `the ${p.label} peer reaches wireguard-go`);
        }
        const theirs = await mac1Round(attacker, peers);
        console.log(
          `valid-mac1 flood (${RATE_PPS} pps asked), re-handshake of restarted peers and cookie replies:\n` +
            `  target twofold:      ${rehandshakes(ours!)}; cookie replies ${ours!.flood.replyRate}/s ` +
            `(sent ${ours!.flood.pps} pps)\n` +
            `  target wireguard-go: ${rehandshakes(theirs)}; cookie replies ${theirs.flood.replyRate}/s ` +
            `(sent ${theirs.flood.pps} pps)\n` +
            `  target: twofold's re-handshake times within 2x wireguard-go's`,
        );
        assert.ok(theirs.flood.replies > 0, "wireguard-go answers with cookie replies (the reference works)");
      });
    } finally {
      http?.close();
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
