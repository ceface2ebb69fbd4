/** IPv4/IPv6 header parsing of the packet filter, over hand-built packets (src/filter/packet-parse.ts). */
import assert from "node:assert/strict";
import {
  Fragment,
  ParsedPacket,
  ParseMode,
  parsePacket,
  ParseStatus,
} from "../../src/filter/packet-parse.ts";
import { ACK, addr, at, icmp, ipv4, ipv6, SYN, tcp, udp } from "./filter_packets.ts";

const A4 = "100.64.0.1", B4 = "100.64.0.2";
const A6 = "fd00::1", B6 = "fd00::2";

function parse(b: Uint8Array, off = 0, len = b.length - off, mode: number = ParseMode.strict) {
  const p = new ParsedPacket();
  return { status: parsePacket(b, off, len, p, mode), p };
}

function bytesAt(b: Uint8Array, o: number, n: number): number[] {
  return [...b.subarray(o, o + n)];
}

Deno.test("parse: IPv4 TCP at an offset gives addresses, ports and flags", () => {
  const pkt = ipv4(A4, B4, 6, tcp(40000, 22, SYN | ACK));
  const buf = at(pkt, 16);
  const { status, p } = parse(buf, 16, pkt.length);
  assert.equal(status, ParseStatus.ok);
  assert.equal(p.family, 4);
  assert.equal(p.proto, 6);
  assert.deepEqual(bytesAt(buf, p.srcOff, 4), [...addr(A4)]);
  assert.deepEqual(bytesAt(buf, p.dstOff, 4), [...addr(B4)]);
  assert.equal(p.srcPort, 40000);
  assert.equal(p.dstPort, 22);
  assert.equal(p.tcpFlags, SYN | ACK);
  assert.equal(p.fragment, Fragment.none);
  assert.equal(p.l4End, 16 + 20 + 20);
});

Deno.test("parse: IPv4 options (IHL 7) move the transport header", () => {
  const { status, p } = parse(ipv4(A4, B4, 17, udp(53, 5353), { ihl: 7 }));
  assert.equal(status, ParseStatus.ok);
  assert.equal(p.l4Off, 28);
  assert.equal(p.dstPort, 5353);
});

Deno.test("parse: bogus IHL, lengths and versions are malformed", () => {
  const good = ipv4(A4, B4, 17, udp(1, 2));
  const cases: [string, Uint8Array][] = [
    [
      "IHL 4",
      (() => {
        const b = good.slice();
        b[0] = 0x44;
        return b;
      })(),
    ],
    [
      "IHL 15 past the end",
      (() => {
        const b = good.slice();
        b[0] = 0x4f;
        return b;
      })(),
    ],
    ["total length past the bytes", ipv4(A4, B4, 17, udp(1, 2), { totalLength: 100 })],
    ["total length below IHL", ipv4(A4, B4, 17, udp(1, 2), { totalLength: 12 })],
    [
      "version 5",
      (() => {
        const b = good.slice();
        b[0] = 0x55;
        return b;
      })(),
    ],
    ["19 bytes", good.subarray(0, 19)],
    ["UDP cut to 7 bytes", ipv4(A4, B4, 17, udp(1, 2).subarray(0, 7))],
    ["TCP cut to 19 bytes", ipv4(A4, B4, 6, tcp(1, 2, ACK).subarray(0, 19))],
    ["TCP data offset 4", ipv4(A4, B4, 6, tcp(1, 2, ACK, { doff: 4 }))],
    [
      "TCP data offset past the end",
      ipv4(A4, B4, 6, tcp(1, 2, ACK).subarray(0, 20).map((x, i) => i === 12 ? 0xf0 : x)),
    ],
    ["ICMP cut to 4 bytes", ipv4(A4, B4, 1, icmp(8, 0).subarray(0, 4))],
    ["fragment reaching past 65535", ipv4(A4, B4, 17, new Uint8Array(16), { fragOffset: 65528 })],
    ["empty", new Uint8Array(0)],
  ];
  for (const [name, b] of cases) assert.equal(parse(b).status, ParseStatus.malformed, name);
});

Deno.test("parse: a shorter total length than the bytes given is honoured (trailing bytes ignored)", () => {
  const pkt = ipv4(A4, B4, 17, udp(1, 2, 4));
  const padded = new Uint8Array(pkt.length + 10);
  padded.set(pkt);
  const { status, p } = parse(padded);
  assert.equal(status, ParseStatus.ok);
  assert.equal(p.end, pkt.length);
});

Deno.test("parse: an offset/length outside the buffer is malformed, never a throw", () => {
  const b = ipv4(A4, B4, 17, udp(1, 2));
  assert.equal(parse(b, 4, b.length).status, ParseStatus.malformed);
  assert.equal(parse(b, -1, 10).status, ParseStatus.malformed);
  assert.equal(parse(b, 0, 0).status, ParseStatus.malformed);
});

Deno.test("parse: IPv4 fragments: first carries ports, later ones do not, tiny first fragments are told apart", () => {
  const first = parse(ipv4(A4, B4, 17, udp(1000, 53, 8), { id: 99, more: true }));
  assert.equal(first.status, ParseStatus.ok);
  assert.equal(first.p.fragment, Fragment.first);
  assert.equal(first.p.fragId, 99);
  assert.equal(first.p.dstPort, 53);
  const later = parse(ipv4(A4, B4, 17, new Uint8Array(8), { id: 99, fragOffset: 16 }));
  assert.equal(later.status, ParseStatus.ok);
  assert.equal(later.p.fragment, Fragment.later);
  assert.equal(later.p.fragOffset, 16);
  assert.equal(later.p.hasL4, false);
  const last = parse(ipv4(A4, B4, 6, new Uint8Array(8), { id: 99, fragOffset: 8, more: false }));
  assert.equal(last.p.fragment, Fragment.later);
  const tiny = parse(ipv4(A4, B4, 6, tcp(1, 2, SYN).subarray(0, 8), { more: true }));
  assert.equal(tiny.status, ParseStatus.tinyFragment);
});

Deno.test("parse: IPv6 UDP, TCP and ICMPv6", () => {
  const u = parse(ipv6(A6, B6, 17, udp(5000, 6000)));
  assert.equal(u.status, ParseStatus.ok);
  assert.equal(u.p.family, 6);
  assert.equal(u.p.dstPort, 6000);
  const t = parse(ipv6(A6, B6, 6, tcp(1, 443, SYN)));
  assert.equal(t.p.tcpFlags, SYN);
  const e = parse(ipv6(A6, B6, 58, icmp(128, 0, 77, 1)));
  assert.equal(e.status, ParseStatus.ok);
  assert.equal(e.p.icmpType, 128);
  assert.equal(e.p.icmpId, 77);
  const { p } = parse(ipv6(A6, B6, 6, tcp(1, 2, ACK)));
  assert.deepEqual([
    ...new Uint8Array(ipv6(A6, B6, 6, tcp(1, 2, ACK)).buffer).subarray(p.dstOff, p.dstOff + 16),
  ], [
    ...addr(B6),
  ]);
});

Deno.test("parse: IPv6 extension headers are walked (hop-by-hop, routing, dest-options, fragment)", () => {
  const { status, p } = parse(
    ipv6(A6, B6, 6, tcp(1, 8080, SYN), [{ type: 0, len: 1 }, { type: 43 }, { type: 60, len: 2 }]),
  );
  assert.equal(status, ParseStatus.ok);
  assert.equal(p.proto, 6);
  assert.equal(p.l4Off, 40 + 16 + 8 + 24);
  assert.equal(p.dstPort, 8080);
  const frag = parse(ipv6(A6, B6, 17, udp(1, 53), [{ type: 44, more: true, id: 0xdeadbeef }, { type: 60 }]));
  assert.equal(frag.status, ParseStatus.ok);
  assert.equal(frag.p.fragment, Fragment.first);
  assert.equal(frag.p.fragId, 0xdeadbeef);
  assert.equal(frag.p.fragProto, 60);
  assert.equal(frag.p.proto, 17);
  assert.equal(frag.p.dstPort, 53);
  const later = parse(ipv6(A6, B6, 17, new Uint8Array(16), [{ type: 44, fragOffset: 64, id: 5 }]));
  assert.equal(later.p.fragment, Fragment.later);
  assert.equal(later.p.fragOffset, 64);
  const atomic = parse(ipv6(A6, B6, 17, udp(1, 53), [{ type: 44 }]));
  assert.equal(atomic.p.fragment, Fragment.none);
  assert.equal(atomic.p.dstPort, 53);
});

Deno.test("parse: bad IPv6 extension chains are malformed, bounded", () => {
  const cases: [string, Uint8Array][] = [
    ["hop-by-hop not first", ipv6(A6, B6, 6, tcp(1, 2, ACK), [{ type: 60 }, { type: 0 }])],
    [
      "two fragment headers",
      ipv6(A6, B6, 17, udp(1, 2), [{ type: 44, more: true }, { type: 44, more: true }]),
    ],
    [
      "nine extension headers",
      ipv6(A6, B6, 17, udp(1, 2), new Array(9).fill(0).map(() => ({ type: 60 as const }))),
    ],
    ["extension header past the payload", ipv6(A6, B6, 17, new Uint8Array(0), [{ type: 60, len: 3 }], 8)],
    ["payload length past the bytes", ipv6(A6, B6, 17, udp(1, 2), [], 100)],
    ["jumbogram (payload length 0)", ipv6(A6, B6, 17, udp(1, 2), [{ type: 0 }], 0)],
    ["39 bytes", ipv6(A6, B6, 17, udp(1, 2)).subarray(0, 39)],
    ["TCP cut short inside IPv6", ipv6(A6, B6, 6, new Uint8Array(10))],
  ];
  for (const [name, b] of cases) assert.equal(parse(b).status, ParseStatus.malformed, name);
  const eight = parse(ipv6(A6, B6, 17, udp(1, 2), new Array(8).fill(0).map(() => ({ type: 60 as const }))));
  assert.equal(eight.status, ParseStatus.ok, "eight extension headers are within the bound");
});

Deno.test("parse: IPv6 first fragment whose transport header is in the next fragment is a tiny fragment", () => {
  const b = ipv6(A6, B6, 6, tcp(1, 2, SYN).subarray(0, 10), [{ type: 44, more: true }]);
  assert.equal(parse(b).status, ParseStatus.tinyFragment);
});

Deno.test("parse: other protocols parse without ports; ICMPv6 inside IPv4 is just another protocol", () => {
  const gre = parse(ipv4(A4, B4, 47, new Uint8Array(4)));
  assert.equal(gre.status, ParseStatus.ok);
  assert.equal(gre.p.hasL4, false);
  const odd = parse(ipv4(A4, B4, 58, new Uint8Array(2)));
  assert.equal(odd.status, ParseStatus.ok);
  assert.equal(odd.p.hasL4, false);
  const none = parse(ipv6(A6, B6, 59, new Uint8Array(0)));
  assert.equal(none.status, ParseStatus.ok);
});

Deno.test("parse: quoted mode accepts a truncated packet with 8 transport bytes", () => {
  const inner = ipv4(B4, A4, 6, tcp(22, 40000, ACK, { payload: 100 }));
  const cut = inner.subarray(0, 28);
  assert.equal(parse(cut).status, ParseStatus.malformed);
  const q = parse(cut, 0, cut.length, ParseMode.quoted);
  assert.equal(q.status, ParseStatus.ok);
  assert.equal(q.p.srcPort, 22);
  assert.equal(q.p.dstPort, 40000);
  assert.equal(parse(inner.subarray(0, 27), 0, 27, ParseMode.quoted).status, ParseStatus.malformed);
});
