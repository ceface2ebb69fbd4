import assert from "node:assert/strict";
import { decodeBase64, toHex } from "../../src/encoding.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { viewFor } from "../../src/netmap/view.ts";
import { CLOSED_GATE_NOTE, peerRoutes } from "../../src/node/peer-routes.ts";
import { peersFromView } from "../../src/node/netmap-config.ts";
import { findRoutes, peerRoutesApp } from "../../src/admin/routes/peer-routes.ts";
import { createAdminApp } from "../../src/admin/app.ts";
import type { GateStatus } from "../../src/keys/psk-gate.ts";
import { FakeBackend } from "./admin_fake_backend.ts";
import { lockdownEntries } from "../../src/filter/rule-compiler.ts";
import { key } from "./netmap_fixtures.ts";

const MAP = {
  version: 1,
  serial: 1,
  domain: "fabric.example",
  aesSubnet: "100.127.0.0/16",
  nodes: [
    { name: "self", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" },
    { name: "b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
    { name: "c", publicKey: key(2), wgIp: "100.64.0.3", aesIp: "100.127.0.3" },
    { name: "printer", publicKey: key(3), wgIp: "100.64.0.4" },
    { name: "hub-1", publicKey: key(4), wgIp: "100.64.0.100", role: "hub" },
  ],
};

function routes() {
  const view = viewFor(parseNetmap(JSON.stringify(MAP)), decodeBase64(key(0)));
  const gates = new Map<string, GateStatus>([
    [toHex(decodeBase64(key(1))), { state: "open" } as GateStatus],
    [toHex(decodeBase64(key(2))), { state: "closed" } as GateStatus],
  ]);
  return peerRoutes(peersFromView(view, {}), { wg0: "tfw0", aes0: "tfa0" }, gates);
}

Deno.test("peer routes: AES IPs via aes0 with the gate state, every wg0 IP via wg0, by class", () => {
  const r = routes();
  const line = (dst: string) => r.find((x) => x.destination === dst)!;
  assert.equal(r.length, 4 + 2, "one wg0 route per peer, one aes0 route per AES peer");
  assert.deepEqual(
    [line("100.127.0.2/32").interface, line("100.127.0.2/32").peerClass, line("100.127.0.2/32").gateOpen],
    ["tfa0", "aes", true],
  );
  assert.equal(line("100.127.0.2/32").note, null);
  assert.equal(line("100.127.0.3/32").gateOpen, false);
  assert.equal(line("100.127.0.3/32").note, CLOSED_GATE_NOTE);
  assert.deepEqual([line("100.64.0.2/32").interface, line("100.64.0.2/32").gateOpen], ["tfw0", null]);
  assert.deepEqual([line("100.64.0.4/32").interface, line("100.64.0.4/32").peerClass], ["tfw0", "exempt"]);
  assert.deepEqual([line("100.64.0.100/32").interface, line("100.64.0.100/32").peerClass], ["tfw0", "hub"]);
  assert.equal(findRoutes(r, "100.127.0.3").length, 1);
  assert.equal(findRoutes(r, "B").length, 2, "a name (any case) gives both of its routes");
  assert.deepEqual(findRoutes(r, "10.0.0.1"), []);
});

Deno.test("GET /v1/routes: all, by target, 404 for an unknown target; mounted in the admin app", async () => {
  const backend = new FakeBackend();
  const all = routes();
  backend.routes = () => all;
  assert.equal((await (await peerRoutesApp(backend).request("/routes")).json()).routes.length, 6);
  const app = createAdminApp(backend, { token: "t".repeat(32), readsNeedToken: false });
  const one = await app.request("/v1/routes?target=printer");
  assert.equal(one.status, 200);
  assert.deepEqual((await one.json()).routes.map((x: { destination: string }) => x.destination), [
    "100.64.0.4/32",
  ]);
  const none = await app.request("/v1/routes?target=nobody");
  assert.equal(none.status, 404);
  const body = await none.json();
  assert.equal(body.error, "not_found");
  assert.match(body.detail, /no peer route for "nobody"/);
});

Deno.test("lockdown: a map-driven node's DNS port is infrastructure (udp and tcp), after the extras", () => {
  const base = { aesUdpPort: 51830, extraPorts: [{ proto: "tcp" as const, from: 8080, to: 8080 }] };
  const without = lockdownEntries(base);
  const withDns = lockdownEntries({ ...base, dnsPort: 53 });
  assert.deepEqual(withDns.slice(0, without.length), without, "the other entries keep their numbers");
  assert.deepEqual(
    withDns.slice(without.length).map((e) => [e.proto, e.from, e.to, e.label]),
    [["udp", 53, 53, "udp/53 (DNS)"], ["tcp", 53, 53, "tcp/53 (DNS)"]],
  );
});
