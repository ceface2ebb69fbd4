/**
 * Send-path segmentation (src/wireguard/offload/segment.ts) against packets built independently in
 * tests/unit/offload_packets.ts, with checksums verified by that file's own RFC 1071 code.
 */

import assert from "node:assert/strict";
import {
  emptyVirtioNetHdr,
  readVirtioNetHdr,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  type VirtioNetHdr,
  writeVirtioNetHdr,
} from "../../src/wireguard/offload/virtio-net-hdr.ts";
import { SegmentError, segmentPacket } from "../../src/wireguard/offload/segment.ts";
import { buildPacket, concat, type PacketSpec, parsePacket, payloadOf } from "./offload_packets.ts";

const OUT_OFF = 16; // segments land behind a WireGuard-sized header, as in the encrypt worker
const SLOTS = 64;

function outputs(size = 2048) {
  return { bufs: Array.from({ length: SLOTS }, () => new Uint8Array(size)), lens: new Int32Array(SLOTS) };
}

function gsoHeader(spec: PacketSpec, gsoSize: number, gsoType?: number): VirtioNetHdr {
  const iph = spec.v6 ? 40 : 20;
  const l4h = spec.udp ? 8 : 20 + (spec.options?.length ?? 0);
  return {
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: gsoType ??
      (spec.udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : spec.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4),
    hdrLen: iph + l4h,
    gsoSize,
    csumStart: iph,
    csumOffset: spec.udp ? 6 : 16,
  };
}

/** Segments a super-packet built from `spec` (partial checksum, as the kernel hands it over). */
function split(spec: PacketSpec, gsoSize: number, gsoType?: number) {
  const superPacket = buildPacket({ ...spec, checksum: "partial" });
  const src = new Uint8Array(superPacket.length + 7);
  src.set(superPacket, 7);
  const out = outputs();
  const n = segmentPacket(
    gsoHeader(spec, gsoSize, gsoType),
    src,
    7,
    superPacket.length,
    out.bufs,
    OUT_OFF,
    out.lens,
    0,
    SLOTS,
  );
  const segments = [];
  for (let i = 0; i < n; i++) segments.push(out.bufs[i].slice(OUT_OFF, OUT_OFF + out.lens[i]));
  return { n, segments, parsed: segments.map(parsePacket) };
}

Deno.test("virtio_net_hdr codec", async (t) => {
  await t.step("reads little-endian fields at an offset and writes them back byte for byte", () => {
    const raw = new Uint8Array([9, 9, 1, 4, 54, 0, 136, 5, 20, 0, 16, 0, 9]);
    const h = readVirtioNetHdr(raw, 2, emptyVirtioNetHdr());
    assert.deepEqual(h, { flags: 1, gsoType: 4, hdrLen: 54, gsoSize: 1416, csumStart: 20, csumOffset: 16 });
    const back = new Uint8Array(13).fill(9);
    writeVirtioNetHdr(back, 2, h);
    assert.deepEqual(back, raw);
  });
});

Deno.test("TSO segmentation of a TCP super-packet", async (t) => {
  await t.step("IPv4: three full segments with lengths, IDs, sequence numbers and checksums", () => {
    const payload = payloadOf(3000);
    const { n, parsed } = split({ payload, seq: 5000, id: 0x0100, flags: 0x18 }, 1000);
    assert.equal(n, 3);
    parsed.forEach((p, k) => {
      assert.equal(p.totalLength, 20 + 20 + 1000);
      assert.equal(p.id, 0x0100 + k);
      assert.equal(p.seq, 5000 + 1000 * k);
      assert.ok(p.ipHeaderOk, `IPv4 header checksum of segment ${k}`);
      assert.ok(p.l4ChecksumOk, `TCP checksum of segment ${k}`);
    });
    assert.deepEqual(concat(parsed.map((p) => p.payload)), payload);
  });

  await t.step("the last segment is shorter; FIN and PSH only on it, CWR only on the first", () => {
    const flags = 0x80 | 0x10 | 0x08 | 0x01; // CWR ACK PSH FIN
    const { n, parsed, segments } = split(
      { payload: payloadOf(2500), flags },
      1000,
      VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
    );
    assert.equal(n, 3);
    assert.deepEqual(segments.map((s) => s.length), [1040, 1040, 540]);
    assert.deepEqual(parsed.map((p) => p.flags), [0x80 | 0x10, 0x10, 0x10 | 0x08 | 0x01]);
    assert.ok(parsed.every((p) => p.l4ChecksumOk && p.ipHeaderOk));
  });

  await t.step("a payload of exactly one segment size yields one segment", () => {
    const payload = payloadOf(1400);
    const { n, parsed } = split({ payload, flags: 0x18 }, 1400);
    assert.equal(n, 1);
    assert.equal(parsed[0].flags, 0x18);
    assert.ok(parsed[0].l4ChecksumOk);
    assert.deepEqual(parsed[0].payload, payload);
  });

  await t.step("IPv6 with TCP options: payload length and checksum per segment, options repeated", () => {
    const payload = payloadOf(4001, 3);
    const options = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP timestamps
    const { n, parsed, segments } = split({ v6: true, payload, options, seq: 0xfffffc00 }, 1208);
    assert.equal(n, 4);
    parsed.forEach((p, k) => {
      assert.equal(p.totalLength, segments[k].length);
      assert.equal(p.seq, (0xfffffc00 + 1208 * k) >>> 0, "sequence numbers wrap modulo 2^32");
      assert.ok(p.l4ChecksumOk, `TCP checksum of segment ${k}`);
      assert.deepEqual([...segments[k].slice(60, 72)], options);
    });
    assert.deepEqual(concat(parsed.map((p) => p.payload)), payload);
  });

  await t.step("the IPv4 ID wraps at 16 bits", () => {
    const { parsed } = split({ payload: payloadOf(300), id: 0xffff }, 100);
    assert.deepEqual(parsed.map((p) => p.id), [0xffff, 0, 1]);
  });
});

Deno.test("USO segmentation of a UDP super-packet", async (t) => {
  for (const v6 of [false, true]) {
    await t.step(`IPv${v6 ? 6 : 4}: datagrams with their own UDP length and checksum`, () => {
      const payload = payloadOf(3500, 5);
      const { n, parsed } = split({ v6, udp: true, payload }, 1200);
      assert.equal(n, 3);
      assert.deepEqual(parsed.map((p) => p.udpLength), [1208, 1208, 1108]);
      assert.ok(parsed.every((p) => p.l4ChecksumOk && p.ipHeaderOk));
      assert.deepEqual(concat(parsed.map((p) => p.payload)), payload);
    });
  }
});

Deno.test("plain packets from an IFF_VNET_HDR TUN", async (t) => {
  await t.step("NEEDS_CSUM without GSO: the partial checksum is completed", () => {
    const spec = { payload: payloadOf(333), checksum: "partial" as const };
    const p = buildPacket(spec);
    assert.ok(!parsePacket(p).l4ChecksumOk, "the input really is partial");
    const out = outputs();
    const h = { ...gsoHeader(spec, 0), gsoType: VIRTIO_NET_HDR_GSO_NONE };
    assert.equal(segmentPacket(h, p, 0, p.length, out.bufs, OUT_OFF, out.lens, 3, 1), 1);
    const got = parsePacket(out.bufs[3].slice(OUT_OFF, OUT_OFF + out.lens[3]));
    assert.ok(got.l4ChecksumOk);
    assert.deepEqual(got.payload, spec.payload);
  });

  await t.step("no flags: copied unchanged", () => {
    const p = buildPacket({ udp: true, payload: payloadOf(10) });
    const out = outputs();
    assert.equal(segmentPacket(emptyVirtioNetHdr(), p, 0, p.length, out.bufs, 0, out.lens, 0, 1), 1);
    assert.deepEqual(out.bufs[0].slice(0, out.lens[0]), p);
  });
});

Deno.test("segmentation refuses what it cannot do", async (t) => {
  const spec = { payload: payloadOf(5000) };
  const p = buildPacket({ ...spec, checksum: "partial" });
  await t.step("more segments than output slots", () => {
    const out = outputs();
    assert.equal(
      segmentPacket(gsoHeader(spec, 1000), p, 0, p.length, out.bufs, 0, out.lens, 0, 4),
      SegmentError.TooManySegments,
    );
  });
  await t.step("a segment larger than the output buffer", () => {
    const out = outputs(1000);
    assert.equal(
      segmentPacket(gsoHeader(spec, 1400), p, 0, p.length, out.bufs, 0, out.lens, 0, 8),
      SegmentError.SegmentTooLarge,
    );
  });
  await t.step("a TCPV6 header on an IPv4 packet, a wrong csum_start, legacy UFO", () => {
    const out = outputs();
    const h = gsoHeader(spec, 1000);
    assert.equal(
      segmentPacket({ ...h, gsoType: VIRTIO_NET_HDR_GSO_TCPV6 }, p, 0, p.length, out.bufs, 0, out.lens, 0, 8),
      SegmentError.BadHeader,
    );
    assert.equal(
      segmentPacket({ ...h, csumStart: 24 }, p, 0, p.length, out.bufs, 0, out.lens, 0, 8),
      SegmentError.BadHeader,
    );
    assert.equal(
      segmentPacket({ ...h, gsoType: 3 }, p, 0, p.length, out.bufs, 0, out.lens, 0, 8),
      SegmentError.Unsupported,
    );
  });
});
