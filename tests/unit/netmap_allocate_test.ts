import assert from "node:assert/strict";
import { lowestFree, nextAesIp, nextWgIp, SubnetFullError } from "../../src/netmap/allocate.ts";
import { addNode, initDocument, removeNode } from "../../src/netmap/edit.ts";
import {
  formatIpv4Number,
  type Ipv4Prefix,
  parseIpv4Number,
  parseIpv4Prefix,
} from "../../src/netmap/ipv4.ts";
import { type NetmapDocument, NetmapError, resolveNetmap } from "../../src/netmap/schema.ts";
import { key } from "./netmap_fixtures.ts";

function prefix(text: string): Ipv4Prefix {
  return parseIpv4Prefix(text) as Ipv4Prefix;
}

function ip(text: string): number {
  return parseIpv4Number(text)!;
}

Deno.test("allocation: lowest free skips network, broadcast, used addresses and the excluded subnet", () => {
  const p = prefix("10.0.0.0/29"); // .0 network, .7 broadcast
  assert.equal(formatIpv4Number(lowestFree(p, new Set())!), "10.0.0.1");
  assert.equal(formatIpv4Number(lowestFree(p, new Set([ip("10.0.0.1"), ip("10.0.0.2")]))!), "10.0.0.3");
  const all = new Set([1, 2, 3, 4, 5, 6].map((i) => ip(`10.0.0.${i}`)));
  assert.equal(lowestFree(p, all), null, "network and broadcast are never handed out");
  assert.equal(
    formatIpv4Number(lowestFree(prefix("10.0.0.0/24"), new Set(), prefix("10.0.0.0/25"))!),
    "10.0.0.128",
    "an excluded range is skipped",
  );
});

Deno.test("allocation: a tiny AES subnet fills up, then add fails clearly; remove frees the address", () => {
  let doc: NetmapDocument = initDocument("tiny.example", "100.127.0.0/30"); // usable: .1, .2
  const handed: string[] = [];
  for (let i = 0; i < 2; i++) {
    doc = addNode(doc, { name: `n${i}`, publicKey: key(i) }).doc;
    handed.push(doc.nodes[i].aesIp!);
  }
  assert.deepEqual(handed, ["100.127.0.1", "100.127.0.2"]);
  assert.throws(() => addNode(doc, { name: "n2", publicKey: key(2) }), (e: unknown) => {
    assert.ok(e instanceof SubnetFullError);
    assert.equal(
      e.message,
      "no free AES address is left in 100.127.0.0/30; remove nodes that are gone (twofold netmap remove NAME) or add the node AES-exempt (--exempt)",
    );
    return true;
  });
  // An exempt node still fits: it needs a wg0 address only.
  const withExempt = addNode(doc, { name: "printer", publicKey: key(2), exempt: true }).doc;
  assert.equal(withExempt.nodes[2].aesIp, undefined);
  // Removing n0 frees 100.127.0.1 for the next node, never an address still in the map.
  doc = removeNode(doc, "n0").doc;
  doc = addNode(doc, { name: "n3", publicKey: key(3) }).doc;
  assert.equal(doc.nodes.find((n) => n.name === "n3")!.aesIp, "100.127.0.1");
  assert.notEqual(doc.nodes.find((n) => n.name === "n3")!.wgIp, doc.nodes.find((n) => n.name === "n1")!.wgIp);
});

Deno.test("allocation: wg0 addresses start at 100.64.0.1 and skip the aes subnet and used ones", () => {
  // An aes subnet at the start of 100.64.0.0/10 pushes wg0 allocation past it.
  let doc = initDocument("x.example", "100.64.0.0/24");
  doc = addNode(doc, { name: "a", publicKey: key(0) }).doc;
  assert.equal(doc.nodes[0].wgIp, "100.64.1.0");
  assert.equal(doc.nodes[0].aesIp, "100.64.0.1");
  doc = addNode(doc, { name: "b", publicKey: key(1) }).doc;
  assert.equal(doc.nodes[1].wgIp, "100.64.1.1");
  const map = resolveNetmap(doc);
  assert.equal(formatIpv4Number(nextWgIp(map)), "100.64.1.2");
  assert.equal(formatIpv4Number(nextAesIp(map)), "100.64.0.3");
});

Deno.test("allocation: never an address still in the map, even a hand-edited one", () => {
  const doc = initDocument("x.example", "100.127.0.0/16");
  doc.nodes.push({
    name: "manual",
    publicKey: key(9),
    wgIp: "100.64.0.1",
    aesIp: "100.127.0.1",
    role: "peer",
    endpoints: [],
    groups: [],
    persistentKeepalive: 0,
    routes: [],
  });
  const added = addNode(doc, { name: "next", publicKey: key(1) }).doc.nodes[1];
  assert.equal(added.wgIp, "100.64.0.2");
  assert.equal(added.aesIp, "100.127.0.2");
});

Deno.test("allocation: a full range with an excluded part left returns null (no address outside the range)", () => {
  const range = prefix("10.1.0.0/24");
  const exclude = prefix("10.1.0.128/25");
  const used = new Set<number>();
  for (let a = range.base + 1; a < exclude.base; a++) used.add(a);
  assert.equal(lowestFree(range, used, exclude), null, "the excluded half is never used, .255 is broadcast");
  used.delete(ip("10.1.0.77"));
  assert.equal(formatIpv4Number(lowestFree(range, used, exclude)!), "10.1.0.77");
});

Deno.test("edits: serial increments, duplicates refused with one line naming the entry", () => {
  let doc = initDocument("x.example", "100.127.0.0/16");
  assert.equal(doc.serial, 1);
  doc = addNode(doc, { name: "a", publicKey: key(0), groups: ["ops"], endpoints: ["192.0.2.1:51820"] }).doc;
  assert.equal(doc.serial, 2);
  assert.deepEqual(doc.groups, ["ops"], "a new group is declared");
  assert.throws(() => addNode(doc, { name: "A", publicKey: key(1) }), {
    message: 'name: "A" is already in the map; remove it first or pick another name',
  });
  assert.throws(() => addNode(doc, { name: "b", publicKey: key(0) }), {
    message: '--public-key: is already the key of "a"; each node has its own key',
  });
  assert.throws(
    () => addNode(doc, { name: "b", publicKey: key(1), endpoints: ["x:1"] }),
    /--endpoint: "x:1"/,
  );
  assert.throws(() => addNode(doc, { name: "b_1", publicKey: key(1) }), /not a valid name/);
  assert.throws(() => addNode(doc, { name: "b", publicKey: "short" }), /not a base64 WireGuard public key/);
  assert.throws(() => removeNode(doc, "zzz"), {
    message: 'name: "zzz" is not in the map; `twofold netmap list` shows the names',
  });
  const hub = addNode(doc, { name: "hub-1", publicKey: key(2), role: "hub" }).doc;
  assert.equal(hub.nodes[1].aesIp, undefined, "a hub gets no AES address");
  assert.equal(hub.serial, 3);
  assert.throws(() => initDocument("bad_domain", "100.127.0.0/16"), NetmapError);
  assert.throws(
    () => initDocument("x.example", "100.127.0.0"),
    /--aes-subnet: "100\.127\.0\.0" needs a prefix length/,
  );
});

Deno.test("edits: a new AES node takes the key source the map's AES nodes use", () => {
  let doc = initDocument("x.example", "100.127.0.0/16");
  doc = addNode(doc, { name: "a", publicKey: key(0), keySource: "dske" }).doc;
  doc = addNode(doc, { name: "b", publicKey: key(1) }).doc;
  assert.equal(doc.nodes[1].keySource, "dske");
  assert.throws(
    () => addNode(doc, { name: "c", publicKey: key(2), keySource: "manual" }),
    /keySource: "manual" differs from nodes\[0\]/,
  );
});
