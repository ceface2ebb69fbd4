/**
 * Receive-path coalescing (src/wireguard/offload/coalesce.ts): packets built independently
 * (tests/unit/offload_packets.ts), merged, then checked field by field, completed with the test's
 * own checksum code, and split again by segmentPacket (round trip).
 */

import assert from "node:assert/strict";
import { GroBatch } from "../../src/wireguard/offload/coalesce.ts";
import { segmentPacket } from "../../src/wireguard/offload/segment.ts";
import {
  emptyVirtioNetHdr,
  readVirtioNetHdr,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
} from "../../src/wireguard/offload/virtio-net-hdr.ts";
import { buildPacket, concat, onesSum, type PacketSpec, parsePacket, payloadOf } from "./offload_packets.ts";

const OFF = 16; // decrypted packets sit behind the 16-byte WireGuard header, room for the vnet header
const BUF = OFF + 65535;

interface Result {
  written: number[];
  packets: Uint8Array[];
  headers: ReturnType<typeof emptyVirtioNetHdr>[];
}

function coalesce(specs: PacketSpec[], udp = false, raw?: Uint8Array[]): Result {
  const pkts = raw ?? specs.map(buildPacket);
  const bufs = pkts.map((p) => {
    const b = new Uint8Array(BUF);
    b.set(p, OFF);
    return b;
  });
  const lens = Int32Array.from(pkts.map((p) => p.length));
  const gro = new GroBatch(64, { udp });
  const n = gro.coalesce(bufs, OFF, lens, pkts.length);
  const written = [...gro.writeOrder.subarray(0, n)];
  return {
    written,
    packets: written.map((i) => bufs[i].slice(OFF, OFF + lens[i])),
    headers: written.map((i) => readVirtioNetHdr(bufs[i], OFF - VIRTIO_NET_HDR_LEN, emptyVirtioNetHdr())),
  };
}

/** Segments of a TCP stream: `sizes` payload bytes each, consecutive sequence numbers. */
function stream(sizes: number[], base: Partial<PacketSpec> = {}, seq0 = 1000): PacketSpec[] {
  const data = payloadOf(sizes.reduce((a, b) => a + b, 0), 9);
  let at = 0;
  return sizes.map((n, k) => {
    const spec = { ...base, id: (base.id ?? 0x4000) + k, seq: seq0 + at, payload: data.slice(at, at + n) };
    at += n;
    return spec;
  });
}

/** Completes a CHECKSUM_PARTIAL packet the way the kernel would, using the test's own sum. */
function completePartial(p: Uint8Array, csumStart: number, csumOffset: number): Uint8Array {
  const out = p.slice();
  const c = 0xffff - onesSum([out.slice(csumStart)]);
  out[csumStart + csumOffset] = c >> 8;
  out[csumStart + csumOffset + 1] = c & 0xff;
  return out;
}

Deno.test("TCP coalescing", async (t) => {
  for (const v6 of [false, true]) {
    await t.step(`IPv${v6 ? 6 : 4}: in-order segments become one super-packet that splits back`, () => {
      const specs = stream([1200, 1200, 1200, 700], { v6, flags: 0x10, id: 7 });
      specs[3].flags = 0x18; // PSH on the last
      const r = coalesce(specs);
      assert.deepEqual(r.written, [0]);
      const h = r.headers[0];
      const iph = v6 ? 40 : 20;
      assert.deepEqual(h, {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gsoType: v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
        hdrLen: iph + 20,
        gsoSize: 1200,
        csumStart: iph,
        csumOffset: 16,
      });
      const merged = r.packets[0];
      const p = parsePacket(merged);
      assert.equal(p.totalLength, merged.length);
      assert.equal(merged.length, iph + 20 + 4300);
      assert.ok(p.ipHeaderOk, "IPv4 header checksum recomputed");
      assert.equal(p.flags, 0x18, "PSH carried to the super-packet");
      assert.deepEqual(p.payload, concat(specs.map((s) => s.payload)));
      assert.ok(parsePacket(completePartial(merged, h.csumStart, h.csumOffset)).l4ChecksumOk);

      const outs = Array.from({ length: 8 }, () => new Uint8Array(2048));
      const lens = new Int32Array(8);
      const n = segmentPacket(h, merged, 0, merged.length, outs, 0, lens, 0, 8);
      assert.equal(n, 4);
      for (let k = 0; k < n; k++) {
        assert.deepEqual(
          outs[k].slice(0, lens[k]),
          buildPacket(specs[k]),
          `segment ${k} equals the original`,
        );
      }
    });
  }

  await t.step("a single packet is written alone with a plain header", () => {
    const r = coalesce(stream([500]));
    assert.deepEqual(r.written, [0]);
    assert.equal(r.headers[0].gsoType, VIRTIO_NET_HDR_GSO_NONE);
    assert.equal(r.headers[0].flags, 0);
    assert.deepEqual(r.packets[0], buildPacket(stream([500])[0]));
  });

  await t.step("out of order: a gap starts a new packet; the missing segment joins its predecessor", () => {
    const s = stream([1000, 1000, 1000]);
    const r = coalesce([s[0], s[2], s[1]]);
    assert.deepEqual(r.written, [0, 1]);
    assert.equal(parsePacket(r.packets[0]).payload.length, 2000);
    assert.deepEqual(parsePacket(r.packets[0]).payload, concat([s[0].payload, s[1].payload]));
    assert.equal(r.headers[1].gsoType, VIRTIO_NET_HDR_GSO_NONE);
  });

  await t.step("nothing follows a PSH or a shorter segment", () => {
    const s = stream([1000, 1000, 1000, 600, 1000]);
    s[1].flags = 0x18;
    const r = coalesce(s);
    assert.deepEqual(r.written, [0, 2, 4]);
    assert.equal(parsePacket(r.packets[0]).payload.length, 2000);
    assert.equal(parsePacket(r.packets[1]).payload.length, 1600, "1000 then the shorter 600");
    assert.equal(r.headers[2].gsoType, VIRTIO_NET_HDR_GSO_NONE);
  });

  await t.step("a larger segment after a smaller one is not merged", () => {
    const r = coalesce(stream([500, 1000]));
    assert.deepEqual(r.written, [0, 1]);
  });

  await t.step("SYN, FIN, RST and empty ACKs are never merged", () => {
    for (const flags of [0x02, 0x11, 0x04, 0x12]) {
      const s = stream([1000, 1000]);
      s[1].flags = flags;
      assert.deepEqual(coalesce(s).written, [0, 1], `flags ${flags}`);
    }
    const s = stream([1000, 0]);
    assert.deepEqual(coalesce(s).written, [0, 1], "pure ACK");
  });

  await t.step("different TTL, TOS, DF, ACK number, ports, options or address stay apart", () => {
    const variants: Partial<PacketSpec>[] = [
      { ttl: 63 },
      { tos: 4 },
      { df: false },
      { ack: 78 },
      { sport: 4001 },
      { options: [1, 1, 1, 1] },
      { dst: [10, 0, 0, 3] },
    ];
    for (const v of variants) {
      const s = stream([1000, 1000]);
      Object.assign(s[1], v);
      assert.deepEqual(coalesce(s).written, [0, 1], JSON.stringify(v));
    }
    const v6 = stream([1000, 1000], { v6: true });
    v6[1].tos = 0x20;
    assert.deepEqual(coalesce(v6).written, [0, 1], "IPv6 traffic class");
  });

  await t.step("identical TCP options are fine", () => {
    const opts = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6];
    const r = coalesce(stream([1000, 1000, 1000], { options: opts }));
    assert.deepEqual(r.written, [0]);
    assert.equal(r.headers[0].hdrLen, 20 + 32);
  });

  await t.step("a bad checksum is written alone (the kernel drops it), the rest still merges", () => {
    const s = stream([1000, 1000, 1000]);
    s[1].checksum = "bad";
    const r = coalesce(s);
    assert.deepEqual(r.written, [0, 1, 2]);
    const head = stream([1000, 1000, 1000]);
    head[0].checksum = "bad";
    assert.deepEqual(coalesce(head).written, [0, 1], "bad head: the next two merge with each other");
  });

  await t.step("non-TCP neighbours and IPv4 options keep their place", () => {
    const s = stream([1000, 1000, 1000]);
    const icmp = buildPacket({ udp: true, payload: payloadOf(50) });
    const pkts = [buildPacket(s[0]), icmp, buildPacket(s[1]), buildPacket(s[2])];
    const r = coalesce([], false, pkts);
    assert.deepEqual(r.written, [0, 1]);
    assert.deepEqual(r.packets[1], icmp);
    const withOptions = buildPacket(s[1]);
    const opt = concat([withOptions.slice(0, 20), new Uint8Array([1, 1, 1, 0]), withOptions.slice(20)]);
    opt[0] = 0x46;
    assert.deepEqual(coalesce([], false, [buildPacket(s[0]), opt]).written, [0, 1]);
  });

  await t.step("two flows interleaved merge separately", () => {
    const a = stream([1000, 1000, 1000], { sport: 1 });
    const b = stream([800, 800, 800], { sport: 2 }, 99);
    const r = coalesce([a[0], b[0], a[1], b[1], a[2], b[2]]);
    assert.deepEqual(r.written, [0, 1]);
    assert.equal(r.headers[0].gsoSize, 1000);
    assert.equal(r.headers[1].gsoSize, 800);
  });

  await t.step("the super-packet stays within 65 535 bytes", () => {
    const r = coalesce(stream(new Array(60).fill(1400)));
    assert.ok(r.packets.every((p) => p.length <= 65535));
    assert.deepEqual(r.written, [0, 46]);
    assert.equal(parsePacket(r.packets[0]).payload.length, 46 * 1400);
  });
});

Deno.test("UDP coalescing", async (t) => {
  const udp = (sizes: number[], base: Partial<PacketSpec> = {}) =>
    sizes.map((n, i) => ({ ...base, udp: true, payload: payloadOf(n, i + 1) }));

  await t.step("merged into UDP_L4 only when enabled; splits back into the same datagrams", () => {
    for (const v6 of [false, true]) {
      const specs = udp([1300, 1300, 900], { v6 });
      assert.deepEqual(coalesce(specs, false).written, [0, 1, 2], "USO off: untouched");
      const r = coalesce(specs, true);
      assert.deepEqual(r.written, [0]);
      const h = r.headers[0];
      assert.equal(h.gsoType, VIRTIO_NET_HDR_GSO_UDP_L4);
      assert.equal(h.csumOffset, 6);
      assert.equal(h.gsoSize, 1300);
      const p = parsePacket(completePartial(r.packets[0], h.csumStart, h.csumOffset));
      assert.ok(p.l4ChecksumOk && p.ipHeaderOk);
      assert.equal(p.udpLength, 8 + 3500);
      const outs = Array.from({ length: 4 }, () => new Uint8Array(2048));
      const lens = new Int32Array(4);
      assert.equal(segmentPacket(h, r.packets[0], 0, r.packets[0].length, outs, 0, lens, 0, 4), 3);
      for (let k = 0; k < 3; k++) {
        const expected = buildPacket(specs[k]);
        const got = outs[k].slice(0, lens[k]);
        if (!v6) {
          got[4] = expected[4]; // IPv4 IDs: the re-split numbers them from the first
          got[5] = expected[5];
          got[10] = expected[10];
          got[11] = expected[11];
        }
        assert.deepEqual(got, expected, `datagram ${k}`);
      }
    }
  });

  await t.step("a datagram never jumps over a newer one of its flow", () => {
    const specs = udp([500, 1000, 500]);
    const r = coalesce(specs, true);
    assert.deepEqual(r.written, [0, 1], "500 then 1000 (larger: new packet) then 500 joins the 1000");
  });

  await t.step("different ports or a missing IPv4 checksum stay apart", () => {
    const s = udp([1000, 1000]);
    s[1].dport = 9;
    assert.deepEqual(coalesce(s, true).written, [0, 1]);
    const noSum = udp([1000, 1000]).map(buildPacket);
    for (const p of noSum) p[26] = p[27] = 0;
    assert.deepEqual(coalesce([], true, noSum).written, [0, 1]);
  });
});
