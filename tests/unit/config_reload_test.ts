import assert from "node:assert/strict";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { compareConfigs } from "../../src/node/config-reload.ts";
import { createAdminApp } from "../../src/admin/app.ts";
import { FakeBackend } from "./admin_fake_backend.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;

function parse(c: Json) {
  return parseNodeConfig(JSON.stringify(c), { baseDir: "/etc/twofold", checkFiles: false });
}

const mapped = (): Json => ({
  node: { name: "node-a", privateKeyFile: "a.key" },
  wg0: {},
  aes0: {},
  netmap: { file: "netmap.json" },
  pskFiles: { "node-b": "b.psk" },
});

const inline = (): Json => ({
  node: { name: "node-a", privateKeyFile: "a.key" },
  wg0: { address: "100.64.0.1/10" },
  aes0: { address: "100.127.0.1/16" },
  peers: [{ name: "node-b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" }],
});

Deno.test("config reload: a map node's pskFiles apply live; other changes are named as needing a restart", () => {
  assert.deepEqual(compareConfigs(parse(mapped()), parse(mapped())), {
    pskFilesChanged: false,
    routingChanged: false,
    restartNeeded: [],
  });
  const psk = { ...mapped(), pskFiles: { "node-b": "b2.psk" } };
  assert.deepEqual(compareConfigs(parse(mapped()), parse(psk)), {
    pskFilesChanged: true,
    routingChanged: false,
    restartNeeded: [],
  });
  const port = { ...mapped(), wg0: { listenPort: 51900 }, dns: { port: 5353 } };
  assert.deepEqual(compareConfigs(parse(mapped()), parse(port)).restartNeeded, ["wg0.listenPort", "dns"]);
  const source = { ...mapped(), netmap: { file: "other.json" } };
  assert.deepEqual(compareConfigs(parse(mapped()), parse(source)).restartNeeded, ["netmap"]);
});

Deno.test("config reload: a map node's routes.accept and node.advertise apply live; inline ones need a restart", () => {
  const accept = { ...mapped(), routes: { accept: ["192.168.0.0/16"] } };
  assert.deepEqual(compareConfigs(parse(mapped()), parse(accept)), {
    pskFilesChanged: false,
    routingChanged: true,
    restartNeeded: [],
  });
  const other = { ...mapped(), routes: { accept: ["10.0.0.0/8"] } };
  assert.equal(compareConfigs(parse(accept), parse(other)).routingChanged, true, "another list");
  assert.equal(compareConfigs(parse(accept), parse(accept)).routingChanged, false, "the same list");
  const advertise = {
    ...mapped(),
    node: { name: "node-a", privateKeyFile: "a.key", advertise: ["10.1.0.0/24"] },
  };
  assert.equal(compareConfigs(parse(mapped()), parse(advertise)).routingChanged, true);
  const inlineAccept = { ...inline(), routes: { accept: "all" } };
  assert.deepEqual(compareConfigs(parse(inline()), parse(inlineAccept)), {
    pskFilesChanged: false,
    routingChanged: false,
    restartNeeded: ["routes"],
  });
  const routed = inline();
  (routed.peers as Json[])[0].routes = ["192.168.20.0/24"];
  assert.deepEqual(compareConfigs(parse(inline()), parse(routed)).restartNeeded, ["peers"]);
});

Deno.test("config reload: inline peers and addresses need a restart", () => {
  const moved = inline();
  (moved.peers as Json[])[0].wgIp = "100.64.0.9";
  assert.deepEqual(compareConfigs(parse(inline()), parse(moved)).restartNeeded, ["peers"]);
  const toMap = compareConfigs(parse(inline()), parse(mapped()));
  assert.ok(toMap.restartNeeded.includes("netmap"));
  assert.equal(toMap.pskFilesChanged, false);
});

Deno.test("POST /v1/reload: token required, the backend's outcome; 409 when the node cannot reload", async () => {
  const token = "t".repeat(32);
  const backend = new FakeBackend();
  const app = createAdminApp(backend, { token, readsNeedToken: false });
  assert.equal((await app.request("/v1/reload", { method: "POST" })).status, 401);
  const auth = { method: "POST", headers: { Authorization: `Bearer ${token}` } };
  const none = await app.request("/v1/reload", auth);
  assert.equal(none.status, 409);
  assert.equal((await none.json()).error, "not_supported");
  let calls = 0;
  Object.assign(backend, {
    reload: () => {
      calls++;
      return Promise.resolve({
        summary: "config unchanged",
        restartNeeded: ["wg0.listenPort changed in the config"],
      });
    },
  });
  const ok = await createAdminApp(backend, { token, readsNeedToken: false }).request("/v1/reload", auth);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {
    summary: "config unchanged",
    restartNeeded: ["wg0.listenPort changed in the config"],
  });
  assert.equal(calls, 1);
});
