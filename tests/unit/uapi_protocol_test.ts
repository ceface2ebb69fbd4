import assert from "node:assert/strict";
import {
  isParseError,
  parseSet,
  serializeGet,
  UapiErrno,
  type UapiParseError,
} from "../../src/uapi/protocol.ts";
import { UapiServer } from "../../src/uapi/server.ts";
import type { UapiDevice, UapiDeviceSnapshot, UapiSetRequest } from "../../src/uapi/types.ts";

type ParseResult = UapiSetRequest | UapiParseError;

const hex = (b: number) => b.toString(16).padStart(2, "0").repeat(32);
const key = (b: number) => new Uint8Array(32).fill(b);

function ok(result: ParseResult): UapiSetRequest {
  if (isParseError(result)) throw new Error(`unexpected parse error ${result.errno}: ${result.message}`);
  return result;
}

function errnoOf(lines: string[]): number {
  const result = parseSet(lines);
  assert.ok(isParseError(result), `expected an error for ${JSON.stringify(lines)}`);
  return result.errno;
}

Deno.test("parseSet accepts what wg sends", async (t) => {
  await t.step("device keys and a full peer section", () => {
    const req = ok(parseSet([
      `private_key=${hex(0x11)}`,
      "listen_port=51820",
      "fwmark=0",
      "replace_peers=true",
      `public_key=${hex(0xaa)}`,
      `preshared_key=${hex(0x22)}`,
      "endpoint=192.0.2.1:51820",
      "persistent_keepalive_interval=25",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.0/24",
      "allowed_ip=fd00::/64",
      "protocol_version=1",
    ]));
    const clamped = key(0x11);
    clamped[0] &= 248;
    clamped[31] = (clamped[31] & 127) | 64;
    assert.deepEqual(req.privateKey, clamped);
    assert.equal(req.listenPort, 51820);
    assert.equal(req.fwmark, 0);
    assert.equal(req.replacePeers, true);
    assert.equal(req.peers.length, 1);
    const p = req.peers[0];
    assert.deepEqual(p.publicKey, key(0xaa));
    assert.deepEqual(p.presharedKey, key(0x22));
    assert.deepEqual(p.endpoint, { ip: "192.0.2.1", port: 51820 });
    assert.equal(p.persistentKeepalive, 25);
    assert.equal(p.replaceAllowedIps, true);
    assert.deepEqual(p.allowedIps, ["10.0.0.0/24", "fd00::/64"]);
    assert.equal(p.remove, false);
    assert.equal(p.updateOnly, false);
  });

  await t.step("all-zero private key means remove and is not clamped", () => {
    const req = ok(parseSet([`private_key=${hex(0)}`]));
    assert.deepEqual(req.privateKey, key(0));
  });

  await t.step("keys may be upper-case hex", () => {
    const req = ok(parseSet([`public_key=${"AB".repeat(32)}`]));
    assert.deepEqual(req.peers[0].publicKey, key(0xab));
  });

  await t.step("absent fields stay undefined", () => {
    const req = ok(parseSet([`public_key=${hex(1)}`]));
    assert.equal(req.privateKey, undefined);
    assert.equal(req.listenPort, undefined);
    assert.equal(req.fwmark, undefined);
    assert.equal(req.replacePeers, false);
    const p = req.peers[0];
    assert.equal(p.presharedKey, undefined);
    assert.equal(p.endpoint, undefined);
    assert.equal(p.persistentKeepalive, undefined);
    assert.equal(p.replaceAllowedIps, false);
    assert.deepEqual(p.allowedIps, []);
  });

  await t.step("IPv6 endpoint with brackets and zone; leading zeros in port", () => {
    const req = ok(parseSet([
      `public_key=${hex(1)}`,
      "endpoint=[2001:DB8:0:0:0:0:0:1]:0051820",
      `public_key=${hex(2)}`,
      "endpoint=[fe80::1%eth0]:1",
    ]));
    assert.deepEqual(req.peers[0].endpoint, { ip: "2001:db8::1", port: 51820 });
    assert.deepEqual(req.peers[1].endpoint, { ip: "fe80::1%eth0", port: 1 });
  });

  await t.step("allowed_ip is canonicalised (host bits masked)", () => {
    const req = ok(parseSet([
      `public_key=${hex(1)}`,
      "allowed_ip=10.1.2.3/8",
      "allowed_ip=2001:DB8::FFFF/32",
      "allowed_ip=192.168.1.1/32",
      "allowed_ip=0.0.0.0/0",
    ]));
    assert.deepEqual(req.peers[0].allowedIps, ["10.0.0.0/8", "2001:db8::/32", "192.168.1.1/32", "0.0.0.0/0"]);
  });

  await t.step("remove and update_only", () => {
    const req = ok(
      parseSet([`public_key=${hex(1)}`, "remove=true", `public_key=${hex(2)}`, "update_only=true"]),
    );
    assert.equal(req.peers[0].remove, true);
    assert.equal(req.peers[1].updateOnly, true);
    assert.equal(req.peers[1].remove, false);
  });

  await t.step("replace_allowed_ips drops allowed IPs given earlier in the section", () => {
    const req = ok(parseSet([
      `public_key=${hex(1)}`,
      "allowed_ip=10.0.0.1/32",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.2/32",
    ]));
    assert.deepEqual(req.peers[0].allowedIps, ["10.0.0.2/32"]);
    assert.equal(req.peers[0].replaceAllowedIps, true);
  });

  await t.step("each public_key opens a new section, even for the same key; order is kept", () => {
    const req = ok(parseSet([
      `public_key=${hex(1)}`,
      "allowed_ip=10.0.0.1/32",
      `public_key=${hex(2)}`,
      `public_key=${hex(1)}`,
      "remove=true",
    ]));
    assert.deepEqual(req.peers.map((p) => p.publicKey[0]), [1, 2, 1]);
    assert.deepEqual(req.peers[0].allowedIps, ["10.0.0.1/32"]);
    assert.equal(req.peers[2].remove, true);
  });

  await t.step("later device values win; boundary numbers", () => {
    const req = ok(parseSet(["listen_port=1", "listen_port=65535", "fwmark=4294967295"]));
    assert.equal(req.listenPort, 65535);
    assert.equal(req.fwmark, 4294967295);
    const ka = ok(parseSet([`public_key=${hex(1)}`, "persistent_keepalive_interval=65535"]));
    assert.equal(ka.peers[0].persistentKeepalive, 65535);
  });

  await t.step("an empty line ends the request", () => {
    const req = ok(parseSet(["listen_port=5", "", "garbage"]));
    assert.equal(req.listenPort, 5);
    assert.deepEqual(ok(parseSet([])), { replacePeers: false, peers: [] });
  });
});

Deno.test("parseSet rejects bad requests with wireguard-go's errno", async (t) => {
  await t.step("errno constants are the negated Linux values", () => {
    assert.deepEqual(
      [UapiErrno.IO, UapiErrno.PROTOCOL, UapiErrno.INVALID, UapiErrno.PORT_IN_USE, UapiErrno.UNKNOWN],
      [-5, -71, -22, -98, -55],
    );
  });

  await t.step("a line without '=' is -EPROTO", () => {
    assert.equal(errnoOf(["listen_port"]), -71);
    assert.equal(errnoOf([`public_key=${hex(1)}`, "garbage"]), -71);
  });

  const invalid: [string, string[]][] = [
    ["unknown device key", ["bogus=1"]],
    ["empty key", ["=1"]],
    ["protocol_version in the device section", ["protocol_version=1"]],
    ["private key too short", [`private_key=${hex(1).slice(2)}`]],
    ["private key too long", [`private_key=${hex(1)}00`]],
    ["private key not hex", [`private_key=${"zz".repeat(32)}`]],
    ["listen_port empty", ["listen_port="]],
    ["listen_port too big", ["listen_port=65536"]],
    ["listen_port negative", ["listen_port=-1"]],
    ["listen_port with sign", ["listen_port=+1"]],
    ["listen_port not decimal", ["listen_port=0x10"]],
    ["listen_port with trailing space", ["listen_port=1 "]],
    ["fwmark too big", ["fwmark=4294967296"]],
    ["replace_peers not true", ["replace_peers=false"]],
    ["public key wrong length", [`public_key=${hex(1).slice(1)}`]],
    ["public key empty", ["public_key="]],
    ["device key after first public_key", [`public_key=${hex(1)}`, "listen_port=1"]],
    ["private_key after first public_key", [`public_key=${hex(1)}`, `private_key=${hex(2)}`]],
    ["replace_peers after first public_key", [`public_key=${hex(1)}`, "replace_peers=true"]],
    ["unknown peer key", [`public_key=${hex(1)}`, "bogus=1"]],
    ["remove not true", [`public_key=${hex(1)}`, "remove=false"]],
    ["update_only not true", [`public_key=${hex(1)}`, "update_only=1"]],
    ["replace_allowed_ips not true", [`public_key=${hex(1)}`, "replace_allowed_ips=yes"]],
    ["preshared key wrong length", [`public_key=${hex(1)}`, `preshared_key=${hex(2).slice(0, 62)}`]],
    ["preshared key empty", [`public_key=${hex(1)}`, "preshared_key="]],
    ["protocol_version 2", [`public_key=${hex(1)}`, "protocol_version=2"]],
    ["keepalive too big", [`public_key=${hex(1)}`, "persistent_keepalive_interval=65536"]],
    ["keepalive negative", [`public_key=${hex(1)}`, "persistent_keepalive_interval=-1"]],
    ["endpoint hostname", [`public_key=${hex(1)}`, "endpoint=example.com:51820"]],
    ["endpoint without port", [`public_key=${hex(1)}`, "endpoint=192.0.2.1"]],
    ["endpoint empty port", [`public_key=${hex(1)}`, "endpoint=192.0.2.1:"]],
    ["endpoint port too big", [`public_key=${hex(1)}`, "endpoint=192.0.2.1:65536"]],
    ["endpoint v6 without brackets", [`public_key=${hex(1)}`, "endpoint=2001:db8::1:51820"]],
    ["endpoint v4 in brackets", [`public_key=${hex(1)}`, "endpoint=[192.0.2.1]:51820"]],
    ["endpoint unclosed bracket", [`public_key=${hex(1)}`, "endpoint=[::1:51820"]],
    ["endpoint octet leading zero", [`public_key=${hex(1)}`, "endpoint=192.0.2.01:51820"]],
    ["allowed_ip without length", [`public_key=${hex(1)}`, "allowed_ip=10.0.0.1"]],
    ["allowed_ip v4 length 33", [`public_key=${hex(1)}`, "allowed_ip=10.0.0.0/33"]],
    ["allowed_ip v6 length 129", [`public_key=${hex(1)}`, "allowed_ip=::/129"]],
    ["allowed_ip length with leading zero", [`public_key=${hex(1)}`, "allowed_ip=10.0.0.0/08"]],
    ["allowed_ip with zone", [`public_key=${hex(1)}`, "allowed_ip=fe80::%eth0/64"]],
    ["allowed_ip hostname", [`public_key=${hex(1)}`, "allowed_ip=host/32"]],
  ];
  for (const [name, lines] of invalid) {
    await t.step(`${name} is -EINVAL`, () => assert.equal(errnoOf(lines), -22));
  }

  await t.step("the first bad line decides, and the message names the line but not the value", () => {
    const secret = hex(0x5a).slice(1);
    const result = parseSet(["listen_port=1", `private_key=${secret}`, "nonsense"]);
    assert.ok(isParseError(result));
    assert.equal(result.errno, -22);
    assert.match(result.message, /line 2/);
    assert.ok(!result.message.includes(secret.slice(0, 16)));
  });
});

Deno.test("serializeGet prints exactly what wireguard-go prints", async (t) => {
  await t.step("empty device", () => {
    assert.equal(serializeGet({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }), "errno=0\n\n");
  });

  await t.step("an all-zero private key is not printed", () => {
    assert.equal(serializeGet({ privateKey: key(0), listenPort: 0, fwmark: 0, peers: [] }), "errno=0\n\n");
  });

  await t.step("device and peers in wireguard-go order", () => {
    const snap: UapiDeviceSnapshot = {
      privateKey: key(0x01),
      listenPort: 51820,
      fwmark: 7,
      peers: [
        {
          publicKey: key(0xab),
          presharedKey: key(0),
          endpoint: "[2001:db8::1]:51820",
          lastHandshakeMs: 1_700_000_000_123,
          txBytes: 10,
          rxBytes: 2 ** 53,
          persistentKeepalive: 25,
          allowedIps: ["10.0.0.0/24", "fd00::/64"],
        },
        {
          publicKey: key(0xcd),
          presharedKey: key(0xef),
          endpoint: null,
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          persistentKeepalive: 0,
          allowedIps: [],
        },
      ],
    };
    assert.equal(
      serializeGet(snap),
      [
        `private_key=${hex(0x01)}`,
        "listen_port=51820",
        "fwmark=7",
        `public_key=${hex(0xab)}`,
        `preshared_key=${hex(0)}`,
        "protocol_version=1",
        "endpoint=[2001:db8::1]:51820",
        "last_handshake_time_sec=1700000000",
        "last_handshake_time_nsec=123000000",
        "tx_bytes=10",
        "rx_bytes=9007199254740992",
        "persistent_keepalive_interval=25",
        "allowed_ip=10.0.0.0/24",
        "allowed_ip=fd00::/64",
        `public_key=${hex(0xcd)}`,
        `preshared_key=${hex(0xef)}`,
        "protocol_version=1",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=0",
        "errno=0",
        "",
        "",
      ].join("\n"),
    );
  });

  await t.step("listen_port 0 and fwmark 0 are omitted", () => {
    const text = serializeGet({ privateKey: key(0x41), listenPort: 0, fwmark: 0, peers: [] });
    assert.equal(text, `private_key=${hex(0x41)}\nerrno=0\n\n`);
  });

  await t.step("round trip: a get reply, re-sent as a set, describes the same device", () => {
    const pk = key(0x40); // already clamped: 0x40 & 248 = 0x40, (0x40 & 127) | 64 = 0x40
    const snap: UapiDeviceSnapshot = {
      privateKey: pk,
      listenPort: 4242,
      fwmark: 3,
      peers: [{
        publicKey: key(9),
        presharedKey: key(8),
        endpoint: "198.51.100.7:9",
        lastHandshakeMs: 0,
        txBytes: 0,
        rxBytes: 0,
        persistentKeepalive: 15,
        allowedIps: ["10.9.0.0/16"],
      }],
    };
    const settable = new Set(["private_key", "listen_port", "fwmark", "public_key", "preshared_key"]);
    for (const k of ["endpoint", "persistent_keepalive_interval", "allowed_ip", "protocol_version"]) {
      settable.add(k);
    }
    const lines = serializeGet(snap).split("\n").filter((l) => settable.has(l.split("=")[0]));
    const req = ok(parseSet(lines));
    assert.deepEqual(req.privateKey, pk);
    assert.equal(req.listenPort, 4242);
    assert.equal(req.fwmark, 3);
    assert.deepEqual(req.peers[0].publicKey, key(9));
    assert.deepEqual(req.peers[0].presharedKey, key(8));
    assert.deepEqual(req.peers[0].endpoint, { ip: "198.51.100.7", port: 9 });
    assert.equal(req.peers[0].persistentKeepalive, 15);
    assert.deepEqual(req.peers[0].allowedIps, ["10.9.0.0/16"]);
  });
});

/** A device that records every apply call and changes nothing. */
class RecordingDevice implements UapiDevice {
  applied: UapiSetRequest[] = [];
  snapshot(): UapiDeviceSnapshot {
    return { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  }
  apply(req: UapiSetRequest): number {
    this.applied.push(req);
    return 0;
  }
}

async function exchange(path: string, request: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(request));
    let reply = "";
    const buf = new Uint8Array(4096);
    while (!reply.endsWith("\n\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      reply += new TextDecoder().decode(buf.subarray(0, n));
    }
    return reply;
  } finally {
    conn.close();
  }
}

Deno.test("a bad set line leaves the device untouched (apply is never called)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "uapi-unit-" });
  const device = new RecordingDevice();
  const server = await UapiServer.listen("tfuapi0", device, { dir });
  try {
    await t.step("valid lines before a bad one are not applied", async () => {
      const reply = await exchange(
        server.path,
        `set=1\nlisten_port=1234\npublic_key=${hex(1)}\nallowed_ip=10.0.0.0/8\nallowed_ip=bad\n\n`,
      );
      assert.equal(reply, "errno=-22\n\n");
      assert.equal(device.applied.length, 0);
    });
    await t.step("a line without '=' is refused the same way", async () => {
      assert.equal(await exchange(server.path, "set=1\nlisten_port=1\nnonsense\n\n"), "errno=-71\n\n");
      assert.equal(device.applied.length, 0);
    });
    await t.step("a valid set reaches the device once", async () => {
      assert.equal(await exchange(server.path, "set=1\nlisten_port=1234\n\n"), "errno=0\n\n");
      assert.equal(device.applied.length, 1);
      assert.equal(device.applied[0].listenPort, 1234);
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
