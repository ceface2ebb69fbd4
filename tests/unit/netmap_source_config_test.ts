import assert from "node:assert/strict";
import { encodeBase64 } from "../../src/encoding.ts";
import {
  DEFAULT_POLL_SECONDS,
  netmapSourceSection,
  resolveNetmapSource,
} from "../../src/netmap/source-config.ts";
import { generateSignerSeed, signerPublicKey } from "../../src/netmap/signature.ts";

const pub = signerPublicKey(generateSignerSeed());
const pubText = encodeBase64(pub);

function resolve(raw: unknown) {
  return resolveNetmapSource(netmapSourceSection.parse(raw), "/etc/twofold");
}

Deno.test("netmap source config: a file (relative to the config), optionally signed", () => {
  assert.deepEqual(resolve({ file: "netmap.json" }), {
    kind: "file",
    path: "/etc/twofold/netmap.json",
    signerPublicKey: null,
  });
  const signed = resolve({ file: "/srv/map.json", publicKey: pubText });
  assert.ok(signed.kind === "file");
  assert.deepEqual(signed.signerPublicKey, pub);
});

Deno.test("netmap source config: a URL needs the signer key; poll interval default and range", () => {
  const r = resolve({ url: "https://maps.example/netmap.json", publicKey: pubText });
  assert.ok(r.kind === "url");
  assert.equal(r.pollSeconds, DEFAULT_POLL_SECONDS);
  assert.deepEqual(r.signerPublicKey, pub);
  assert.throws(() => resolve({ url: "https://maps.example/netmap.json" }), {
    message:
      "netmap.publicKey: missing: a map from a URL must be signed; add the signer's public key (`twofold netmap signer-keygen` printed it)",
  });
  assert.throws(
    () => resolve({ url: "ftp://x/y", publicKey: pubText }),
    /netmap\.url: ftp: URLs are not supported/,
  );
  assert.throws(
    () => resolve({ url: "https://x/y", publicKey: "AAAA" }),
    /netmap\.publicKey: not a usable base64 Ed25519 public key/,
  );
  assert.throws(() => resolve({}), /netmap: needs exactly one of "file" .* or "url"/);
  assert.throws(() => resolve({ file: "a", url: "https://x/y" }), /netmap: needs exactly one of/);
  assert.throws(() => resolve({ file: "a", pollSeconds: 10 }), /netmap\.pollSeconds: applies to a url only/);
  assert.equal(netmapSourceSection.safeParse({ url: "https://x/y", pollSeconds: 1 }).success, false);
  assert.equal(
    netmapSourceSection.safeParse({ file: "a", extra: 1 }).success,
    false,
    "unknown keys are errors",
  );
});
