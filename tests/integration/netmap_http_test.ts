/**
 * Distribution over HTTP on loopback: `serveMapDirectory` (what `twofold netmap serve` runs) and
 * `fetchMap` (what a node's URL source polls), through `acceptMap`: ETag / 304, a new signed map after
 * an edit, an unsigned or wrongly signed map, a rollback, a body over the limit, an unreachable source;
 * and the `netmap serve` command itself.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type AcceptedRecord, acceptMap } from "../../src/netmap/accept.ts";
import { addNode, initDocument } from "../../src/netmap/edit.ts";
import { checkMapUrl, fetchMap } from "../../src/netmap/http-fetch.ts";
import { serveMapDirectory, serveMapRequest } from "../../src/netmap/http-serve.ts";
import { formatNetmapDocument, type NetmapDocument } from "../../src/netmap/schema.ts";
import {
  formatSignature,
  generateSignerSeed,
  signDocument,
  signerPublicKey,
} from "../../src/netmap/signature.ts";
import { CONFIG_FILE_MAX_BYTES } from "../../src/config/secret-file.ts";
import { key } from "../unit/netmap_fixtures.ts";

const encoder = new TextEncoder();
const seed = generateSignerSeed();
const signer = signerPublicKey(seed);

function publish(dir: string, doc: NetmapDocument, signWith: Uint8Array | null = seed): void {
  const bytes = encoder.encode(formatNetmapDocument(doc));
  Deno.writeFileSync(`${dir}/netmap.json`, bytes);
  if (signWith) {
    Deno.writeTextFileSync(`${dir}/netmap.json.sig`, formatSignature(signDocument(bytes, signWith)));
  } else Deno.removeSync(`${dir}/netmap.json.sig`);
}

Deno.test("netmap over HTTP: 200 with an ETag, 304 while unchanged, a new signed map after an edit, refusals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-http-" });
  const server = serveMapDirectory({ dir, hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/netmap.json`;
  try {
    let doc = addNode(initDocument("x.example", "100.127.0.0/16"), { name: "a", publicKey: key(0) }).doc;
    publish(dir, doc);

    const first = await fetchMap(url, { etag: null });
    assert.equal(first.kind, "fetched");
    assert.ok(first.kind === "fetched" && first.etag && first.signature);
    const accepted = acceptMap({
      document: first.document,
      signature: first.signature,
      signerPublicKey: signer,
      last: null,
    });
    assert.ok(accepted.ok);
    let last: AcceptedRecord = accepted.record;
    assert.equal(last.serial, 2);

    assert.deepEqual(await fetchMap(url, { etag: first.etag }), { kind: "not-modified" });

    doc = addNode(doc, { name: "b", publicKey: key(1) }).doc;
    publish(dir, doc);
    const second = await fetchMap(url, { etag: first.etag });
    assert.ok(second.kind === "fetched");
    assert.notEqual(second.etag, first.etag);
    const next = acceptMap({
      document: second.document,
      signature: second.signature,
      signerPublicKey: signer,
      last,
    });
    assert.ok(next.ok && !next.unchanged && next.map.nodes.length === 2);
    last = next.record;

    // Unsigned, wrongly signed, and an older (replayed) map: each refused with one line.
    const older = addNode(initDocument("x.example", "100.127.0.0/16"), { name: "a", publicKey: key(0) }).doc;
    for (
      const [published, signWith, reason] of [
        [doc, null, /^the map is unsigned/],
        [doc, generateSignerSeed(), /signature does not verify with the configured signer key/],
        [older, seed, /^serial 2 is lower than the running map's 3/],
      ] as const
    ) {
      publish(dir, published, signWith);
      const got = await fetchMap(url, { etag: null });
      assert.ok(got.kind === "fetched");
      const d = acceptMap({
        document: got.document,
        signature: got.signature,
        signerPublicKey: signer,
        last,
      });
      assert.ok(!d.ok);
      assert.match(d.reason, reason);
    }

    Deno.writeFileSync(`${dir}/netmap.json`, new Uint8Array(CONFIG_FILE_MAX_BYTES + 1).fill(0x20));
    const huge = await fetchMap(url, { etag: null });
    assert.equal(huge.kind, "failed");
    assert.ok(
      huge.kind === "failed" && /404|over the/.test(huge.reason),
      "an oversized file is not served or not read",
    );

    const missing = await fetchMap(url.replace("netmap.json", "nothing.json"), { etag: null });
    assert.deepEqual(missing, {
      kind: "failed",
      reason: `${url.replace("netmap.json", "nothing.json")}: HTTP 404`,
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
  // The source is gone: a one-line failure, never a throw.
  const down = await fetchMap(url, { etag: null, timeoutMs: 2000 });
  assert.equal(down.kind, "failed");
  assert.ok(down.kind === "failed" && down.reason.startsWith(url) && !down.reason.includes("\n"));
});

Deno.test("netmap over HTTP: the server serves plain files of its directory only; URLs are checked", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tf-netmap-http-" });
  try {
    Deno.writeTextFileSync(`${dir}/netmap.json`, "{}");
    Deno.writeTextFileSync(`${dir}/.hidden`, "x");
    Deno.mkdirSync(`${dir}/sub`);
    Deno.symlinkSync("/etc/hostname", `${dir}/link.json`);
    const get = (path: string, method = "GET") =>
      serveMapRequest(dir, new Request(`http://h${path}`, { method }));
    assert.equal(get("/netmap.json").status, 200);
    assert.equal(get("/netmap.json").headers.get("content-type"), "application/json");
    for (const path of ["/.hidden", "/sub", "/link.json", "/../etc/passwd", "/%2e%2e/x", "/%zz", "/"]) {
      assert.equal(get(path).status, 404, path);
    }
    assert.equal(get("/netmap.json", "POST").status, 405);
    assert.equal(get("/netmap.json", "HEAD").status, 200);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(checkMapUrl("https://maps.example/netmap.json"), null);
  assert.match(checkMapUrl("ftp://maps.example/x")!, /ftp: URLs are not supported/);
  assert.match(checkMapUrl("https://u:p@maps.example/x")!, /credentials in the URL/);
  assert.match(checkMapUrl("nope")!, /is not a URL/);
});

Deno.test("netmap serve: the command serves a directory until SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-serve-" });
  const entry = fileURLToPath(new URL("../../main.ts", import.meta.url));
  // A free port: bind, read it, release it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const doc = addNode(initDocument("x.example", "100.127.0.0/16"), { name: "a", publicKey: key(0) }).doc;
  publish(dir, doc);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", entry, "netmap", "serve", dir, "--listen", `127.0.0.1:${port}`],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const { value } = await reader.read();
    assert.match(value ?? "", new RegExp(`^serving .* on http://127\\.0\\.0\\.1:${port}/`));
    const got = await fetchMap(`http://127.0.0.1:${port}/netmap.json`, { etag: null });
    assert.ok(got.kind === "fetched");
    assert.ok(
      acceptMap({ document: got.document, signature: got.signature, signerPublicKey: signer, last: null }).ok,
    );
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await reader.cancel();
    await child.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, "SIGTERM stops it with exit 0");
  }
});
