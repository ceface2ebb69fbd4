import assert from "node:assert/strict";
import { CliError } from "../../src/cli/errors.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { parseBrokerConfig } from "../../src/config/broker-config.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { encodeBase64 } from "../../src/encoding.ts";

const key = () => encodeBase64(publicKey(generatePrivateKey()));
const KEY_B = key();
const KEY_K = key();
type Json = Record<string, unknown>;

function nodeConfig(brokerEntry: Json | null, keySource = "ska"): Json {
  return {
    node: { name: "node-a", privateKeyFile: "./node-a.key" },
    wg0: { address: "100.64.0.1/10" },
    aes0: { address: "100.127.0.1/16" },
    peers: [
      { name: "node-b", publicKey: KEY_B, wgIp: "100.64.0.2", aesIp: "100.127.0.2", keySource },
      ...(brokerEntry ? [brokerEntry] : []),
    ],
  };
}

const BROKER = { name: "broker", publicKey: KEY_K, wgIp: "100.64.0.200", role: "broker", wgPskFile: "b.psk" };

/** The one-line CliError (exit 2) `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CliError, String(e));
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes("\n"));
    return e.message;
  }
  assert.fail("expected a refusal");
}

const opts = { baseDir: "/etc/twofold", checkFiles: false, sourceName: "x.json" };

Deno.test("node config: a broker peer with a wg0 PSK; ska peers need one; broker rules", () => {
  const cfg = parseNodeConfig(JSON.stringify(nodeConfig(BROKER)), opts);
  const broker = cfg.peers.find((p) => p.role === "broker")!;
  assert.equal(broker.wgPskFile, "/etc/twofold/b.psk");
  assert.equal(broker.aesIp, null);
  assert.equal(cfg.peers.find((p) => p.name === "node-b")!.keySource, "ska");
  assert.match(
    refusal(() => parseNodeConfig(JSON.stringify(nodeConfig(null)), opts)),
    /peers: .*no peer has role "broker"/,
  );
  const noPsk = { ...BROKER } as Json;
  delete noPsk.wgPskFile;
  assert.match(
    refusal(() => parseNodeConfig(JSON.stringify(nodeConfig(noPsk)), opts)),
    /peers\[1\]\.wgPskFile: missing/,
  );
  assert.match(
    refusal(() => parseNodeConfig(JSON.stringify(nodeConfig({ ...BROKER, aesIp: "100.127.0.9" })), opts)),
    /peers\[1\]\.aesIp: the SKA broker carries no application traffic/,
  );
  const two = nodeConfig(BROKER);
  (two.peers as Json[]).push({ ...BROKER, name: "broker-2", publicKey: key(), wgIp: "100.64.0.201" });
  assert.match(refusal(() => parseNodeConfig(JSON.stringify(two), opts)), /a node uses one SKA broker/);
  // wgPskFile works on any wg0 peer (e.g. a manual peer), and the config without SKA needs no broker.
  const plain = parseNodeConfig(
    JSON.stringify({
      ...nodeConfig(null, "manual"),
      peers: [{ ...(nodeConfig(null).peers as Json[])[0], keySource: "manual", wgPskFile: "p.psk" }],
    }),
    opts,
  );
  assert.equal(plain.peers[0].wgPskFile, "/etc/twofold/p.psk");
});

function brokerConfig(rootKey: unknown, peer: Json = {}): string {
  return JSON.stringify({
    broker: { name: "broker", privateKeyFile: "broker.key", rootKey },
    wg0: { address: "100.64.0.200/10" },
    peers: [{ name: "node-a", publicKey: KEY_B, wgIp: "100.64.0.1", wgPskFile: "node-a.wg0.psk", ...peer }],
  });
}

const PKCS11 = {
  pkcs11: { module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "t", keyLabel: "k", pinFile: "pin" },
};

Deno.test("broker config: root key in a token or a file; peers are wg0 peers with a PSK", () => {
  const cfg = parseBrokerConfig(brokerConfig(PKCS11), opts);
  assert.deepEqual(cfg.rootKey, { pkcs11: { ...PKCS11.pkcs11, pinFile: "/etc/twofold/pin" } });
  assert.equal(cfg.peers[0].wgPskFile, "/etc/twofold/node-a.wg0.psk");
  assert.equal(cfg.peers[0].persistentKeepalive, 25);
  assert.deepEqual(parseBrokerConfig(brokerConfig({ file: "root.key" }), opts).rootKey, {
    file: "/etc/twofold/root.key",
  });
  assert.match(refusal(() => parseBrokerConfig(brokerConfig(undefined), opts)), /broker\.rootKey: missing/);
  assert.match(
    refusal(() => parseBrokerConfig(brokerConfig({ file: "a", pkcs11: {} }), opts)),
    /exactly one of/,
  );
  assert.match(
    refusal(() => parseBrokerConfig(brokerConfig({ pkcs11: { ...PKCS11.pkcs11, keyLabel: "" } }), opts)),
    /broker\.rootKey\.pkcs11\.keyLabel: missing/,
  );
  assert.match(
    refusal(() => parseBrokerConfig(brokerConfig({ pkcs11: { ...PKCS11.pkcs11, slot: 1 } }), opts)),
    /broker\.rootKey\.pkcs11\.slot: unknown key/,
  );
  assert.match(
    refusal(() => parseBrokerConfig(brokerConfig(PKCS11, { wgPskFile: undefined }), opts)),
    /peers\[0\]\.wgPskFile: missing/,
  );
  assert.match(
    refusal(() => parseBrokerConfig(brokerConfig(PKCS11, { aesIp: "100.127.0.1" }), opts)),
    /peers\[0\]\.aesIp: a broker's peers/,
  );
  assert.match(
    refusal(() => parseBrokerConfig(JSON.stringify({ broker: {}, extra: 1 }), opts)),
    /extra: unknown key/,
  );
});

Deno.test("examples/broker.json parses: a token root key and one enrolled node", () => {
  const dir = new URL("../../examples/", import.meta.url).pathname;
  const cfg = parseBrokerConfig(Deno.readTextFileSync(`${dir}broker.json`), {
    baseDir: dir,
    checkFiles: false,
  });
  assert.ok("pkcs11" in cfg.rootKey);
  assert.equal(cfg.rootKey.pkcs11.pinFile, `${dir}token.pin`);
  assert.equal(cfg.peers[0].wgPskFile, `${dir}node-a.wg0.psk`);
  assert.equal(cfg.broker.privateKeyFile, `${dir}broker-1.key`);
});

Deno.test("node config: ska+dske peers need the broker and k hubs; ska, dske and ska+dske peers mix on one node", () => {
  const hub = (i: number) => ({ name: `hub-${i}`, publicKey: key(), wgIp: `100.64.1.${i}`, role: "hub" });
  const mixed = nodeConfig(BROKER, "ska+dske");
  (mixed.peers as Json[]).push(
    { name: "node-c", publicKey: key(), wgIp: "100.64.0.3", aesIp: "100.127.0.3", keySource: "ska" },
    { name: "node-d", publicKey: key(), wgIp: "100.64.0.4", aesIp: "100.127.0.4", keySource: "dske" },
    hub(1),
    hub(2),
  );
  const cfg = parseNodeConfig(JSON.stringify(mixed), opts);
  assert.deepEqual(
    cfg.peers.filter((p) => p.aesIp !== null).map((p) => `${p.name}:${p.keySource}`),
    ["node-b:ska+dske", "node-c:ska", "node-d:dske"],
  );
  // ska+dske alone still needs what each plane needs: the broker, and k hubs.
  const noBroker = nodeConfig(null, "ska+dske");
  (noBroker.peers as Json[]).push(hub(1), hub(2));
  assert.match(refusal(() => parseNodeConfig(JSON.stringify(noBroker), opts)), /no peer has role "broker"/);
  assert.match(
    refusal(() => parseNodeConfig(JSON.stringify(nodeConfig(BROKER, "ska+dske")), opts)),
    /keys\.dskeThreshold: k = 2 but only 0 hub/,
  );
  assert.match(
    refusal(() => parseNodeConfig(JSON.stringify(nodeConfig(BROKER, "dske+ska")), opts)),
    /keySource/,
  );
});
