import assert from "node:assert/strict";
import { CliError } from "../../src/cli/errors.ts";
import { loadNodeConfig, type NodeConfig, parseNodeConfig, SecretKey } from "../../src/config/node-config.ts";
import { JsoncSyntaxError, parseJsonc, stripJsonc } from "../../src/config/jsonc.ts";
import { parseHubConfig } from "../../src/config/hub-config.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { formatCidr } from "../../src/wireguard/allowedips.ts";

const KEY_B = encodeBase64(publicKey(generatePrivateKey()));
const KEY_C = encodeBase64(publicKey(generatePrivateKey()));
const KEY_D = encodeBase64(publicKey(generatePrivateKey()));
const KEY_E = encodeBase64(publicKey(generatePrivateKey()));

type Json = Record<string, unknown>;

/** A valid config object; tests mutate copies of it. */
function baseConfig(): Json {
  return {
    node: { name: "node-a", privateKeyFile: "./node-a.key" },
    wg0: { address: "100.64.0.1/10" },
    aes0: { address: "100.127.0.1/16" },
    peers: [
      {
        name: "node-b",
        publicKey: KEY_B,
        wgIp: "100.64.0.2",
        aesIp: "100.127.0.2",
        endpoint: "192.0.2.2:51820",
      },
      { name: "printer", publicKey: KEY_C, wgIp: "100.64.0.10" },
      { name: "hub-1", publicKey: KEY_D, wgIp: "100.64.0.100", role: "hub" },
    ],
  };
}

function peers(c: Json): Json[] {
  return c.peers as Json[];
}

function parse(c: Json | string, opts: { baseDir?: string; checkFiles?: boolean } = {}): NodeConfig {
  const text = typeof c === "string" ? c : JSON.stringify(c, null, 2);
  return parseNodeConfig(text, {
    baseDir: opts.baseDir ?? "/etc/twofold",
    checkFiles: opts.checkFiles ?? false,
    sourceName: "node.json",
  });
}

/** Asserts that parsing fails with exit code 2 and one clean line naming `field`; returns the line. */
function rejects(
  c: Json | string,
  field: string,
  opts: { baseDir?: string; checkFiles?: boolean } = {},
): string {
  let error: unknown;
  try {
    parse(c, opts);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof CliError, `expected a CliError, got ${String(error)}`);
  assert.equal(error.exitCode, 2);
  const message = error.message;
  assert.ok(message.startsWith(`config node.json: ${field}: `), `message should name ${field}: ${message}`);
  assert.ok(!message.includes("\n"), `one line: ${message}`);
  assert.ok(
    !/\bat \S+:\d+|file:\/\/|Error:|ZodError|\[object/.test(message),
    `no stack-ish text: ${message}`,
  );
  return message;
}

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-config-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function writeSecret(path: string, text: string | Uint8Array, mode = 0o600): void {
  if (typeof text === "string") Deno.writeTextFileSync(path, text, { mode });
  else Deno.writeFileSync(path, text, { mode });
  Deno.chmodSync(path, mode); // the umask may have narrowed the create mode
}

Deno.test("jsonc", async (t) => {
  await t.step("comments become blanks; offsets and line breaks are kept", () => {
    const text = '{ // note\n  "a": 1, /* multi\nline */ "b": "x // y /* z */",\n}';
    const stripped = stripJsonc(text);
    assert.equal(stripped.length, text.length);
    assert.equal(stripped.split("\n").length, text.split("\n").length);
    assert.ok(!stripped.includes("note") && !stripped.includes("multi"));
    assert.deepEqual(parseJsonc(text), { a: 1, b: "x // y /* z */" });
  });

  await t.step("trailing commas are allowed only after a value", () => {
    assert.deepEqual(parseJsonc('{"a": [1, 2, ], "b": {"c": true,},}'), { a: [1, 2], b: { c: true } });
    assert.throws(() => parseJsonc("{,}"), JsoncSyntaxError);
    assert.throws(() => parseJsonc("[1,,]"), JsoncSyntaxError);
    assert.throws(() => parseJsonc('{"a": ,}'), JsoncSyntaxError);
  });

  await t.step("errors carry the line and column of the original text", () => {
    const text = '{\n  // comment\n  "a": 1\n  "b": 2\n}';
    try {
      parseJsonc(text);
      assert.fail("should throw");
    } catch (e) {
      assert.ok(e instanceof JsoncSyntaxError);
      assert.equal(e.line, 4);
      assert.equal(e.column, 3);
    }
    assert.throws(() => parseJsonc('{"a": 1} /* open'), /line 1:10: unterminated \/\* comment/);
    assert.throws(() => parseJsonc('{"a": "open\n}'), /line 1:7: unterminated string/);
    assert.throws(() => parseJsonc("// only a comment\n"), /empty/);
    assert.throws(() => parseJsonc("{'a': 1}"), /line 1:2: expected a property name/);
  });

  await t.step("a key repeated in one object is refused; __proto__ stays an ordinary key", () => {
    assert.throws(() => parseJsonc('{"mtu": 1, "x": {}, "mtu": 2}'), /line 1:21: duplicate key "mtu"/);
    const value = parseJsonc('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ["__proto__"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  await t.step("values decode like JSON.parse", () => {
    const text =
      '{"s": "a\\"b\\u00e9\\n", "n": -1.5e2, "z": 0, "t": true, "f": false, "x": null, "e": [], "o": {}}';
    assert.deepEqual(parseJsonc(text), JSON.parse(text));
    assert.throws(() => parseJsonc('{"n": 01}'), JsoncSyntaxError);
    assert.throws(() => parseJsonc('{"s": "\\q"}'), /invalid escape/);
    assert.throws(() => parseJsonc("{} x"), /after the end/);
  });
});

Deno.test("node config: good configs", async (t) => {
  await t.step("defaults are applied and the aes0 MTU is derived (1420 → 1360)", () => {
    const c = parse(baseConfig());
    assert.equal(c.node.name, "node-a");
    assert.equal(c.node.privateKeyFile, "/etc/twofold/node-a.key");
    assert.equal(c.node.stateDir, "/var/lib/twofold");
    assert.equal(c.node.privateKey, null);
    assert.equal(c.wg0.listenPort, 51820);
    assert.equal(c.wg0.mtu, 1420);
    assert.equal(c.wg0.address.text, "100.64.0.1/10");
    assert.equal(c.aes0.listenPort, 51830);
    assert.equal(formatCidr(c.aes0.subnet), "100.127.0.0/16");
    assert.equal(c.aes0.address.text, "100.127.0.1/16");
    assert.equal(c.aes0.mtu, 1360);
    assert.equal(c.aes0.mtuDerived, true);
    assert.deepEqual(c.keys, {
      rotationIntervalSeconds: 120,
      maxKeyAgeSeconds: 360,
      manualMaxAgeSeconds: null,
      dskeThreshold: 2,
    });
    const [b, printer, hub] = c.peers;
    assert.equal(formatCidr(b.wgIp), "100.64.0.2/32");
    assert.equal(b.aesIp && formatCidr(b.aesIp), "100.127.0.2/32");
    assert.deepEqual(b.endpoint, { ip: "192.0.2.2", port: 51820 });
    assert.equal(encodeBase64(b.publicKey), KEY_B);
    assert.equal(b.role, "peer");
    assert.equal(b.keySource, "manual");
    assert.equal(b.pskFile, null);
    assert.equal(b.persistentKeepalive, 0);
    assert.equal(printer.aesIp, null);
    assert.equal(printer.endpoint, null);
    assert.equal(hub.role, "hub");
    assert.equal(hub.aesIp, null);
  });

  await t.step("explicit values win; maxKeyAge follows the rotation interval", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", listenPort: 4000, mtu: 1500 };
    raw.aes0 = { address: "10.9.0.1", subnet: "10.9.0.0/24", listenPort: 4001, mtu: 1400 };
    raw.keys = { rotationIntervalSeconds: 2 };
    raw.node = { name: "node-a", privateKeyFile: "/keys/a.key", stateDir: "state" };
    peers(raw)[0].aesIp = "10.9.0.2/32";
    peers(raw)[0].endpoint = "[2001:db8::1]:51820";
    peers(raw)[0].persistentKeepalive = 25;
    peers(raw)[0].keySource = "dske";
    peers(raw).push({ name: "hub-2", publicKey: KEY_E, wgIp: "100.64.0.101", role: "hub" });
    const c = parse(raw);
    assert.equal(c.wg0.address.text, "100.64.0.1/10");
    assert.equal(c.wg0.listenPort, 4000);
    assert.equal(c.aes0.mtu, 1400);
    assert.equal(c.aes0.mtuDerived, false);
    assert.equal(c.aes0.address.text, "10.9.0.1/24");
    assert.deepEqual(c.keys, {
      rotationIntervalSeconds: 2,
      maxKeyAgeSeconds: 6,
      manualMaxAgeSeconds: null,
      dskeThreshold: 2,
    });
    assert.equal(c.node.privateKeyFile, "/keys/a.key");
    assert.equal(c.node.stateDir, "/etc/twofold/state");
    assert.deepEqual(c.peers[0].endpoint, { ip: "2001:db8::1", port: 51820 });
    assert.equal(c.peers[0].persistentKeepalive, 25);
    assert.equal(c.peers[0].keySource, "dske");
  });

  await t.step("the smallest wg0 MTU leaves aes0 exactly 1280", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", mtu: 1340 };
    assert.equal(parse(raw).aes0.mtu, 1280);
  });

  await t.step("offloads default to auto on both interfaces; each can be turned off alone", () => {
    const raw = baseConfig();
    const c = parse(raw);
    assert.equal(c.wg0.offloads, "auto");
    assert.equal(c.aes0.offloads, "auto");
    raw.aes0 = { address: "100.127.0.1/16", offloads: "off" };
    const off = parse(raw);
    assert.equal(off.wg0.offloads, "auto");
    assert.equal(off.aes0.offloads, "off");
  });

  await t.step("JSONC comments and trailing commas are accepted", () => {
    const text = `// node
{
  "node": { "name": "n", "privateKeyFile": "k", }, /* trailing comma above */
  "wg0": { "address": "100.64.0.1/10", },
  "aes0": { "address": "100.127.0.1", },
  "peers": [],
}`;
    assert.equal(parse(text).aes0.mtu, 1360);
  });

  await t.step("the examples parse and list each other as AES peers", () => {
    const dir = new URL("../../examples/", import.meta.url).pathname;
    const opts = { baseDir: dir, checkFiles: false };
    const a = parseNodeConfig(Deno.readTextFileSync(`${dir}node-a.json`), opts);
    const b = parseNodeConfig(Deno.readTextFileSync(`${dir}node-b.json`), opts);
    const bInA = a.peers.find((p) => p.name === b.node.name);
    const aInB = b.peers.find((p) => p.name === a.node.name);
    assert.ok(bInA?.aesIp && aInB?.aesIp);
    assert.equal(formatCidr(bInA.wgIp), `${b.wg0.address.text.split("/")[0]}/32`);
    assert.equal(formatCidr(aInB.aesIp), `${a.aes0.address.text.split("/")[0]}/32`);
    assert.ok(a.peers.some((p) => p.role === "peer" && p.aesIp === null), "node-a shows an AES-exempt peer");
    assert.ok(a.peers.some((p) => p.role === "hub"), "node-a shows a hub");
    assert.equal(a.node.privateKeyFile, `${dir}node-a.key`);
    assert.notEqual(a.node.privateKeyFile, b.node.privateKeyFile);
    // Both fit on one host: nothing the two would share.
    assert.notEqual(a.node.stateDir, b.node.stateDir);
    assert.notDeepEqual(a.admin.listen, b.admin.listen);
    const names = [a.wg0.name, a.aes0.name, b.wg0.name, b.aes0.name];
    assert.equal(new Set(names).size, 4, `interface names: ${names}`);
    for (const c of [a, b]) {
      assert.equal(c.admin.tokenFile, `${c.node.stateDir}/admin.token`, "token follows stateDir");
    }
  });

  await t.step("with files: keys load, the public key is derived, secrets stay hidden", async () => {
    await withTempDir((dir) => {
      const priv = generatePrivateKey();
      writeSecret(`${dir}/node-a.key`, encodeBase64(priv) + "\n");
      const psk = crypto.getRandomValues(new Uint8Array(32));
      writeSecret(`${dir}/b.psk`, encodeBase64(psk) + "\n");
      const raw = baseConfig();
      peers(raw)[0].pskFile = "b.psk";
      const c = parse(raw, { baseDir: dir, checkFiles: true });
      assert.ok(c.node.privateKey instanceof SecretKey);
      assert.deepEqual(c.node.privateKey.bytes(), priv);
      assert.deepEqual(c.node.publicKey, publicKey(priv));
      assert.equal(c.peers[0].pskFile, `${dir}/b.psk`);
      assert.deepEqual(c.peers[0].psk?.bytes(), psk);
      for (const shown of [String(c.node.privateKey), JSON.stringify(c), Deno.inspect(c, { depth: 10 })]) {
        assert.ok(!shown.includes(encodeBase64(priv)) && !shown.includes(encodeBase64(psk)));
        assert.ok(!shown.includes(`${priv[0]}, ${priv[1]}, ${priv[2]}`), "no raw private key bytes");
      }
      assert.ok(Deno.inspect(c.node.privateKey).includes("[secret]"));
    });
  });

  await t.step("loadNodeConfig reads the file and resolves paths against its directory", async () => {
    await withTempDir(async (dir) => {
      writeSecret(`${dir}/node-a.key`, encodeBase64(generatePrivateKey()));
      await Deno.writeTextFile(`${dir}/node.json`, JSON.stringify(baseConfig()));
      const c = await loadNodeConfig(`${dir}/node.json`);
      assert.equal(c.node.privateKeyFile, `${dir}/node-a.key`);
      assert.ok(c.node.publicKey);
      await assert.rejects(
        () => loadNodeConfig(`${dir}/missing.json`),
        (e: unknown) =>
          e instanceof CliError && e.exitCode === 2 &&
          /missing\.json: the file does not exist/.test(e.message),
      );
    });
  });
});

Deno.test("node config: bad configs name the field and exit 2", async (t) => {
  await t.step("AES IP outside the subnet", () => {
    const raw = baseConfig();
    peers(raw)[1].aesIp = "10.0.0.5";
    const m = rejects(raw, "peers[1].aesIp");
    assert.equal(
      m,
      "config node.json: peers[1].aesIp: 10.0.0.5 is outside aes0.subnet 100.127.0.0/16; pick an address inside the subnet",
    );
  });

  await t.step("the node's own aes0 address outside the subnet", () => {
    const raw = baseConfig();
    raw.aes0 = { address: "100.126.0.1/16" };
    rejects(raw, "aes0.address");
  });

  await t.step("duplicate wg0 IP across peers", () => {
    const raw = baseConfig();
    peers(raw)[2].wgIp = "100.64.0.2";
    assert.match(rejects(raw, "peers[2].wgIp"), /already used by peers\[0\]\.wgIp \("node-b"\)/);
  });

  await t.step("duplicate AES IP with the node itself", () => {
    const raw = baseConfig();
    peers(raw)[0].aesIp = "100.127.0.1";
    assert.match(rejects(raw, "peers[0].aesIp"), /already used by this node \(aes0\.address\)/);
  });

  await t.step("peer wg0 IP equal to the node's wg0 address", () => {
    const raw = baseConfig();
    peers(raw)[1].wgIp = "100.64.0.1/32";
    assert.match(rejects(raw, "peers[1].wgIp"), /this node \(wg0\.address\)/);
  });

  await t.step("duplicate public key", () => {
    const raw = baseConfig();
    peers(raw)[2].publicKey = KEY_B;
    assert.match(rejects(raw, "peers[2].publicKey"), /same key as peers\[0\]/);
  });

  await t.step("a peer's public key equal to our own", async () => {
    await withTempDir((dir) => {
      const priv = generatePrivateKey();
      writeSecret(`${dir}/node-a.key`, encodeBase64(priv));
      const raw = baseConfig();
      peers(raw)[1].publicKey = encodeBase64(publicKey(priv));
      assert.match(rejects(raw, "peers[1].publicKey", { baseDir: dir, checkFiles: true }), /own public key/);
    });
  });

  await t.step("a peer listed twice", () => {
    const raw = baseConfig();
    peers(raw).push({
      ...peers(raw)[1],
      wgIp: "100.64.0.11",
      publicKey: encodeBase64(new Uint8Array(32).fill(7)),
    });
    assert.match(rejects(raw, "peers[3].name"), /listed twice \(also peers\[1\]\)/);
  });

  await t.step("a peer with the node's own name", () => {
    const raw = baseConfig();
    peers(raw)[1].name = "Node-A";
    rejects(raw, "peers[1].name");
  });

  await t.step("a hub with an AES IP", () => {
    const raw = baseConfig();
    peers(raw)[2].aesIp = "100.127.0.3";
    assert.match(rejects(raw, "peers[2].aesIp"), /hubs carry no application traffic/);
  });

  await t.step("wg0 MTU too small for two layers", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", mtu: 1339 };
    assert.match(rejects(raw, "wg0.mtu"), /must be at least 1340, so that aes0 keeps 1280/);
    raw.wg0 = { address: "100.64.0.1/10", mtu: 576 };
    rejects(raw, "wg0.mtu");
  });

  await t.step("offloads other than auto or off", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", offloads: "on" };
    assert.match(rejects(raw, "wg0.offloads"), /"on" is not allowed; use one of "auto", "off"/);
  });

  await t.step("aes0 MTU larger than wg0 can carry, or below 1280", () => {
    const raw = baseConfig();
    raw.aes0 = { address: "100.127.0.1/16", mtu: 1361 };
    assert.match(rejects(raw, "aes0.mtu"), /set it to 1360 or less/);
    raw.aes0 = { address: "100.127.0.1/16", mtu: 1200 };
    assert.match(rejects(raw, "aes0.mtu"), /below 1280/);
  });

  await t.step("ports out of range or equal", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", listenPort: 70000 };
    assert.match(rejects(raw, "wg0.listenPort"), /1 to 65535/);
    raw.wg0 = { address: "100.64.0.1/10", listenPort: 0 };
    rejects(raw, "wg0.listenPort");
    raw.wg0 = { address: "100.64.0.1/10", listenPort: 51830 };
    assert.match(rejects(raw, "aes0.listenPort"), /equals wg0\.listenPort/);
  });

  await t.step("PSK file of the wrong length", async () => {
    await withTempDir((dir) => {
      writeSecret(`${dir}/node-a.key`, encodeBase64(generatePrivateKey()));
      const secret = crypto.getRandomValues(new Uint8Array(16));
      writeSecret(`${dir}/b.psk`, encodeBase64(secret) + "\n");
      const raw = baseConfig();
      peers(raw)[0].pskFile = "b.psk";
      const m = rejects(raw, "peers[0].pskFile", { baseDir: dir, checkFiles: true });
      assert.ok(!m.includes(encodeBase64(secret)), "the file's contents are not echoed");
    });
  });

  await t.step("PSK file with permissions wider than 0600", async () => {
    await withTempDir((dir) => {
      writeSecret(`${dir}/node-a.key`, encodeBase64(generatePrivateKey()));
      writeSecret(`${dir}/b.psk`, encodeBase64(crypto.getRandomValues(new Uint8Array(32))), 0o644);
      const raw = baseConfig();
      peers(raw)[0].pskFile = "b.psk";
      assert.match(rejects(raw, "peers[0].pskFile", { baseDir: dir, checkFiles: true }), /0644.*chmod 600/);
    });
  });

  await t.step("private key file: missing, too open, or not a key", async () => {
    await withTempDir((dir) => {
      const opts = { baseDir: dir, checkFiles: true };
      assert.match(
        rejects(baseConfig(), "node.privateKeyFile", opts),
        /does not exist; create it with `twofold keygen/,
      );
      writeSecret(`${dir}/node-a.key`, encodeBase64(generatePrivateKey()), 0o640);
      assert.match(rejects(baseConfig(), "node.privateKeyFile", opts), /permissions 0640, wider than 0600/);
      const garbage = "not-a-key-but-secret-looking-text";
      writeSecret(`${dir}/node-a.key`, garbage);
      const m = rejects(baseConfig(), "node.privateKeyFile", opts);
      assert.ok(!m.includes(garbage), "the file's contents are not echoed");
      writeSecret(`${dir}/node-a.key`, encodeBase64(new Uint8Array(32)));
      rejects(baseConfig(), "node.privateKeyFile", opts);
    });
  });

  await t.step("unknown key", () => {
    const raw = baseConfig();
    peers(raw)[0].aesip = "100.127.0.9";
    assert.match(
      rejects(raw, "peers[0].aesip"),
      /unknown key; remove it or fix the spelling \(allowed here: .*aesIp/,
    );
    const top = baseConfig();
    top.wg1 = {};
    rejects(top, "wg1");
  });

  await t.step("a misspelled key is reported as unknown, not its correct spelling as missing", () => {
    const raw = baseConfig();
    const peer = peers(raw)[0];
    peer.wgIP = peer.wgIp;
    delete peer.wgIp;
    const m = rejects(raw, "peers[0].wgIP");
    assert.match(m, /unknown key; .*allowed here: name, publicKey, wgIp, aesIp/);
    assert.match(m, /did you mean "wgIp"\?/);
    assert.doesNotMatch(m, /missing/);
    const node = baseConfig();
    (node.node as Json).Name = "x";
    assert.match(rejects(node, "node.Name"), /did you mean "name"\?/);
  });

  await t.step("wg0.address without a prefix length is an error that gives the fix", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1" };
    assert.match(
      rejects(raw, "wg0.address"),
      /"100\.64\.0\.1" needs a prefix length; write 100\.64\.0\.1\/10/,
    );
    raw.wg0 = { address: "100.64.0.1/24" };
    assert.equal(parse(raw).wg0.address.text, "100.64.0.1/24");
  });

  await t.step("wg0 addresses outside 100.64.0.0/10 or inside the AES subnet", () => {
    const raw = baseConfig();
    peers(raw)[0].wgIp = "10.0.0.2";
    assert.match(rejects(raw, "peers[0].wgIp"), /outside 100\.64\.0\.0\/10/);
    peers(raw)[0].wgIp = "100.127.0.50";
    assert.match(rejects(raw, "peers[0].wgIp"), /inside aes0\.subnet.*routed into aes0/);
    const node = baseConfig();
    node.wg0 = { address: "192.168.1.1/24" };
    rejects(node, "wg0.address");
  });

  await t.step("malformed addresses, subnet, endpoint, key", () => {
    const raw = baseConfig();
    peers(raw)[0].wgIp = "100.64.0.0/16";
    assert.match(rejects(raw, "peers[0].wgIp"), /single address/);
    peers(raw)[0].wgIp = "100.64.0.256";
    rejects(raw, "peers[0].wgIp");
    const subnet = baseConfig();
    subnet.aes0 = { address: "100.127.0.1", subnet: "100.127.0.1/16" };
    assert.match(rejects(subnet, "aes0.subnet"), /host bits set; use 100\.127\.0\.0\/16/);
    const endpoint = baseConfig();
    peers(endpoint)[0].endpoint = "vpn.example.com:51820";
    assert.match(rejects(endpoint, "peers[0].endpoint"), /host names are not resolved/);
    peers(endpoint)[0].endpoint = "2001:db8::1:51820";
    rejects(endpoint, "peers[0].endpoint");
    const key = baseConfig();
    const privateLooking = encodeBase64(new Uint8Array(31).fill(9));
    peers(key)[0].publicKey = privateLooking;
    const m = rejects(key, "peers[0].publicKey");
    assert.ok(!m.includes(privateLooking), "a rejected key is not echoed");
  });

  await t.step("pskFile where no PSK applies", () => {
    const raw = baseConfig();
    peers(raw)[1].pskFile = "c.psk";
    assert.match(rejects(raw, "peers[1].pskFile"), /AES-exempt/);
    const managed = baseConfig();
    Object.assign(peers(managed)[0], { keySource: "ska", pskFile: "b.psk" });
    assert.match(rejects(managed, "peers[0].pskFile"), /keySource "ska"/);
  });

  await t.step("DSKE threshold above the number of hubs, or below 2", () => {
    const raw = baseConfig();
    peers(raw)[0].keySource = "dske";
    raw.keys = { dskeThreshold: 2 };
    assert.match(rejects(raw, "keys.dskeThreshold"), /k = 2 but only 1 hub\(s\) are configured/);
    raw.keys = { dskeThreshold: 1 };
    assert.match(rejects(raw, "keys.dskeThreshold"), /at least 2/);
  });

  await t.step("more peers than an interface holds: refused before anything is brought up", () => {
    const raw = baseConfig();
    raw.peers = Array.from({ length: 257 }, (_, i) => ({
      name: `p${i}`,
      publicKey: encodeBase64(publicKey(generatePrivateKey())),
      wgIp: `100.64.${1 + (i >> 8)}.${i & 255}`,
    }));
    assert.match(rejects(raw, "peers"), /257 peers, but an interface holds at most 256/);
    raw.peers = (raw.peers as Json[]).slice(0, 256);
    assert.equal(parse(raw).peers.length, 256);
  });

  await t.step("key age not longer than the rotation interval", () => {
    const raw = baseConfig();
    raw.keys = { rotationIntervalSeconds: 60, maxKeyAgeSeconds: 60 };
    assert.match(rejects(raw, "keys.maxKeyAgeSeconds"), /use at least 61/);
  });

  await t.step("manualMaxAgeSeconds: off unless set, independent of the rotation interval, validated", () => {
    const raw = baseConfig();
    raw.keys = { rotationIntervalSeconds: 60, manualMaxAgeSeconds: 30 };
    assert.equal(parse(raw).keys.manualMaxAgeSeconds, 30, "shorter than the rotation interval is fine");
    raw.keys = { manualMaxAgeSeconds: 86400 };
    assert.deepEqual(parse(raw).keys, {
      rotationIntervalSeconds: 120,
      maxKeyAgeSeconds: 360,
      manualMaxAgeSeconds: 86400,
      dskeThreshold: 2,
    });
    raw.keys = { manualMaxAgeSeconds: 0 };
    assert.match(rejects(raw, "keys.manualMaxAgeSeconds"), /at least 1 second; leave it out/);
    raw.keys = { manualMaxAgeSeconds: 400 * 86400 };
    assert.match(rejects(raw, "keys.manualMaxAgeSeconds"), /at most 31622400 seconds \(a year\)/);
    raw.keys = { manualMaxAgeSeconds: 1.5 };
    rejects(raw, "keys.manualMaxAgeSeconds");
    raw.keys = { manualMaxAgeSeconds: "600" };
    rejects(raw, "keys.manualMaxAgeSeconds");
    raw.keys = { manualMaxAge: 600 };
    assert.match(rejects(raw, "keys.manualMaxAge"), /allowed here: .*manualMaxAgeSeconds/, "a misspelling");
  });

  await t.step("wrong types, missing fields, values outside an enum", () => {
    const raw = baseConfig();
    raw.wg0 = { address: "100.64.0.1/10", mtu: "1420" };
    assert.match(rejects(raw, "wg0.mtu"), /expected a number, got a string; remove the quotes/);
    const missing = baseConfig();
    delete (missing.node as Json).privateKeyFile;
    assert.match(rejects(missing, "node.privateKeyFile"), /missing; add it/);
    const role = baseConfig();
    peers(role)[0].role = "server";
    assert.match(rejects(role, "peers[0].role"), /use one of "peer", "hub"/);
    const name = baseConfig();
    peers(name)[0].name = "bad name";
    rejects(name, "peers[0].name");
  });

  await t.step("JSON syntax errors give line:column", () => {
    let error: unknown;
    try {
      parse('{\n  "node": {}\n  "wg0": {}\n}');
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof CliError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /^config node\.json: line 3:3: expected ',' or '}'/);
    assert.throws(() => parse('{"node": {}, "node": {}}'), /line 1:14: duplicate key "node"/);
  });
});

Deno.test("node config: the admin API and the lockdown list", async (t) => {
  await t.step(
    "defaults: enabled, the unix socket, the token file in the state directory, no extra ports",
    () => {
      const c = parse(baseConfig());
      assert.deepEqual(c.admin, {
        enabled: true,
        listen: { kind: "unix", path: "/run/twofold/admin.sock" },
        tokenFile: "/var/lib/twofold/admin.token",
        maxConnections: 64,
        maxEventStreams: 16,
      });
      assert.deepEqual(c.lockdown, { extraPorts: [] });
      const s = baseConfig();
      (s.node as Json).stateDir = "./state";
      assert.equal(parse(s).admin.tokenFile, "/etc/twofold/state/admin.token");
    },
  );

  await t.step(
    "loopback TCP, [::1], localhost and relative unix paths; tokenFile and enabled as given",
    () => {
      const listen = (text: string, extra: Json = {}) => {
        const c = baseConfig();
        c.admin = { listen: text, ...extra };
        return parse(c).admin;
      };
      assert.deepEqual(listen("127.0.0.1:9000").listen, { kind: "tcp", host: "127.0.0.1", port: 9000 });
      assert.deepEqual(listen("[::1]:9000").listen, { kind: "tcp", host: "::1", port: 9000 });
      assert.deepEqual(listen("localhost:9000").listen, { kind: "tcp", host: "127.0.0.1", port: 9000 });
      assert.deepEqual(listen("unix:./run/a.sock").listen, { kind: "unix", path: "/etc/twofold/run/a.sock" });
      assert.deepEqual(listen("/tmp/a.sock").listen, { kind: "unix", path: "/tmp/a.sock" });
      const a = listen("unix:/tmp/b.sock", { tokenFile: "./tok", enabled: false });
      assert.equal(a.tokenFile, "/etc/twofold/tok");
      assert.equal(a.enabled, false);
    },
  );

  await t.step(
    "a non-loopback or malformed listen address is refused naming admin.listen and the fix",
    () => {
      for (
        const bad of ["0.0.0.0:9000", "10.1.2.3:9000", "192.0.2.1:80", "[::]:9000", "[2001:db8::1]:9000"]
      ) {
        const c = baseConfig();
        c.admin = { listen: bad };
        assert.match(rejects(c, "admin.listen"), /not loopback.*unix socket.*127\.0\.0\.1:PORT/);
      }
      for (const bad of ["127.0.0.1", "127.0.0.1:99999", "unix:"]) {
        const c = baseConfig();
        c.admin = { listen: bad };
        rejects(c, "admin.listen");
      }
      const typo = baseConfig();
      typo.admin = { listn: "127.0.0.1:1" };
      assert.match(
        rejects(typo, "admin.listn"),
        /allowed here: enabled, listen, tokenFile, maxConnections, maxEventStreams/,
      );
      const type = baseConfig();
      type.admin = { enabled: "yes" };
      assert.match(rejects(type, "admin.enabled"), /true or false/);
    },
  );

  await t.step("connection and event-stream caps: as given, within bounds, streams ≤ connections", () => {
    const admin = (extra: Json) => {
      const c = baseConfig();
      c.admin = extra;
      return c;
    };
    const a = parse(admin({ maxConnections: 8, maxEventStreams: 2 })).admin;
    assert.equal(a.maxConnections, 8);
    assert.equal(a.maxEventStreams, 2);
    assert.match(rejects(admin({ maxConnections: 0 }), "admin.maxConnections"), /at least 1/);
    assert.match(rejects(admin({ maxConnections: 100_000 }), "admin.maxConnections"), /at most 4096/);
    assert.match(
      rejects(admin({ maxConnections: 4, maxEventStreams: 8 }), "admin.maxEventStreams"),
      /more than admin\.maxConnections/,
    );
  });

  await t.step(
    "lockdown.extraPorts: PROTO/PORT[-PORT], sorted; bad, overlapping or redundant entries named",
    () => {
      const c = baseConfig();
      c.lockdown = { extraPorts: ["udp/6000-6010", "tcp/8080"] };
      assert.deepEqual(parse(c).lockdown.extraPorts, [
        { proto: "tcp", from: 8080, to: 8080 },
        { proto: "udp", from: 6000, to: 6010 },
      ]);
      const bad = (ports: unknown[], field: string, re: RegExp) => {
        const x = baseConfig();
        x.lockdown = { extraPorts: ports };
        assert.match(rejects(x, field), re);
      };
      bad(["tcp/80", "tcp:81"], "lockdown.extraPorts[1]", /PROTO\/PORT or PROTO\/FIRST-LAST/);
      bad(["udp/0"], "lockdown.extraPorts[0]", /1 to 65535/);
      bad(["tcp/9-5"], "lockdown.extraPorts[0]", /lower port first/);
      bad(["tcp/8000-8010", "tcp/8005"], "lockdown.extraPorts[1]", /overlaps extraPorts\[0\]/);
      bad(["udp/51830"], "lockdown.extraPorts[0]", /always allowed/);
      bad(["tcp/51831"], "lockdown.extraPorts[0]", /always allowed/);
      bad([8080], "lockdown.extraPorts[0]", /expected a string/);
    },
  );
});

Deno.test("node config: interface names and the UAPI socket directory", async (t) => {
  await t.step("defaults: wg0, aes0 and /var/run/wireguard (where wg looks)", () => {
    const c = parse(baseConfig());
    assert.equal(c.wg0.name, "wg0");
    assert.equal(c.aes0.name, "aes0");
    assert.equal(c.node.uapiSocketDir, "/var/run/wireguard");
  });

  await t.step("names as given; a relative socket directory resolves against the config's directory", () => {
    const c = baseConfig();
    (c.wg0 as Json).name = "tfa0";
    (c.aes0 as Json).name = "tf.aes_0=+-";
    (c.node as Json).uapiSocketDir = "./run";
    const r = parse(c);
    assert.equal(r.wg0.name, "tfa0");
    assert.equal(r.aes0.name, "tf.aes_0=+-");
    assert.equal(r.node.uapiSocketDir, "/etc/twofold/run");
    (c.node as Json).uapiSocketDir = "/run/twofold-b/wireguard";
    assert.equal(parse(c).node.uapiSocketDir, "/run/twofold-b/wireguard");
  });

  await t.step("unusable names name the field, the rule and the default", () => {
    for (
      const [field, name] of [
        ["wg0.name", "a-very-long-name"], // 16 characters: above IFNAMSIZ - 1
        ["wg0.name", "wg/0"],
        ["aes0.name", ""],
        ["aes0.name", "aes 0"],
        ["aes0.name", ".."],
      ] as const
    ) {
      const c = baseConfig();
      (c[field.split(".")[0]] as Json).name = name;
      const line = rejects(c, field);
      assert.match(line, /is not a usable interface name \(1-15 characters of A-Z a-z 0-9 _ \. = \+ -\)/);
      assert.match(line, new RegExp(`the default is "${field.split(".")[0]}"`));
    }
    const wrongType = baseConfig();
    (wrongType.wg0 as Json).name = 0;
    assert.match(rejects(wrongType, "wg0.name"), /expected a string/);
  });

  await t.step("the two interfaces need different names", () => {
    const c = baseConfig();
    (c.wg0 as Json).name = "tf0";
    (c.aes0 as Json).name = "tf0";
    assert.match(rejects(c, "aes0.name"), /"tf0" is also wg0\.name; give the two interfaces different names/);
    const swapped = baseConfig();
    (swapped.aes0 as Json).name = "wg0";
    assert.match(rejects(swapped, "aes0.name"), /is also wg0\.name/);
  });

  await t.step("an empty socket directory is refused; the unknown-key list shows the new fields", () => {
    const c = baseConfig();
    (c.node as Json).uapiSocketDir = "";
    assert.match(rejects(c, "node.uapiSocketDir"), /must not be empty/);
    const typo = baseConfig();
    (typo.wg0 as Json).nmae = "tfa0";
    assert.match(rejects(typo, "wg0.nmae"), /allowed here: name, listenPort, address, mtu/);
  });

  await t.step("a hub config takes wg0.name and hub.uapiSocketDir the same way", () => {
    const hub = {
      hub: { name: "hub-1", privateKeyFile: "hub.key", uapiSocketDir: "run" },
      wg0: { name: "tfh0", address: "100.64.0.101/10" },
      peers: [{ name: "node-a", publicKey: KEY_B, wgIp: "100.64.0.1" }],
    };
    const c = parseHubConfig(JSON.stringify(hub), { baseDir: "/etc/twofold", checkFiles: false });
    assert.equal(c.wg0.name, "tfh0");
    assert.equal(c.hub.uapiSocketDir, "/etc/twofold/run");
    const plain = parseHubConfig(
      JSON.stringify({
        ...hub,
        hub: { name: "hub-1", privateKeyFile: "hub.key" },
        wg0: { address: "100.64.0.101/10" },
      }),
      { baseDir: "/etc/twofold", checkFiles: false },
    );
    assert.equal(plain.wg0.name, "wg0");
    assert.equal(plain.hub.uapiSocketDir, "/var/run/wireguard");
    assert.throws(
      () =>
        parseHubConfig(JSON.stringify({ ...hub, wg0: { name: "bad/name", address: "100.64.0.101/10" } }), {
          baseDir: "/etc/twofold",
          checkFiles: false,
          sourceName: "hub.json",
        }),
      (e: unknown) =>
        e instanceof CliError && /^config hub\.json: wg0\.name: "bad\/name" is not a usable/.test(e.message),
    );
  });
});

Deno.test("node config: the netmap section, dns.port and pskFiles", async (t) => {
  const mapConfig = (): Json => ({
    node: { name: "node-a", privateKeyFile: "./node-a.key" },
    wg0: {},
    aes0: {},
    netmap: { file: "netmap.json" },
    pskFiles: { "node-b": "psk/node-b.psk" },
  });

  await t.step("with a map: no addresses, no peers; the source, DNS port and PSK files resolve", () => {
    const cfg = parse(mapConfig());
    assert.deepEqual(cfg.netmap, { kind: "file", path: "/etc/twofold/netmap.json", signerPublicKey: null });
    assert.equal(cfg.dns.port, 53);
    assert.deepEqual(cfg.pskFiles, { "node-b": "/etc/twofold/psk/node-b.psk" });
    assert.deepEqual(cfg.peers, []);
    const withPort = parse({ ...mapConfig(), dns: { port: 5353 } });
    assert.equal(withPort.dns.port, 5353);
  });

  await t.step("inline peers keep working without a map", () => {
    const cfg = parse(baseConfig());
    assert.equal(cfg.netmap, null);
    assert.equal(cfg.peers.length, 3);
  });

  await t.step("addresses or peers beside a map are refused: they come from the map", () => {
    assert.match(
      rejects({ ...mapConfig(), wg0: { address: "100.64.0.1/10" } }, "wg0.address"),
      /comes from the network map/,
    );
    assert.match(
      rejects({ ...mapConfig(), aes0: { subnet: "100.127.0.0/16" } }, "aes0.subnet"),
      /network map/,
    );
    assert.match(
      rejects({ ...mapConfig(), peers: peers(baseConfig()) }, "peers"),
      /come from the network map/,
    );
  });

  await t.step("without a map the addresses are required; pskFiles needs a map", () => {
    const noAddress = baseConfig();
    noAddress.wg0 = {};
    assert.match(rejects(noAddress, "wg0.address"), /missing; .* or a "netmap" section/);
    assert.match(rejects({ ...baseConfig(), pskFiles: { "node-b": "b.psk" } }, "pskFiles"), /netmap/);
  });

  await t.step("a URL source needs the signer key; a bad DNS port is named", () => {
    assert.match(
      rejects({ ...mapConfig(), netmap: { url: "https://maps.example/netmap.json" } }, "netmap.publicKey"),
      /must be signed/,
    );
    rejects({ ...mapConfig(), dns: { port: 0 } }, "dns.port");
    assert.match(rejects({ ...mapConfig(), dns: { prot: 53 } }, "dns.prot"), /allowed here: port/);
  });
});
