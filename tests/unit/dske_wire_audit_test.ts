/**
 * The PSRD wire audit used by the crash-safety test: pcap parsing, TCP reassembly (several frames per
 * segment, frames split across segments, out-of-order and retransmitted segments, port reuse, a capture
 * starting mid-flow, a truncated last record) and the overlap check with byte-identical repeats allowed.
 */
import assert from "node:assert/strict";
import { type HubMessage, sealHubFrame } from "../../src/dske/frames.ts";
import {
  auditCaptures,
  auditPsrdUses,
  framesOf,
  parsePcap,
  psrdUseOf,
  reassemble,
  tcpSegmentOf,
} from "../../src/dske/wire-audit.ts";

const BLOCK = new Uint8Array(16).fill(0xb1);
const ids = { clientId: new Uint8Array(16).fill(1), hubId: new Uint8Array(16).fill(2) };

function hello(offset: number, block = BLOCK, timeMs = 1): Uint8Array {
  const m: HubMessage = { type: 0x01, ...ids, peerId: new Uint8Array(32).fill(3), timeMs };
  return sealHubFrame(m, block, offset, new Uint8Array(32).fill(offset & 0xff));
}

function ack(offset: number): Uint8Array {
  const m: HubMessage = { type: 0x82, ...ids, keyId: new Uint8Array(16).fill(4), status: 0 };
  return sealHubFrame(m, BLOCK, offset, new Uint8Array(32).fill(9));
}

function put(offset: number): Uint8Array {
  const m: HubMessage = {
    type: 0x02,
    ...ids,
    keyId: new Uint8Array(16).fill(5),
    generatorPeer: new Uint8Array(32).fill(6),
    recovererPeer: new Uint8Array(32).fill(7),
    epoch: 9,
    ttlS: 30,
    x: 1,
    k: 2,
    n: 3,
    share: new Uint8Array(64).fill(8),
  };
  return sealHubFrame(m, BLOCK, offset, new Uint8Array(96).fill(1));
}

interface Seg {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  seq: number;
  syn?: boolean;
  data?: Uint8Array;
}

/** An IPv4/TCP packet. */
function packet(s: Seg): Uint8Array {
  const data = s.data ?? new Uint8Array();
  const p = new Uint8Array(40 + data.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 6;
  p.set((s.src ?? "100.64.3.1").split(".").map(Number), 12);
  p.set((s.dst ?? "100.64.3.11").split(".").map(Number), 16);
  v.setUint16(20, s.sport ?? 40000);
  v.setUint16(22, s.dport ?? 51831);
  v.setUint32(24, s.seq >>> 0);
  p[32] = 5 << 4;
  p[33] = s.syn ? 0x02 : 0x18;
  p.set(data, 40);
  return p;
}

/** A pcap file (little-endian, µs) of `packets` with link type `linktype`. */
function pcap(packets: Uint8Array[], linktype = 101, ethernet = false): Uint8Array {
  const recs = packets.map((p) => {
    const body = ethernet ? new Uint8Array([...new Uint8Array(12), 0x08, 0x00, ...p]) : p;
    const r = new Uint8Array(16 + body.length);
    const v = new DataView(r.buffer);
    v.setUint32(0, 1_700_000_000, true);
    v.setUint32(8, body.length, true);
    v.setUint32(12, body.length, true);
    r.set(body, 16);
    return r;
  });
  const out = new Uint8Array(24 + recs.reduce((n, r) => n + r.length, 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 262144, true);
  v.setUint32(20, linktype, true);
  let o = 24;
  for (const r of recs) {
    out.set(r, o);
    o += r.length;
  }
  return out;
}

const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

Deno.test("DSKE wire audit", async (t) => {
  await t.step("psrdUseOf reads the Auth trailer; peer frames have none", () => {
    const u = psrdUseOf(put(1234))!;
    assert.equal(u.blockId, "b1".repeat(16));
    assert.deepEqual([u.region, u.offset, u.used, u.type], ["c2h", 1234, 96, 0x02]);
    assert.equal(psrdUseOf(ack(64))!.region, "h2c");
    assert.equal(psrdUseOf(new Uint8Array([0x44, 0x4b, 1, 0x7f, 0, 0, 0, 12, 0, 1, 0, 0])), null);
  });

  await t.step("several frames per segment, a frame split over three, out of order, retransmitted", () => {
    const stream = cat(hello(0), hello(32), put(64), hello(160));
    const isn = 0xfffffff0; // sequence numbers wrap inside the flow
    const at = (off: number, end: number) => ({
      seq: (isn + 1 + off) >>> 0,
      data: stream.subarray(off, end),
    });
    const p1 = 2 * 128; // two HELLOs in one segment
    const segs = [
      { seq: isn, syn: true },
      at(0, p1),
      at(p1 + 100, p1 + 200), // the PUT's middle arrives first
      at(p1, p1 + 100),
      at(p1, p1 + 100), // retransmission
      at(p1 + 200, stream.length),
      at(p1 + 150, stream.length), // overlapping retransmission
    ].map(packet);
    const a = auditCaptures([pcap(segs)]);
    assert.deepEqual(a.uses.map((u) => [u.type, u.offset]), [[1, 0], [1, 32], [2, 64], [1, 160]]);
    assert.deepEqual(a.reuses, []);
    assert.equal(a.repeats, 0, "retransmitted bytes are taken once by the reassembly");
    assert.equal(a.gaps, 0);
    assert.equal(a.skippedBytes, 0);
  });

  await t.step("an overlapping range of a different frame is a reuse; an identical frame is not", () => {
    const conn = (sport: number, isn: number, frames: Uint8Array[]) => [
      packet({ sport, seq: isn, syn: true }),
      packet({ sport, seq: isn + 1, data: cat(...frames) }),
    ];
    const first = conn(40001, 1000, [hello(0), put(32)]);
    const again = conn(40002, 5000, [put(32)]); // the same frame again: a re-send
    const a = auditCaptures([pcap([...first, ...again])]);
    assert.equal(a.repeats, 1);
    assert.deepEqual(a.reuses, []);
    const reuse = conn(40003, 9000, [hello(100, BLOCK, 2)]); // inside the PUT's [32, 128)
    const b = auditCaptures([pcap([...first, ...reuse])]);
    assert.equal(b.reuses.length, 1);
    assert.deepEqual(b.reuses[0].first, { offset: 32, used: 96, type: 2 });
    assert.deepEqual(b.reuses[0].second, { offset: 100, used: 32, type: 1 });
    // Another block or the other region is independent.
    const other = conn(40004, 1, [hello(0, new Uint8Array(16).fill(0xb2)), ack(0)]);
    assert.deepEqual(auditCaptures([pcap([...first, ...other])]).reuses, []);
  });

  await t.step("the same flow in two captures counts once; ports reused with a new ISN are two flows", () => {
    const one = [packet({ seq: 10, syn: true }), packet({ seq: 11, data: hello(0) })];
    const two = [packet({ seq: 777, syn: true }), packet({ seq: 778, data: hello(32) })];
    const a = auditCaptures([pcap([...one, ...two]), pcap([...one, ...two], 1, true)]);
    assert.equal(a.uses.length, 2);
    assert.equal(a.repeats, 2);
    assert.equal(a.streams, 4);
  });

  await t.step("a capture starting mid-flow resynchronises on the frame magic", () => {
    const stream = cat(hello(0), hello(32), hello(64));
    const segs = [packet({ seq: 5000, data: stream.subarray(50) })]; // no SYN, starts inside frame 1
    const a = auditCaptures([pcap(segs)]);
    assert.deepEqual(a.uses.map((u) => u.offset), [32, 64]);
    assert.equal(a.gaps, 1);
    assert.equal(a.skippedBytes, 128 - 50);
  });

  await t.step("a gap in the middle: frames on both sides are still found", () => {
    const stream = cat(hello(0), hello(32), hello(64));
    const segs = [
      packet({ seq: 0, syn: true }),
      packet({ seq: 1, data: stream.subarray(0, 140) }),
      packet({ seq: 1 + 200, data: stream.subarray(200) }), // bytes 140..200 never captured
    ];
    const streams = reassemble(parsePcap(pcap(segs)).packets.map((p) => tcpSegmentOf(p.data, 101)!));
    assert.equal(streams[0].runs.length, 2);
    assert.deepEqual(auditCaptures([pcap(segs)]).uses.map((u) => u.offset), [0, 64]);
  });

  await t.step("a truncated last record is ignored; a bad header throws", () => {
    const file = pcap([packet({ seq: 0, syn: true }), packet({ seq: 1, data: hello(0) })]);
    const cut = file.subarray(0, file.length - 20);
    assert.equal(parsePcap(cut).truncated, true);
    assert.equal(parsePcap(cut).packets.length, 1);
    assert.throws(() => parsePcap(new Uint8Array(24)), /bad magic/);
  });

  await t.step("framesOf: a frame cut off at the end of a run is skipped, not misread", () => {
    const run = cat(hello(0), hello(32).subarray(0, 60));
    const { frames, skipped } = framesOf(run, true);
    assert.equal(frames.length, 1);
    assert.equal(skipped, 60);
  });

  await t.step("auditPsrdUses: adjacent ranges are fine, a range inside a longer one is not", () => {
    const use = (offset: number, used: number, tag: string) => ({
      blockId: "b",
      region: "c2h" as const,
      offset,
      used,
      type: 1,
      frameHex: tag,
    });
    assert.deepEqual(auditPsrdUses([use(0, 96, "a"), use(96, 32, "b"), use(128, 32, "c")]).reuses, []);
    assert.equal(auditPsrdUses([use(0, 96, "a"), use(40, 10, "b"), use(60, 10, "c")]).reuses.length, 2);
  });
});
