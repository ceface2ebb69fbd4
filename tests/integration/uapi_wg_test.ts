import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { formatEndpoint } from "../../src/uapi/netaddr.ts";
import { UapiServer } from "../../src/uapi/server.ts";
import type {
  UapiDevice,
  UapiDeviceSnapshot,
  UapiPeerSnapshot,
  UapiSetRequest,
} from "../../src/uapi/types.ts";

const WG = "/usr/bin/wg";
const EPERM = 1;

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const toBase64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** An in-memory device that really stores what `apply` is told, with switchable failures. */
class MemoryDevice implements UapiDevice {
  privateKey: Uint8Array | null = null;
  listenPort = 0;
  fwmark = 0;
  peers = new Map<string, UapiPeerSnapshot>();
  busyPorts = new Set<number>();
  refusePresharedKeys = false;
  applyCalls = 0;
  /** When set, apply waits for this promise first (to observe serialisation). */
  gate: Promise<void> | null = null;
  /** When set, apply throws this. */
  failure: Error | null = null;

  snapshot(): UapiDeviceSnapshot {
    return {
      privateKey: this.privateKey,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.allowedIps] })),
    };
  }

  async apply(req: UapiSetRequest): Promise<number> {
    this.applyCalls++;
    if (this.gate) await this.gate;
    if (this.failure) throw this.failure;
    if (req.listenPort !== undefined && this.busyPorts.has(req.listenPort)) return -98;
    if (this.refusePresharedKeys && req.peers.some((p) => p.presharedKey && !isZero(p.presharedKey))) {
      return -EPERM;
    }
    if (req.privateKey) this.privateKey = isZero(req.privateKey) ? null : req.privateKey.slice();
    if (req.listenPort !== undefined) this.listenPort = req.listenPort;
    if (req.fwmark !== undefined) this.fwmark = req.fwmark;
    if (req.replacePeers) this.peers.clear();
    const ownKey = this.privateKey ? toHex(publicKey(this.privateKey)) : null;
    for (const change of req.peers) {
      const id = toHex(change.publicKey);
      if (id === ownKey) continue;
      if (change.remove) {
        this.peers.delete(id);
        continue;
      }
      let peer = this.peers.get(id);
      if (!peer) {
        if (change.updateOnly) continue;
        peer = {
          publicKey: change.publicKey.slice(),
          presharedKey: new Uint8Array(32),
          endpoint: null,
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          persistentKeepalive: 0,
          allowedIps: [],
        };
        this.peers.set(id, peer);
      }
      if (change.presharedKey) peer.presharedKey = change.presharedKey.slice();
      if (change.endpoint) peer.endpoint = formatEndpoint(change.endpoint);
      if (change.persistentKeepalive !== undefined) peer.persistentKeepalive = change.persistentKeepalive;
      if (change.replaceAllowedIps) peer.allowedIps = [];
      for (const cidr of change.allowedIps) {
        for (const other of this.peers.values()) {
          other.allowedIps = other.allowedIps.filter((c) => c !== cidr);
        }
        peer.allowedIps.push(cidr);
      }
    }
    return 0;
  }

  peer(pub: Uint8Array): UapiPeerSnapshot | undefined {
    return this.peers.get(toHex(pub));
  }
}

/** Sends `request`, half-closes, and returns everything the server wrote until it closed. */
async function converse(path: string, request: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(request));
    await conn.closeWrite();
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } finally {
    conn.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

Deno.test("UapiServer socket behaviour (private temp directory)", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "uapi-server-" });
  const dir = `${root}/run/wireguard`;
  const device = new MemoryDevice();
  let removed = 0;
  const servers: UapiServer[] = [];
  try {
    const server = await UapiServer.listen("tfuapi0", device, { dir, onRemoved: () => removed++ });
    servers.push(server);

    await t.step("directory 0755, socket 0600 at <dir>/<ifname>.sock, no staging leftovers", async () => {
      assert.equal(server.path, `${dir}/tfuapi0.sock`);
      assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o755);
      const info = await Deno.lstat(server.path);
      assert.ok(info.isSocket);
      assert.equal(info.mode! & 0o777, 0o600);
      const names = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      assert.deepEqual(names, ["tfuapi0.sock"]);
    });

    await t.step("several requests on one connection are answered in order", async () => {
      const reply = await converse(server.path, "get=1\n\nset=1\nlisten_port=7\nfwmark=3\n\nget=1\n\n");
      assert.equal(reply, "errno=0\n\nerrno=0\n\nlisten_port=7\nfwmark=3\nerrno=0\n\n");
    });

    await t.step("a connection that sends nothing is harmless (wg probes this way)", async () => {
      assert.equal(await converse(server.path, ""), "");
    });

    await t.step("an unknown operation closes the connection without a reply", async () => {
      assert.equal(await converse(server.path, "hello\nget=1\n\n"), "");
      assert.equal(await converse(server.path, "get=2\n\n"), "");
    });

    await t.step("trailing data after get=1 is -EINVAL, then the connection closes", async () => {
      assert.equal(await converse(server.path, "get=1\nx\nget=1\n\n"), "errno=-22\n\n");
    });

    await t.step("a set without its blank line is not applied (-EPROTO)", async () => {
      const before = device.applyCalls;
      assert.equal(await converse(server.path, "set=1\nlisten_port=9\n"), "errno=-71\n\n");
      assert.equal(device.applyCalls, before);
      assert.equal(device.listenPort, 7);
    });

    await t.step("an over-long line is -EIO and nothing is applied", async () => {
      const before = device.applyCalls;
      const reply = await converse(server.path, `set=1\nlisten_port=${"1".repeat(100_000)}\n\n`);
      assert.equal(reply, "errno=-5\n\n");
      assert.equal(device.applyCalls, before);
      // An over-long operation line is garbage: closed without reply.
      assert.equal(await converse(server.path, `${"g".repeat(10_000)}\n`), "");
    });

    await t.step("device errors are passed through; a throwing device gives -55", async () => {
      device.busyPorts.add(4000);
      assert.equal(await converse(server.path, "set=1\nlisten_port=4000\n\n"), "errno=-98\n\n");
      device.failure = new Error("boom");
      assert.equal(await converse(server.path, "set=1\nfwmark=1\n\n"), "errno=-55\n\n");
      device.failure = null;
      assert.equal(device.listenPort, 7);
      assert.equal(device.fwmark, 3);
    });

    await t.step("requests from different connections are serialised against the device", async () => {
      let release!: () => void;
      device.gate = new Promise((resolve) => release = resolve);
      const setReply = converse(server.path, "set=1\nlisten_port=8\n\n");
      await new Promise((r) => setTimeout(r, 50));
      let getDone = false;
      const getReply = converse(server.path, "get=1\n\n").then((r) => {
        getDone = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(getDone, false, "get must wait for the pending set");
      device.gate = null;
      release();
      assert.equal(await setReply, "errno=0\n\n");
      assert.match(await getReply, /^listen_port=8\n/);
    });

    await t.step("a second server for the same name is refused while the first answers", async () => {
      await assert.rejects(
        UapiServer.listen("tfuapi0", new MemoryDevice(), { dir }),
        /interface tfuapi0 already has a running daemon \(socket .*tfuapi0\.sock\)/,
      );
      assert.equal(await converse(server.path, "get=1\n\n"), "listen_port=8\nfwmark=3\nerrno=0\n\n");
    });

    await t.step("a stale socket is replaced; a non-socket file is not", async () => {
      const stalePath = `${dir}/tfuapi1.sock`;
      const stale = Deno.listen({ transport: "unix", path: stalePath });
      stale.close(); // the file stays, nobody listens
      const fresh = await UapiServer.listen("tfuapi1", new MemoryDevice(), { dir });
      servers.push(fresh);
      assert.equal(await converse(fresh.path, "get=1\n\n"), "errno=0\n\n");
      await fresh.close();
      await assert.rejects(Deno.lstat(stalePath), Deno.errors.NotFound, "close removes the socket");

      await Deno.writeTextFile(stalePath, "not a socket");
      await assert.rejects(UapiServer.listen("tfuapi1", new MemoryDevice(), { dir }), /not a socket/);
      assert.equal(await Deno.readTextFile(stalePath), "not a socket");
      await Deno.remove(stalePath);
    });

    await t.step("invalid interface names are refused", async () => {
      for (const bad of ["", "a/b", "..", "sixteen-chars-xx"]) {
        await assert.rejects(UapiServer.listen(bad, device, { dir }), /invalid interface name/);
      }
    });

    await t.step("removing the socket file triggers onRemoved once", async () => {
      assert.equal(removed, 0);
      await Deno.remove(server.path);
      const deadline = Date.now() + 3000;
      while (removed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(removed, 1);
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(removed, 1);
    });
  } finally {
    for (const s of servers) await s.close();
    await Deno.remove(root, { recursive: true });
  }
});

const isRoot = Deno.uid() === 0;
const wgPresent = await Deno.stat(WG).then((i) => i.isFile, () => false);
const inCi = Deno.env.get("CI") !== undefined;
const wgSkipReason = !isRoot
  ? "needs root (wg uses /var/run/wireguard)"
  : !wgPresent && !inCi
  ? `needs ${WG} (install wireguard-tools)`
  : null;
if (wgSkipReason) console.log(`SKIP wg interop test: ${wgSkipReason}`);

async function wg(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(WG, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function wgOk(...args: string[]): Promise<string> {
  const r = await wg(...args);
  assert.equal(r.code, 0, `wg ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

function keyPair(): { priv: Uint8Array; pub: Uint8Array; pubB64: string } {
  const priv = generatePrivateKey();
  const pub = publicKey(priv);
  return { priv, pub, pubB64: toBase64(pub) };
}

Deno.test({
  name: "stock wg tool drives UapiServer over /var/run/wireguard",
  ignore: wgSkipReason !== null,
  fn: async (t) => {
    if (!wgPresent) throw new Error(`CI is set but ${WG} is missing`);
    const tmp = await Deno.makeTempDir({ prefix: "uapi-wg-" });
    const device = new MemoryDevice();
    const servers: UapiServer[] = [];
    try {
      const server = await UapiServer.listen("tfuapi0", device);
      servers.push(server);
      assert.equal(server.path, "/var/run/wireguard/tfuapi0.sock");

      const iface = keyPair();
      const peerA = keyPair();
      const peerB = keyPair();
      const peerC = keyPair();
      const psk = generatePrivateKey();
      const privFile = `${tmp}/private.key`;
      const pskFile = `${tmp}/psk.key`;
      await Deno.writeTextFile(privFile, toBase64(iface.priv) + "\n", { mode: 0o600 });
      await Deno.writeTextFile(pskFile, toBase64(psk) + "\n", { mode: 0o600 });

      await t.step("wg show interfaces lists it (no kernel module: userspace socket)", async () => {
        assert.ok((await wgOk("show", "interfaces")).trim().split(/\s+/).includes("tfuapi0"));
      });

      await t.step("wg set: device and peer options, preshared key from a file", async () => {
        await wgOk(
          "set",
          "tfuapi0",
          ...["private-key", privFile, "listen-port", "51999", "fwmark", "0x20"],
          ...["peer", peerA.pubB64, "preshared-key", pskFile, "allowed-ips", "10.0.0.0/24,fd00::1/64"],
          ...["endpoint", "127.0.0.1:51820", "persistent-keepalive", "25"],
        );
        assert.deepEqual(device.privateKey, iface.priv);
        assert.equal(device.listenPort, 51999);
        assert.equal(device.fwmark, 0x20);
        const a = device.peer(peerA.pub)!;
        assert.ok(a, "peer A created");
        assert.deepEqual(a.presharedKey, psk);
        assert.equal(a.endpoint, "127.0.0.1:51820");
        assert.equal(a.persistentKeepalive, 25);
        assert.deepEqual(a.allowedIps, ["10.0.0.0/24", "fd00::/64"]);
      });

      await t.step("wg show tfuapi0 dump fields", async () => {
        const a = device.peer(peerA.pub)!;
        a.lastHandshakeMs = 1_700_000_123_456;
        a.rxBytes = 1234;
        a.txBytes = 5678;
        const lines = (await wgOk("show", "tfuapi0", "dump")).trimEnd().split("\n").map((l) => l.split("\t"));
        assert.deepEqual(lines[0], [toBase64(iface.priv), iface.pubB64, "51999", "0x20"]);
        assert.deepEqual(lines[1], [
          peerA.pubB64,
          toBase64(psk),
          "127.0.0.1:51820",
          "10.0.0.0/24,fd00::/64",
          "1700000123",
          "1234",
          "5678",
          "25",
        ]);
        assert.equal(lines.length, 2);
      });

      await t.step("wg show tfuapi0 (human form)", async () => {
        const out = await wgOk("show", "tfuapi0");
        for (
          const expected of [
            "interface: tfuapi0",
            `public key: ${iface.pubB64}`,
            "private key: (hidden)",
            "listening port: 51999",
            "fwmark: 0x20",
            `peer: ${peerA.pubB64}`,
            "preshared key: (hidden)",
            "endpoint: 127.0.0.1:51820",
            "allowed ips: 10.0.0.0/24, fd00::/64",
            "transfer: 1.21 KiB received, 5.54 KiB sent",
            "persistent keepalive: every 25 seconds",
          ]
        ) {
          assert.ok(out.includes(expected), `missing "${expected}" in:\n${out}`);
        }
        assert.ok(!out.includes(toBase64(iface.priv)), "private key must stay hidden");
      });

      await t.step("wg showconf tfuapi0", async () => {
        const out = await wgOk("showconf", "tfuapi0");
        for (
          const expected of [
            "[Interface]",
            "ListenPort = 51999",
            "FwMark = 0x20",
            `PrivateKey = ${toBase64(iface.priv)}`,
            "[Peer]",
            `PublicKey = ${peerA.pubB64}`,
            `PresharedKey = ${toBase64(psk)}`,
            "AllowedIPs = 10.0.0.0/24, fd00::/64",
            "Endpoint = 127.0.0.1:51820",
            "PersistentKeepalive = 25",
          ]
        ) {
          assert.ok(out.includes(expected), `missing "${expected}" in:\n${out}`);
        }
      });

      await t.step("wg set a second peer with an IPv6 endpoint, then remove it", async () => {
        await wgOk(
          "set",
          "tfuapi0",
          "peer",
          peerB.pubB64,
          "endpoint",
          "[::1]:4000",
          "allowed-ips",
          "10.0.1.0/24",
        );
        assert.equal(device.peer(peerB.pub)?.endpoint, "[::1]:4000");
        assert.match(await wgOk("show", "tfuapi0", "endpoints"), /\[::1\]:4000/);
        await wgOk("set", "tfuapi0", "peer", peerB.pubB64, "remove");
        assert.equal(device.peer(peerB.pub), undefined);
        assert.ok(device.peer(peerA.pub), "peer A untouched");
      });

      await t.step("wg setconf replaces the whole configuration", async () => {
        const conf = `${tmp}/setconf.conf`;
        await Deno.writeTextFile(
          conf,
          [
            "[Interface]",
            `PrivateKey = ${toBase64(iface.priv)}`,
            "ListenPort = 52000",
            "",
            "[Peer]",
            `PublicKey = ${peerC.pubB64}`,
            "AllowedIPs = 10.3.7.9/16",
            "Endpoint = 127.0.0.1:52001",
            "",
          ].join("\n"),
          { mode: 0o600 },
        );
        await wgOk("setconf", "tfuapi0", conf);
        assert.equal(device.listenPort, 52000);
        assert.deepEqual([...device.peers.keys()], [toHex(peerC.pub)]);
        assert.deepEqual(device.peer(peerC.pub)!.allowedIps, ["10.3.0.0/16"]);
        assert.deepEqual(device.peer(peerC.pub)!.presharedKey, new Uint8Array(32));
      });

      await t.step("wg syncconf adds, updates and removes peers by difference", async () => {
        const conf = `${tmp}/syncconf.conf`;
        const write = (peers: string[]) =>
          Deno.writeTextFile(
            conf,
            ["[Interface]", `PrivateKey = ${toBase64(iface.priv)}`, "ListenPort = 52000", "", ...peers].join(
              "\n",
            ),
            { mode: 0o600 },
          );
        await write([
          "[Peer]",
          `PublicKey = ${peerC.pubB64}`,
          "AllowedIPs = 10.3.0.0/16, 10.4.0.0/16",
          "",
          "[Peer]",
          `PublicKey = ${peerA.pubB64}`,
          "AllowedIPs = 10.1.0.0/16",
          "",
        ]);
        await wgOk("syncconf", "tfuapi0", conf);
        assert.deepEqual(device.peer(peerC.pub)!.allowedIps, ["10.3.0.0/16", "10.4.0.0/16"]);
        assert.equal(device.peer(peerC.pub)!.endpoint, "127.0.0.1:52001", "syncconf keeps the endpoint");
        assert.deepEqual(device.peer(peerA.pub)!.allowedIps, ["10.1.0.0/16"]);

        await write(["[Peer]", `PublicKey = ${peerA.pubB64}`, "AllowedIPs = 10.1.0.0/16", ""]);
        await wgOk("syncconf", "tfuapi0", conf);
        assert.deepEqual([...device.peers.keys()], [toHex(peerA.pub)]);
      });

      await t.step("errors reach wg as errno messages; the device is unchanged", async () => {
        device.busyPorts.add(53000);
        let r = await wg("set", "tfuapi0", "listen-port", "53000");
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Address already in use/);
        assert.equal(device.listenPort, 52000);

        device.refusePresharedKeys = true;
        r = await wg("set", "tfuapi0", "peer", peerA.pubB64, "preshared-key", pskFile);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Operation not permitted/);
        assert.deepEqual(device.peer(peerA.pub)!.presharedKey, new Uint8Array(32));
        device.refusePresharedKeys = false;

        const before = device.applyCalls;
        r = await wg("set", "tfuapi0", "listen-port", "not-a-port");
        assert.notEqual(r.code, 0, "wg rejects the value itself");
        assert.equal(device.applyCalls, before);
      });

      await t.step("a second daemon for tfuapi0 is refused", async () => {
        await assert.rejects(
          UapiServer.listen("tfuapi0", new MemoryDevice()),
          /interface tfuapi0 already has a running daemon \(socket \/var\/run\/wireguard\/tfuapi0\.sock\)/,
        );
        assert.equal((await wgOk("show", "tfuapi0", "listen-port")).trim(), "52000");
      });

      await t.step("removing tfuapi1's socket triggers onRemoved and wg stops listing it", async () => {
        let signalRemoved!: () => void;
        const removed = new Promise<void>((resolve) => signalRemoved = resolve);
        const second = await UapiServer.listen("tfuapi1", new MemoryDevice(), {
          onRemoved: () => signalRemoved(),
        });
        servers.push(second);
        assert.ok((await wgOk("show", "interfaces")).split(/\s+/).includes("tfuapi1"));
        await Deno.remove(second.path);
        await withTimeout(removed, 3000, "onRemoved");
        assert.ok(!(await wgOk("show", "interfaces")).split(/\s+/).includes("tfuapi1"));
      });

      await t.step("close removes the socket file", async () => {
        await server.close();
        await assert.rejects(Deno.lstat("/var/run/wireguard/tfuapi0.sock"), Deno.errors.NotFound);
        const r = await wg("show", "tfuapi0");
        assert.notEqual(r.code, 0);
      });
    } finally {
      for (const s of servers) await s.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
