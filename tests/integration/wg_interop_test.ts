/**
 * Acceptance tests of the WireGuard engine against Debian's wireguard-go, in network namespaces
 * tfi-a (twofold, or wireguard-go where said) and tfi-b, joined by a veth pair on 10.231.1.0/24:
 * ping and iperf3 both ways, handshakes started by either side, `wg show dump` fields, roaming,
 * live allowed-IPs changes and peer removal, twofold-to-twofold with both ciphers (and the AES suite
 * refusing to talk to standard WireGuard), and the start-up / shutdown behaviour of `main.ts wg`.
 * @module
 */
import assert from "node:assert/strict";
import {
  listNamespaces,
  type Netns,
  type Proc,
  sleep,
  Topology,
  vethPair,
  waitUntil,
} from "../helpers/netns.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import {
  genKeyPair,
  genPresharedKey,
  type KeyPair,
  startWgDevice,
  startWireguardGo,
  uapiSocketExists,
  type WgDeviceConfig,
  type WgDumpPeer,
  wgSetConf,
  wgShowDump,
} from "../helpers/wg_device.ts";
import { iperf3Run, parsePingOutput, ping, waitForPing } from "../helpers/measure.ts";
import { denoBin } from "../helpers/deno.ts";

const PREFIX = "tfi-";
/** twofold's entry point, resolved from this file so the test runs from any working directory. */
const TWOFOLD_MAIN = new URL("../../main.ts", import.meta.url).pathname;

const UNDERLAY_A = "10.231.1.1";
const UNDERLAY_B = "10.231.1.2";
/** Where wireguard-go's underlay address moves to in the roaming test. */
const UNDERLAY_B_MOVED = "10.231.1.3";
const PORT_A = 51820;
const PORT_B = 51821;
const TUNNEL_A = "100.64.0.1";
const TUNNEL_B = "100.64.0.2";
/** A second address on tfi-b's wg0, used to observe allowed-IPs changes. */
const TUNNEL_B_EXTRA = "100.64.0.22";
/** Size on the wire of one tunnelled ping: 84-byte IP packet padded to 96, plus 32 bytes of header and tag. */
const PING_MESSAGE_BYTES = 128;

/** Asserts that each side's latest handshake happened between `t0` (seconds) and now. */
function assertHandshakeSince(t0: number, sides: Record<string, { latestHandshake: number }>): void {
  for (const [who, p] of Object.entries(sides)) {
    assert.ok(
      p.latestHandshake >= Math.floor(t0) - 1 && p.latestHandshake <= nowSeconds() + 1,
      `${who}: latest handshake ${p.latestHandshake}, expected between ${t0} and now`,
    );
  }
}

const checks = [
  requireRoot(),
  requireTun(),
  requireBinary("ip"),
  requireBinary("ping"),
  requireBinary("wireguard-go"),
  requireBinary("wg"),
  requireBinary("iperf3"),
  requireBinary("timeout"),
];

type Cipher = "chacha20-poly1305" | "aes-256-gcm";

/** Foreground twofold command for {@link startWgDevice} (the interface name is appended). */
function twofoldCommand(cipher?: Cipher): string[] {
  return [denoBin(), "run", "--allow-all", TWOFOLD_MAIN, "wg", ...(cipher ? ["--cipher", cipher] : []), "-f"];
}

/** Which implementation runs on one side. */
type Impl = { kind: "twofold"; cipher?: Cipher } | { kind: "wireguard-go" };

/** One end of a tunnel. */
interface Side {
  ns: Netns;
  keys: KeyPair;
  proc: Proc;
  underlay: string;
  port: number;
  tunnel: string;
}

/** A configured pair of devices: `a` in tfi-a, `b` in tfi-b. */
interface Pair {
  a: Side;
  b: Side;
  psk: string;
}

/** Options for {@link peerConfig}: whether to include the endpoint, and which allowed IPs. */
interface PeerOptions {
  endpoint?: boolean;
  allowedIps?: string[];
}

/** The device configuration of `own` with `other` as its only peer. */
function deviceConfig(
  own: { keys: KeyPair; port: number; tunnel: string },
  other: { keys: KeyPair; underlay: string; port: number; tunnel: string },
  psk: string,
  opts: PeerOptions = {},
): WgDeviceConfig {
  return {
    privateKey: own.keys.privateKey,
    listenPort: own.port,
    address: `${own.tunnel}/10`,
    mtu: 1420,
    peers: [{
      publicKey: other.keys.publicKey,
      psk,
      endpoint: (opts.endpoint ?? true) ? `${other.underlay}:${other.port}` : undefined,
      allowedIps: opts.allowedIps ?? [`${other.tunnel}/32`],
    }],
  };
}

async function startImpl(ns: Netns, impl: Impl, cfg: WgDeviceConfig): Promise<Proc> {
  if (impl.kind === "wireguard-go") return await startWireguardGo(ns, "wg0", cfg);
  return await startWgDevice(ns, "wg0", cfg, { command: twofoldCommand(impl.cipher) });
}

/** Creates tfi-a and tfi-b, the veth underlay, and a wg0 of the given kind on each side. */
async function buildPair(
  topo: Topology,
  implA: Impl,
  implB: Impl,
  peerOptsA: PeerOptions = {},
): Promise<Pair> {
  const nsA = await topo.netns(`${PREFIX}a`);
  const nsB = await topo.netns(`${PREFIX}b`);
  await vethPair(nsA, "tfi-va", `${UNDERLAY_A}/24`, nsB, "tfi-vb", `${UNDERLAY_B}/24`);
  const psk = genPresharedKey();
  const a = { keys: genKeyPair(), underlay: UNDERLAY_A, port: PORT_A, tunnel: TUNNEL_A };
  const b = { keys: genKeyPair(), underlay: UNDERLAY_B, port: PORT_B, tunnel: TUNNEL_B };
  const procA = await startImpl(nsA, implA, deviceConfig(a, b, psk, peerOptsA));
  const procB = await startImpl(nsB, implB, deviceConfig(b, a, psk));
  return { a: { ...a, ns: nsA, proc: procA }, b: { ...b, ns: nsB, proc: procB }, psk };
}

/** The single peer of `ns`'s wg0 (fails if there is not exactly one). */
async function onlyPeer(ns: Netns): Promise<WgDumpPeer> {
  const dump = await wgShowDump(ns, "wg0");
  assert.equal(dump.peers.length, 1, `${ns.name}: expected exactly one peer`);
  return dump.peers[0];
}

async function assertPingBothWays(pair: Pair, count = 5): Promise<void> {
  assert.ok(
    await waitForPing(pair.a.ns, pair.b.tunnel, 15_000),
    `no reply from ${pair.b.tunnel} through wg0`,
  );
  const there = await ping(pair.a.ns, pair.b.tunnel, { count, interval: 0.05 });
  assert.equal(there.received, count, `${pair.a.ns.name} -> ${pair.b.tunnel}: ${there.received}/${count}`);
  const back = await ping(pair.b.ns, pair.a.tunnel, { count, interval: 0.05 });
  assert.equal(back.received, count, `${pair.b.ns.name} -> ${pair.a.tunnel}: ${back.received}/${count}`);
}

async function assertNoLeftoverNamespaces(): Promise<void> {
  const left = (await listNamespaces()).filter((n) => n.startsWith(PREFIX));
  assert.deepEqual(left, [], `left-over ${PREFIX} namespaces (delete them with ip netns del)`);
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} vs ${expected} (tolerance ${tolerance})`,
  );
}

async function linkExists(ns: Netns, ifname: string): Promise<boolean> {
  return (await ns.exec(["ip", "link", "show", "dev", ifname], { check: false })).code === 0;
}

function assertNoStackTrace(text: string, what: string): void {
  assert.ok(!text.includes("    at "), `${what} printed a stack trace:\n${text}`);
}

/** Runs `main.ts wg ARGS` inside `ns` (bounded by `timeout`, so a daemon that wrongly starts cannot hang the test). */
async function runTwofoldWg(
  ns: Netns,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const r = await ns.exec(
    ["timeout", "-k", "3", "30", denoBin(), "run", "--allow-all", TWOFOLD_MAIN, "wg", ...args],
    { check: false, env },
  );
  assert.notEqual(r.code, 124, `main.ts wg ${args.join(" ")} was still running after 30 s`);
  return { code: r.code, stderr: r.stderr };
}

function stderrLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "");
}

integrationTest(
  "wg interop: twofold <-> wireguard-go (ping, iperf3, handshakes, wg show)",
  checks,
  async (t) => {
    await assertNoLeftoverNamespaces();
    const topo = new Topology();
    try {
      const started = nowSeconds();
      const pair = await buildPair(topo, { kind: "twofold" }, { kind: "wireguard-go" });
      const { a, b } = pair;

      await t.step("ping both ways", async () => {
        await assertPingBothWays(pair);
      });

      await t.step("wg show dump on twofold: keys, endpoint, allowed IPs, handshake time", async () => {
        const dump = await wgShowDump(a.ns, "wg0");
        assert.equal(dump.iface.publicKey, a.keys.publicKey);
        assert.equal(dump.iface.listenPort, PORT_A);
        assert.equal(dump.peers.length, 1);
        const peer = dump.peers[0];
        assert.equal(peer.publicKey, b.keys.publicKey);
        assert.equal(peer.hasPresharedKey, true);
        assert.equal(peer.endpoint, `${UNDERLAY_B}:${PORT_B}`);
        assert.deepEqual(peer.allowedIps, [`${TUNNEL_B}/32`]);
        assert.equal(peer.persistentKeepalive, 0);
        assert.ok(
          peer.latestHandshake >= Math.floor(started) - 1 && peer.latestHandshake <= nowSeconds() + 1,
          `latest handshake ${peer.latestHandshake} is not between the start (${started}) and now`,
        );
        const other = await onlyPeer(b.ns);
        assertClose(
          peer.latestHandshake,
          other.latestHandshake,
          2,
          "handshake time, twofold vs wireguard-go",
        );
        assert.ok(peer.rxBytes > 0 && peer.txBytes > 0, `rx ${peer.rxBytes} tx ${peer.txBytes}`);
      });

      await t.step("rx/tx counters grow with traffic and match wireguard-go's", async () => {
        const before = await onlyPeer(a.ns);
        const r = await ping(a.ns, TUNNEL_B, { count: 10, interval: 0.02 });
        assert.equal(r.received, 10);
        await sleep(200);
        const after = await onlyPeer(a.ns);
        const other = await onlyPeer(b.ns);
        assert.ok(
          after.txBytes - before.txBytes >= 10 * PING_MESSAGE_BYTES,
          `tx grew by ${after.txBytes - before.txBytes}, expected >= ${10 * PING_MESSAGE_BYTES}`,
        );
        assert.ok(
          after.rxBytes - before.rxBytes >= 10 * PING_MESSAGE_BYTES,
          `rx grew by ${after.rxBytes - before.rxBytes}, expected >= ${10 * PING_MESSAGE_BYTES}`,
        );
        // Same traffic seen from both ends; slack for one keepalive or handshake message in flight.
        assertClose(after.txBytes, other.rxBytes, 256, "twofold tx vs wireguard-go rx (bytes)");
        assertClose(after.rxBytes, other.txBytes, 256, "twofold rx vs wireguard-go tx (bytes)");
      });

      await t.step("iperf3 5 s in both directions", async () => {
        const out = await iperf3Run(a.ns, b.ns, TUNNEL_B, { seconds: 5 });
        console.log(
          `  iperf3 twofold -> wireguard-go: ${out.gbps.toFixed(3)} Gbit/s (${out.retransmits} retr)`,
        );
        assert.ok(out.gbps > 0, "no throughput twofold -> wireguard-go");
        const back = await iperf3Run(b.ns, a.ns, TUNNEL_A, { seconds: 5 });
        console.log(
          `  iperf3 wireguard-go -> twofold: ${back.gbps.toFixed(3)} Gbit/s (${back.retransmits} retr)`,
        );
        assert.ok(back.gbps > 0, "no throughput wireguard-go -> twofold");
      });

      await t.step("after bulk traffic the byte counters still agree with wireguard-go's", async () => {
        await sleep(500);
        const mine = await onlyPeer(a.ns);
        const other = await onlyPeer(b.ns);
        assert.ok(mine.txBytes > 100_000_000 / 8 && mine.rxBytes > 100_000_000 / 8, "too few bytes counted");
        // iperf3 overruns the receiver, so datagrams get lost on the way: a receiver may count less than
        // the sender, never more (slack for a message in flight).
        assert.ok(
          other.rxBytes <= mine.txBytes + 256,
          `wireguard-go rx ${other.rxBytes} > twofold tx ${mine.txBytes}`,
        );
        assert.ok(
          mine.rxBytes <= other.txBytes + 256,
          `twofold rx ${mine.rxBytes} > wireguard-go tx ${other.txBytes}`,
        );
        // A lossless burst of 200 x 1028-byte pings: the increments must match byte for byte (1028-byte
        // IP packet padded to 1040, plus 32 = 1072 bytes per message).
        const big = await a.ns.exec(
          ["ping", "-n", "-q", "-c", "200", "-i", "0.005", "-s", "1000", "-W", "1", TUNNEL_B],
          { check: false },
        );
        assert.equal(parsePingOutput(big.stdout).received, 200, "1000-byte pings lost");
        await sleep(200);
        const mine2 = await onlyPeer(a.ns);
        const other2 = await onlyPeer(b.ns);
        const tx = mine2.txBytes - mine.txBytes;
        const rx = mine2.rxBytes - mine.rxBytes;
        assert.ok(tx >= 200 * 1072 && rx >= 200 * 1072, `twofold counted tx +${tx} rx +${rx} for 200 pings`);
        assertClose(tx, other2.rxBytes - other.rxBytes, 256, "twofold tx vs wireguard-go rx increments");
        assertClose(rx, other2.txBytes - other.txBytes, 256, "twofold rx vs wireguard-go tx increments");
      });

      // Each side in turn is the only one that knows an endpoint, so it must send the first packet;
      // the responder learns the initiator's address from that handshake.
      await t.step("handshake initiated by twofold (wireguard-go has no endpoint)", async () => {
        await wgSetConf(a.ns, "wg0", deviceConfig(a, b, pair.psk));
        await wgSetConf(b.ns, "wg0", deviceConfig(b, a, pair.psk, { endpoint: false }));
        const freshA = await onlyPeer(a.ns);
        const freshB = await onlyPeer(b.ns);
        assert.equal(freshA.latestHandshake, 0, "twofold kept a handshake across wg setconf");
        assert.equal(freshB.latestHandshake, 0);
        assert.equal(freshB.endpoint, null);
        const t0 = nowSeconds();
        assert.ok(await waitForPing(a.ns, TUNNEL_B, 10_000), "twofold could not start a handshake");
        const peerA = await onlyPeer(a.ns);
        const peerB = await onlyPeer(b.ns);
        assertHandshakeSince(t0, { twofold: peerA, "wireguard-go": peerB });
        assert.equal(
          peerB.endpoint,
          `${UNDERLAY_A}:${PORT_A}`,
          "wireguard-go did not learn twofold's address",
        );
        assert.equal((await ping(b.ns, TUNNEL_A, { count: 3, interval: 0.05 })).received, 3);
      });

      await t.step("handshake initiated by wireguard-go (twofold has no endpoint)", async () => {
        await wgSetConf(a.ns, "wg0", deviceConfig(a, b, pair.psk, { endpoint: false }));
        await wgSetConf(b.ns, "wg0", deviceConfig(b, a, pair.psk));
        const freshA = await onlyPeer(a.ns);
        assert.equal(freshA.latestHandshake, 0, "twofold kept a handshake across wg setconf");
        assert.equal(freshA.endpoint, null, "twofold kept an endpoint across wg setconf");
        assert.equal(freshA.rxBytes, 0, "a re-created peer starts with zero counters");
        assert.equal((await onlyPeer(b.ns)).latestHandshake, 0);
        const t0 = nowSeconds();
        assert.ok(await waitForPing(b.ns, TUNNEL_A, 10_000), "no handshake started by wireguard-go");
        const peerA = await onlyPeer(a.ns);
        const peerB = await onlyPeer(b.ns);
        assertHandshakeSince(t0, { twofold: peerA, "wireguard-go": peerB });
        assert.equal(
          peerA.endpoint,
          `${UNDERLAY_B}:${PORT_B}`,
          "twofold did not learn wireguard-go's address",
        );
        assert.deepEqual(peerA.allowedIps, [`${TUNNEL_B}/32`]);
        assert.equal((await ping(a.ns, TUNNEL_B, { count: 3, interval: 0.05 })).received, 3);
      });

      await t.step("twofold printed no stack trace", () => {
        assertNoStackTrace(a.proc.output(), "twofold");
        assert.equal(a.proc.exited, false, "twofold exited");
      });
    } finally {
      await topo.cleanup();
    }
    await assertNoLeftoverNamespaces();
  },
);

integrationTest("wg interop: roaming (wireguard-go changes address and port)", checks, async (t) => {
  await assertNoLeftoverNamespaces();
  const topo = new Topology();
  try {
    const pair = await buildPair(topo, { kind: "twofold" }, { kind: "wireguard-go" });
    const { a, b } = pair;

    await t.step("tunnel up at the configured endpoint", async () => {
      await assertPingBothWays(pair, 3);
      assert.equal((await onlyPeer(a.ns)).endpoint, `${UNDERLAY_B}:${PORT_B}`);
    });

    await t.step("wireguard-go's underlay address moves: twofold follows", async () => {
      // Delete first: deleting a primary address also deletes secondaries of the same subnet.
      await b.ns.exec(["ip", "addr", "del", `${UNDERLAY_B}/24`, "dev", "tfi-vb"]);
      await b.ns.exec(["ip", "addr", "add", `${UNDERLAY_B_MOVED}/24`, "dev", "tfi-vb"]);
      // wireguard-go keeps sending from the cached (now deleted) source address until its endpoint
      // is set again; re-setting the same endpoint only clears that cache on wireguard-go's side.
      await b.ns.exec(["wg", "set", "wg0", "peer", a.keys.publicKey, "endpoint", `${UNDERLAY_A}:${PORT_A}`]);
      assert.ok(await waitForPing(b.ns, TUNNEL_A, 10_000), "no reply after wireguard-go's address moved");
      assert.equal((await onlyPeer(a.ns)).endpoint, `${UNDERLAY_B_MOVED}:${PORT_B}`);
      const r = await ping(a.ns, TUNNEL_B, { count: 3, interval: 0.05 });
      assert.equal(r.received, 3, "twofold -> wireguard-go after the move");
    });

    await t.step("wireguard-go's listen port changes: twofold follows", async () => {
      const newPort = PORT_B + 10;
      await b.ns.exec(["wg", "set", "wg0", "listen-port", String(newPort)]);
      assert.ok(await waitForPing(b.ns, TUNNEL_A, 10_000), "no reply after wireguard-go's port changed");
      assert.equal((await onlyPeer(a.ns)).endpoint, `${UNDERLAY_B_MOVED}:${newPort}`);
      const r = await ping(a.ns, TUNNEL_B, { count: 3, interval: 0.05 });
      assert.equal(r.received, 3, "twofold -> wireguard-go after the port change");
    });
  } finally {
    await topo.cleanup();
  }
  await assertNoLeftoverNamespaces();
});

integrationTest("wg interop: wg set allowed-ips and peer remove act live on twofold", checks, async (t) => {
  await assertNoLeftoverNamespaces();
  const topo = new Topology();
  const both = [`${TUNNEL_B}/32`, `${TUNNEL_B_EXTRA}/32`];
  try {
    const pair = await buildPair(topo, { kind: "twofold" }, { kind: "wireguard-go" }, { allowedIps: both });
    const { a, b } = pair;
    const peerKey = b.keys.publicKey;
    await b.ns.exec(["ip", "addr", "add", `${TUNNEL_B_EXTRA}/32`, "dev", "wg0"]);
    // From tfi-b, a ping sourced from the extra address (its replies must pass twofold's source check).
    const pingFromExtra = async () =>
      await b.ns.exec(["ping", "-n", "-c", "1", "-W", "1", "-I", TUNNEL_B_EXTRA, TUNNEL_A], { check: false });

    await t.step("both addresses of the peer reachable", async () => {
      assert.ok(await waitForPing(a.ns, TUNNEL_B, 15_000));
      assert.equal((await ping(a.ns, TUNNEL_B_EXTRA, { count: 2, interval: 0.05 })).received, 2);
      assert.equal((await pingFromExtra()).code, 0, "ping sourced from the extra address");
      assert.deepEqual((await onlyPeer(a.ns)).allowedIps, both);
    });

    await t.step("narrowed allowed IPs: the extra address is unreachable both ways", async () => {
      await a.ns.exec(["wg", "set", "wg0", "peer", peerKey, "allowed-ips", `${TUNNEL_B}/32`]);
      assert.deepEqual((await onlyPeer(a.ns)).allowedIps, [`${TUNNEL_B}/32`]);
      assert.equal((await ping(a.ns, TUNNEL_B_EXTRA, { count: 2, interval: 0.2 })).received, 0);
      assert.notEqual((await pingFromExtra()).code, 0, "packets from a non-allowed source got through");
      assert.equal((await ping(a.ns, TUNNEL_B, { count: 2, interval: 0.05 })).received, 2);
    });

    await t.step("widened again: the extra address is reachable", async () => {
      await a.ns.exec(["wg", "set", "wg0", "peer", peerKey, "allowed-ips", both.join(",")]);
      assert.deepEqual((await onlyPeer(a.ns)).allowedIps, both);
      assert.equal((await ping(a.ns, TUNNEL_B_EXTRA, { count: 2, interval: 0.05 })).received, 2);
      assert.equal((await pingFromExtra()).code, 0);
    });

    await t.step("wg set peer remove: the peer is gone and traffic stops", async () => {
      await a.ns.exec(["wg", "set", "wg0", "peer", peerKey, "remove"]);
      assert.deepEqual((await wgShowDump(a.ns, "wg0")).peers, []);
      assert.equal((await ping(a.ns, TUNNEL_B, { count: 2, interval: 0.2 })).received, 0);
      assert.equal((await ping(b.ns, TUNNEL_A, { count: 2, interval: 0.2 })).received, 0);
      assert.equal(a.proc.exited, false, "twofold exited");
      assertNoStackTrace(a.proc.output(), "twofold");
    });
  } finally {
    await topo.cleanup();
  }
  await assertNoLeftoverNamespaces();
});

integrationTest(
  "wg interop: twofold <-> twofold with both ciphers; AES suite vs wireguard-go",
  checks,
  async (t) => {
    await assertNoLeftoverNamespaces();
    for (const cipher of ["chacha20-poly1305", "aes-256-gcm"] as const) {
      await t.step(`twofold pair, --cipher ${cipher}: ping both ways and iperf3`, async () => {
        const topo = new Topology();
        try {
          const impl: Impl = { kind: "twofold", cipher };
          const pair = await buildPair(topo, impl, impl);
          await assertPingBothWays(pair);
          const out = await iperf3Run(pair.a.ns, pair.b.ns, TUNNEL_B, { seconds: 2 });
          console.log(`  iperf3 twofold -> twofold (${cipher}): ${out.gbps.toFixed(3)} Gbit/s`);
          assert.ok(out.gbps > 0);
          const back = await iperf3Run(pair.b.ns, pair.a.ns, TUNNEL_A, { seconds: 2 });
          console.log(`  iperf3 twofold <- twofold (${cipher}): ${back.gbps.toFixed(3)} Gbit/s`);
          assert.ok(back.gbps > 0);
          for (const side of [pair.a, pair.b]) {
            const p = await onlyPeer(side.ns);
            assert.ok(
              p.latestHandshake > 0 && p.rxBytes > 0 && p.txBytes > 0,
              `${side.ns.name}: ${JSON.stringify(p)}`,
            );
            assertNoStackTrace(side.proc.output(), `twofold in ${side.ns.name}`);
          }
        } finally {
          await topo.cleanup();
        }
      });
    }

    await t.step("aes-256-gcm twofold cannot handshake with wireguard-go", async () => {
      const topo = new Topology();
      try {
        const pair = await buildPair(topo, { kind: "twofold", cipher: "aes-256-gcm" }, {
          kind: "wireguard-go",
        });
        // Long enough for a retried handshake initiation (REKEY_TIMEOUT is 5 s) from each side.
        const there = ping(pair.a.ns, TUNNEL_B, { count: 6, interval: 1 });
        const back = ping(pair.b.ns, TUNNEL_A, { count: 6, interval: 1 });
        assert.equal((await there).received, 0, "aes-256-gcm twofold reached wireguard-go");
        assert.equal((await back).received, 0, "wireguard-go reached aes-256-gcm twofold");
        assert.equal((await onlyPeer(pair.a.ns)).latestHandshake, 0, "twofold recorded a handshake");
        assert.equal((await onlyPeer(pair.b.ns)).latestHandshake, 0, "wireguard-go recorded a handshake");
        assert.equal(pair.a.proc.exited, false, "twofold exited");
      } finally {
        await topo.cleanup();
      }
    });
    await assertNoLeftoverNamespaces();
  },
);

integrationTest("wg interop: main.ts wg bad input, second daemon, shutdown paths", checks, async (t) => {
  await assertNoLeftoverNamespaces();
  const topo = new Topology();
  try {
    const pair = await buildPair(topo, { kind: "twofold" }, { kind: "wireguard-go" });
    const { a, b } = pair;
    const cfgA = deviceConfig(a, b, pair.psk);

    await t.step("unknown flag: exit 2, one line on stderr", async () => {
      const r = await runTwofoldWg(a.ns, ["-f", "--bogus", "wg9"]);
      assert.equal(r.code, 2);
      assertNoStackTrace(r.stderr, "unknown flag");
      assert.match(r.stderr, /--bogus/);
      assert.equal(stderrLines(r.stderr).length, 1, `expected one line on stderr, got:\n${r.stderr}`);
      assert.equal(await linkExists(a.ns, "wg9"), false);
    });

    await t.step("bad interface names: exit 2", async () => {
      for (const bad of ["bad/name", "sixteen-chars-xx", ""]) {
        const r = await runTwofoldWg(a.ns, ["-f", bad]);
        assert.equal(r.code, 2, `ifname ${JSON.stringify(bad)}: exit ${r.code}`);
        assertNoStackTrace(r.stderr, `ifname ${JSON.stringify(bad)}`);
        assert.ok(stderrLines(r.stderr).length >= 1, "no message on stderr");
      }
    });

    await t.step("bad cipher (flag or TWOFOLD_CIPHER): exit 2 naming it", async () => {
      const r = await runTwofoldWg(a.ns, ["-f", "--cipher", "rot13", "wg9"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /rot13/);
      assertNoStackTrace(r.stderr, "bad cipher");
      const env = await runTwofoldWg(a.ns, ["-f", "wg9"], { TWOFOLD_CIPHER: "rot13" });
      assert.equal(env.code, 2);
      assert.match(env.stderr, /rot13/);
      assertNoStackTrace(env.stderr, "bad TWOFOLD_CIPHER");
      assert.equal(await linkExists(a.ns, "wg9"), false);
    });

    await t.step("second daemon on a live interface: exit 2, first unaffected", async () => {
      assert.ok(await waitForPing(a.ns, TUNNEL_B, 15_000), "first daemon not working to begin with");
      for (const args of [["-f", "wg0"], ["wg0"]]) {
        const r = await runTwofoldWg(a.ns, args);
        assert.equal(r.code, 2, `main.ts wg ${args.join(" ")}: exit ${r.code}, stderr:\n${r.stderr}`);
        assert.match(r.stderr, /wg0/);
        assert.match(r.stderr, /already|busy|in use|running/i, `unclear message: ${r.stderr}`);
        assertNoStackTrace(r.stderr, "second daemon");
      }
      assert.equal(a.proc.exited, false, "the first daemon exited");
      assert.ok(uapiSocketExists(a.ns, "wg0"), "the first daemon's socket is gone");
      assert.equal((await onlyPeer(a.ns)).publicKey, b.keys.publicKey);
      assert.equal((await ping(a.ns, TUNNEL_B, { count: 3, interval: 0.05 })).received, 3);
    });

    await t.step("SIGTERM: clean exit, socket and interface gone", async () => {
      await a.proc.kill("SIGTERM");
      assert.equal(a.proc.exitCode, 0, `exit code ${a.proc.exitCode} (137 = needed SIGKILL)`);
      assert.equal(uapiSocketExists(a.ns, "wg0"), false, "socket left behind");
      assert.ok(await waitUntil(async () => !(await linkExists(a.ns, "wg0")), 3000), "wg0 left behind");
      assertNoStackTrace(a.proc.output(), "twofold on SIGTERM");
    });

    await t.step("ip link del wg0 makes the daemon exit", async () => {
      const proc = await startWgDevice(a.ns, "wg0", cfgA, { command: twofoldCommand() });
      await a.ns.exec(["ip", "link", "del", "wg0"]);
      assert.ok(await proc.waitFor(5000), "daemon still running 5 s after its interface was deleted");
      await proc.wait();
      assert.ok(await waitUntil(() => !uapiSocketExists(a.ns, "wg0"), 2000), "socket left behind");
      assertNoStackTrace(proc.output(), "twofold on link deletion");
    });

    await t.step("removing the UAPI socket makes the daemon exit and removes the interface", async () => {
      const proc = await startWgDevice(a.ns, "wg0", cfgA, { command: twofoldCommand() });
      await Deno.remove(`${a.ns.runDir}/wg0.sock`);
      assert.ok(await proc.waitFor(5000), "daemon still running 5 s after its socket was removed");
      await proc.wait();
      assert.ok(await waitUntil(async () => !(await linkExists(a.ns, "wg0")), 3000), "wg0 left behind");
      assertNoStackTrace(proc.output(), "twofold on socket removal");
    });
  } finally {
    await topo.cleanup();
  }
  await assertNoLeftoverNamespaces();
});
