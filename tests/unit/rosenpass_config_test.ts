/**
 * The Rosenpass config sections (src/config/rosenpass-config.ts through parseNodeConfig): defaults
 * (port 51821, profile v02, mode strict when both sides have a key, off otherwise), the mode rules, and
 * with files checked: the secret key through the secret-file rules and matching the profile, each peer
 * key's size and pinned fingerprint — a mismatch is one line, exit 2. Key files are random bytes of
 * the right sizes: the config checks sizes and fingerprints, not McEliece structure.
 */
import assert from "node:assert/strict";
import { CliError } from "../../src/cli/errors.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { DEFAULT_ROSENPASS_PORT } from "../../src/config/rosenpass-config.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { SKEM_PK_LEN } from "../../src/rosenpass/constants.ts";
import { publicKeyFingerprint, SECRET_KEY_LEN } from "../../src/rosenpass/key-files.ts";

type Json = Record<string, unknown>;
const KEY_B = encodeBase64(publicKey(generatePrivateKey()));
const KEY_C = encodeBase64(publicKey(generatePrivateKey()));

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

interface Files {
  dir: string;
  peerFingerprint: string;
}

async function withFiles(fn: (f: Files) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-rp-config-" });
  try {
    await Deno.writeTextFile(`${dir}/node.key`, encodeBase64(generatePrivateKey()) + "\n", { mode: 0o600 });
    await Deno.chmod(`${dir}/node.key`, 0o600);
    await Deno.writeFile(`${dir}/rp.sk`, random(SECRET_KEY_LEN.v02), { mode: 0o600 });
    await Deno.chmod(`${dir}/rp.sk`, 0o600);
    await Deno.writeFile(`${dir}/rp.pk`, random(SKEM_PK_LEN));
    const peerKey = random(SKEM_PK_LEN);
    await Deno.writeFile(`${dir}/b.pk`, peerKey);
    await fn({ dir, peerFingerprint: publicKeyFingerprint(peerKey) });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function config(fingerprint: string, extra: { node?: Json; peer?: Json } = {}): Json {
  return {
    node: { name: "node-a", privateKeyFile: "./node.key" },
    wg0: { address: "100.64.0.1/10" },
    aes0: { address: "100.127.0.1/16" },
    rosenpass: { secretKeyFile: "rp.sk", publicKeyFile: "rp.pk", ...extra.node },
    peers: [
      {
        name: "node-b",
        publicKey: KEY_B,
        wgIp: "100.64.0.2",
        aesIp: "100.127.0.2",
        rosenpass: { publicKeyFile: "b.pk", fingerprint, ...extra.peer },
      },
      { name: "printer", publicKey: KEY_C, wgIp: "100.64.0.10" },
    ],
  };
}

function parse(c: Json, dir: string, checkFiles = true) {
  return parseNodeConfig(JSON.stringify(c), { baseDir: dir, checkFiles, sourceName: "node.json" });
}

function rejects(c: Json, dir: string, field: string, checkFiles = true): string {
  let error: unknown;
  try {
    parse(c, dir, checkFiles);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof CliError, `expected a CliError, got ${String(error)}`);
  assert.equal(error.exitCode, 2);
  assert.ok(error.message.startsWith(`config node.json: ${field}: `), error.message);
  assert.ok(!error.message.includes("\n"), error.message);
  return error.message;
}

Deno.test("rosenpass config: defaults — port 51821, profile v02, strict with both keys, off without", async () => {
  await withFiles(({ dir, peerFingerprint }) => {
    const cfg = parse(config(peerFingerprint), dir);
    const node = cfg.rosenpass.node!;
    assert.equal(node.listenPort, DEFAULT_ROSENPASS_PORT);
    assert.equal(DEFAULT_ROSENPASS_PORT, 51821);
    assert.equal(node.profile, "v02");
    assert.equal(node.secretKey?.length, SECRET_KEY_LEN.v02);
    assert.equal(node.publicKey?.length, SKEM_PK_LEN);
    assert.equal(cfg.rosenpass.peers.get("node-b")?.mode, "strict");
    assert.equal(cfg.rosenpass.peers.get("node-b")?.publicKey?.length, SKEM_PK_LEN);
    assert.equal(cfg.rosenpass.peers.get("printer")?.mode, "off", "a peer without a Rosenpass key is off");

    const noNode = config(peerFingerprint);
    delete noNode.rosenpass;
    const plain = parse(noNode, dir);
    assert.equal(plain.rosenpass.node, null);
    assert.equal(plain.rosenpass.peers.get("node-b")?.mode, "off", "the node itself has no key: off");

    const permissive = parse(config(peerFingerprint, { peer: { mode: "permissive" } }), dir);
    assert.equal(permissive.rosenpass.peers.get("node-b")?.mode, "permissive");
  });
});

Deno.test("rosenpass config: a peer key that does not match its fingerprint is refused in one line", async () => {
  await withFiles(({ dir }) => {
    const other = publicKeyFingerprint(random(SKEM_PK_LEN));
    const line = rejects(config(other), dir, "peers[0].rosenpass.fingerprint");
    assert.match(line, /does not match the pinned fingerprint/);
    rejects(config("not-base64"), dir, "peers[0].rosenpass.fingerprint");
    // Without file checks (pure syntax) the keys are not read.
    assert.equal(parse(config(other), dir, false).rosenpass.peers.get("node-b")?.publicKey, null);
  });
});

Deno.test("rosenpass config: bad keys, ports and modes are one line naming the field", async () => {
  await withFiles(async ({ dir, peerFingerprint }) => {
    // The secret key goes through the secret-file rules: mode 0644 is refused.
    await Deno.chmod(`${dir}/rp.sk`, 0o644);
    assert.match(rejects(config(peerFingerprint), dir, "rosenpass.secretKeyFile"), /0644|permission|mode/i);
    await Deno.chmod(`${dir}/rp.sk`, 0o600);
    // A v02 secret key under profile v03.
    assert.match(
      rejects(config(peerFingerprint, { node: { profile: "v03" } }), dir, "rosenpass.secretKeyFile"),
      /v02 key/,
    );
    // A truncated peer key.
    await Deno.writeFile(`${dir}/short.pk`, random(1000));
    rejects(
      config(peerFingerprint, { peer: { publicKeyFile: "short.pk" } }),
      dir,
      "peers[0].rosenpass.publicKeyFile",
    );
    rejects(
      config(peerFingerprint, { peer: { publicKeyFile: "missing.pk" } }),
      dir,
      "peers[0].rosenpass.publicKeyFile",
    );
    // The port must not collide with wg0 or aes0.
    assert.match(
      rejects(config(peerFingerprint, { node: { listenPort: 51820 } }), dir, "rosenpass.listenPort"),
      /wg0/,
    );
    // strict without the node's own key.
    const noNode = config(peerFingerprint, { peer: { mode: "strict" } });
    delete noNode.rosenpass;
    rejects(noNode, dir, "peers[0].rosenpass.mode");
    // A key without its fingerprint.
    const unpinned = config(peerFingerprint);
    delete ((unpinned.peers as Json[])[0].rosenpass as Json).fingerprint;
    rejects(unpinned, dir, "peers[0].rosenpass.fingerprint");
    // A wg0 PSK file (the SKA broker's link) and Rosenpass cannot both set wg0's PSK.
    await Deno.writeTextFile(`${dir}/wg.psk`, encodeBase64(random(32)) + "\n", { mode: 0o600 });
    await Deno.chmod(`${dir}/wg.psk`, 0o600);
    const both = config(peerFingerprint);
    (both.peers as Json[])[0].wgPskFile = "wg.psk";
    assert.match(rejects(both, dir, "peers[0].rosenpass.mode"), /wgPskFile/);
    // Unknown values.
    rejects(config(peerFingerprint, { peer: { mode: "sometimes" } }), dir, "peers[0].rosenpass.mode");
    rejects(config(peerFingerprint, { node: { profile: "v04" } }), dir, "rosenpass.profile");
    rejects(config(peerFingerprint, { node: { port: 1 } }), dir, "rosenpass.port");
  });
});
