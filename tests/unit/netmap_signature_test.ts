import assert from "node:assert/strict";
import { type AcceptedRecord, acceptMap, documentDigest } from "../../src/netmap/accept.ts";
import { LAST_GOOD_FILE, loadLastGood, saveLastGood } from "../../src/netmap/last-good.ts";
import {
  formatSignature,
  generateSignerSeed,
  isUsableSignerKey,
  parseSignature,
  parseSignerPublicKey,
  readSignerKeyFile,
  signDocument,
  signerPublicKey,
  verifyDocument,
  writeNewSignerKeyFile,
} from "../../src/netmap/signature.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { key } from "./netmap_fixtures.ts";

const encoder = new TextEncoder();

function mapText(serial: number, extraNode = false): Uint8Array {
  const nodes = [{ name: "a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" }];
  if (extraNode) nodes.push({ name: "b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" });
  return encoder.encode(
    JSON.stringify({ version: 1, serial, domain: "x.example", aesSubnet: "100.127.0.0/16", nodes }),
  );
}

const seed = generateSignerSeed();
const pub = signerPublicKey(seed);

Deno.test("signature: verifies the signer's signature; any changed byte, other key or junk fails", () => {
  const doc = mapText(1);
  const sig = signDocument(doc, seed);
  assert.equal(sig.length, 64);
  assert.ok(verifyDocument(doc, sig, pub));
  const changed = doc.slice();
  changed[changed.length - 2] ^= 1;
  assert.ok(!verifyDocument(changed, sig, pub));
  assert.ok(!verifyDocument(doc, sig, signerPublicKey(generateSignerSeed())));
  const flipped = sig.slice();
  flipped[3] ^= 0x80;
  assert.ok(!verifyDocument(doc, flipped, pub));
  assert.ok(!verifyDocument(doc, sig.subarray(0, 63), pub));
  // An all-zero key is a small-order point: with an all-zero signature it would "verify" anything.
  assert.ok(!isUsableSignerKey(new Uint8Array(32)));
  assert.ok(!verifyDocument(doc, new Uint8Array(64), new Uint8Array(32)), "a small-order key never verifies");
  assert.ok(
    !verifyDocument(doc, new Uint8Array(64).fill(0xff), new Uint8Array(32).fill(0xff)),
    "junk: false, no throw",
  );
  assert.throws(
    () => parseSignerPublicKey("netmap.publicKey", encodeBase64(new Uint8Array(32))),
    /not a usable base64 Ed25519/,
  );
  assert.deepEqual(parseSignature(formatSignature(sig)), sig);
  assert.equal(parseSignature("not base64\n"), null);
  assert.equal(parseSignature(encodeBase64(new Uint8Array(63))), null);
  assert.deepEqual(parseSignerPublicKey("netmap.publicKey", encodeBase64(pub)), pub);
  assert.throws(
    () => parseSignerPublicKey("netmap.publicKey", "abc"),
    /netmap\.publicKey: not a usable base64 Ed25519 public key/,
  );
});

Deno.test("signer key file: created 0600 (never overwritten), read back; a wider mode is refused", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tf-netmap-sig-" });
  try {
    const path = `${dir}/signer.key`;
    const written = writeNewSignerKeyFile(path, seed);
    assert.deepEqual(written, pub);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.deepEqual(readSignerKeyFile(path), seed);
    assert.throws(
      () => writeNewSignerKeyFile(path, generateSignerSeed()),
      /already exists; a signer key is never overwritten/,
    );
    Deno.chmodSync(path, 0o644);
    assert.throws(() => readSignerKeyFile(path), /permissions 0644, wider than 0600: run `chmod 600/);
    Deno.chmodSync(path, 0o600);
    Deno.symlinkSync(path, `${dir}/link.key`);
    assert.throws(() => readSignerKeyFile(`${dir}/link.key`), /signer key .*link\.key is a symbolic link/);
    Deno.writeTextFileSync(path, "garbage\n");
    assert.throws(() => readSignerKeyFile(path), (e: unknown) => {
      assert.match((e as Error).message, /does not hold one base64 32-byte key/);
      assert.ok(!(e as Error).message.includes("garbage"), "the contents are never echoed");
      return true;
    });
    assert.throws(
      () => readSignerKeyFile(`${dir}/none.key`),
      /does not exist: create one with `twofold netmap signer-keygen --out/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("accept: signature required, serial never goes back, same serial only for the same document", () => {
  const v5 = mapText(5);
  const sig5 = signDocument(v5, seed);
  const ok = acceptMap({ document: v5, signature: sig5, signerPublicKey: pub, last: null });
  assert.ok(ok.ok);
  assert.equal(ok.map.serial, 5);
  assert.equal(ok.unchanged, false);
  const last: AcceptedRecord = ok.record;
  assert.deepEqual(last, { serial: 5, sha256: documentDigest(v5) });

  const reject = (input: Parameters<typeof acceptMap>[0], expected: RegExp) => {
    const d = acceptMap(input);
    assert.ok(!d.ok, "rejected");
    assert.match(d.reason, expected);
    assert.ok(!d.reason.includes("\n"));
  };
  reject({ document: v5, signature: null, signerPublicKey: pub, last }, /^the map is unsigned; sign it/);
  reject(
    { document: v5, signature: signDocument(v5, generateSignerSeed()), signerPublicKey: pub, last },
    /signature does not verify with the configured signer key/,
  );
  const v4 = mapText(4);
  reject(
    { document: v4, signature: signDocument(v4, seed), signerPublicKey: pub, last },
    /^serial 4 is lower than the running map's 5; a map never goes back \(rollback refused\)$/,
  );
  const other5 = mapText(5, true);
  reject(
    { document: other5, signature: signDocument(other5, seed), signerPublicKey: pub, last },
    /^serial 5 is the running map's but the document differs/,
  );
  const garbage = encoder.encode("{ nope");
  reject(
    { document: garbage, signature: signDocument(garbage, seed), signerPublicKey: pub, last },
    /^invalid map: line 1:/,
  );
  const dup = encoder.encode(
    JSON.stringify({
      version: 1,
      serial: 9,
      domain: "x.example",
      aesSubnet: "100.127.0.0/16",
      nodes: [
        { name: "a", publicKey: key(0), wgIp: "100.64.0.1" },
        { name: "b", publicKey: key(1), wgIp: "100.64.0.1" },
      ],
    }),
  );
  reject(
    { document: dup, signature: signDocument(dup, seed), signerPublicKey: pub, last },
    /^invalid map: nodes\[1\] \("b"\)\.wgIp: 100\.64\.0\.1 is already used/,
  );
  const binary = new Uint8Array([0xff, 0xfe, 0x00]);
  reject(
    { document: binary, signature: signDocument(binary, seed), signerPublicKey: pub, last },
    /not UTF-8/,
  );

  const same = acceptMap({ document: v5, signature: sig5, signerPublicKey: pub, last });
  assert.ok(same.ok && same.unchanged, "the same document again is accepted as unchanged");
  const v6 = mapText(6, true);
  const newer = acceptMap({ document: v6, signature: signDocument(v6, seed), signerPublicKey: pub, last });
  assert.ok(newer.ok && !newer.unchanged && newer.record.serial === 6);
  const local = acceptMap({ document: v6, signature: null, signerPublicKey: null, last });
  assert.ok(local.ok, "a local file source needs no signature");
});

Deno.test("last good: saved atomically 0600, loaded back byte for byte; damage is one line; none is null", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tf-netmap-lg-" });
  try {
    assert.equal(loadLastGood(dir), null);
    const document = mapText(7);
    const signature = signDocument(document, seed);
    saveLastGood(dir, { document, signature, record: { serial: 7, sha256: documentDigest(document) } });
    const path = `${dir}/${LAST_GOOD_FILE}`;
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      [LAST_GOOD_FILE],
      "no temporary file left",
    );
    const loaded = loadLastGood(dir)!;
    assert.deepEqual(loaded.document, document);
    assert.deepEqual(loaded.signature, signature);
    assert.deepEqual(loaded.record, { serial: 7, sha256: documentDigest(document) });
    // The loaded copy goes through the same acceptance as a download.
    const again = acceptMap({
      document: loaded.document,
      signature: loaded.signature,
      signerPublicKey: pub,
      last: null,
    });
    assert.ok(again.ok);
    const text = Deno.readTextFileSync(path);
    Deno.writeTextFileSync(
      path,
      text.replace(/"serial":7/, '"serial":8').replace(/"document":"./, '"document":"A'),
    );
    assert.throws(() => loadLastGood(dir), /is damaged; delete it to start from the map source alone/);
    Deno.writeTextFileSync(path, "{");
    assert.throws(() => loadLastGood(dir), /is damaged/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
