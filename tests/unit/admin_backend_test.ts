/**
 * The node side of the admin API without root: the persisted lockdown list (atomic save, reload,
 * corrupt-file refusal), NodeAdminBackend over a fake node (status through the real Hono app, no key
 * material, counters), the CLI's port parsing and table rendering, the SSE parser, and the events
 * client's reconnect with Last-Event-ID against a small SSE server on a unix socket.
 */
import assert from "node:assert/strict";
import type { LockdownPort, NodeStatus } from "../../src/admin/model.ts";
import { createAdminApp } from "../../src/admin/app.ts";
import { AdminClient, parseAdminTarget } from "../../src/cli/admin-client.ts";
import { CliError } from "../../src/cli/errors.ts";
import { followEvents, formatEventLine, SseParser } from "../../src/cli/events.ts";
import { operatorError, parseSpecs, renderLockdown, toRequestEntry } from "../../src/cli/lockdown.ts";
import { apiError } from "../../src/cli/admin-client.ts";
import { formatAge, formatBytes, renderStatusTable } from "../../src/cli/status.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { generatePrivateKey, publicKey as derivePublicKey } from "../../src/crypto/x25519.ts";
import { DeviceWord, type StatName, STATS } from "../../src/wireguard/dataplane/shared-state.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { EventBus, type NodeEvent } from "../../src/events/bus.ts";
import { PskGate } from "../../src/keys/psk-gate.ts";
import { aesSuite, chachaSuite } from "../../src/noise/suite.ts";
import type { UapiDeviceSnapshot } from "../../src/uapi/types.ts";
import { type AdminDeviceView, type AdminNodeView, NodeAdminBackend } from "../../src/node/admin-backend.ts";
import {
  LOCKDOWN_FILE,
  LockdownList,
  LockdownListError,
  normalizeLockdownPorts,
  parseProtoPort,
} from "../../src/node/lockdown-list.ts";

const tcp = (from: number, to = from): LockdownPort => ({ proto: "tcp", from, to });
const udp = (from: number, to = from): LockdownPort => ({ proto: "udp", from, to });

function throwsWith<E extends Error>(fn: () => unknown, type: new (...a: never[]) => E, re: RegExp): E {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
  assert.match((error as Error).message, re);
  return error as E;
}

Deno.test("lockdown list: parsing and validation", async (t) => {
  await t.step("PROTO/PORT and PROTO/FIRST-LAST parse; anything else names the format", () => {
    assert.deepEqual(parseProtoPort("tcp/8080"), tcp(8080));
    assert.deepEqual(parseProtoPort("UDP/6000-6010"), udp(6000, 6010));
    assert.deepEqual(parseProtoPort(" tcp/1-65535 "), tcp(1, 65535));
    for (const bad of ["tcp", "8080", "sctp/80", "tcp/", "tcp/80-", "tcp/-80", "tcp/8080/1", "tcp/80,81"]) {
      throwsWith(() => parseProtoPort(bad), LockdownListError, /PROTO\/PORT/);
    }
    throwsWith(() => parseProtoPort("tcp/0"), LockdownListError, /1 to 65535/);
    throwsWith(() => parseProtoPort("udp/65536"), LockdownListError, /1 to 65535/);
    throwsWith(() => parseProtoPort("udp/10-5"), LockdownListError, /lower port first/);
  });

  await t.step("a list is sorted; overlapping or malformed entries are refused with their index", () => {
    assert.deepEqual(
      normalizeLockdownPorts([udp(6000, 6010), tcp(8080), tcp(443)]),
      [tcp(443), tcp(8080), udp(6000, 6010)],
    );
    throwsWith(
      () => normalizeLockdownPorts([tcp(8000, 8010), tcp(8005)]),
      LockdownListError,
      /entry 1 .*overlaps entry 0/,
    );
    throwsWith(() => normalizeLockdownPorts([tcp(80), tcp(80)]), LockdownListError, /overlaps/);
    // The same port on the two protocols is not an overlap.
    assert.equal(normalizeLockdownPorts([tcp(53), udp(53)]).length, 2);
    throwsWith(
      () => normalizeLockdownPorts([{ proto: "icmp", from: 1, to: 1 } as unknown as LockdownPort]),
      LockdownListError,
      /entry 0: proto/,
    );
    throwsWith(() => normalizeLockdownPorts([tcp(1.5)]), LockdownListError, /1 to 65535/);
    const many = Array.from({ length: 257 }, (_, i) => tcp(i + 1));
    throwsWith(() => normalizeLockdownPorts(many), LockdownListError, /more than 256/);
  });
});

Deno.test("lockdown list: persistence", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfa-unit-" });
  try {
    await t.step("no file: the config's list is in force and nothing is written", () => {
      const l = LockdownList.open(`${dir}/a`, [udp(6000, 6010), tcp(8080)]);
      assert.equal(l.source, "config");
      assert.deepEqual(l.ports, [tcp(8080), udp(6000, 6010)]);
      assert.throws(() => Deno.statSync(`${dir}/a/${LOCKDOWN_FILE}`), Deno.errors.NotFound);
    });

    await t.step("set persists (0600, state dir created) and a reopen loads it, not the config", () => {
      const l = LockdownList.open(`${dir}/a`, [tcp(8080)]);
      assert.deepEqual(l.set([udp(53), tcp(22)]), [tcp(22), udp(53)]);
      const st = Deno.statSync(`${dir}/a/${LOCKDOWN_FILE}`);
      assert.equal(st.mode! & 0o777, 0o600);
      const again = LockdownList.open(`${dir}/a`, [tcp(8080)]);
      assert.equal(again.source, "file");
      assert.deepEqual(again.ports, [tcp(22), udp(53)]);
      // An emptied list stays empty across a restart (the config does not come back).
      again.set([]);
      assert.deepEqual(LockdownList.open(`${dir}/a`, [tcp(8080)]).ports, []);
    });

    await t.step("an invalid set throws and leaves the list and the file as they were", () => {
      const l = LockdownList.open(`${dir}/b`);
      l.set([tcp(80)]);
      const before = Deno.readTextFileSync(`${dir}/b/${LOCKDOWN_FILE}`);
      throwsWith(() => l.set([tcp(80), tcp(79, 81)]), LockdownListError, /overlaps/);
      assert.deepEqual(l.ports, [tcp(80)]);
      assert.equal(Deno.readTextFileSync(`${dir}/b/${LOCKDOWN_FILE}`), before);
    });

    await t.step("a save that cannot be written throws and keeps the old list in force", () => {
      const l = LockdownList.open(`${dir}/c`);
      l.set([tcp(80)]);
      Deno.mkdirSync(`${dir}/c/${LOCKDOWN_FILE}.tmp`); // the temporary file cannot be created
      throwsWith(() => l.set([tcp(81)]), LockdownListError, /saving the lockdown list/);
      assert.deepEqual(l.ports, [tcp(80)]);
      Deno.removeSync(`${dir}/c/${LOCKDOWN_FILE}.tmp`);
    });

    await t.step("a leftover temporary file from an interrupted save is removed; the old list stands", () => {
      Deno.writeTextFileSync(`${dir}/b/${LOCKDOWN_FILE}.tmp`, "{ half a wri");
      const l = LockdownList.open(`${dir}/b`);
      assert.deepEqual(l.ports, [tcp(80)]);
      assert.throws(() => Deno.statSync(`${dir}/b/${LOCKDOWN_FILE}.tmp`), Deno.errors.NotFound);
    });

    await t.step("a corrupt file stops the start with its path and the fix, never an empty list", () => {
      const cases = [
        "not json",
        "{}",
        '{"version": 2, "ports": []}',
        '{"version": 1, "ports": {}}',
        '{"version": 1, "ports": [{"proto": "tcp", "from": 0, "to": 5}]}',
        '{"version": 1, "ports": [{"proto": "tcp", "from": 5, "to": 9}, {"proto": "tcp", "from": 9, "to": 9}]}',
      ];
      for (const text of cases) {
        Deno.writeTextFileSync(`${dir}/b/${LOCKDOWN_FILE}`, text);
        const e = throwsWith(() => LockdownList.open(`${dir}/b`, [tcp(8080)]), LockdownListError, /corrupt/);
        assert.ok(e.message.includes(`${dir}/b/${LOCKDOWN_FILE}`), e.message);
        assert.match(e.message, /remove it/);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------
// A fake node for the backend.

const OWN = generatePrivateKey();
const PEER_B = generatePrivateKey();
const HUB = generatePrivateKey();
const OWN_PUB = derivePublicKey(OWN);
const B_PUB = derivePublicKey(PEER_B);
const HUB_PUB = derivePublicKey(HUB);
const WG_PSK = crypto.getRandomValues(new Uint8Array(32));
const AES_PSK = crypto.getRandomValues(new Uint8Array(32));

function fakeDevice(
  suite: AdminDeviceView["suite"],
  mtu: number,
  port: number,
  snap: () => UapiDeviceSnapshot,
  stats: Partial<Record<StatName, number>>,
): AdminDeviceView {
  const header = new Int32Array(16);
  header[DeviceWord.mtu] = mtu;
  const all = Object.fromEntries(STATS.map((n) => [n, stats[n] ?? 0])) as Record<StatName, number>;
  return { suite, listenPort: port, snapshot: snap, shared: { statsSnapshot: () => ({ ...all }), header } };
}

function fakeNode(dir: string, now: number) {
  const cfg = parseNodeConfig(
    JSON.stringify({
      node: { name: "node-a", privateKeyFile: "./a.key", stateDir: dir },
      wg0: { address: "100.64.0.1/10" },
      aes0: { address: "100.127.0.1/16" },
      peers: [
        { name: "node-b", publicKey: encodeBase64(B_PUB), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
        { name: "hub-1", publicKey: encodeBase64(HUB_PUB), wgIp: "100.64.0.100", role: "hub" },
      ],
    }),
    { baseDir: dir, checkFiles: false },
  );
  cfg.node.publicKey = OWN_PUB;
  const events = new EventBus({ clock: () => now });
  const gate = new PskGate({
    setPresharedKey: () => true,
    initiateHandshake: () => {},
    dropSessions: () => {},
  }, {
    clock: () => now,
    onEvent: (e) => {
      if (e.type === "key-installed") {
        events.publish({
          type: "key-rotated",
          layer: "aes0",
          peer: "node-b",
          epoch: e.epoch!,
          reason: e.reason,
        });
      }
    },
  });
  gate.addPeer(B_PUB, "manual");
  const peerSnap = (pub: Uint8Array, psk: Uint8Array, rx: number, tx: number, hs: number) => ({
    publicKey: pub,
    presharedKey: psk,
    endpoint: "10.232.0.2:51820",
    lastHandshakeMs: hs,
    rxBytes: rx,
    txBytes: tx,
    persistentKeepalive: 0,
    allowedIps: ["100.64.0.2/32"],
  });
  const wg0 = fakeDevice(chachaSuite(), 1420, 51820, () => ({
    privateKey: OWN,
    listenPort: 51820,
    fwmark: 0,
    peers: [
      peerSnap(B_PUB, WG_PSK, 123_456, 7_890, now - 12_000),
      peerSnap(HUB_PUB, new Uint8Array(32), 0, 0, 0),
    ],
  }), { rxReplay: 3, txNoRoute: 2, rxPackets: 99 });
  const aes0 = fakeDevice(aesSuite(), 1360, 51830, () => ({
    privateKey: OWN,
    listenPort: 51830,
    fwmark: 0,
    peers: [peerSnap(B_PUB, AES_PSK, 2048, 4096, now - 3_000)],
  }), { rxAuthFailed: 5 });
  const node: AdminNodeView = {
    wg0: { device: wg0, tunQueueDrops: () => 0 },
    aes0: { device: aes0, tunQueueDrops: () => 17 },
    gate,
    dske: null,
    psrd: null,
    events,
    config: cfg,
    startedAt: now - 65_000,
  };
  return { node, gate, events };
}

Deno.test("NodeAdminBackend over a fake node", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfa-unit-" });
  const now = Date.parse("2025-06-01T12:00:00Z");
  const { node, gate, events } = fakeNode(dir, now);
  // A rotation before the backend exists is counted from the bus history.
  assert.ok(gate.install(B_PUB, AES_PSK, 1, "manual").ok);
  const backend = new NodeAdminBackend(node, LockdownList.open(dir, [tcp(8080)]), { clock: () => now });
  try {
    let status!: NodeStatus;
    await t.step("status: both layers per peer, interface facts, gate state", () => {
      status = backend.status();
      assert.equal(status.node.name, "node-a");
      assert.equal(status.node.publicKey, encodeBase64(OWN_PUB));
      assert.equal(status.node.uptimeSeconds, 65);
      assert.equal(status.interfaces.wg0.cipherSuite, "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
      assert.equal(status.interfaces.wg0.aead, "ChaCha20-Poly1305");
      assert.equal(status.interfaces.aes0.aead, "AES-256-GCM");
      assert.ok(["libcrypto", "noble"].includes(status.interfaces.aes0.aeadBackend));
      assert.equal(status.interfaces.aes0.mtu, 1360);
      assert.equal(status.interfaces.aes0.address, "100.127.0.1/16");
      const b = status.peers.find((p) => p.name === "node-b")!;
      assert.equal(b.wg0.rxBytes, 123_456);
      assert.equal(b.wg0.lastHandshakeAgeSeconds, 12);
      assert.equal(b.wg0.psk.source, "static", "a wg0 PSK set through UAPI is reported, never its bytes");
      assert.equal(b.aes0!.gate.state, "open");
      assert.equal(b.aes0!.keyEpoch, 1);
      assert.equal(b.aes0!.keyAgeSeconds, 0);
      assert.equal(b.aes0!.txBytes, 4096);
      assert.equal(b.aes0!.keySource, "manual");
      assert.deepEqual(
        b.aes0!.keyLimits,
        { rotationIntervalSeconds: null, maxAgeSeconds: null },
        "a manual key",
      );
      const hub = status.peers.find((p) => p.name === "hub-1")!;
      assert.equal(hub.role, "hub");
      assert.equal(hub.aes0, null);
      assert.equal(hub.wg0.psk.source, "none");
      assert.equal(hub.wg0.lastHandshake, null);
      assert.deepEqual(status.lockdown, { ports: [tcp(8080)], enforced: true });
      assert.equal(status.dske, null);
    });

    await t.step("no key material in the status", () => {
      const text = JSON.stringify(status);
      for (const secret of [OWN, WG_PSK, AES_PSK]) {
        assert.ok(!text.includes(encodeBase64(secret)), "base64 of a secret in the status");
        assert.ok(!text.includes(toHex(secret)), "hex of a secret in the status");
      }
    });

    await t.step("counters: drops by reason per interface, rotations from history and live", () => {
      assert.ok(gate.install(B_PUB, crypto.getRandomValues(new Uint8Array(32)), 2, "manual").ok);
      events.publish({ type: "rotation-failed", peer: "node-b", reason: "test" });
      const c = backend.counters();
      assert.equal(c.drops.wg0.rxReplay, 3);
      assert.equal(c.drops.wg0.txNoRoute, 2);
      assert.equal(c.drops.aes0.rxAuthFailed, 5);
      assert.equal(c.drops.wg0.rxPackets, undefined, "traffic counters are not drops");
      assert.equal(c.drops.aes0.tunQueueFull, 17, "the kernel's TUN queue drops are a drop reason");
      assert.equal(c.drops.wg0.tunQueueFull, 0);
      assert.deepEqual(c.rotations, { "node-b": { ok: 2, failed: 1 } });
    });

    await t.step(
      "the real app serves the status (it passes the app's schema) and saves lockdown changes",
      async () => {
        const app = createAdminApp(backend, { token: "test-token-1", readsNeedToken: false });
        const r = await app.request("/v1/status");
        assert.equal(r.status, 200);
        const body = await r.json() as NodeStatus;
        assert.equal(body.peers.length, 2);
        const put = await app.request("/v1/lockdown/ports", {
          method: "PUT",
          headers: { "content-type": "application/json", authorization: "Bearer test-token-1" },
          body: JSON.stringify({ ports: [{ proto: "udp", port: "6000-6010" }] }),
        });
        assert.equal(put.status, 200, await put.clone().text());
        assert.deepEqual(LockdownList.open(dir).ports, [udp(6000, 6010)], "persisted");
        assert.deepEqual(backend.lockdown().ports, [udp(6000, 6010)]);
        const metrics = await (await app.request("/metrics")).text();
        assert.match(metrics, /node-b/);
      },
    );

    await t.step("close stops counting", () => {
      const before = events.listenerCount;
      backend.close();
      assert.equal(events.listenerCount, before - 1);
    });
  } finally {
    backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("NodeAdminBackend: DSKE peers and hubs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfa-unit-" });
  try {
    const now = Date.now();
    const { node } = fakeNode(dir, now);
    const hubKeys = [generatePrivateKey(), generatePrivateKey()].map(derivePublicKey);
    node.config = parseNodeConfig(
      JSON.stringify({
        node: { name: "node-a", privateKeyFile: "./a.key", stateDir: dir },
        wg0: { address: "100.64.0.1/10" },
        aes0: { address: "100.127.0.1/16" },
        keys: { dskeThreshold: 2, rotationIntervalSeconds: 30 },
        peers: [
          {
            name: "node-b",
            publicKey: encodeBase64(B_PUB),
            wgIp: "100.64.0.2",
            aesIp: "100.127.0.2",
            keySource: "dske",
          },
          ...hubKeys.map((k, i) => ({
            name: `hub-${i + 1}`,
            publicKey: encodeBase64(k),
            wgIp: `100.64.0.${101 + i}`,
            role: "hub",
          })),
        ],
      }),
      { baseDir: dir, checkFiles: false },
    );
    const hubA = "aa".repeat(16);
    const hubB = "bb".repeat(16);
    node.dske = {
      status: () => [{
        peer: "node-b",
        role: "generator",
        lastEpoch: 3,
        agreed: 3,
        failed: 1,
        badHubs: [hubB],
        problem: "shares inconsistent for epoch 4: at least 2 of these 3 hubs gave a wrong share",
        heldEpochs: [2, 3],
      }],
      rejectedFrames: () => 4,
      hubStatus: () => [
        {
          hubId: hubA,
          endpoint: "100.64.0.101:51831",
          reachable: true,
          lastAnswerAt: now - 3_000,
          misbehaving: false,
        },
        {
          hubId: hubB,
          endpoint: "100.64.0.102:51831",
          reachable: false,
          lastAnswerAt: null,
          misbehaving: false,
        },
      ],
    };
    const block = (hubId: string, tx: number, rx: number) => ({
      blockId: hubId.slice(0, 32),
      role: "client" as const,
      hubId,
      clientId: "cc".repeat(16),
      peerId: toHex(OWN_PUB),
      hubEndpoint: "ignored:51831",
      txNext: 0,
      rxNext: 0,
      txRemaining: tx,
      rxRemaining: rx,
      txLen: tx,
      rxLen: rx,
    });
    node.psrd = {
      blocks: () => [block(hubA, 100_000, 90_000), block(hubA, 5_000, 0), block(hubB, 4_000, 4_000)],
    };
    const backend = new NodeAdminBackend(node, LockdownList.open(dir), { clock: () => now });
    node.events.publish({ type: "psrd-low", hub: hubB, reason: "low" });
    const s = backend.status();
    assert.deepEqual(s.dske, {
      threshold: 2,
      rotationIntervalSeconds: 30,
      rejectedPeerFrames: 4,
      hubs: [
        {
          name: "hub-1",
          hubId: hubA,
          endpoint: "100.64.0.101:51831",
          reachable: true,
          lastAnswerAgeSeconds: 3,
          misbehaving: false,
          psrd: { txRemaining: 105_000, rxRemaining: 90_000, low: false },
        },
        {
          name: "hub-2",
          hubId: hubB,
          endpoint: "100.64.0.102:51831",
          reachable: false,
          lastAnswerAgeSeconds: null,
          misbehaving: true, // named in the latest round
          psrd: { txRemaining: 4_000, rxRemaining: 4_000, low: true },
        },
      ],
    });
    const b = s.peers.find((p) => p.name === "node-b")!;
    assert.equal(b.aes0!.keySource, "dske");
    // The node config's default maximum age: three rotation intervals.
    assert.deepEqual(b.aes0!.keyLimits, { rotationIntervalSeconds: 30, maxAgeSeconds: 90 });
    assert.deepEqual(b.aes0!.dske, {
      role: "generator",
      lastEpoch: 3,
      rotationsOk: 3,
      rotationsFailed: 1,
      badHubs: [hubB],
      problem: "shares inconsistent for epoch 4: at least 2 of these 3 hubs gave a wrong share",
      heldEpochs: [2, 3],
    });
    const table = renderStatusTable(s);
    assert.match(table, /DSKE: k = 2 of 2 hub\(s\), rotation every 30s/);
    assert.match(
      table,
      /^hub-2 +bbbbbbbbbbbbbbbb +100\.64\.0\.102:51831 +no \(never answered\) +3\.9 KiB +3\.9 KiB +PSRD low, MISBEHAVING$/m,
    );
    assert.match(table, /^hub-1 +a{16} +100\.64\.0\.101:51831 +yes \(3s ago\) /m);
    assert.match(table, /^node-b: DSKE shares inconsistent for epoch 4: at least 2 of these 3 hubs/m);
    assert.match(table, /^DSKE: 4 node-to-node frame\(s\) dropped/m);
    backend.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI rendering and arguments", async (t) => {
  await t.step("byte and age formats", () => {
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(123_456), "121 KiB");
    assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
    assert.equal(formatAge(null), "never");
    assert.equal(formatAge(4.6), "4s");
    assert.equal(formatAge(75), "1m15s");
    assert.equal(formatAge(7322), "2h02m");
    assert.equal(formatAge(90_000), "1d01h");
  });

  await t.step("the status table shows both layers per peer and why a gate is closed", async () => {
    const dir = await Deno.makeTempDir({ prefix: "tfa-unit-" });
    try {
      const now = Date.now();
      const { node, gate } = fakeNode(dir, now);
      const backend = new NodeAdminBackend(node, LockdownList.open(dir, [tcp(8080), udp(6000, 6010)]), {
        clock: () => now,
      });
      let text = renderStatusTable(backend.status());
      assert.match(text, /^node node-a /);
      assert.match(
        text,
        /^PEER +ROLE +WG0 ENDPOINT +HANDSHAKE +RX +TX +WG0 PSK +AES0 GATE /m,
        "the wg0 PSK column says whose PSK it is",
      );
      assert.match(text, /aes0 +100\.127\.0\.1\/16 +udp\/51830 +mtu 1360 +AES-256-GCM/m);
      assert.match(text, /lockdown extra ports: tcp\/8080, udp\/6000-6010\n/);
      const row = text.split("\n").find((l) => l.startsWith("node-b"))!;
      assert.match(
        row,
        /node-b +peer +10\.232\.0\.2:51820 +12s ago +121 KiB +7\.7 KiB +static +closed +- +- +3s ago/,
      );
      assert.match(text, /node-b: aes0 gate closed: new peer/);
      assert.match(text.split("\n").find((l) => l.startsWith("hub-1"))!, /\(hub: wg0 only\)/);
      gate.install(B_PUB, AES_PSK, 4, "manual");
      text = renderStatusTable(backend.status());
      assert.match(
        text.split("\n").find((l) => l.startsWith("node-b"))!,
        / open +4 +0s +3s ago +2\.0 KiB +4\.0 KiB$/,
      );
      assert.doesNotMatch(text, /gate closed/);
      backend.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("lockdown specs: parsed, sent in the API's form; a bad one is a usage error", () => {
    assert.deepEqual(parseSpecs(["tcp/8080", "udp/6000-6010"]), [tcp(8080), udp(6000, 6010)]);
    assert.deepEqual(toRequestEntry(tcp(8080)), { proto: "tcp", port: 8080 });
    assert.deepEqual(toRequestEntry(udp(6000, 6010)), { proto: "udp", port: "6000-6010" });
    const e = throwsWith(() => parseSpecs(["tcp:8080"]), CliError, /PROTO\/PORT.*usage: twofold lockdown/);
    assert.equal(e.exitCode, 2);
    assert.equal(renderLockdown({ ports: [], enforced: false }).split("\n")[0], "(no extra ports)");
    assert.match(renderLockdown({ ports: [tcp(22)], enforced: false }), /^tcp\/22\nstored, not enforced/);
  });

  await t.step(
    "lockdown API errors are said with the entries as typed, never as body/ports[i] fields",
    () => {
      const said = (detail: string, status: number, ports: LockdownPort[], unchanged: string) =>
        operatorError(apiError(status, JSON.stringify({ detail })), ports, unchanged).message;
      assert.equal(
        said("ports[1]: tcp/51831 is always allowed by the lockdown; leave it out", 422, [
          tcp(80),
          tcp(51831),
        ], "nothing was added"),
        "tcp/51831 is always allowed by the lockdown; leave it out; nothing was added (HTTP 422)",
      );
      assert.equal(
        said("ports[1]: tcp/9005 overlaps ports[0] tcp/9000-9010; merge them into one entry", 422, [
          tcp(9000, 9010),
          tcp(9005),
        ], "nothing was added"),
        "tcp/9005 overlaps tcp/9000-9010; merge them into one entry; nothing was added (HTTP 422)",
      );
      assert.equal(
        said(
          "tcp/8080 is already in the lockdown list; nothing was added",
          409,
          [tcp(8080)],
          "nothing was added",
        ),
        "tcp/8080 is already in the lockdown list; nothing was added (HTTP 409)",
      );
      assert.equal(
        said("body.port: 70000 is outside 1..65535", 422, [tcp(1)], "the list is unchanged"),
        "70000 is outside 1..65535; the list is unchanged (HTTP 422)",
      );
      for (const m of [said("ports[0].port: 0 is outside 1..65535", 422, [tcp(1)], "x")]) {
        assert.doesNotMatch(m, /\bbody\b|ports\[/);
      }
    },
  );

  await t.step("--admin: unix paths and loopback addresses; anything else exit 2", () => {
    assert.deepEqual(parseAdminTarget(undefined), { kind: "unix", path: "/run/twofold/admin.sock" });
    assert.deepEqual(parseAdminTarget("/tmp/x.sock"), { kind: "unix", path: "/tmp/x.sock" });
    assert.deepEqual(parseAdminTarget("unix:/tmp/y.sock"), { kind: "unix", path: "/tmp/y.sock" });
    assert.deepEqual(parseAdminTarget("127.0.0.1:9000"), { kind: "tcp", host: "127.0.0.1", port: 9000 });
    assert.equal(parseAdminTarget("[::1]:9000").kind, "tcp");
    for (const bad of ["10.0.0.1:9000", "0.0.0.0:9000", "nonsense"]) {
      const e = throwsWith(() => parseAdminTarget(bad), CliError, /--admin/);
      assert.equal(e.exitCode, 2);
    }
  });

  await t.step("an event line names type, layer, peer, epoch and reason", () => {
    const e: NodeEvent = {
      id: 7,
      at: "2025-06-01T12:00:00.000Z",
      type: "key-rotated",
      layer: "aes0",
      peer: "node-b",
      epoch: 3,
      reason: "installed (manual)",
    };
    assert.equal(
      formatEventLine(e),
      "2025-06-01T12:00:00.000Z key-rotated aes0 peer node-b epoch 3: installed (manual)",
    );
  });
});

Deno.test("SSE parser", async (t) => {
  await t.step("messages split across chunks, CRLF, comments, multi-line data", () => {
    const p = new SseParser();
    assert.deepEqual(p.push(": heartbeat\n\nid: 1\nevent: key-rot"), []);
    assert.deepEqual(p.push('ated\ndata: {"a":1}\n'), []);
    assert.deepEqual(p.push("\nid: 2\r\ndata: x\r\ndata: y\r"), [{
      id: "1",
      event: "key-rotated",
      data: '{"a":1}',
    }]);
    assert.deepEqual(p.push("\n\r\n"), [{ id: "2", event: "message", data: "x\ny" }]);
    assert.equal(p.lastId, "2");
    // A message without an id keeps the last one (as EventSource does); retry: is ignored.
    assert.deepEqual(p.push("retry: 100\ndata:z\n\n"), [{ id: "2", event: "message", data: "z" }]);
  });
});

Deno.test("events client: a dropped stream is re-opened with Last-Event-ID; errors are one line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfa-unit-" });
  const path = `${dir}/admin.sock`;
  const seen: (string | null)[] = [];
  const frame = (id: number) =>
    `id: ${id}\nevent: gate-opened\ndata: ${JSON.stringify({ id, type: "gate-opened" })}\n\n`;
  const enc = new TextEncoder();
  const server = Deno.serve({ path, transport: "unix", onListen: () => {} }, (req) => {
    const last = req.headers.get("last-event-id");
    seen.push(last);
    const after = last === null ? 0 : Number(last);
    // Each connection sends the next two events and then drops the stream.
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode(": hello\n\n" + frame(after + 1) + frame(after + 2)));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const client = new AdminClient({ kind: "unix", path });
  try {
    await t.step("ids continue across reconnects with no gap and no duplicate", async () => {
      const ac = new AbortController();
      const got: number[] = [];
      const reconnects: (string | null)[] = [];
      await followEvents({
        client,
        lastEventId: "10",
        signal: ac.signal,
        reconnectDelayMs: 10,
        onReconnect: (_why, id) => reconnects.push(id),
        onEvent: (e) => {
          got.push(e.id);
          if (got.length === 6) ac.abort();
        },
      });
      assert.deepEqual(got, [11, 12, 13, 14, 15, 16]);
      assert.deepEqual(seen, ["10", "12", "14"]);
      assert.deepEqual(reconnects, ["12", "14"]);
    });

    await t.step("no node on the socket: one line, exit 1", async () => {
      const none = new AdminClient({ kind: "unix", path: `${dir}/none.sock` });
      try {
        const e = await none.json("GET", "/v1/status").then(() => null, (e) => e);
        assert.ok(e instanceof CliError);
        assert.equal(e.exitCode, 1);
        assert.equal(e.message, `no node is listening on ${dir}/none.sock: is twofold up running?`);
        const f = await followEvents({
          client: none,
          signal: new AbortController().signal,
          onEvent: () => {},
        })
          .then(() => null, (e) => e);
        assert.ok(f instanceof CliError && f.exitCode === 1, "events does not retry when it never connected");
      } finally {
        none.close();
      }
    });
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
