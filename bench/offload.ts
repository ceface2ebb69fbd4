/**
 * Offload micro-benchmark: throughput (GB/s of payload) and ns per segment of send-path
 * segmentation (a 64 KiB TCP or UDP super-packet split into MTU-sized packets with full checksums)
 * and receive-path coalescing (46 MTU-sized segments merged into one super-packet, checksums
 * verified), with buffers in one backing as the workers will hold them. Run: `deno run -A bench/offload.ts` (ITER=… to change the repetitions).
 * @module
 */
import { GroBatch } from "../src/wireguard/offload/coalesce.ts";
import { segmentPacket } from "../src/wireguard/offload/segment.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  type VirtioNetHdr,
} from "../src/wireguard/offload/virtio-net-hdr.ts";
import { buildPacket, payloadOf } from "../tests/unit/offload_packets.ts";

const MTU = 1420;
const SEGMENTS = 46;
const WG_HEADER = 16;

interface Figure {
  name: string;
  gbPerSecond: number;
  nsPerSegment: number;
}

function measure(
  name: string,
  iterations: number,
  segments: number,
  payloadBytes: number,
  body: () => void,
): Figure {
  for (let i = 0; i < Math.max(50, iterations >> 4); i++) body();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) body();
  const ns = (performance.now() - t0) * 1e6;
  return { name, gbPerSecond: (payloadBytes * iterations) / ns, nsPerSegment: ns / (iterations * segments) };
}

function segmentation(udp: boolean, iterations: number): Figure {
  const iph = 20;
  const l4h = udp ? 8 : 20;
  const gso = MTU - iph - l4h;
  const payload = payloadOf(gso * SEGMENTS);
  const built = buildPacket({ udp, payload, checksum: "partial" });
  // One backing for the read scratch and the output slots, as the encrypt worker will hold them
  // (copies inside one backing are native memmoves).
  const slot = WG_HEADER + MTU + 32;
  const backing = new ArrayBuffer(65536 + 64 * slot);
  const superPacket = new Uint8Array(backing, 0, built.length);
  superPacket.set(built);
  const hdr: VirtioNetHdr = {
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : VIRTIO_NET_HDR_GSO_TCPV4,
    hdrLen: iph + l4h,
    gsoSize: gso,
    csumStart: iph,
    csumOffset: udp ? 6 : 16,
  };
  const outs = Array.from({ length: 64 }, (_, k) => new Uint8Array(backing, 65536 + k * slot, slot));
  const lens = new Int32Array(64);
  return measure(
    `segment ${udp ? "UDP" : "TCP"}v4 64 KiB → ${SEGMENTS}×${MTU}`,
    iterations,
    SEGMENTS,
    payload.length,
    () => {
      if (segmentPacket(hdr, superPacket, 0, superPacket.length, outs, WG_HEADER, lens, 0, 64) !== SEGMENTS) {
        throw new Error("segmentation failed");
      }
    },
  );
}

function coalescing(udp: boolean, iterations: number): Figure {
  const iph = 20;
  const l4h = udp ? 8 : 20;
  const gso = MTU - iph - l4h;
  const data = payloadOf(gso * SEGMENTS);
  const packets = Array.from(
    { length: SEGMENTS },
    (_, k) => buildPacket({ udp, seq: 1 + k * gso, id: k, payload: data.subarray(k * gso, (k + 1) * gso) }),
  );
  const size = WG_HEADER + 65536;
  const backing = new ArrayBuffer(SEGMENTS * size); // one backing, as the decrypt worker's ring
  const bufs = packets.map((p, k) => {
    const b = new Uint8Array(backing, k * size, size);
    b.set(p, WG_HEADER);
    return b;
  });
  const lens = new Int32Array(SEGMENTS);
  const gro = new GroBatch(SEGMENTS, { udp });
  const head = packets[0];
  return measure(
    `coalesce ${udp ? "UDP" : "TCP"}v4 ${SEGMENTS}×${MTU} → 1`,
    iterations,
    SEGMENTS,
    data.length,
    () => {
      bufs[0].set(head, WG_HEADER); // the previous round rewrote the head's headers
      for (let i = 0; i < SEGMENTS; i++) lens[i] = MTU;
      if (gro.coalesce(bufs, WG_HEADER, lens, SEGMENTS) !== 1) throw new Error("coalescing failed");
    },
  );
}

/** Runs the offload micro-benchmark and returns printable lines. */
export function offloadMicroBench(iterations = Number(Deno.env.get("ITER") ?? 2000)): string {
  const figures = [
    segmentation(false, iterations),
    segmentation(true, iterations),
    coalescing(false, iterations),
    coalescing(true, iterations),
  ];
  const lines = ["Offload micro-bench (payload GB/s, ns per segment)"];
  for (const f of figures) {
    lines.push(
      `  ${f.name.padEnd(36)} ${f.gbPerSecond.toFixed(2).padStart(6)} GB/s ${
        f.nsPerSegment.toFixed(0).padStart(6)
      } ns/seg`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) console.log(offloadMicroBench());
