/**
 * Routing isolation under attack (issue 10, items 2 and 4), in namespaces `tfiso-*`:
 *
 * 1. Through the real UAPI (`wg addconf` / `wg set`): an over-capacity set (more allowed IPs, then
 *    more peers, than the device holds) is refused and changes nothing; then a peer is removed and a
 *    new one (X, a wireguard-go peer) is created in its slot. X must not be able to use the removed
 *    peer's tunnel address (`ping -I`), its own address works, and after every step the data plane
 *    routes exactly what `wg show` lists.
 * 2. aes0 takes datagrams only from wg0: an attacker on the underlay that routes 100.64.0.0/10 via a
 *    node sends junk and valid-mac1 initiations to 51830 and gets nothing back, aes0 counts nothing,
 *    and aes0 between the two real nodes keeps working.
 *
 * Needs root, /dev/net/tun, iproute2, ping, wg and wireguard-go.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, Topology, vethPair } from "../helpers/netns.ts";
import {
  genKeyPair,
  genPresharedKey,
  startWgDevice,
  startWireguardGo,
  wgShowDump,
} from "../helpers/wg_device.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { parsePingOutput, ping, waitForPing } from "../helpers/measure.ts";
import { denoBin } from "../helpers/deno.ts";
import { MAX_ALLOWED_IPS, MAX_PEERS } from "../../src/wireguard/dataplane/shared-state.ts";

const TWOFOLD_MAIN = new URL("../../main.ts", import.meta.url).pathname;
const PROBE_AGENT = new URL("./underlay_probe_agent.ts", import.meta.url).pathname;

/** `wg show IF allowed-ips` as public key → sorted prefixes. */
async function wgAllowedIps(ns: Netns, ifname: string): Promise<Map<string, string[]>> {
  const dump = await wgShowDump(ns, ifname);
  return new Map(dump.peers.map((p) => [p.publicKey, [...p.allowedIps].sort()]));
}

/** Pings `dst` from `ns` with source address `src` (`ping -I`); returns the replies received. */
async function pingFrom(ns: Netns, src: string, dst: string, count = 3): Promise<number> {
  const r = await ns.exec(
    ["ping", "-n", "-c", String(count), "-i", "0.2", "-W", "1", "-w", String(count + 2), "-I", src, dst],
    { check: false },
  );
  return parsePingOutput(r.stdout).received;
}

/** A `wg addconf` fragment: one [Peer] per entry, AllowedIPs one line each. */
function peersConf(peers: { publicKey: string; allowedIps: string[] }[]): string {
  return peers.map((p) =>
    ["[Peer]", `PublicKey = ${p.publicKey}`, ...p.allowedIps.map((c) => `AllowedIPs = ${c}`)].join("\n")
  ).join("\n\n") + "\n";
}

/** `n` distinct /32s in 10.128.0.0/9. */
function manyIps(n: number, offset = 0): string[] {
  return Array.from({ length: n }, (_, i) => {
    const v = 0x0a800000 + offset + i;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/32`;
  });
}

integrationTest(
  "UAPI: a refused set changes nothing; a new peer in a removed peer's slot cannot use its address",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary(
      "wireguard-go",
    ),
  ],
  async (t) => {
    const topo = new Topology();
    try {
      const d = await topo.netns("tfiso-d", { replaceExisting: true });
      const x = await topo.netns("tfiso-x", { replaceExisting: true });
      await vethPair(d, "tfiso-vd", "10.241.0.1/24", x, "tfiso-vx", "10.241.0.2/24");
      const keyD = genKeyPair(), keyX = genKeyPair(), keyA = genKeyPair(), keyB = genKeyPair();
      const TUNNEL_D = "100.64.7.1", ADDR_A = "100.64.7.2", ADDR_X = "100.64.7.3", ADDR_B = "100.64.7.4";
      // D: twofold with two peers, A (slot 0: the first created) and B; neither needs to exist.
      await startWgDevice(d, "wg0", {
        privateKey: keyD.privateKey,
        listenPort: 51820,
        address: `${TUNNEL_D}/24`,
        peers: [
          { publicKey: keyA.publicKey, allowedIps: [`${ADDR_A}/32`] },
          { publicKey: keyB.publicKey, allowedIps: [`${ADDR_B}/32`] },
        ],
      }, { command: [denoBin(), "run", "--allow-all", TWOFOLD_MAIN, "wg", "-f"] });
      // X: wireguard-go, its own address and (the attack) A's address on its interface.
      await startWireguardGo(x, "wg0", {
        privateKey: keyX.privateKey,
        listenPort: 51821,
        address: `${ADDR_X}/24`,
        peers: [{ publicKey: keyD.publicKey, endpoint: "10.241.0.1:51820", allowedIps: ["100.64.7.0/24"] }],
      });
      await x.exec(["ip", "addr", "add", `${ADDR_A}/32`, "dev", "wg0"]);
      const initial = await wgAllowedIps(d, "wg0");

      await t.step(
        `more than ${MAX_ALLOWED_IPS} allowed IPs: refused (EINVAL), nothing changes`,
        async () => {
          const conf = peersConf([{
            publicKey: genKeyPair().publicKey,
            allowedIps: manyIps(MAX_ALLOWED_IPS),
          }]);
          const r = await d.exec(["wg", "addconf", "wg0", "/dev/stdin"], { stdin: conf, check: false });
          assert.notEqual(r.code, 0, "wg addconf must fail");
          assert.match(r.stderr, /Invalid argument/, "EINVAL, as wireguard-go for a peer it cannot take");
          console.log(`wg addconf with ${MAX_ALLOWED_IPS + 2} allowed IPs in all: ${r.stderr.trim()}`);
          assert.deepEqual(await wgAllowedIps(d, "wg0"), initial);
        },
      );

      await t.step(`more than ${MAX_PEERS} peers: refused, none created`, async () => {
        const peers = Array.from({ length: 300 }, (_, i) => ({
          publicKey: genKeyPair().publicKey,
          allowedIps: manyIps(1, 20_000 + i),
        }));
        const r = await d.exec(["wg", "addconf", "wg0", "/dev/stdin"], {
          stdin: peersConf(peers),
          check: false,
        });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Invalid argument/);
        assert.deepEqual(await wgAllowedIps(d, "wg0"), initial, "no peer of the 300 was created");
      });

      await t.step("route changes apply after a refusal: A removed, X created in A's slot", async () => {
        await d.exec(["wg", "set", "wg0", "peer", keyA.publicKey, "remove"]);
        await d.exec([
          "wg",
          "set",
          "wg0",
          "peer",
          keyX.publicKey,
          "allowed-ips",
          `${ADDR_X}/32`,
          "endpoint",
          "10.241.0.2:51821",
        ]);
        const shown = await wgAllowedIps(d, "wg0");
        assert.deepEqual(
          shown,
          new Map([[keyB.publicKey, [`${ADDR_B}/32`]], [keyX.publicKey, [`${ADDR_X}/32`]]]),
        );
      });

      await t.step("X reaches D from its own address only, never from A's", async () => {
        assert.ok(await waitForPing(x, TUNNEL_D, 10_000), "X's own address works through D");
        const own = await pingFrom(x, ADDR_X, TUNNEL_D);
        const stolen = await pingFrom(x, ADDR_A, TUNNEL_D);
        console.log(
          `ping -I ${ADDR_X} (X's own): ${own}/3 answered; ping -I ${ADDR_A} (removed A's): ${stolen}/3`,
        );
        assert.equal(own, 3, "X's own address is routed");
        assert.equal(stolen, 0, "A's address must not be accepted from X");
        // And D does not send A's traffic to X: nothing routes A's address any more.
        assert.equal((await ping(d, ADDR_A, { count: 2, interval: 0.2, timeoutS: 1 })).received, 0);
        // wg show still matches (D's data plane routed exactly that).
        assert.deepEqual(
          await wgAllowedIps(d, "wg0"),
          new Map([[keyB.publicKey, [`${ADDR_B}/32`]], [keyX.publicKey, [`${ADDR_X}/32`]]]),
        );
      });
    } finally {
      await topo.cleanup();
    }
  },
);

/** Sum of one layer's drop counters from a node's /metrics (over its unix admin socket). */
async function dropTotal(adminSocket: string, layer: string): Promise<number> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: adminSocket } });
  try {
    const res = await fetch("http://localhost/metrics", { client });
    const text = await res.text();
    assert.equal(res.status, 200, `GET /metrics: ${text}`);
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = line.match(/^twofold_drops_total\{([^}]*)\} (\d+)/);
      if (m && m[1].includes(`layer="${layer}"`)) sum += Number(m[2]);
    }
    return sum;
  } finally {
    client.close();
  }
}

integrationTest(
  "aes0 answers nothing from the underlay, and aes0 between the nodes keeps working",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfiso-" });
    const A: LabNode = {
      name: "iso-a",
      keys: genKeyPair(),
      underlay: "10.241.1.1",
      wgIp: "100.64.0.1",
      aesIp: "100.127.0.1",
    };
    const B: LabNode = {
      name: "iso-b",
      keys: genKeyPair(),
      underlay: "10.241.1.2",
      wgIp: "100.64.0.2",
      aesIp: "100.127.0.2",
    };
    try {
      const a = await topo.netns("tfiso-a", { replaceExisting: true });
      const b = await topo.netns("tfiso-b", { replaceExisting: true });
      const m = await topo.netns("tfiso-m", { replaceExisting: true });
      await vethPair(a, "tfiso-va", `${A.underlay}/24`, b, "tfiso-vb", `${B.underlay}/24`);
      await vethPair(a, "tfiso-vam", "10.241.2.1/24", m, "tfiso-vm", "10.241.2.2/24");
      // The attacker routes the overlay via node A, as a neighbour on the underlay could.
      await m.exec(["ip", "route", "add", "100.64.0.0/10", "via", "10.241.2.1"]);
      await startTwofoldUp(a, await writeNodeConfig(dir, A, [B]));
      await startTwofoldUp(b, await writeNodeConfig(dir, B, [A]));
      const adminA = `${dir}/${A.name}.admin.sock`;

      await t.step("the attacker reaches node A's wg0 address, but 51830 answers nothing", async () => {
        assert.equal(
          (await ping(m, A.wgIp, { count: 2, interval: 0.2, timeoutS: 1 })).received,
          2,
          "the underlay route to the wg0 address works (Linux accepts it on any interface)",
        );
        const before = await dropTotal(adminA, "aes0");
        const r = await m.exec([
          denoBin(),
          "run",
          "--allow-all",
          "--quiet",
          PROBE_AGENT,
          A.wgIp,
          "51830",
          A.keys.publicKey,
          "2000",
          "1500",
        ]);
        const probe = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { sent: number; replies: number };
        const after = await dropTotal(adminA, "aes0");
        console.log(
          `underlay → ${A.wgIp}:51830: ${probe.sent} datagrams sent (junk + valid-mac1 initiations), ` +
            `${probe.replies} replies; aes0 drop counters ${before} → ${after}`,
        );
        assert.ok(probe.sent >= 2000, "the probe was sent");
        assert.equal(probe.replies, 0, "nothing may answer on 51830 from the underlay");
        assert.equal(after, before, "aes0 must not even see the datagrams");
        const sockets = (await a.exec(["ss", "-ulnp"])).stdout;
        assert.match(sockets, /100\.64\.0\.1%wg0:51830/, "aes0's socket is tied to wg0");
      });

      await t.step(
        "aes0 between the two nodes still works (its socket only takes wg0's datagrams)",
        async () => {
          const psk = `${dir}/a-b.psk`;
          await Deno.writeTextFile(psk, genPresharedKey() + "\n", { mode: 0o600 });
          await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", psk]);
          await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", psk]);
          assert.ok(await waitForPing(a, B.aesIp, 5_000), "aes0 ping A → B");
          assert.equal((await ping(b, A.aesIp, { count: 3, interval: 0.2, timeoutS: 1 })).received, 3);
        },
      );
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
