import assert from "node:assert/strict";
import { isAesPeer } from "../../src/config/node-config.ts";
import { decodeBase64 } from "../../src/encoding.ts";
import { diffViews, isEmptyDiff } from "../../src/netmap/diff.ts";
import { type Netmap, NetmapError, parseNetmap } from "../../src/netmap/schema.ts";
import { viewFor } from "../../src/netmap/view.ts";
import { formatCidr } from "../../src/wireguard/allowedips.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;

function mapJson(): Json {
  return {
    version: 1,
    serial: 10,
    domain: "fabric.example",
    aesSubnet: "100.127.0.0/16",
    groups: ["ops"],
    nodes: [
      { name: "node-a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1", keySource: "dske" },
      {
        name: "node-b",
        publicKey: key(1),
        wgIp: "100.64.0.2",
        aesIp: "100.127.0.2",
        keySource: "dske",
        endpoints: ["192.0.2.2:51820", "198.51.100.2:51820"],
        groups: ["ops"],
        persistentKeepalive: 25,
      },
      { name: "printer", publicKey: key(2), wgIp: "100.64.0.3" },
      { name: "hub-1", publicKey: key(3), wgIp: "100.64.0.100", role: "hub" },
      { name: "broker", publicKey: key(4), wgIp: "100.64.0.101", role: "broker" },
    ],
  };
}

function map(j: Json = mapJson()): Netmap {
  return parseNetmap(JSON.stringify(j));
}

const pk = (i: number) => decodeBase64(key(i));

Deno.test("view: an AES node sees AES peers on aes0, exempt peers and hubs on wg0, brokers apart", () => {
  const v = viewFor(map(), pk(0));
  assert.equal(v.self.name, "node-a");
  assert.equal(v.self.wgAddress.text, "100.64.0.1/10");
  assert.equal(v.self.aesAddress?.text, "100.127.0.1/16");
  assert.equal(v.self.keySource, "dske");
  assert.equal(formatCidr(v.aesSubnet), "100.127.0.0/16");
  assert.deepEqual(v.peers.map((p) => p.name), ["node-b", "printer", "hub-1"]);
  const [b, printer, hub] = v.peers;
  assert.equal(formatCidr(b.wgIp), "100.64.0.2/32");
  assert.equal(formatCidr(b.aesIp!), "100.127.0.2/32");
  assert.deepEqual(b.endpoint, { ip: "192.0.2.2", port: 51820 }, "the first endpoint");
  assert.equal(b.keySource, "dske");
  assert.equal(b.persistentKeepalive, 25);
  assert.deepEqual(b.groups, ["ops"]);
  assert.equal(b.pskFile, null);
  assert.equal(b.psk, null);
  assert.ok(isAesPeer(b));
  assert.ok(!isAesPeer(printer));
  assert.equal(printer.aesIp, null);
  assert.equal(printer.endpoint, null);
  assert.equal(hub.role, "hub");
  assert.ok(!isAesPeer(hub));
  assert.deepEqual(v.brokers.map((p) => [p.name, p.role, p.aesIp]), [["broker", "broker", null]]);
});

Deno.test("view: an exempt node and a hub reach every peer over wg0 only", () => {
  for (const i of [2, 3]) {
    const v = viewFor(map(), pk(i));
    assert.equal(v.self.aesAddress, null);
    assert.equal(v.self.keySource, null);
    assert.ok(v.peers.every((p) => p.aesIp === null && !isAesPeer(p)));
    assert.equal(v.peers.length, 3);
  }
});

Deno.test("view: a key not in the map is one line saying how to add it", () => {
  assert.throws(() => viewFor(map(), pk(20)), (e: unknown) => {
    assert.ok(e instanceof NetmapError);
    assert.match(
      e.message,
      /^nodes: this node's public key .* is not in the map; add it with `twofold netmap add NAME --public-key /,
    );
    return true;
  });
});

Deno.test("diff: added, removed and changed peers with the fields that changed", () => {
  const before = viewFor(map(), pk(0));
  const j = mapJson();
  const nodes = j.nodes as Json[];
  j.serial = 11;
  nodes[1].endpoints = ["192.0.2.22:51820"];
  nodes[1].groups = [];
  nodes[2].aesIp = "100.127.0.3";
  nodes[2].keySource = "dske";
  nodes.splice(3, 1); // hub-1 leaves
  nodes.push({
    name: "node-c",
    publicKey: key(5),
    wgIp: "100.64.0.4",
    aesIp: "100.127.0.4",
    keySource: "dske",
  });
  const after = viewFor(map(j), pk(0));
  const d = diffViews(before, after);
  assert.deepEqual(d.serial, { from: 10, to: 11 });
  assert.deepEqual(d.added.map((p) => p.name), ["node-c"]);
  assert.deepEqual(d.removed.map((p) => p.name), ["hub-1"]);
  assert.deepEqual(d.changed.map((c) => [c.after.name, c.fields]), [
    ["node-b", ["endpoint", "groups"]],
    ["printer", ["aesIp", "keySource"]],
  ]);
  assert.deepEqual(d.self, []);
  assert.ok(!d.domainChanged && !d.aesSubnetChanged);
  assert.ok(!isEmptyDiff(d));
});

Deno.test("diff: identity is the key (a renamed peer is changed; a new key under an old name is removed + added)", () => {
  const before = viewFor(map(), pk(0));
  const j = mapJson();
  (j.nodes as Json[])[2].name = "printer-2";
  (j.nodes as Json[])[3].publicKey = key(9);
  const d = diffViews(before, viewFor(map(j), pk(0)));
  assert.deepEqual(d.changed.map((c) => [c.before.name, c.after.name, c.fields]), [["printer", "printer-2", [
    "name",
  ]]]);
  assert.deepEqual(d.removed.map((p) => p.name), ["hub-1"]);
  assert.deepEqual(d.added.map((p) => p.name), ["hub-1"]);
});

Deno.test("diff: own readdress, domain and subnet changes are reported; the same map is an empty diff", () => {
  const before = viewFor(map(), pk(0));
  assert.ok(isEmptyDiff(diffViews(before, viewFor(map(), pk(0)))));
  const j = mapJson();
  (j.nodes as Json[])[0].aesIp = "100.127.0.9";
  j.domain = "other.example";
  const d = diffViews(before, viewFor(map(j), pk(0)));
  assert.deepEqual(d.self, ["aesAddress"]);
  assert.ok(d.domainChanged);
  assert.ok(!d.aesSubnetChanged);
});
