import assert from "node:assert/strict";
import { decodeBase64, toHex } from "../../src/encoding.ts";
import {
  cidrCovers,
  cidrsOverlap,
  findOverlap,
  parseRoutedNetwork,
  tunnelOverlap,
} from "../../src/config/routed-network.ts";
import { acceptedRoutesOf, acceptsRoute, type RouteAccept } from "../../src/config/route-accept.ts";
import { aes0AllowedIps, wg0AllowedIps } from "../../src/config/steering.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { CliError } from "../../src/cli/errors.ts";
import {
  formatNetmapDocument,
  NetmapError,
  parseNetmap,
  parseNetmapDocument,
} from "../../src/netmap/schema.ts";
import { routeSettingsOf, viewFor } from "../../src/netmap/view.ts";
import { configFromView } from "../../src/node/netmap-config.ts";
import { diffViews } from "../../src/netmap/diff.ts";
import { planApply } from "../../src/netmap/apply-plan.ts";
import { addNode } from "../../src/netmap/edit.ts";
import { NOT_ACCEPTED_NOTE, peerRoutes } from "../../src/node/peer-routes.ts";
import { findRoutes } from "../../src/admin/routes/peer-routes.ts";
import { formatRoute } from "../../src/cli/route.ts";
import { renderStatusTable, routesCell } from "../../src/cli/status.ts";
import { FakeBackend } from "./admin_fake_backend.ts";
import type { GateStatus } from "../../src/keys/psk-gate.ts";
import { type Cidr, formatCidr, parseCidr } from "../../src/wireguard/allowedips.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;
const SELF = decodeBase64(key(0));
const c = parseCidr;
const AES_SUBNET = c("100.127.0.0/16");

function network(text: string): Cidr {
  const r = parseRoutedNetwork(text);
  if ("problem" in r) throw new Error(r.problem);
  return r;
}

Deno.test("routed networks: strict CIDR text, v4 and v6", () => {
  assert.equal(formatCidr(network("192.168.10.0/24")), "192.168.10.0/24");
  assert.equal(formatCidr(network("fd00:10::/64")), "fd00:10::/64");
  const problem = (t: string) => (parseRoutedNetwork(t) as { problem: string }).problem;
  assert.match(problem("192.168.10.0"), /needs a prefix length/);
  assert.match(problem("192.168.10.1/24"), /host bits set \(the network is 192\.168\.10\.0\/24\)/);
  assert.match(problem("192.168.10.0/33"), /invalid prefix length \(0 to 32\)/);
  assert.match(problem("192.168.10.0/024"), /invalid prefix length/);
  assert.match(problem("lan/24"), /is not an IP network/);
});

Deno.test("routed networks: overlap and cover, never across families; tunnel ranges", () => {
  assert.ok(cidrsOverlap(c("192.168.0.0/16"), c("192.168.10.0/24")));
  assert.ok(cidrsOverlap(c("192.168.10.0/24"), c("192.168.0.0/16")));
  assert.ok(!cidrsOverlap(c("192.168.10.0/24"), c("192.168.11.0/24")));
  assert.ok(!cidrsOverlap(c("0.0.0.0/0"), c("::/0")));
  assert.ok(cidrsOverlap(c("10.0.0.0/9"), c("10.127.255.0/24")));
  assert.ok(!cidrsOverlap(c("10.0.0.0/9"), c("10.128.0.0/24")));
  assert.ok(cidrCovers(c("192.168.0.0/16"), c("192.168.10.0/24")));
  assert.ok(!cidrCovers(c("192.168.10.0/24"), c("192.168.0.0/16")));
  assert.match(tunnelOverlap(c("100.64.0.0/24"), AES_SUBNET)!, /overlaps the wg0 network 100\.64\.0\.0\/10/);
  assert.match(tunnelOverlap(c("0.0.0.0/0"), AES_SUBNET)!, /wg0 network/);
  assert.match(
    tunnelOverlap(c("10.0.0.0/8"), c("10.99.0.0/16"))!,
    /overlaps the aes subnet 10\.99\.0\.0\/16/,
  );
  assert.equal(tunnelOverlap(c("192.168.10.0/24"), AES_SUBNET), null);
  const ads = [
    { route: c("10.1.0.0/16"), field: "x[0]", owner: "a" },
    { route: c("10.2.0.0/16"), field: "x[1]", owner: "b" },
    { route: c("10.1.5.0/24"), field: "x[2]", owner: "c" },
  ];
  assert.deepEqual(findOverlap(ads)?.map((a) => a.owner), ["c", "a"]);
  assert.equal(findOverlap(ads.slice(0, 2)), null);
});

Deno.test("routes.accept: none, all, covering networks, groups; own networks never accepted", () => {
  const r = c("192.168.20.0/24");
  assert.equal(acceptsRoute({ kind: "none" }, r, ["sites"]), false);
  assert.equal(acceptsRoute({ kind: "all" }, r, []), true);
  assert.equal(acceptsRoute({ kind: "networks", networks: [c("192.168.0.0/16")] }, r, []), true);
  assert.equal(
    acceptsRoute({ kind: "networks", networks: [c("192.168.20.0/25")] }, r, []),
    false,
    "covers all",
  );
  assert.equal(acceptsRoute({ kind: "groups", groups: ["sites"] }, r, ["Sites"]), true);
  assert.equal(acceptsRoute({ kind: "groups", groups: ["sites"] }, r, ["ops"]), false);
  const peer = { routes: [r, c("10.5.0.0/16")], groups: [] };
  const all: RouteAccept = { kind: "all" };
  assert.deepEqual(acceptedRoutesOf(all, peer, []).map(formatCidr), ["192.168.20.0/24", "10.5.0.0/16"]);
  assert.deepEqual(acceptedRoutesOf(all, peer, [c("10.0.0.0/8")]).map(formatCidr), ["192.168.20.0/24"]);
});

function siteMap(extra: Json[] = [], self: Json = {}): Json {
  return {
    version: 1,
    serial: 1,
    domain: "fabric.example",
    aesSubnet: "100.127.0.0/16",
    groups: ["sites"],
    nodes: [
      { name: "site-a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1", ...self },
      {
        name: "site-b",
        publicKey: key(1),
        wgIp: "100.64.0.2",
        aesIp: "100.127.0.2",
        routes: ["192.168.20.0/24"],
      },
      { name: "printer", publicKey: key(2), wgIp: "100.64.0.3", routes: ["192.168.40.0/24", "fd00:40::/64"] },
      ...extra,
    ],
  };
}

function mapProblem(j: Json): string {
  try {
    parseNetmap(JSON.stringify(j));
  } catch (e) {
    assert.ok(e instanceof NetmapError, String(e));
    return e.message;
  }
  assert.fail("the map was accepted");
}

Deno.test("network map: routes validated — overlap names both peers, tunnel ranges, hubs route nothing", () => {
  const map = parseNetmap(JSON.stringify(siteMap()));
  assert.deepEqual(map.nodes[2].routes.map(formatCidr), ["192.168.40.0/24", "fd00:40::/64"]);
  assert.equal(
    mapProblem(
      siteMap([{ name: "site-c", publicKey: key(3), wgIp: "100.64.0.4", routes: ["192.168.0.0/16"] }]),
    ),
    'nodes[3] ("site-c").routes[0]: 192.168.0.0/16 (advertised by "site-c") overlaps 192.168.20.0/24 at ' +
      'nodes[1] ("site-b").routes[0] (advertised by "site-b"); one network has one router: remove or narrow one of them',
  );
  assert.match(
    mapProblem(siteMap([], { routes: ["100.127.9.0/24"] })),
    /^nodes\[0\] \("site-a"\)\.routes\[0\]: 100\.127\.9\.0\/24 overlaps the wg0 network/,
  );
  assert.match(mapProblem(siteMap([], { routes: ["100.100.0.0/16"] })), /wg0 network 100\.64\.0\.0\/10/);
  assert.match(mapProblem(siteMap([], { routes: ["192.168.1.1/24"] })), /host bits set/);
  assert.match(
    mapProblem(
      siteMap([{
        name: "hub-1",
        publicKey: key(4),
        wgIp: "100.64.0.100",
        role: "hub",
        routes: ["10.0.0.0/8"],
      }]),
    ),
    /hub-1"\)\.routes: a hub carries no application traffic/,
  );
  assert.match(
    mapProblem(siteMap([], { routes: ["10.0.0.0/8", "10.1.0.0/16"] })),
    /merge them into one network/,
  );
  const doc = parseNetmapDocument(JSON.stringify(siteMap()));
  assert.deepEqual(
    JSON.parse(formatNetmapDocument(doc)).nodes[1].routes,
    ["192.168.20.0/24"],
    "kept on write",
  );
  assert.equal(JSON.parse(formatNetmapDocument(doc)).nodes[0].routes, undefined, "none: left out");
  const added = addNode(doc, { name: "site-c", publicKey: key(5), routes: ["10.30.0.0/16"] });
  assert.deepEqual(added.map.nodes[3].routes.map(formatCidr), ["10.30.0.0/16"]);
  assert.throws(
    () => addNode(doc, { name: "site-d", publicKey: key(6), routes: ["192.168.20.128/25"] }),
    /overlaps/,
  );
});

Deno.test("view: what is advertised and what is accepted per peer; the map must agree with node.advertise", () => {
  const map = parseNetmap(JSON.stringify(siteMap([], { routes: ["192.168.10.0/24"] })));
  const none = viewFor(map, SELF);
  assert.deepEqual(none.self.routes.map(formatCidr), ["192.168.10.0/24"]);
  assert.deepEqual(none.peers[0].routes.map(formatCidr), ["192.168.20.0/24"]);
  assert.deepEqual(none.peers[0].acceptedRoutes, [], "accept none by default");
  const all = viewFor(map, SELF, { accept: { kind: "all" }, advertise: [c("192.168.10.0/24")] });
  assert.deepEqual(all.peers.map((p) => p.acceptedRoutes.map(formatCidr)), [
    ["192.168.20.0/24"],
    ["192.168.40.0/24", "fd00:40::/64"],
  ]);
  assert.throws(
    () => viewFor(map, SELF, { accept: { kind: "all" }, advertise: [c("192.168.11.0/24")] }),
    /nodes\[0\] \("site-a"\)\.routes: \[192\.168\.10\.0\/24\] differs from node\.advertise \[192\.168\.11\.0\/24\]/,
  );
});

Deno.test("steering: accepted networks of an AES peer on aes0 only, of an exempt peer on wg0", () => {
  const map = parseNetmap(JSON.stringify(siteMap()));
  const view = viewFor(map, SELF, { accept: { kind: "all" }, advertise: null });
  const [b, printer] = view.peers;
  assert.deepEqual(wg0AllowedIps(b), ["100.64.0.2/32"]);
  assert.deepEqual(aes0AllowedIps(b), ["100.127.0.2/32", "192.168.20.0/24"]);
  assert.deepEqual(wg0AllowedIps(printer), ["100.64.0.3/32", "192.168.40.0/24", "fd00:40::/64"]);
  assert.deepEqual(aes0AllowedIps(printer), []);
  // An AES-exempt node (no aes0) reaches even an AES peer's networks on wg0: it has no other layer.
  const exemptSelf = viewFor(map, decodeBase64(key(2)), { accept: { kind: "all" }, advertise: null });
  const bFromPrinter = exemptSelf.peers.find((p) => p.name === "site-b")!;
  assert.deepEqual(wg0AllowedIps(bFromPrinter), ["100.64.0.2/32", "192.168.20.0/24"]);
});

Deno.test("apply plan: accepting a route by a map change is an aes0 change for an AES peer, never wg0", () => {
  const accept: RouteAccept = { kind: "groups", groups: ["sites"] };
  const before = viewFor(parseNetmap(JSON.stringify(siteMap())), SELF, { accept, advertise: null });
  const j = siteMap();
  (j.nodes as Json[])[1].groups = ["sites"];
  (j.nodes as Json[])[2].groups = ["sites"];
  j.serial = 2;
  const after = viewFor(parseNetmap(JSON.stringify(j)), SELF, { accept, advertise: null });
  const diff = diffViews(before, after);
  assert.deepEqual(diff.changed.map((x) => [x.after.name, x.fields]), [
    ["site-b", ["groups", "acceptedRoutes"]],
    ["printer", ["groups", "acceptedRoutes"]],
  ]);
  const plan = planApply(diff, { aesPort: 51830 });
  assert.deepEqual(plan.aes0.peers.map((p) => p.allowedIps), [["100.127.0.2/32", "192.168.20.0/24"]]);
  assert.deepEqual(plan.wg0.peers.map((p) => p.allowedIps), [[
    "100.64.0.3/32",
    "192.168.40.0/24",
    "fd00:40::/64",
  ]]);
  assert.deepEqual(plan.restartNeeded, []);
  const back = planApply(diffViews(after, before), { aesPort: 51830 });
  assert.deepEqual(
    back.aes0.peers.map((p) => p.allowedIps),
    [["100.127.0.2/32"]],
    "the reverse plan drops it",
  );
  // The node's own advertised networks changing in the map needs no restart.
  const own = siteMap([], { routes: ["192.168.10.0/24"] });
  own.serial = 3;
  const selfChange = planApply(diffViews(before, viewFor(parseNetmap(JSON.stringify(own)), SELF)), {
    aesPort: 51830,
  });
  assert.deepEqual(selfChange.restartNeeded, []);
});

Deno.test("routes: networks listed per peer (accepted or not, layer, gate); route get finds the longest prefix", () => {
  const j = siteMap([
    {
      name: "site-c",
      publicKey: key(3),
      wgIp: "100.64.0.4",
      aesIp: "100.127.0.4",
      routes: ["192.168.20.128/25"],
    },
  ]);
  (j.nodes as Json[])[1].routes = ["192.168.20.0/25"];
  const view = viewFor(parseNetmap(JSON.stringify(j)), SELF, {
    accept: { kind: "networks", networks: [c("192.168.20.0/24")] },
    advertise: null,
  });
  const gates = new Map([[toHex(decodeBase64(key(1))), { state: "open" } as GateStatus]]);
  const routes = peerRoutes(view.peers, { wg0: "wg0", aes0: "aes0" }, gates);
  const nets = routes.filter((r) => r.kind === "network");
  assert.deepEqual(nets.map((r) => [r.destination, r.layer, r.peer, r.accepted, r.gateOpen]), [
    ["192.168.20.0/25", "aes0", "site-b", true, true],
    ["192.168.40.0/24", "wg0", "printer", false, null],
    ["fd00:40::/64", "wg0", "printer", false, null],
    ["192.168.20.128/25", "aes0", "site-c", true, false],
  ]);
  assert.equal(nets[1].note, NOT_ACCEPTED_NOTE);
  assert.match(nets[3].note!, /gate closed: traffic to this network goes nowhere .* never falls back to wg0/);
  assert.ok(routes.filter((r) => r.kind === "address").every((r) => r.accepted === null));
  assert.deepEqual(findRoutes(routes, "192.168.20.200").map((r) => r.peer), ["site-c"]);
  assert.deepEqual(findRoutes(routes, "192.168.40.7").map((r) => r.accepted), [false]);
  assert.deepEqual(findRoutes(routes, "fd00:40::1").map((r) => r.destination), ["fd00:40::/64"]);
  assert.deepEqual(findRoutes(routes, "10.9.9.9"), [], "outside every network");
  assert.match(formatRoute(nets[1]), /^192\.168\.40\.0\/24 not accepted \(would be dev wg0\) peer printer/);
  assert.match(
    formatRoute(nets[0]),
    /^192\.168\.20\.0\/25 dev aes0 peer site-b \(aes, accepted\): .*; gate open$/,
  );
});

function nodeConfig(extra: Json, peers: Json[] = [], node: Json = {}) {
  return parseNodeConfig(
    JSON.stringify({
      node: { name: "site-a", privateKeyFile: "a.key", ...node },
      wg0: { address: "100.64.0.1/10" },
      aes0: { address: "100.127.0.1/16" },
      peers: [
        {
          name: "site-b",
          publicKey: key(1),
          wgIp: "100.64.0.2",
          aesIp: "100.127.0.2",
          routes: ["192.168.20.0/24"],
        },
        ...peers,
      ],
      ...extra,
    }),
    { baseDir: "/etc/twofold", checkFiles: false, sourceName: "a.json" },
  );
}

function configProblem(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof CliError, String(e));
    return e.message;
  }
  assert.fail("the config was accepted");
}

Deno.test("node config: node.advertise, inline peers' routes and routes.accept", () => {
  const none = nodeConfig({}, [], { advertise: ["192.168.10.0/24"] });
  assert.deepEqual(none.node.advertise?.map(formatCidr), ["192.168.10.0/24"]);
  assert.deepEqual(none.routes.accept, { kind: "none" });
  assert.deepEqual(none.peers[0].routes?.map(formatCidr), ["192.168.20.0/24"]);
  assert.deepEqual(none.peers[0].acceptedRoutes, []);
  assert.equal(nodeConfig({}).node.advertise, null, "not said");
  const listed = nodeConfig({ routes: { accept: ["192.168.0.0/16"] } });
  assert.deepEqual(listed.peers[0].acceptedRoutes?.map(formatCidr), ["192.168.20.0/24"]);
  assert.equal(
    configProblem(() => nodeConfig({}, [], { advertise: ["192.168.20.0/23"] })),
    'config a.json: peers[0].routes[0]: 192.168.20.0/24 (advertised by "site-b") overlaps 192.168.20.0/23 at ' +
      "node.advertise[0] (advertised by this node); one network has one router: remove or narrow one of them",
  );
  assert.match(
    configProblem(() => nodeConfig({}, [], { advertise: ["100.127.5.0/24"] })),
    /^config a\.json: node\.advertise\[0\]: 100\.127\.5\.0\/24 overlaps the wg0 network/,
  );
  assert.match(
    configProblem(() => nodeConfig({ routes: { accept: { groups: ["sites"] } } })),
    /routes\.accept\.groups: groups come from the network map/,
  );
  assert.match(
    configProblem(() => nodeConfig({ routes: { accept: ["10.0.0.1/8"] } })),
    /routes\.accept\[0\]: .*host bits/,
  );
  assert.match(configProblem(() => nodeConfig({ routes: { accept: "some" } })), /routes\.accept/);
  assert.match(
    configProblem(() =>
      nodeConfig({}, [{
        name: "hub-1",
        publicKey: key(4),
        wgIp: "100.64.0.100",
        role: "hub",
        routes: ["10.0.0.0/8"],
      }])
    ),
    /peers\[1\]\.routes: a hub carries no application traffic/,
  );
  assert.match(
    configProblem(() =>
      nodeConfig({}, [{ name: "site-c", publicKey: key(3), wgIp: "100.64.0.3", routes: ["192.168.20.0/25"] }])
    ),
    /peers\[1\]\.routes\[0\]: .*"site-c".*"site-b"/,
  );
});

Deno.test("status table: what this node advertises and accepts; a ROUTES column only when a peer routes", () => {
  const s = new FakeBackend().status();
  const table = renderStatusTable(s);
  assert.match(table, /^routed networks: this node advertises 192\.168\.10\.0\/24; accepts all$/m);
  assert.match(table, /^PEER .* ROUTES$/m);
  const exempt = s.peers.find((p) => p.routes.advertised.length > 0)!;
  assert.match(
    table,
    new RegExp(`^${exempt.name} .*\\(AES-exempt: wg0 only\\) +192\\.168\\.40\\.0/24$`, "m"),
  );
  exempt.routes.accepted = [];
  assert.equal(routesCell(exempt), "192.168.40.0/24 (not accepted)");
  const plain = renderStatusTable({
    ...s,
    routes: { advertise: [], accept: "none" },
    peers: s.peers.map((p) => ({ ...p, routes: { advertised: [], accepted: [] } })),
  });
  assert.doesNotMatch(plain, /ROUTES|routed networks/);
});

Deno.test("policies on a map-driven node: peer names come from the map, checked when it is read", () => {
  const cfg = parseNodeConfig(
    JSON.stringify({
      node: { name: "site-a", privateKeyFile: "a.key", advertise: ["192.168.10.0/24"] },
      wg0: {},
      aes0: {},
      netmap: { file: "netmap.json" },
      policies: {
        groups: { sites: ["site-b"] },
        rules: [{ from: "sites", to: "192.168.10.0/24", proto: "tcp" }, { from: "printer", to: "site-a" }],
      },
    }),
    { baseDir: "/etc/twofold", checkFiles: false },
  );
  assert.deepEqual(cfg.policies?.rules[0].to.network, c("192.168.10.0/24"));
  const map = parseNetmap(JSON.stringify(siteMap([], { routes: ["192.168.10.0/24"] })));
  const view = viewFor(map, SELF, routeSettingsOf(cfg));
  assert.equal(configFromView(cfg, view).policies, cfg.policies, "every name is a node of the map");
  const without = siteMap([], { routes: ["192.168.10.0/24"] });
  (without.nodes as Json[]).splice(2, 1);
  assert.throws(
    () => configFromView(cfg, viewFor(parseNetmap(JSON.stringify(without)), SELF, routeSettingsOf(cfg))),
    /NetmapError: policies\.rules\[1\]\.from: "printer" is not a node of the network map/,
  );
});
