/**
 * Offline audit of PSRD use on the wire (docs/design.md §4 invariant 1: no PSRD byte is used twice):
 * reads packet captures of TCP 51831 (pcap, as `tcpdump -w` writes them), reassembles each TCP flow by
 * sequence number, walks the DSKE frames by their header `length`, takes (block, offset, used) from the
 * Auth trailer of every client ↔ hub frame (client types 0x01-0x04 use the C2H region, hub types
 * 0x81-0x83 the H2C region) and checks that, per (block, region), the ranges [offset, offset + used)
 * never overlap. Node ↔ node frames (version 2, tagged, no PSRD) and ERROR are walked over and not
 * counted. The only tolerated repeat is a byte-identical frame (a TCP retransmission, or the same
 * frame seen by two captures), which is counted once.
 *
 * Robust to segments carrying several frames, frames split across segments, retransmitted or
 * overlapping segments, out-of-order segments, a capture starting mid-flow (resynchronised on the frame
 * magic) and a truncated last record (a capture killed mid-write). Only IPv4 is decoded (wg0 is IPv4).
 * @module
 */
import { concatBytes } from "../encoding.ts";
import {
  AUTH_LEN,
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameType,
  HEADER_LEN,
  MAX_FRAME_LEN,
  PEER_FRAME_VERSION,
} from "./frames.ts";

/** pcap link types understood: raw IP (101, 12, 228), Ethernet (1), Linux cooked (113). */
export const SUPPORTED_LINKTYPES: readonly number[] = [101, 12, 228, 1, 113];

const C2H_TYPES = new Set<number>([
  FrameType.HELLO,
  FrameType.SHARE_PUT,
  FrameType.SHARE_GET,
  FrameType.SHARE_DELETE,
]);
const H2C_TYPES = new Set<number>([FrameType.HELLO_ACK, FrameType.SHARE_PUT_ACK, FrameType.SHARE_GET_RESP]);
const PEER_TYPES = new Set<number>([
  FrameType.KEY_OFFER,
  FrameType.KEY_RESULT,
  FrameType.KEY_ABORT,
  FrameType.KEY_SYNC,
  FrameType.ERROR,
]);

/** One captured packet. */
export interface PcapPacket {
  /** Capture time (ms since the epoch). */
  timeMs: number;
  /** Link-layer bytes as captured. */
  data: Uint8Array;
}

/** A parsed capture file. */
export interface Pcap {
  /** pcap link type of every packet. */
  linktype: number;
  /** Packets in file order. */
  packets: PcapPacket[];
  /** True when the last record was cut short (ignored). */
  truncated: boolean;
}

/** Parses a classic pcap file (either byte order, µs or ns timestamps). Throws on a bad header. */
export function parsePcap(bytes: Uint8Array): Pcap {
  if (bytes.length < 24) throw new Error("pcap: shorter than the global header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBe = view.getUint32(0, false);
  let little: boolean;
  let nanos: boolean;
  if (magicBe === 0xa1b2c3d4 || magicBe === 0xa1b23c4d) {
    little = false;
    nanos = magicBe === 0xa1b23c4d;
  } else if (magicBe === 0xd4c3b2a1 || magicBe === 0x4d3cb2a1) {
    little = true;
    nanos = magicBe === 0x4d3cb2a1;
  } else {
    throw new Error("pcap: bad magic (not a pcap file; pcapng is not supported)");
  }
  const linktype = view.getUint32(20, little) & 0x0fffffff;
  const packets: PcapPacket[] = [];
  let pos = 24;
  let truncated = false;
  while (pos < bytes.length) {
    if (pos + 16 > bytes.length) {
      truncated = true;
      break;
    }
    const sec = view.getUint32(pos, little);
    const frac = view.getUint32(pos + 4, little);
    const incl = view.getUint32(pos + 8, little);
    if (pos + 16 + incl > bytes.length) {
      truncated = true;
      break;
    }
    const timeMs = sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3);
    packets.push({ timeMs, data: bytes.subarray(pos + 16, pos + 16 + incl) });
    pos += 16 + incl;
  }
  return { linktype, packets, truncated };
}

/** A TCP segment of an IPv4 packet. */
export interface TcpSegment {
  /** Source address (dotted quad). */
  src: string;
  /** Destination address. */
  dst: string;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seq: number;
  /** SYN flag. */
  syn: boolean;
  /** TCP payload. */
  payload: Uint8Array;
}

/** Extracts the TCP segment of a captured packet, or null (not IPv4/TCP, a fragment, truncated). */
export function tcpSegmentOf(packet: Uint8Array, linktype: number): TcpSegment | null {
  let ip: Uint8Array;
  if (linktype === 101 || linktype === 12 || linktype === 228) ip = packet;
  else if (linktype === 1) {
    if (packet.length < 14 || packet[12] !== 0x08 || packet[13] !== 0x00) return null;
    ip = packet.subarray(14);
  } else if (linktype === 113) {
    if (packet.length < 16 || packet[14] !== 0x08 || packet[15] !== 0x00) return null;
    ip = packet.subarray(16);
  } else return null;
  if (ip.length < 20 || ip[0] >> 4 !== 4) return null;
  const ihl = (ip[0] & 0x0f) * 4;
  const total = Math.min((ip[2] << 8) | ip[3], ip.length);
  if (ihl < 20 || total < ihl + 20 || ip[9] !== 6) return null;
  const fragment = ((ip[6] & 0x3f) << 8) | ip[7]; // MF flag and fragment offset
  if (fragment !== 0) return null;
  const tcp = ip.subarray(ihl, total);
  const dataOffset = (tcp[12] >> 4) * 4;
  if (dataOffset < 20 || dataOffset > tcp.length) return null;
  const view = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength);
  return {
    src: `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`,
    dst: `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`,
    srcPort: view.getUint16(0),
    dstPort: view.getUint16(2),
    seq: view.getUint32(4),
    syn: (tcp[13] & 0x02) !== 0,
    payload: tcp.subarray(dataOffset),
  };
}

/** The reassembled bytes of one direction of one TCP connection: contiguous runs between gaps. */
export interface TcpStream {
  /** "src:port>dst:port". */
  flow: string;
  /** True when the connection's SYN was captured (the first run starts at the first byte). */
  fromStart: boolean;
  /** Contiguous byte runs in stream order; more than one means bytes are missing from the capture. */
  runs: Uint8Array[];
}

/**
 * Reassembles segments per TCP connection direction, by sequence number (mod 2^32, relative to the SYN
 * or the first segment seen). A SYN with a new sequence number starts a new connection on the same
 * ports. Retransmitted and overlapping bytes are taken once (first copy wins).
 */
export function reassemble(segments: TcpSegment[]): TcpStream[] {
  interface Conn {
    flow: string;
    isn: number | null;
    base: number;
    segs: { rel: number; payload: Uint8Array }[];
  }
  const current = new Map<string, Conn>();
  const all: Conn[] = [];
  for (const s of segments) {
    const flow = `${s.src}:${s.srcPort}>${s.dst}:${s.dstPort}`;
    let c = current.get(flow);
    if (s.syn) {
      if (!c || c.isn !== s.seq) {
        c = { flow, isn: s.seq, base: (s.seq + 1) >>> 0, segs: [] };
        current.set(flow, c);
        all.push(c);
      }
    } else if (!c) {
      c = { flow, isn: null, base: s.seq, segs: [] };
      current.set(flow, c);
      all.push(c);
    }
    if (s.payload.length === 0) continue;
    let rel = (s.seq - c.base) >>> 0;
    if (rel >= 0x80000000) {
      if (c.isn !== null) continue; // before the SYN: impossible, ignore
      // Mid-flow capture and an earlier segment showed up later: move the base back.
      const shift = 0x100000000 - rel;
      for (const x of c.segs) x.rel += shift;
      c.base = s.seq;
      rel = 0;
    }
    c.segs.push({ rel, payload: s.payload });
  }
  return all.map((c) => {
    const segs = c.segs.slice().sort((a, b) => a.rel - b.rel);
    const runs: Uint8Array[] = [];
    let parts: Uint8Array[] = [];
    let cursor = segs.length > 0 && c.isn === null ? segs[0].rel : 0;
    const flush = () => {
      if (parts.length > 0) runs.push(concatBytes(parts));
      parts = [];
    };
    for (const seg of segs) {
      const end = seg.rel + seg.payload.length;
      if (end <= cursor) continue; // retransmitted bytes
      if (seg.rel > cursor) flush(); // a gap: bytes missing from the capture
      else if (seg.rel < cursor) {
        parts.push(seg.payload.subarray(cursor - seg.rel));
        cursor = end;
        continue;
      }
      parts.push(seg.payload);
      cursor = end;
    }
    flush();
    return { flow: c.flow, fromStart: c.isn !== null && (segs[0]?.rel ?? 0) === 0, runs };
  });
}

function headerAt(b: Uint8Array, pos: number): { type: number; length: number } | null {
  if (pos + HEADER_LEN > b.length) return null;
  if (((b[pos] << 8) | b[pos + 1]) !== FRAME_MAGIC) return null;
  const type = b[pos + 3];
  if (
    b[pos + 2] !== (PEER_TYPES.has(type) && type !== FrameType.ERROR ? PEER_FRAME_VERSION : FRAME_VERSION)
  ) {
    return null;
  }
  const length = ((b[pos + 4] << 24) >>> 0) + (b[pos + 5] << 16) + (b[pos + 6] << 8) + b[pos + 7];
  if (length < HEADER_LEN || length > MAX_FRAME_LEN) return null;
  if (!C2H_TYPES.has(type) && !H2C_TYPES.has(type) && !PEER_TYPES.has(type)) return null;
  return { type, length };
}

/**
 * Splits a byte run into DSKE frames by their header `length`. With `aligned` the run starts at a frame
 * boundary; otherwise (after a gap) the first frame is found by scanning for the magic. Returns the
 * frames and how many bytes could not be parsed (garbage, or a frame cut off at the end of the run).
 */
export function framesOf(run: Uint8Array, aligned: boolean): { frames: Uint8Array[]; skipped: number } {
  const frames: Uint8Array[] = [];
  let skipped = 0;
  let pos = 0;
  let scanning = !aligned;
  while (pos < run.length) {
    const h = headerAt(run, pos);
    if (h && pos + h.length <= run.length) {
      frames.push(run.subarray(pos, pos + h.length));
      pos += h.length;
      scanning = false;
      continue;
    }
    if (h && !scanning) { // a frame cut off by the end of the run
      skipped += run.length - pos;
      break;
    }
    pos++;
    skipped++;
  }
  return { frames, skipped };
}

/** PSRD a client ↔ hub frame declares it used. */
export interface PsrdUse {
  /** Block id, hex. */
  blockId: string;
  /** The sender's region. */
  region: "c2h" | "h2c";
  /** Start offset in the region. */
  offset: number;
  /** Bytes used. */
  used: number;
  /** Frame type. */
  type: number;
  /** The whole frame, hex (identity for de-duplication; holds no pad bytes, only the OTP'd fields). */
  frameHex: string;
}

/** The (block, offset, used) of a client ↔ hub frame's Auth trailer, or null for other frames. */
export function psrdUseOf(frame: Uint8Array): PsrdUse | null {
  const h = headerAt(frame, 0);
  if (!h || h.length !== frame.length) return null;
  const region = C2H_TYPES.has(h.type) ? "c2h" : H2C_TYPES.has(h.type) ? "h2c" : null;
  if (region === null || frame.length < HEADER_LEN + AUTH_LEN) return null;
  const a = frame.length - AUTH_LEN;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const offset = Number(view.getBigUint64(a + 16));
  const used = view.getUint32(a + 24);
  return {
    blockId: hex(frame.subarray(a, a + 16)),
    region,
    offset,
    used,
    type: h.type,
    frameHex: hex(frame),
  };
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Two different frames whose PSRD ranges overlap. */
export interface PsrdReuse {
  /** Block id, hex. */
  blockId: string;
  /** Region. */
  region: "c2h" | "h2c";
  /** The earlier range. */
  first: { offset: number; used: number; type: number };
  /** The overlapping range. */
  second: { offset: number; used: number; type: number };
}

/** Result of {@link auditPsrdUses} / {@link auditCaptures}. */
export interface PsrdAudit {
  /** Distinct client ↔ hub frames (after removing byte-identical repeats). */
  uses: PsrdUse[];
  /** Byte-identical repeats removed. */
  repeats: number;
  /** Overlapping ranges: each one is a PSRD byte used twice. */
  reuses: PsrdReuse[];
  /** Frames without Auth (peer ↔ peer, ERROR). */
  peerFrames: number;
  /** Packets read, TCP streams, gaps (missing bytes) and unparsed bytes, for judging coverage. */
  packets: number;
  /** Reassembled connection directions. */
  streams: number;
  /** Streams with bytes missing from the capture. */
  gaps: number;
  /** Bytes that did not parse as frames. */
  skippedBytes: number;
}

/** De-duplicates byte-identical frames and checks that no two ranges of one (block, region) overlap. */
export function auditPsrdUses(all: PsrdUse[]): Pick<PsrdAudit, "uses" | "repeats" | "reuses"> {
  const seen = new Set<string>();
  const uses: PsrdUse[] = [];
  for (const u of all) {
    if (seen.has(u.frameHex)) continue;
    seen.add(u.frameHex);
    uses.push(u);
  }
  const byRegion = new Map<string, PsrdUse[]>();
  for (const u of uses) {
    const key = `${u.blockId}/${u.region}`;
    const list = byRegion.get(key) ?? [];
    list.push(u);
    byRegion.set(key, list);
  }
  const reuses: PsrdReuse[] = [];
  for (const list of byRegion.values()) {
    list.sort((a, b) => a.offset - b.offset || a.used - b.used);
    let reach: PsrdUse | null = null; // the range reaching furthest so far
    for (const u of list) {
      if (reach && u.offset < reach.offset + reach.used) {
        reuses.push({
          blockId: u.blockId,
          region: u.region,
          first: { offset: reach.offset, used: reach.used, type: reach.type },
          second: { offset: u.offset, used: u.used, type: u.type },
        });
      }
      if (!reach || u.offset + u.used > reach.offset + reach.used) reach = u;
    }
  }
  return { uses, repeats: all.length - uses.length, reuses };
}

/** Audits several capture files together (e.g. one per interface): see the module doc. */
export function auditCaptures(files: Uint8Array[]): PsrdAudit {
  const found: PsrdUse[] = [];
  let peerFrames = 0;
  let packets = 0;
  let streams = 0;
  let gaps = 0;
  let skippedBytes = 0;
  for (const bytes of files) {
    const pcap = parsePcap(bytes);
    packets += pcap.packets.length;
    const segs: TcpSegment[] = [];
    for (const p of pcap.packets) {
      const s = tcpSegmentOf(p.data, pcap.linktype);
      if (s) segs.push(s);
    }
    for (const st of reassemble(segs)) {
      streams++;
      if (st.runs.length > 1 || !st.fromStart) gaps++;
      st.runs.forEach((run, i) => {
        const { frames, skipped } = framesOf(run, i === 0 && st.fromStart);
        skippedBytes += skipped;
        for (const f of frames) {
          const u = psrdUseOf(f);
          if (u) found.push(u);
          else peerFrames++;
        }
      });
    }
  }
  return { ...auditPsrdUses(found), peerFrames, packets, streams, gaps, skippedBytes };
}
