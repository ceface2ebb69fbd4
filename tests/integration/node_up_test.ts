/**
 * `twofold up`: two edge nodes in namespaces (tfn-a, tfn-b), wg0 over a veth pair and aes0 inside
 * wg0, with the aes0 PSK gate. Needs root, /dev/net/tun, iproute2, ping, wg and tcpdump.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, startTwofoldUp as startUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { decodeBase64 } from "../../src/encoding.ts";

const A: LabNode = {
  name: "node-a",
  keys: genKeyPair(),
  underlay: "10.232.0.1",
  wgIp: "100.64.0.1",
  aesIp: "100.127.0.1",
};
const B: LabNode = {
  name: "node-b",
  keys: genKeyPair(),
  underlay: "10.232.0.2",
  wgIp: "100.64.0.2",
  aesIp: "100.127.0.2",
};
/** An AES-exempt peer of node-a and a DSKE-managed AES peer that never comes up. */
const EXEMPT = genKeyPair();
const MANAGED = genKeyPair();
/** Two DSKE hubs of node-a (never started: wg0 peers only, with PSRD ingested so the node starts). */
const HUB_PEERS = [1, 2].map((i) => ({ name: `hub-${i}`, keys: genKeyPair(), wgIp: `100.64.0.${100 + i}` }));

async function aesDump(ns: Netns): Promise<string[][]> {
  const out = (await ns.exec(["wg", "show", "aes0", "dump"])).stdout.trim().split("\n").slice(1);
  return out.map((l) => l.split("\t"));
}

integrationTest(
  "twofold up: aes0 inside wg0, closed until both sides hold the same PSK",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary("tcpdump"),
  ],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfn-" });
    try {
      const a = await topo.netns("tfn-a", { replaceExisting: true });
      const b = await topo.netns("tfn-b", { replaceExisting: true });
      await vethPair(a, "tfn-va", `${A.underlay}/24`, b, "tfn-vb", `${B.underlay}/24`);
      const cfgA = await writeNodeConfig(dir, A, [B], {
        extraPeers: [
          { name: "exempt", publicKey: EXEMPT.publicKey, wgIp: "100.64.0.10" },
          {
            name: "managed",
            publicKey: MANAGED.publicKey,
            wgIp: "100.64.0.11",
            aesIp: "100.127.0.11",
            keySource: "dske",
          },
          ...HUB_PEERS.map((h) => ({ name: h.name, publicKey: h.keys.publicKey, wgIp: h.wgIp, role: "hub" })),
        ],
      });
      for (const h of HUB_PEERS) {
        const pair = createPsrdPair({
          hubEndpoint: `${h.wgIp}:51831`,
          peerId: decodeBase64(A.keys.publicKey),
          c2hLen: 4096,
          h2cLen: 4096,
        });
        const store = await PsrdStore.open(`${dir}/state-${A.name}`);
        store.ingest(pair.client);
        store.close();
      }
      const cfgB = await writeNodeConfig(dir, B, [A]);
      const procA = await startUp(a, cfgA);
      const procB = await startUp(b, cfgB);

      await t.step("wg0 carries traffic; aes0 stays closed (gates closed, handshakes fail)", async () => {
        assert.equal(
          (await ping(a, B.wgIp, { count: 3, interval: 0.2, timeoutS: 2 })).received,
          3,
          "wg0 ping",
        );
        const closed = await ping(a, B.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
        assert.equal(closed.received, 0, "aes0 must not carry traffic before the PSKs agree");
        const peerB = (await aesDump(a)).find((f) => f[0] === B.keys.publicKey);
        assert.ok(peerB, "node-b is an aes0 peer of node-a");
        assert.equal(peerB[4], "0", "no aes0 handshake completed while the gate is closed");
        assert.match(procA.output(), /gate/i, "the gate state is reported");
      });

      await t.step("logs name peers by name; the tunnels have no automatic IPv6 link-local", async () => {
        const out = procA.output();
        assert.match(out, /up: .*aes0 gates now: (node-b|managed) (closed|open|stale), /, "start-up line");
        for (const line of out.split("\n").filter((l) => / aes0 gate /.test(l))) {
          assert.match(line, / aes0 gate \S+ for (node-b|managed)\b/, `peer named: ${line}`);
        }
        for (const dev of ["wg0", "aes0"]) {
          const [info] = JSON.parse((await a.exec(["ip", "-j", "addr", "show", "dev", dev])).stdout);
          const local = info.addr_info.map((x: { local: string }) => x.local);
          assert.ok(!local.some((x: string) => x.startsWith("fe80:")), `${dev}: ${local}`);
        }
      });

      await t.step("exempt peers and hubs are on wg0 only; aes0 is bound inside wg0", async () => {
        const aesPeers = (await aesDump(a)).map((f) => f[0]);
        assert.ok(!aesPeers.includes(EXEMPT.publicKey), "an AES-exempt peer must not be on aes0");
        const wgPeers = (await a.exec(["wg", "show", "wg0", "peers"])).stdout;
        assert.ok(wgPeers.includes(EXEMPT.publicKey), "the AES-exempt peer is on wg0");
        const route = (await a.exec(["ip", "route", "get", "100.127.0.2"])).stdout;
        assert.match(route, /dev aes0/, "AES IPs route through aes0");
        const route2 = (await a.exec(["ip", "route", "get", "100.64.0.10"])).stdout;
        assert.match(route2, /dev wg0/, "wg0 IPs route through wg0");
        const hubRoute = (await a.exec(["ip", "route", "get", HUB_PEERS[0].wgIp])).stdout;
        assert.match(hubRoute, /dev wg0/, "hubs are reached through wg0");
        for (const h of HUB_PEERS) {
          assert.ok(!aesPeers.includes(h.keys.publicKey), "a hub is never an aes0 peer");
          assert.ok(wgPeers.includes(h.keys.publicKey), "hubs are wg0 peers");
        }
        const sockets = (await a.exec(["ss", "-uln"])).stdout;
        assert.match(
          sockets,
          new RegExp(`${A.wgIp.replaceAll(".", "\\.")}%wg0:51830`),
          "aes0 listens on the wg0 address, tied to the wg0 interface",
        );
      });

      await t.step("a UAPI PSK write to a DSKE-managed peer is refused (EPERM)", async () => {
        const pskFile = `${dir}/managed.psk`;
        await Deno.writeTextFile(pskFile, genPresharedKey() + "\n", { mode: 0o600 });
        const r = await a.exec(["wg", "set", "aes0", "peer", MANAGED.publicKey, "preshared-key", pskFile], {
          check: false,
        });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /not permitted/i);
      });

      await t.step("the same PSK installed on both sides opens aes0: first ping within 1 s", async () => {
        const pskFile = `${dir}/a-b.psk`;
        await Deno.writeTextFile(pskFile, genPresharedKey() + "\n", { mode: 0o600 });
        await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", pskFile]);
        await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", pskFile]);
        const started = Date.now();
        const r = await ping(a, B.aesIp, { count: 1, interval: 0.2, timeoutS: 1 });
        const elapsed = Date.now() - started;
        assert.equal(r.received, 1, `first aes0 ping failed (${elapsed} ms)`);
        console.log(`first aes0 ping after PSK install: ${elapsed} ms (rtt ${r.rttAvgMs.toFixed(2)} ms)`);
        const more = await ping(b, A.aesIp, { count: 5, interval: 0.1, timeoutS: 2 });
        assert.equal(more.received, 5, "aes0 both ways");
      });

      await t.step(
        "a PSK change keeps the current session; a new agreed PSK on both sides keeps aes0 working",
        async () => {
          const wrong = `${dir}/wrong.psk`;
          await Deno.writeTextFile(wrong, genPresharedKey() + "\n", { mode: 0o600 });
          await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", wrong]);
          // Current sessions continue: the PSK only matters at the next handshake.
          assert.equal((await ping(a, B.aesIp, { count: 2, interval: 0.1, timeoutS: 1 })).received, 2);
          const good = `${dir}/good.psk`;
          await Deno.writeTextFile(good, genPresharedKey() + "\n", { mode: 0o600 });
          await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", good]);
          await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", good]);
          assert.equal((await ping(b, A.aesIp, { count: 3, interval: 0.1, timeoutS: 2 })).received, 3);
        },
      );

      await t.step("the underlay shows only wg0's UDP port and no plaintext of an aes0 marker", async () => {
        const pcap = `${dir}/underlay.pcap`;
        // IPv4 only (the veth's own IPv6 link-local chatter is not ours); immediate mode so that
        // nothing sits in the capture ring when tcpdump is stopped.
        const cap = a.spawn(["tcpdump", "-i", "tfn-va", "--immediate-mode", "-U", "-n", "-w", pcap, "ip"]);
        const listening = await waitUntil(() => cap.exited || /listening on/.test(cap.output()), 5000);
        assert.ok(listening && !cap.exited, `tcpdump did not start:\n${cap.output()}`);
        const marker = "7477666f6c646d61726b6572"; // "twofoldmarker" prefix, as ping's -p pattern
        const r = await a.exec(["ping", "-c", "5", "-i", "0.1", "-W", "1", "-p", marker, B.aesIp], {
          check: false,
        });
        assert.equal(r.code, 0, "marker pings through aes0");
        await new Promise((res) => setTimeout(res, 300));
        await cap.kill("SIGINT");
        const bytes = await Deno.readFile(pcap);
        const hex = Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
        assert.ok(!hex.includes(marker), "the marker must not appear in clear on the underlay");
        const text = (await a.exec(["tcpdump", "-r", pcap, "-n"], { check: false })).stdout;
        const lines = text.trim().split("\n").filter((l) => l.trim() !== "");
        assert.ok(lines.length >= 10, `expected captured packets, got ${lines.length}`);
        for (const line of lines) {
          assert.match(line, /\.51820[ :]/, `only wg0's port on the underlay: ${line}`);
          assert.doesNotMatch(line, /\.51830[ :]/, `aes0's port must not appear on the underlay: ${line}`);
        }
      });

      await t.step("a restarted node keeps aes0 closed until a key is installed again", async () => {
        await procA.kill("SIGTERM");
        const gone = await waitUntil(
          async () => (await a.exec(["ip", "link", "show", "aes0"], { check: false })).code !== 0,
          5000,
        );
        assert.ok(gone, "aes0 is removed when the node stops");
        const again = await startUp(a, cfgA);
        const closed = await ping(a, B.aesIp, { count: 3, interval: 0.3, timeoutS: 1 });
        assert.equal(closed.received, 0, "aes0 must be closed after a restart");
        assert.equal(
          (await ping(a, B.wgIp, { count: 2, interval: 0.2, timeoutS: 2 })).received,
          2,
          "wg0 is back",
        );
        const psk = `${dir}/after-restart.psk`;
        await Deno.writeTextFile(psk, genPresharedKey() + "\n", { mode: 0o600 });
        await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", psk]);
        await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", psk]);
        const r = await ping(a, B.aesIp, { count: 2, interval: 0.2, timeoutS: 2 });
        if (r.received !== 2) {
          console.log("A:", again.output(), "\nB:", procB.output());
          console.log((await a.exec(["wg", "show", "all", "dump"])).stdout);
          console.log((await b.exec(["wg", "show", "all", "dump"])).stdout);
        }
        assert.equal(r.received, 2);
        await again.kill("SIGTERM");
      });
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
