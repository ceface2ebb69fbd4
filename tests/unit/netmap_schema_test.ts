import assert from "node:assert/strict";
import { encodeBase64 } from "../../src/encoding.ts";
import { formatIpv4Number } from "../../src/netmap/ipv4.ts";
import {
  formatNetmapDocument,
  MAX_NETMAP_NODES,
  NetmapError,
  parseNetmap,
  parseNetmapDocument,
} from "../../src/netmap/schema.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;

function baseMap(): Json {
  return {
    version: 1,
    serial: 3,
    domain: "Fabric.Example.",
    aesSubnet: "100.127.0.0/16",
    groups: ["ops", "lab"],
    nodes: [
      {
        name: "node-a",
        publicKey: key(0),
        wgIp: "100.64.0.1",
        aesIp: "100.127.0.1",
        endpoints: ["192.0.2.1:51820"],
        keySource: "dske",
        groups: ["ops"],
      },
      { name: "node-b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2", keySource: "dske" },
      { name: "printer", publicKey: key(2), wgIp: "100.64.0.3", groups: ["lab"], persistentKeepalive: 25 },
      { name: "hub-1", publicKey: key(3), wgIp: "100.64.0.100", role: "hub" },
    ],
  };
}

function nodes(m: Json): Json[] {
  return m.nodes as Json[];
}

function parseError(m: Json | string): string {
  const text = typeof m === "string" ? m : JSON.stringify(m);
  try {
    parseNetmap(text);
  } catch (e) {
    assert.ok(e instanceof NetmapError, `expected a NetmapError, got ${e}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return e.message;
  }
  throw new Error("the map was accepted");
}

Deno.test("netmap: a valid map resolves with defaults, lower-case domain and numeric addresses", () => {
  const map = parseNetmap(JSON.stringify(baseMap()));
  assert.equal(map.serial, 3);
  assert.equal(map.domain, "fabric.example");
  assert.equal(map.aesSubnet.bits, 16);
  assert.equal(map.nodes.length, 4);
  const [a, b, printer, hub] = map.nodes;
  assert.equal(formatIpv4Number(a.wgIp), "100.64.0.1");
  assert.equal(formatIpv4Number(a.aesIp!), "100.127.0.1");
  assert.deepEqual(a.endpoints, [{ ip: "192.0.2.1", port: 51820 }]);
  assert.equal(a.keySource, "dske");
  assert.equal(b.role, "peer");
  assert.equal(printer.aesIp, null);
  assert.equal(printer.keySource, null);
  assert.equal(printer.persistentKeepalive, 25);
  assert.equal(hub.role, "hub");
  assert.equal(a.publicKeyText, key(0));
});

Deno.test("netmap: comments and trailing commas are accepted; a syntax error names line and column", () => {
  const text = `{
  // the whole network
  "version": 1, "serial": 1, "domain": "x.example", "aesSubnet": "100.127.0.0/16",
  "nodes": [ /* none yet */ ],
}`;
  assert.equal(parseNetmap(text).nodes.length, 0);
  const bad = parseError(`{\n  "version": 1,\n  "serial": 'x'\n}`);
  assert.match(bad, /^line 3:13: .*double quotes/);
});

Deno.test("netmap: duplicates name the other entry", () => {
  let m = baseMap();
  nodes(m)[1].name = "NODE-A";
  assert.match(parseError(m), /^nodes\[1\] \("NODE-A"\)\.name: is also the name of nodes\[0\] \("node-a"\)/);

  m = baseMap();
  nodes(m)[2].publicKey = key(0);
  assert.match(parseError(m), /^nodes\[2\] \("printer"\)\.publicKey: same key as nodes\[0\] \("node-a"\)/);

  m = baseMap();
  nodes(m)[2].wgIp = "100.64.0.2";
  assert.match(
    parseError(m),
    /^nodes\[2\] \("printer"\)\.wgIp: 100\.64\.0\.2 is already used by nodes\[1\] \("node-b"\); every wg0 and AES address must be unique/,
  );

  m = baseMap();
  nodes(m)[1].aesIp = "100.127.0.1";
  assert.match(
    parseError(m),
    /^nodes\[1\] \("node-b"\)\.aesIp: 100\.127\.0\.1 is already used by nodes\[0\]/,
  );

  m = baseMap();
  (m.groups as string[]).push("OPS");
  assert.match(parseError(m), /^groups\[2\]: "OPS" is listed twice \(also groups\[0\]\)/);
});

Deno.test("netmap: an unknown group names the declared ones", () => {
  const m = baseMap();
  nodes(m)[1].groups = ["ops", "dev"];
  assert.match(
    parseError(m),
    /^nodes\[1\] \("node-b"\)\.groups\[1\]: unknown group "dev"; declare it in the top-level "groups".*\(declared: ops, lab\)/,
  );
});

Deno.test("netmap: addresses outside their subnet, reserved addresses, AES IP in the wrong subnet", () => {
  const cases: [(m: Json) => void, RegExp][] = [
    [
      (m) => nodes(m)[1].wgIp = "10.0.0.2",
      /nodes\[1\] \("node-b"\)\.wgIp: 10\.0\.0\.2 is outside 100\.64\.0\.0\/10/,
    ],
    [(m) => nodes(m)[1].wgIp = "100.64.0.0", /\.wgIp: 100\.64\.0\.0 is outside .*network\/broadcast/],
    [
      (m) => nodes(m)[1].wgIp = "100.127.255.255",
      /\.wgIp: 100\.127\.255\.255 is outside .*network\/broadcast/,
    ],
    [
      (m) => nodes(m)[1].wgIp = "100.127.0.9",
      /\.wgIp: 100\.127\.0\.9 is inside aesSubnet 100\.127\.0\.0\/16/,
    ],
    [(m) => nodes(m)[1].wgIp = "100.64.0.2/24", /\.wgIp: "100\.64\.0\.2\/24" is not one IPv4 address/],
    [
      (m) => nodes(m)[1].aesIp = "100.126.0.2",
      /\.aesIp: 100\.126\.0\.2 is outside aesSubnet 100\.127\.0\.0\/16/,
    ],
    [(m) => nodes(m)[1].aesIp = "100.127.0.0", /\.aesIp: 100\.127\.0\.0 is the network or broadcast address/],
    [(m) => nodes(m)[1].aesIp = "100.127.255.255", /\.aesIp: 100\.127\.255\.255 is the network or broadcast/],
    [(m) => nodes(m)[3].aesIp = "100.127.0.9", /nodes\[3\] \("hub-1"\)\.aesIp: a hub carries no application/],
    [(m) => nodes(m)[2].keySource = "dske", /nodes\[2\] \("printer"\)\.keySource: has no aesIp/],
    [
      (m) => nodes(m)[1].keySource = "manual",
      /nodes\[1\].*keySource: "manual" differs from nodes\[0\].*"dske"/,
    ],
    [(m) => nodes(m)[0].endpoints = ["host.example:51820"], /nodes\[0\].*endpoints\[0\]: .*host names/],
    [
      (m) => m.aesSubnet = "100.127.0.1/16",
      /^aesSubnet: .*has host bits set \(the subnet is 100\.127\.0\.0\/16\)/,
    ],
    [(m) => m.aesSubnet = "100.0.0.0/8", /^aesSubnet: .*covers all of 100\.64\.0\.0\/10/],
    [(m) => m.aesSubnet = "100.127.0.0/31", /^aesSubnet: \/31 holds no usable address/],
    [(m) => m.aesSubnet = "fd00::/64", /^aesSubnet: .*is not an IPv4 subnet/],
  ];
  for (const [mutate, expected] of cases) {
    const m = baseMap();
    mutate(m);
    assert.match(parseError(m), expected);
  }
});

Deno.test("netmap: bad domain and names follow the DNS label rules; 'aes' is reserved", () => {
  for (const domain of ["", "-bad.example", "a..b", "x_y.example", "a".repeat(64) + ".example"]) {
    const m = baseMap();
    m.domain = domain;
    assert.match(parseError(m), /^domain: .* is not a valid domain; write a domain such as/);
  }
  for (const name of ["node_b", "-b", "b-", "a".repeat(64), ""]) {
    const m = baseMap();
    nodes(m)[1].name = name;
    assert.match(parseError(m), /^nodes\[1\]\.name: .* is not a valid name; use 1-63 letters/);
  }
  const m = baseMap();
  nodes(m)[1].name = "AES";
  assert.match(parseError(m), /^nodes\[1\]\.name: "AES" is reserved/);
});

Deno.test("netmap: schema problems name the field (unknown key, wrong type, version, role)", () => {
  let m = baseMap();
  nodes(m)[1].wgip = "100.64.0.9";
  assert.match(parseError(m), /^nodes\[1\] \("node-b"\)\.wgip: unknown key.*did you mean "wgIp"\?/);
  m = baseMap();
  m.serial = "4";
  assert.match(parseError(m), /^serial: expected a number, got a string; remove the quotes/);
  m = baseMap();
  m.version = 2;
  assert.match(parseError(m), /^version: must be 1/);
  m = baseMap();
  nodes(m)[2].role = "router";
  assert.match(
    parseError(m),
    /^nodes\[2\] \("printer"\)\.role: "router" is not allowed; use one of "peer", "hub", "broker"/,
  );
  m = baseMap();
  delete m.domain;
  assert.match(parseError(m), /^domain: missing; add it/);
  m = baseMap();
  nodes(m)[0].persistentKeepalive = 70000;
  assert.match(parseError(m), /persistentKeepalive: must be 0 \(off\) to 65535 seconds/);
  assert.match(parseError("[]"), /^\(top level\): expected an object/);
});

Deno.test("netmap: at most MAX_NETMAP_NODES nodes", () => {
  const m = baseMap();
  m.nodes = Array.from({ length: MAX_NETMAP_NODES + 1 }, (_, i) => ({
    name: `n${i}`,
    publicKey: encodeBase64(
      new Uint8Array(32).fill(0).map((_, j) => (j === 0 ? i & 0xff : j === 1 ? i >> 8 : 7)),
    ),
    wgIp: formatIpv4Number(0x64400001 + i),
  }));
  assert.match(
    parseError(m),
    new RegExp(`^nodes: ${MAX_NETMAP_NODES + 1} nodes, .*at most ${MAX_NETMAP_NODES}`),
  );
  (m.nodes as Json[]).pop();
  assert.equal(parseNetmap(JSON.stringify(m)).nodes.length, MAX_NETMAP_NODES);
});

Deno.test("netmap: the formatted document parses back to the same map", () => {
  const doc = parseNetmapDocument(JSON.stringify(baseMap()));
  const again = parseNetmapDocument(formatNetmapDocument(doc));
  assert.deepEqual(again, doc);
  assert.ok(!formatNetmapDocument(doc).includes('"role": "peer"'), "defaults are left out");
});
