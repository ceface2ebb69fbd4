/**
 * Rosenpass on wg0, end to end: two `twofold up` nodes (tfpq-a, tfpq-b) with Rosenpass keys (strict
 * mode), a stock wireguard-go peer (tfpq-c, AES-exempt, mode off) of node A, and an attacker
 * (tfpq-x), on one switched underlay. Protocol timers are shortened with the test-only knob
 * TWOFOLD_TEST_ROSENPASS_TIMERS (exchange every ≈ 3 s, stale after 12 s, wg0 rekey every 2 s).
 * Steps: the wg0 PSK is installed shortly after start (printed); 30 s of rotations under a 10 ms ping
 * through wg0 and aes0 lose nothing; dropping Rosenpass's UDP port on B (nft) makes A's key go stale
 * and wg0 (and aes0 inside it) to B stop, and lifting it recovers both; an InitHello flood with valid
 * MACs leaves the legitimate ping and exchanges working (node CPU and memory printed). The stock peer
 * pings node A throughout. McEliece key pairs are generated at test start (two in parallel, ≈ 10 s).
 * Needs root, /dev/net/tun, iproute2, ping, wg, nft and wireguard-go.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { bridgeSegment, type Netns, type Proc, sleep, Topology, waitUntil } from "../helpers/netns.ts";
import { genKeyPair, genPresharedKey, startWireguardGo, type WgDeviceConfig } from "../helpers/wg_device.ts";
import { parsePingOutput, rssKb, waitForPing } from "../helpers/measure.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { generateStaticKeyPair, publicKeyFingerprint } from "../../src/rosenpass/key-files.ts";
import { PROFILE_V02 } from "../../src/rosenpass/profile.ts";

const PREFIX = "tfpq-";
const NET = "10.247.0";
const RP_PORT = 51821;
const A: LabNode = {
  name: "pq-a",
  keys: genKeyPair(),
  underlay: `${NET}.1`,
  wgIp: "100.64.47.1",
  aesIp: "100.127.47.1",
};
const B: LabNode = {
  name: "pq-b",
  keys: genKeyPair(),
  underlay: `${NET}.2`,
  wgIp: "100.64.47.2",
  aesIp: "100.127.47.2",
};
const STOCK = { name: "stock", keys: genKeyPair(), underlay: `${NET}.3`, wgIp: "100.64.47.3" };
const ATTACKER = `${NET}.9`;
const FLOOD_MS = 30_000; // the 30 s of valid-MAC InitHellos
const AGENT = new URL("./rosenpass_flood_agent.ts", import.meta.url).pathname;
/** Shortened timers (test-only knob). */
const TIMERS = {
  rekeyAfterResponder: 3,
  rekeyAfterInitiator: 3.5,
  rejectAfter: 12,
  wg0RekeyAfterSeconds: 2,
};

/** Adds the Rosenpass sections to a config written by writeNodeConfig. */
async function addRosenpass(path: string, own: string, peer: string, peerKeyFile: string, fp: string) {
  const cfg = JSON.parse(await Deno.readTextFile(path));
  cfg.rosenpass = { secretKeyFile: `${own}.sk`, publicKeyFile: `${own}.pk` };
  cfg.peers.find((p: { name: string }) => p.name === peer).rosenpass = {
    publicKeyFile: peerKeyFile,
    fingerprint: fp,
  };
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
}

/** Lines of `proc`'s output after offset `from` matching `re`. */
function linesAfter(proc: Proc, from: number, re: RegExp): string[] {
  return proc.output().slice(from).split("\n").filter((l) => re.test(l));
}

/** User + system CPU seconds of `pid` so far. */
function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Starts a 10 ms ping; the result counts gaps in the echo sequence (requests still in flight at the stop excluded). */
function startPing(
  ns: Netns,
  ip: string,
  interval = "0.01",
): { stop(): Promise<{ sent: number; lost: number }> } {
  const proc = ns.spawn(["ping", "-n", "-i", interval, "-W", "1", ip]);
  return {
    async stop() {
      await proc.kill("SIGINT");
      const out = proc.output();
      const seqs = new Set([...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1])));
      const last = Math.max(0, ...seqs);
      return { sent: last, lost: last - seqs.size };
    },
  };
}

integrationTest(
  "rosenpass on wg0: PSK installed at start, rotations lose nothing, stale closes strict wg0, flood withstood",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary("nft"),
    requireBinary("wireguard-go"),
  ],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: PREFIX });
    try {
      const keygenStart = performance.now();
      const [kpA, kpB] = await Promise.all([
        generateStaticKeyPair(PROFILE_V02),
        generateStaticKeyPair(PROFILE_V02),
      ]);
      console.log(`two McEliece key pairs in ${((performance.now() - keygenStart) / 1000).toFixed(1)} s`);
      for (const [name, kp] of [[A.name, kpA], [B.name, kpB]] as const) {
        await Deno.writeFile(`${dir}/${name}.sk`, kp.secretKey, { mode: 0o600 });
        await Deno.chmod(`${dir}/${name}.sk`, 0o600);
        await Deno.writeFile(`${dir}/${name}.pk`, kp.publicKey);
      }
      const sw = await topo.netns(`${PREFIX}sw`, { replaceExisting: true });
      const a = await topo.netns(`${PREFIX}a`, { replaceExisting: true });
      const b = await topo.netns(`${PREFIX}b`, { replaceExisting: true });
      const c = await topo.netns(`${PREFIX}c`, { replaceExisting: true });
      const x = await topo.netns(`${PREFIX}x`, { replaceExisting: true });
      await bridgeSegment(sw, [
        { ns: a, ifname: `${PREFIX}a0`, cidr: `${A.underlay}/24` },
        { ns: b, ifname: `${PREFIX}b0`, cidr: `${B.underlay}/24` },
        { ns: c, ifname: `${PREFIX}c0`, cidr: `${STOCK.underlay}/24` },
        { ns: x, ifname: `${PREFIX}x0`, cidr: `${ATTACKER}/24` },
      ]);
      const stockPeer = {
        name: STOCK.name,
        publicKey: STOCK.keys.publicKey,
        wgIp: STOCK.wgIp,
        endpoint: `${STOCK.underlay}:51820`,
      };
      const cfgA = await writeNodeConfig(dir, A, [B], { extraPeers: [stockPeer] });
      const cfgB = await writeNodeConfig(dir, B, [A]);
      await addRosenpass(
        cfgA,
        `${dir}/${A.name}`,
        B.name,
        `${dir}/${B.name}.pk`,
        publicKeyFingerprint(kpB.publicKey),
      );
      await addRosenpass(
        cfgB,
        `${dir}/${B.name}`,
        A.name,
        `${dir}/${A.name}.pk`,
        publicKeyFingerprint(kpA.publicKey),
      );
      const stockConfig: WgDeviceConfig = {
        privateKey: STOCK.keys.privateKey,
        listenPort: 51820,
        address: `${STOCK.wgIp}/10`,
        peers: [{
          publicKey: A.keys.publicKey,
          endpoint: `${A.underlay}:51820`,
          allowedIps: [`${A.wgIp}/32`],
        }],
      };
      await startWireguardGo(c, "wg0", stockConfig);

      const env = { TWOFOLD_TEST_ROSENPASS_TIMERS: JSON.stringify(TIMERS) };
      const spawnedAt = Date.now();
      const [procA, procB] = await Promise.all([
        startTwofoldUp(a, cfgA, { env }),
        startTwofoldUp(b, cfgB, { env }),
      ]);
      const upAt = Date.now();
      const stockPing = startPing(c, A.wgIp, "0.05");

      await t.step(
        "the wg0 PSK is installed shortly after start; the stock peer is not managed",
        async () => {
          const installed = await waitUntil(
            () =>
              linesAfter(procA, 0, /wg0 pq-key-exchanged for pq-b epoch 1/).length > 0 &&
              linesAfter(procB, 0, /wg0 pq-key-exchanged for pq-a epoch 1/).length > 0,
            60_000,
            50,
          );
          const at = Date.now();
          assert.ok(installed, `both nodes install a Rosenpass key:\n${procA.output()}\n${procB.output()}`);
          console.log(
            `wg0 PSK installed on both nodes ${((at - upAt) / 1000).toFixed(1)} s after both were up ` +
              `(${((at - spawnedAt) / 1000).toFixed(1)} s after their start)`,
          );
          assert.ok(await waitForPing(a, B.wgIp, 20_000), "wg0 carries traffic under the Rosenpass PSK");
          // The stock peer (mode off) has no managed PSK; a UAPI PSK write on a managed peer is refused.
          const refused = await a.exec([
            "wg",
            "set",
            "wg0",
            "peer",
            B.keys.publicKey,
            "preshared-key",
            "/dev/stdin",
          ], {
            stdin: genPresharedKey() + "\n",
            check: false,
          });
          assert.notEqual(refused.code, 0, "UAPI PSK write for a Rosenpass-managed peer is refused");
          const psk = `${dir}/aes.psk`;
          await Deno.writeTextFile(psk, genPresharedKey() + "\n", { mode: 0o600 });
          await Promise.all([
            a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", psk]),
            b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", psk]),
          ]);
          assert.ok(await waitForPing(a, B.aesIp, 15_000), "aes0 (manual PSK) opens inside wg0");
        },
      );

      await t.step(
        "rotations every ≈ 3 s for 30 s under a 10 ms ping through wg0 and aes0: 0 lost",
        async () => {
          const from = procA.output().length;
          const wgPing = startPing(a, B.wgIp);
          const aesPing = startPing(a, B.aesIp);
          await sleep(30_000);
          const [wg, aes] = [await wgPing.stop(), await aesPing.stop()];
          const exchanges = linesAfter(procA, from, /wg0 pq-key-exchanged for pq-b/).length;
          console.log(
            `30 s: ${exchanges} Rosenpass exchanges; wg0 ping ${wg.lost}/${wg.sent} lost, aes0 ping ${aes.lost}/${aes.sent} lost`,
          );
          assert.ok(exchanges >= 4, `the key rotates (${exchanges} exchanges in 30 s)`);
          assert.ok(wg.sent > 100 && aes.sent > 100, "both pings ran");
          assert.equal(wg.lost, 0, "no wg0 ping lost across rotations");
          assert.equal(aes.lost, 0, "no aes0 ping lost across rotations");
          // wg0 rekeyed during the rotations (every 2 s under traffic), so its handshakes used rotated PSKs.
          const shown = (await a.exec(["wg", "show", "wg0", "latest-handshakes"])).stdout;
          const latest = Number(
            shown.split("\n").find((l) => l.startsWith(B.keys.publicKey))?.split(/\s+/)[1],
          );
          const age = Date.now() / 1000 - latest;
          console.log(`latest wg0 handshake with B ${age.toFixed(1)} s before the end of the rotations`);
          assert.ok(
            age < 10,
            `wg0 handshakes continued during the rotations (latest ${age.toFixed(1)} s ago)`,
          );
        },
      );

      await t.step(
        "Rosenpass's port dropped on B: A's key goes stale and strict wg0 stops; lifting it recovers",
        async () => {
          const from = procA.output().length;
          await b.exec(["nft", "add", "table", "inet", "tfpq"]);
          await b.exec([
            "nft",
            "add",
            "chain",
            "inet",
            "tfpq",
            "in",
            "{ type filter hook input priority 0; }",
          ]);
          await b.exec(["nft", "add", "rule", "inet", "tfpq", "in", "udp", "dport", String(RP_PORT), "drop"]);
          const droppedAt = Date.now();
          const stale = await waitUntil(
            () => linesAfter(procA, from, /wg0 pq-key-stale for pq-b/).length > 0,
            30_000,
            100,
          );
          assert.ok(stale, `the key goes stale:\n${procA.output().slice(from)}`);
          console.log(
            `stale ${((Date.now() - droppedAt) / 1000).toFixed(1)} s after Rosenpass traffic stopped`,
          );
          const wgDown = parsePingOutput(
            (await a.exec(["ping", "-n", "-c", "5", "-i", "0.3", "-W", "1", B.wgIp], { check: false }))
              .stdout,
          );
          const aesDown = parsePingOutput(
            (await a.exec(["ping", "-n", "-c", "3", "-i", "0.3", "-W", "1", B.aesIp], { check: false }))
              .stdout,
          );
          assert.equal(wgDown.received, 0, "strict: wg0 to B passes nothing with a stale key");
          assert.equal(aesDown.received, 0, "aes0 inside it stops too");
          await b.exec(["nft", "delete", "table", "inet", "tfpq"]);
          const liftedAt = Date.now();
          assert.ok(await waitForPing(a, B.wgIp, 30_000), "wg0 recovers once the exchange resumes");
          console.log(
            `wg0 back ${((Date.now() - liftedAt) / 1000).toFixed(1)} s after Rosenpass traffic resumed`,
          );
          assert.ok(await waitForPing(a, B.aesIp, 15_000), "aes0 recovers with it");
        },
      );

      await t.step(
        "an InitHello flood with valid MACs: ping loss ≤ 1 %, exchanges complete, CPU/RSS bounded",
        async () => {
          const from = procA.output().length;
          const cpu0 = cpuSeconds(procA.pid);
          const rss0 = rssKb(procA.pid);
          const wgPing = startPing(a, B.aesIp);
          const t0 = performance.now();
          const flood = x.spawn([
            Deno.execPath(),
            "run",
            "--allow-all",
            "--quiet",
            AGENT,
            A.underlay,
            String(RP_PORT),
            `${dir}/${A.name}.pk`,
            String(FLOOD_MS),
          ]);
          let rssPeak = rss0;
          while (!flood.exited) {
            rssPeak = Math.max(rssPeak, rssKb(procA.pid));
            await sleep(500);
          }
          const wall = (performance.now() - t0) / 1000;
          const cpu = cpuSeconds(procA.pid) - cpu0;
          const ping = await wgPing.stop();
          const report = JSON.parse(flood.output().trim().split("\n").at(-1) ?? "{}");
          const exchanges = linesAfter(procA, from, /wg0 pq-key-exchanged for pq-b/).length;
          const stale = linesAfter(procA, from, /wg0 pq-key-stale for pq-b/).length;
          const lossPct = ping.sent === 0 ? 100 : (100 * ping.lost) / ping.sent;
          console.log(
            `flood: ${report.sent} InitHellos in ${report.seconds?.toFixed(1)} s (${report.pps}/s); ` +
              `aes0 ping ${ping.lost}/${ping.sent} lost (${
                lossPct.toFixed(2)
              } %); ${exchanges} exchanges with B (${stale} stale); ` +
              `node A CPU ${cpu.toFixed(1)} s over ${wall.toFixed(1)} s (${
                (100 * cpu / wall).toFixed(0)
              } %), ` +
              `RSS ${rss0} → peak ${rssPeak} kB`,
          );
          assert.ok(report.sent > 0, `the flood ran:\n${flood.output()}`);
          assert.ok(lossPct <= 1, `legitimate ping loss ${lossPct.toFixed(2)} % ≤ 1 %`);
          assert.ok(exchanges >= 1, "exchanges between the real peers still complete");
          assert.equal(stale, 0, "the key never went stale under the flood");
          assert.ok(rssPeak < rss0 + 256 * 1024, `memory bounded (${rss0} → ${rssPeak} kB)`);
        },
      );

      const stock = await stockPing.stop();
      console.log(
        `stock wireguard-go peer (mode off): ${stock.lost}/${stock.sent} pings to node A lost throughout`,
      );
      assert.ok(stock.sent > 100, "the stock peer pinged throughout");
      assert.ok(stock.lost <= 1, `the stock peer keeps working throughout (${stock.lost} lost)`);
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
