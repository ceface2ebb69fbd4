/**
 * `GET /v1/debug/bundle` in process (`app.request()` on the fake backend): the token on every listener
 * (401/403 over the unix socket too), the file list, and redaction — a config and a network map with
 * secrets inline, in comments and in fields no schema knows, devices holding a private key and PSKs,
 * the token: none of them anywhere in the archive, while public keys and file paths stay.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import type { AdminBackend } from "../../src/admin/model.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { logger } from "../../src/log.ts";
import { saveLastGood } from "../../src/netmap/last-good.ts";
import { documentDigest } from "../../src/netmap/accept.ts";
import { BUNDLE_FILES, type BundleManifest } from "../../src/support/bundle.ts";
import type { SupportSources } from "../../src/support/sources.ts";
import { REDACTED } from "../../src/support/redact.ts";
import { publicKey } from "../../src/crypto/x25519.ts";
import { FakeBackend, SECRETS, TEST_TOKEN } from "./admin_fake_backend.ts";

const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const quietLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** The members of a `.tar.gz`: name → text (a minimal ustar reader, test side). */
async function untar(gz: Uint8Array): Promise<Map<string, string>> {
  const stream = new Blob([gz as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  const tar = new Uint8Array(await new Response(stream).arrayBuffer());
  const files = new Map<string, string>();
  const dec = new TextDecoder();
  for (let at = 0; at + 512 <= tar.length;) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = dec.decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
    const size = parseInt(dec.decode(h.subarray(124, 135)), 8);
    files.set(name, dec.decode(tar.subarray(at + 512, at + 512 + size)));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** A node-like world: config and state on disk, devices holding keys. */
async function world() {
  const dir = await Deno.makeTempDir({ prefix: "tf-bundle-unit-" });
  const priv = rand(32);
  const psk = rand(32);
  const pskFileContents = rand(32);
  const rosenpassSecret = rand(32);
  const inlineFuture = rand(32);
  const pin = "pin-" + toHex(rand(6));
  const peerPub = encodeBase64(rand(32));
  const secrets = {
    "private key": priv,
    "device PSK": psk,
    "PSK file contents": pskFileContents,
    "Rosenpass secret": rosenpassSecret,
    "unknown field secret": inlineFuture,
  };
  const configPath = `${dir}/node.json`;
  await Deno.writeTextFile(
    configPath,
    `// node config; old key was ${encodeBase64(priv)}
{
  "node": { "name": "node-a", "privateKeyFile": "${dir}/node.key", "stateDir": "${dir}/state" },
  "wg0": { "address": "100.64.0.1/10" },
  "aes0": { "address": "100.127.0.1/16" },
  "rosenpass": { "secretKey": "${encodeBase64(rosenpassSecret)}", "publicKeyFile": "${dir}/rp.pub" },
  "ska": { "pkcs11": { "pinFile": "${dir}/token.pin", "pin": "${pin}", "tokenLabel": "twofold" } },
  "peers": [{ "name": "node-b", "publicKey": "${peerPub}", "wgIp": "100.64.0.2",
              "pskFile": "${dir}/b.psk", "futurePresharedValue": "${toHex(inlineFuture)}" }],
}
`,
  );
  await Deno.mkdir(`${dir}/state`);
  // The network map the node last accepted, with a secret-named field of key bytes in it.
  const mapDoc = JSON.stringify({
    version: 1,
    domain: "example.net",
    nodes: [{ name: "node-b", publicKey: peerPub, wgIp: "100.64.0.2", bootstrapPsk: encodeBase64(psk) }],
  });
  const document = new TextEncoder().encode(mapDoc);
  saveLastGood(`${dir}/state`, {
    document,
    signature: null,
    record: { serial: 1, sha256: documentDigest(document) },
  });
  await Deno.writeTextFile(`${dir}/state/audit.jsonl`, '{"seq":1,"event":"audit-opened","hash":"00"}\n');
  const sources: SupportSources = {
    nodeName: "node-a",
    configPath,
    stateDir: `${dir}/state`,
    devices: () =>
      ["wg0", "aes0"].map((name) => ({
        name,
        snapshot: {
          privateKey: priv,
          listenPort: name === "wg0" ? 51820 : 51830,
          fwmark: 0,
          peers: [{
            publicKey: rand(32),
            presharedKey: name === "aes0" ? psk : new Uint8Array(32),
            endpoint: "192.0.2.2:51820",
            lastHandshakeMs: 1_767_225_600_000,
            txBytes: 10,
            rxBytes: 20,
            persistentKeepalive: 0,
            allowedIps: ["100.64.0.2/32"],
          }],
        },
      })),
    secrets: () => [priv, pskFileContents],
  };
  return { dir, secrets, pin, peerPub, priv, sources };
}

function withSources(backend: FakeBackend, sources: SupportSources): AdminBackend {
  return Object.assign(backend, { supportSources: () => sources });
}

Deno.test("bundle route: the token is needed on every listener, the unix socket included", async () => {
  for (const readsNeedToken of [false, true]) {
    const app = createAdminApp(new FakeBackend(), { token: TEST_TOKEN, readsNeedToken, log: quietLog });
    const none = await app.request("/v1/debug/bundle");
    assert.equal(none.status, 401);
    assert.match(none.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
    assert.equal((await none.json()).error, "unauthorized");
    const wrong = await app.request("/v1/debug/bundle", { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 403);
    assert.equal((await wrong.json()).error, "forbidden");
    // The other reads stay open over the socket.
    if (!readsNeedToken) assert.equal((await app.request("/v1/status")).status, 200);
  }
});

Deno.test("bundle route: files, manifest and redaction of every secret", async () => {
  const w = await world();
  try {
    const backend = new FakeBackend();
    backend.events.publish({ type: "gate-opened", peer: "alice", reason: "test event", data: {} });
    logger("bundle-test").info("a line the ring keeps");
    const app = createAdminApp(withSources(backend, w.sources), {
      token: TEST_TOKEN,
      readsNeedToken: false,
      log: quietLog,
    });
    const r = await app.request("/v1/debug/bundle", { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("content-type"), "application/gzip");
    const disposition = r.headers.get("content-disposition") ?? "";
    const m = /filename="(twofold-bundle-node-a-\d{8}T\d{6}Z)\.tar\.gz"/.exec(disposition);
    assert.ok(m, disposition);
    const files = await untar(new Uint8Array(await r.arrayBuffer()));
    const top = m[1];
    const file = (name: string) => {
      const text = files.get(`${top}/${name}`);
      assert.ok(text !== undefined, `${name} is in the bundle (${[...files.keys()].join(", ")})`);
      return text;
    };
    for (const name of Object.values(BUNDLE_FILES)) assert.ok(file(name).length > 0, `${name} is not empty`);
    for (const name of ["ip-addr.json", "ip-route.json", "ip-rule.json"]) {
      assert.ok(files.has(`${top}/${name}`) || file(BUNDLE_FILES.manifest).includes(name), name);
    }

    const manifest = JSON.parse(file(BUNDLE_FILES.manifest)) as BundleManifest;
    assert.equal(manifest.node, "node-a");
    assert.deepEqual(
      manifest.files.map((f) => f.name).sort(),
      [...files.keys()].map((k) => k.slice(top.length + 1)).filter((n) => n !== "manifest.json").sort(),
    );
    for (
      const field of [
        "config:rosenpass.secretKey",
        "config:ska.pkcs11.pin",
        "config:peers[0].futurePresharedValue",
        "netmap:nodes[0].bootstrapPsk",
      ]
    ) assert.ok(manifest.redactedFields.includes(field), `${field} redacted (${manifest.redactedFields})`);

    const config = JSON.parse(file(BUNDLE_FILES.config));
    assert.equal(config.rosenpass.secretKey, REDACTED);
    assert.equal(config.ska.pkcs11.pin, REDACTED);
    assert.equal(config.ska.pkcs11.pinFile, `${w.dir}/token.pin`, "file paths stay");
    assert.equal(config.ska.pkcs11.tokenLabel, "twofold", "labels stay");
    assert.equal(config.peers[0].publicKey, w.peerPub, "public keys stay");
    assert.equal(config.peers[0].pskFile, `${w.dir}/b.psk`);
    assert.ok(!file(BUNDLE_FILES.config).includes("old key was"), "comments are dropped");

    const dump = file(BUNDLE_FILES.wgDump).trim().split("\n").map((l) => l.split("\t"));
    assert.deepEqual(dump[0], ["wg0", "(redacted)", encodeBase64(publicKey(w.priv)), "51820", "off"]);
    assert.equal(dump[1][2], "(none)", "wg0 peer without a PSK");
    assert.equal(dump[3][2], "(redacted)", "aes0 peer's PSK");
    assert.match(file(BUNDLE_FILES.events), /"test event"/);
    assert.match(file(BUNDLE_FILES.log), /bundle-test: a line the ring keeps/);
    assert.match(file(BUNDLE_FILES.metrics), /^twofold_/m);
    assert.equal(JSON.parse(file(BUNDLE_FILES.status)).node.name, "node-a");
    const versions = JSON.parse(file(BUNDLE_FILES.versions));
    for (const k of ["twofold", "deno", "v8", "kernel", "libcrypto"]) assert.ok(versions[k], k);
    assert.match(file(BUNDLE_FILES.auditHead), /audit-opened/);

    // No secret in any form anywhere: bytes as base64 / base64url / hex (either case), text as is.
    const forms: [string, string][] = [[`token`, TEST_TOKEN], ["PIN", w.pin]];
    for (const s of SECRETS) forms.push(["fake backend secret", s]);
    for (const [what, bytes] of Object.entries(w.secrets)) {
      const b64 = encodeBase64(bytes);
      forms.push([`${what} base64`, b64], [`${what} base64 unpadded`, b64.replace(/=+$/, "")]);
      forms.push([`${what} hex`, toHex(bytes)], [`${what} HEX`, toHex(bytes).toUpperCase()]);
    }
    forms.push(["token base64", encodeBase64(new TextEncoder().encode(TEST_TOKEN))]);
    forms.push(["token hex", toHex(new TextEncoder().encode(TEST_TOKEN))]);
    for (const [name, text] of files) {
      for (const [what, form] of forms) assert.ok(!text.includes(form), `${what} found in ${name}`);
    }
  } finally {
    await Deno.remove(w.dir, { recursive: true });
  }
});

Deno.test("bundle route: a backend without node sources still answers, naming what is missing", async () => {
  const app = createAdminApp(new FakeBackend(), { token: TEST_TOKEN, readsNeedToken: true, log: quietLog });
  const r = await app.request("/v1/debug/bundle", { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  assert.equal(r.status, 200);
  const files = await untar(new Uint8Array(await r.arrayBuffer()));
  const manifestName = [...files.keys()].find((k) => k.endsWith("/manifest.json"))!;
  const manifest = JSON.parse(files.get(manifestName)!) as BundleManifest;
  assert.ok(manifest.missing.some((m) => m.part === BUNDLE_FILES.config));
  assert.ok(manifest.files.some((f) => f.name === BUNDLE_FILES.status));
  for (const [, text] of files) for (const s of [...SECRETS, TEST_TOKEN]) assert.ok(!text.includes(s));
});

Deno.test("bundle route: one bundle at a time; a second request meanwhile is 503 busy", async () => {
  const app = createAdminApp(new FakeBackend(), { token: TEST_TOKEN, readsNeedToken: false, log: quietLog });
  const init = { headers: { authorization: `Bearer ${TEST_TOKEN}` } };
  const first = app.request("/v1/debug/bundle", init);
  const second = await app.request("/v1/debug/bundle", init);
  assert.equal(second.status, 503);
  assert.equal((await second.json()).error, "busy");
  const done = await first;
  assert.equal(done.status, 200);
  await done.body?.cancel();
  const again = await app.request("/v1/debug/bundle", init);
  assert.equal(again.status, 200, "free again once the first is done");
  await again.body?.cancel();
});
