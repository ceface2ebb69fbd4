/**
 * The support bundle's redaction layers in memory: schema-known secret fields whatever their value,
 * the defensive pass on secret-named fields holding key-looking values, what stays (public keys,
 * paths, labels, ordinary values), the known-secret scrubber's forms; the redacted `wg show all dump`;
 * the bounded ring of recent log lines.
 */
import assert from "node:assert/strict";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import {
  looksLikeKeyMaterial,
  looksSecretName,
  REDACTED,
  type RedactionReport,
  redactValue,
  SecretScrubber,
} from "../../src/support/redact.ts";
import { formatWgDump } from "../../src/support/wg-dump.ts";
import { logger, RECENT_LOG_LINE_CHARS, RECENT_LOG_LINES, recentLogLines } from "../../src/log.ts";

const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));

Deno.test("redact: schema-known fields go whatever their value; paths, labels, public keys stay", () => {
  const pub = encodeBase64(rand(32));
  const report: RedactionReport = { redacted: [] };
  const out = redactValue({
    node: { name: "a", privateKey: "short", privateKeyFile: "/etc/twofold/a.key" },
    peers: [{ publicKey: pub, psk: 42, pskFile: "/x.psk", presharedKey: null }],
    admin: { token: "t", tokenFile: "/var/lib/twofold/admin.token" },
    ska: { pkcs11: { pin: "1234", pinFile: "/p", tokenLabel: "twofold", keyLabel: "ska-root" } },
    rosenpass: { secretKey: ["a", "b"] },
  }, report) as Record<string, Record<string, unknown>>;
  assert.deepEqual(out.node, { name: "a", privateKey: REDACTED, privateKeyFile: "/etc/twofold/a.key" });
  assert.deepEqual(out.peers, [{ publicKey: pub, psk: REDACTED, pskFile: "/x.psk", presharedKey: REDACTED }]);
  assert.deepEqual(out.admin, { token: REDACTED, tokenFile: "/var/lib/twofold/admin.token" });
  assert.deepEqual(out.ska, {
    pkcs11: { pin: REDACTED, pinFile: "/p", tokenLabel: "twofold", keyLabel: "ska-root" },
  });
  assert.deepEqual(out.rosenpass, { secretKey: [REDACTED, REDACTED] });
  assert.deepEqual(report.redacted, [
    "node.privateKey",
    "peers[0].psk",
    "peers[0].presharedKey",
    "admin.token",
    "ska.pkcs11.pin",
    "rosenpass.secretKey[0]",
    "rosenpass.secretKey[1]",
  ]);
});

Deno.test("redact: the defensive pass takes key-looking values in secret-named fields only", () => {
  const key = rand(32);
  const out = redactValue({
    wgPresharedThing: encodeBase64(key),
    hubPadBytes: toHex(key),
    sessionSecretUrl: encodeBase64(key).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    peerPublicKey: encodeBase64(key),
    keySource: "dske",
    keyEpoch: 7,
    pskRotationSeconds: 120,
    comment: encodeBase64(key),
    tokenLabel: "twofold",
  }) as Record<string, unknown>;
  assert.equal(out.wgPresharedThing, REDACTED);
  assert.equal(out.hubPadBytes, REDACTED);
  assert.equal(out.sessionSecretUrl, REDACTED);
  assert.equal(out.peerPublicKey, encodeBase64(key), "public keys stay");
  assert.equal(out.keySource, "dske");
  assert.equal(out.keyEpoch, 7);
  assert.equal(out.pskRotationSeconds, 120);
  assert.equal(out.comment, encodeBase64(key), "a neutral name keeps its value (layer 3 covers known keys)");
  assert.equal(out.tokenLabel, "twofold");
  assert.ok(looksSecretName("rosenpassSecretKey") && !looksSecretName("publicKey"));
  assert.ok(!looksSecretName("pskFile") && !looksSecretName("hubId"));
  // Fixed bytes: the base64 rule wants a digit, which a random 16-byte value lacks 2.4 % of the time.
  const keyBytes = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 0xff);
  assert.match(encodeBase64(keyBytes), /[0-9]/);
  assert.ok(looksLikeKeyMaterial(toHex(keyBytes)) && looksLikeKeyMaterial(encodeBase64(keyBytes)));
  assert.ok(!looksLikeKeyMaterial("twofold") && !looksLikeKeyMaterial("/var/lib/twofold/admin.token"));
});

Deno.test("redact: the scrubber replaces every form of a known secret, nothing else", () => {
  const key = rand(32);
  const token = "tok-" + toHex(rand(16));
  const s = new SecretScrubber([key, token, new Uint8Array(32), "short"]);
  const b64 = encodeBase64(key);
  const text = [
    b64,
    b64.replace(/=+$/, ""),
    b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
    toHex(key),
    toHex(key).toUpperCase(),
    token,
    encodeBase64(new TextEncoder().encode(token)),
    toHex(new TextEncoder().encode(token)),
  ].map((f) => `x ${f} y`).join("\n");
  const r = s.scrub(text + "\nshort AAAAAAAA ordinary");
  assert.equal(r.count, 8);
  assert.equal(r.text, `${Array(8).fill(`x ${REDACTED} y`).join("\n")}\nshort AAAAAAAA ordinary`);
});

Deno.test("wg dump: keys redacted when set, (none) when not, the rest as wg prints it", () => {
  const priv = rand(32);
  const peerPub = rand(32);
  const text = formatWgDump([{
    name: "aes0",
    snapshot: {
      privateKey: priv,
      listenPort: 51830,
      fwmark: 0,
      peers: [
        {
          publicKey: peerPub,
          presharedKey: rand(32),
          endpoint: "100.64.0.2:51830",
          lastHandshakeMs: 1_767_225_600_999,
          txBytes: 5,
          rxBytes: 6,
          persistentKeepalive: 25,
          allowedIps: ["100.127.0.2/32", "10.0.0.0/8"],
        },
        {
          publicKey: peerPub,
          presharedKey: new Uint8Array(32),
          endpoint: null,
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          persistentKeepalive: 0,
          allowedIps: [],
        },
      ],
    },
  }]);
  const lines = text.trimEnd().split("\n").map((l) => l.split("\t"));
  assert.equal(lines[0][1], "(redacted)");
  assert.deepEqual(lines[0].slice(3), ["51830", "off"]);
  assert.deepEqual(lines[1], [
    "aes0",
    encodeBase64(peerPub),
    "(redacted)",
    "100.64.0.2:51830",
    "100.127.0.2/32,10.0.0.0/8",
    "1767225600",
    "6",
    "5",
    "25",
  ]);
  assert.deepEqual(lines[2], [
    "aes0",
    encodeBase64(peerPub),
    "(none)",
    "(none)",
    "(none)",
    "0",
    "0",
    "0",
    "off",
  ]);
  assert.ok(!text.includes(encodeBase64(priv)));
});

Deno.test("log ring: the newest lines, bounded in count and length, oldest first", () => {
  const log = logger("ring-test");
  const marker = toHex(rand(4));
  for (let i = 0; i < RECENT_LOG_LINES + 5; i++) log.error(`${marker} line ${i}`);
  log.error(`${marker} long ${"x".repeat(RECENT_LOG_LINE_CHARS * 2)}`);
  const lines = recentLogLines();
  assert.equal(lines.length, RECENT_LOG_LINES);
  assert.match(lines[0], new RegExp(`${marker} line 6$`));
  assert.match(
    lines[lines.length - 2],
    new RegExp(`ERROR ring-test: ${marker} line ${RECENT_LOG_LINES + 4}$`),
  );
  assert.ok(lines[lines.length - 1].length <= RECENT_LOG_LINE_CHARS + 1);
});
