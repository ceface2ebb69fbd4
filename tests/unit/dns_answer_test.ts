import assert from "node:assert/strict";
import * as dnsPacket from "@leichtgewicht/dns-packet";
import { answer, DNS_TTL_SECONDS, EDNS_UDP_PAYLOAD, RCODE } from "../../src/dns/answer.ts";
import { type DnsZone, zoneFromMap } from "../../src/dns/zone.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { key } from "./netmap_fixtures.ts";

type Json = Record<string, unknown>;

function mapJson(domain = "fabric.example"): Json {
  return {
    version: 1,
    serial: 42,
    domain,
    aesSubnet: "100.127.0.0/16",
    nodes: [
      { name: "node-a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" },
      { name: "node-b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
      { name: "printer", publicKey: key(2), wgIp: "100.64.0.3" },
      { name: "hub-1", publicKey: key(3), wgIp: "100.64.0.100", role: "hub" },
    ],
  };
}

function zone(j: Json = mapJson()): DnsZone {
  return zoneFromMap(parseNetmap(JSON.stringify(j)), "node-a");
}

interface QueryOptions {
  type?: string;
  klass?: string;
  edns?: { udpPayloadSize?: number; ednsVersion?: number; flags?: number };
  id?: number;
}

function query(name: string, o: QueryOptions = {}): Uint8Array {
  const additionals = o.edns
    ? [{ type: "OPT", name: ".", udpPayloadSize: 4096, ednsVersion: 0, flags: 0, options: [], ...o.edns }]
    : [];
  return dnsPacket.encode({
    type: "query",
    id: o.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: (o.type ?? "A") as dnsPacket.RecordType, name, class: o.klass ?? "IN" }],
    additionals: additionals as unknown as dnsPacket.Answer[],
  });
}

interface Decoded {
  id: number;
  rcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  questions: dnsPacket.Question[];
  answers: dnsPacket.Answer[];
  authorities: dnsPacket.Answer[];
  additionals: (dnsPacket.Answer & {
    udpPayloadSize?: number;
    ednsVersion?: number;
    extendedRcode?: number;
    flags?: number;
  })[];
}

function ask(q: Uint8Array, z: DnsZone = zone(), transport: "udp" | "tcp" = "udp"): Decoded {
  const r = answer(q, z, transport);
  assert.ok(r !== null, "answered");
  const p = dnsPacket.decode(r);
  assert.equal(p.type, "response");
  return {
    id: p.id!,
    rcode: (p.flags ?? 0) & 0xf,
    aa: p.flag_aa!,
    tc: p.flag_tc!,
    rd: p.flag_rd!,
    questions: p.questions ?? [],
    answers: p.answers ?? [],
    authorities: p.authorities ?? [],
    additionals: (p.additionals ?? []) as Decoded["additionals"],
  };
}

function soaOf(d: Decoded): dnsPacket.SoaAnswer {
  assert.equal(d.authorities.length, 1);
  const soa = d.authorities[0];
  assert.equal(soa.type, "SOA");
  return soa as dnsPacket.SoaAnswer;
}

Deno.test("dns: NAME.DOM → wg0 IP and NAME.aes.DOM → AES IP, authoritative, short TTL, own names too", () => {
  for (
    const [name, ip] of [
      ["node-b.fabric.example", "100.64.0.2"],
      ["node-b.aes.fabric.example", "100.127.0.2"],
      ["node-a.fabric.example", "100.64.0.1"],
      ["node-a.aes.fabric.example", "100.127.0.1"],
      ["printer.fabric.example", "100.64.0.3"],
      ["hub-1.fabric.example", "100.64.0.100"],
      ["node-b.fabric.example.", "100.64.0.2"],
    ]
  ) {
    const d = ask(query(name));
    assert.equal(d.rcode, RCODE.NOERROR, name);
    assert.ok(d.aa, "AA");
    assert.ok(d.rd, "RD copied");
    assert.equal(d.id, 0x1234);
    assert.equal(d.answers.length, 1);
    const a = d.answers[0] as dnsPacket.StringAnswer;
    assert.equal(a.type, "A");
    assert.equal(a.data, ip, name);
    assert.equal(a.ttl, DNS_TTL_SECONDS);
    assert.equal(d.authorities.length, 0);
  }
  const any = ask(query("node-b.aes.fabric.example", { type: "ANY" }));
  assert.deepEqual(any.answers.map((a) => a.data), ["100.127.0.2"]);
});

Deno.test("dns: AES-exempt peers and hubs have no .aes name: NXDOMAIN with the SOA", () => {
  for (
    const name of [
      "printer.aes.fabric.example",
      "hub-1.aes.fabric.example",
      "nobody.fabric.example",
      "x.node-a.fabric.example",
    ]
  ) {
    const d = ask(query(name));
    assert.equal(d.rcode, RCODE.NXDOMAIN, name);
    assert.ok(d.aa);
    assert.equal(d.answers.length, 0);
    const soa = soaOf(d);
    assert.equal(soa.name, "fabric.example");
    assert.equal(soa.ttl, DNS_TTL_SECONDS);
    assert.equal(soa.data.mname, "node-a.fabric.example");
    assert.equal(soa.data.rname, "hostmaster.fabric.example");
    assert.equal(soa.data.serial, 42);
    assert.equal(soa.data.minimum, DNS_TTL_SECONDS);
  }
});

Deno.test("dns: other types at existing names are NOERROR/no data with the SOA; apex SOA and NS", () => {
  for (
    const [name, type] of [
      ["node-b.fabric.example", "AAAA"],
      ["node-b.aes.fabric.example", "TXT"],
      ["node-a.fabric.example", "MX"],
      ["aes.fabric.example", "A"],
      ["fabric.example", "A"],
    ]
  ) {
    const d = ask(query(name, { type }));
    assert.equal(d.rcode, RCODE.NOERROR, `${type} ${name}`);
    assert.ok(d.aa);
    assert.equal(d.answers.length, 0);
    soaOf(d);
  }
  const soa = ask(query("fabric.example", { type: "SOA" }));
  assert.equal(soa.answers.length, 1);
  assert.equal(soa.answers[0].type, "SOA");
  const ns = ask(query("fabric.example", { type: "NS" }));
  assert.deepEqual(ns.answers.map((a) => [a.type, a.data]), [["NS", "node-a.fabric.example"]]);
});

Deno.test("dns: outside the zone, another class or a zone transfer is REFUSED without AA", () => {
  for (
    const [name, type, klass] of [
      ["example.com", "A", "IN"],
      ["fabric.example.com", "A", "IN"],
      ["xfabric.example", "A", "IN"],
      [".", "NS", "IN"],
      ["node-b.fabric.example", "A", "CH"],
      ["fabric.example", "AXFR", "IN"],
    ]
  ) {
    const d = ask(query(name, { type, klass }));
    assert.equal(d.rcode, RCODE.REFUSED, `${name} ${type} ${klass}`);
    assert.ok(!d.aa);
    assert.equal(d.answers.length + d.authorities.length, 0);
  }
});

Deno.test("dns: an unknown class is REFUSED too", () => {
  const q = query("node-b.fabric.example");
  q[q.length - 1] = 5;
  const d = ask(q);
  assert.equal(d.rcode, RCODE.REFUSED);
  assert.ok(!d.aa);
});

Deno.test("dns: case-insensitive, the question's case (0x20) echoed in the question and the answer", () => {
  const name = "NoDe-B.AeS.FaBrIc.ExAmPlE";
  const d = ask(query(name));
  assert.equal(d.rcode, RCODE.NOERROR);
  assert.equal(d.questions[0].name, name);
  assert.equal(d.answers[0].name, name);
  assert.equal(d.answers[0].data, "100.127.0.2");
  const raw = answer(query(name), zone(), "udp")!;
  const original = query(name);
  // The question section is byte for byte the query's.
  assert.deepEqual(raw.subarray(12, original.length), original.subarray(12));
  const nx = ask(query("NoBoDy.FABRIC.example"));
  assert.equal(soaOf(nx).name, "FABRIC.example", "the SOA owner is the apex as asked");
});

Deno.test("dns: EDNS OPT is answered (version 0, our payload size, DO copied); version 1 is BADVERS", () => {
  const d = ask(query("node-b.fabric.example", { edns: { udpPayloadSize: 4096, flags: 0x8000 } }));
  assert.equal(d.rcode, RCODE.NOERROR);
  assert.equal(d.additionals.length, 1);
  const opt = d.additionals[0];
  assert.equal(opt.type, "OPT");
  assert.equal(opt.udpPayloadSize, EDNS_UDP_PAYLOAD);
  assert.equal(opt.ednsVersion, 0);
  assert.equal(opt.flags, 0x8000);
  assert.equal(ask(query("node-b.fabric.example")).additionals.length, 0, "no OPT without one in the query");
  const bad = ask(query("node-b.fabric.example", { edns: { ednsVersion: 1 } }));
  assert.equal(bad.rcode, 0, "low bits of BADVERS (16) are 0");
  assert.equal(bad.additionals[0].extendedRcode, 1, "BADVERS = 16: extended rcode 1");
  assert.equal(bad.answers.length, 0);
});

Deno.test("dns: a response too big for the client's UDP size is truncated (TC); over TCP it is whole", () => {
  const long = ["a", "b", "c", "d"].map((c) => c.repeat(60)).join(".");
  const z = zone(mapJson(long));
  const name = `node-b.${long}`;
  const udp = ask(query(name), z, "udp");
  assert.ok(udp.tc, "TC over UDP without EDNS");
  assert.equal(udp.answers.length, 0);
  const raw = answer(query(name), z, "udp")!;
  assert.ok(raw.length <= 512);
  const edns = ask(query(name, { edns: { udpPayloadSize: 1232 } }), z, "udp");
  assert.ok(!edns.tc, "fits the EDNS size");
  assert.equal(edns.answers[0].data, "100.64.0.2");
  const tcp = ask(query(name), z, "tcp");
  assert.ok(!tcp.tc);
  assert.equal(tcp.answers[0].data, "100.64.0.2");
});

Deno.test("dns: answers change with the map", () => {
  const j = mapJson();
  (j.nodes as Json[]).splice(1, 1);
  j.serial = 43;
  const d = ask(query("node-b.aes.fabric.example"), zone(j));
  assert.equal(d.rcode, RCODE.NXDOMAIN);
  assert.equal(soaOf(d).data.serial, 43);
});

Deno.test("dns: malformed queries are dropped or FORMERR/NOTIMP, never a throw (fuzzed)", () => {
  const z = zone();
  assert.equal(answer(new Uint8Array(0), z, "udp"), null);
  assert.equal(answer(new Uint8Array(11), z, "udp"), null);
  const good = query("node-b.fabric.example");
  const asResponse = good.slice();
  asResponse[2] |= 0x80;
  assert.equal(answer(asResponse, z, "udp"), null, "a response is never answered");
  const status = good.slice();
  status[2] = (status[2] & 0x87) | (2 << 3); // opcode STATUS
  assert.equal(ask(status).rcode, RCODE.NOTIMP);
  const noQuestion = good.slice(0, 12);
  noQuestion[5] = 0;
  assert.equal(ask(noQuestion).rcode, RCODE.FORMERR);
  const twoCounted = good.slice();
  twoCounted[5] = 2;
  const r2 = ask(twoCounted);
  assert.equal(r2.rcode, RCODE.FORMERR);
  assert.equal(r2.id, 0x1234);
  const truncatedName = good.slice(0, 20);
  assert.equal(ask(truncatedName).rcode, RCODE.FORMERR);
  // A compression pointer in the question cannot be echoed: FORMERR.
  const pointer = new Uint8Array([...good.slice(0, 12), 0xc0, 0x0c, 0, 1, 0, 1]);
  assert.equal(ask(pointer).rcode, RCODE.FORMERR);

  // Bounded fuzz: random bytes and single-byte mutations of valid queries.
  let seed = 0x2545f491;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  const corpus = [
    good,
    query("x.aes.fabric.example", { edns: {} }),
    query("fabric.example", { type: "SOA" }),
  ];
  let answered = 0;
  for (let i = 0; i < 20000; i++) {
    let input: Uint8Array;
    if (i % 2 === 0) {
      input = new Uint8Array(rand() % 80);
      for (let j = 0; j < input.length; j++) input[j] = rand() & 0xff;
    } else {
      input = corpus[i % corpus.length].slice();
      input[rand() % input.length] = rand() & 0xff;
      if (rand() % 4 === 0) input = input.subarray(0, rand() % input.length);
    }
    const out = answer(input, z, i % 3 === 0 ? "tcp" : "udp");
    if (out !== null) {
      answered++;
      const p = dnsPacket.decode(out);
      assert.equal(p.type, "response");
      assert.ok(out.length <= (i % 3 === 0 ? 65535 : 1232));
    }
  }
  assert.ok(answered > 1000, `answered ${answered}`);
});
