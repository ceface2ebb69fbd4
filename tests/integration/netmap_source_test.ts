/**
 * A node's map sources on loopback and in a temp directory: the URL source polls a signed map served
 * by `serveMapDirectory` (304 while unchanged: no new reading; an edit: one new reading, which the
 * guarded part applies), and the file source sees an edit written in place and a new file renamed over
 * the old one, debounced to one reading each.
 */
import assert from "node:assert/strict";
import { addNode, initDocument } from "../../src/netmap/edit.ts";
import { serveMapDirectory } from "../../src/netmap/http-serve.ts";
import { formatNetmapDocument, type NetmapDocument } from "../../src/netmap/schema.ts";
import {
  formatSignature,
  generateSignerSeed,
  signDocument,
  signerPublicKey,
} from "../../src/netmap/signature.ts";
import type { NetmapSource } from "../../src/netmap/source-config.ts";
import type { ReceivedMap } from "../../src/node/netmap-part.ts";
import { readSourceOnce, startSource } from "../../src/node/netmap-source.ts";
import { acceptMap } from "../../src/netmap/accept.ts";
import { waitUntil } from "../helpers/netns.ts";
import { key } from "../unit/netmap_fixtures.ts";

const encoder = new TextEncoder();
const seed = generateSignerSeed();

function publish(dir: string, doc: NetmapDocument): void {
  const bytes = encoder.encode(formatNetmapDocument(doc));
  Deno.writeFileSync(`${dir}/netmap.json.tmp`, bytes);
  Deno.writeTextFileSync(`${dir}/netmap.json.sig`, formatSignature(signDocument(bytes, seed)));
  Deno.renameSync(`${dir}/netmap.json.tmp`, `${dir}/netmap.json`);
}

Deno.test("map sources: a URL polled with ETags, a file watched (in-place edits and renames)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-src-" });
  const server = serveMapDirectory({ dir, hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/netmap.json`;
  try {
    let doc = addNode(initDocument("x.example", "100.127.0.0/16"), { name: "a", publicKey: key(0) }).doc;
    publish(dir, doc);

    await t.step("URL: the first reading, then only changes; each verifies with the signer key", async () => {
      // pollSeconds below the config's minimum, to keep the test short.
      const source: NetmapSource = {
        kind: "url",
        url,
        signerPublicKey: signerPublicKey(seed),
        pollSeconds: 1,
      };
      const first = await readSourceOnce(source, null);
      assert.equal(first.kind, "map");
      const etag = first.kind === "map" ? first.etag : null;
      assert.ok(etag);
      const got: ReceivedMap[] = [];
      const running = startSource(source, {
        etag,
        onMap: (m) => Promise.resolve(got.push(m)),
        onFailure: () => {},
      });
      try {
        await new Promise((r) => setTimeout(r, 2_300));
        assert.equal(got.length, 0, "304 while unchanged: nothing new");
        doc = addNode(doc, { name: "b", publicKey: key(1) }).doc;
        publish(dir, doc);
        assert.ok(await waitUntil(() => got.length === 1, 5_000), "the edit arrives at the next poll");
        const d = acceptMap({ ...got[0], signerPublicKey: signerPublicKey(seed), last: null });
        assert.ok(d.ok && d.map.nodes.length === 2, "signed, and the new map");
      } finally {
        running.close();
      }
    });

    await t.step("file: an edit in place and a rename over the file each give one reading", async () => {
      const source: NetmapSource = { kind: "file", path: `${dir}/netmap.json`, signerPublicKey: null };
      const got: ReceivedMap[] = [];
      const failures: string[] = [];
      const running = startSource(source, {
        onMap: (m) => Promise.resolve(got.push(m)),
        onFailure: (r) => failures.push(r),
      });
      try {
        await new Promise((r) => setTimeout(r, 300));
        doc = addNode(doc, { name: "c", publicKey: key(2) }).doc;
        publish(dir, doc); // renamed over the file
        assert.ok(await waitUntil(() => got.length >= 1, 5_000), "a rename over the file counts");
        await new Promise((r) => setTimeout(r, 500));
        const afterRename = got.length;
        assert.equal(afterRename, 1, "debounced: one reading for the rename and its signature");
        doc = addNode(doc, { name: "d", publicKey: key(3) }).doc;
        Deno.writeFileSync(`${dir}/netmap.json`, encoder.encode(formatNetmapDocument(doc)));
        assert.ok(await waitUntil(() => got.length === afterRename + 1, 5_000), "an in-place edit counts");
        const text = new TextDecoder().decode(got.at(-1)!.document);
        assert.match(text, /"d"/);
        assert.deepEqual(failures, []);
      } finally {
        running.close();
      }
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
