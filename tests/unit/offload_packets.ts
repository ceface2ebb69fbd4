/**
 * Independent packet builders and checkers for the offload tests: IPv4/IPv6 + TCP/UDP packets
 * assembled field by field with their own RFC 1071 checksum (written here from the RFC, sharing
 * nothing with src/wireguard/offload), so the code under test is checked against separate work.
 */

/** RFC 1071: one's-complement sum of 16-bit words, folded; returns the (uncomplemented) sum. */
export function onesSum(parts: Uint8Array[]): number {
  const all = concat(parts);
  let s = 0;
  for (let i = 0; i + 1 < all.length; i += 2) s += all[i] * 256 + all[i + 1];
  if (all.length % 2 === 1) s += all[all.length - 1] * 256;
  while (s >= 65536) s = (s % 65536) + Math.trunc(s / 65536);
  return s;
}

/** The checksum field for `parts`: complement of their one's-complement sum. */
export function internetChecksum(parts: Uint8Array[]): number {
  return 0xffff - onesSum(parts);
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic payload bytes. */
export function payloadOf(len: number, seed = 1): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const be16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
const be32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

/** What a test packet looks like. */
export interface PacketSpec {
  v6?: boolean;
  udp?: boolean;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  /** TCP flags byte (default ACK). */
  flags?: number;
  /** TCP options (a multiple of 4 bytes). */
  options?: number[];
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  payload: Uint8Array;
  /** "full" (default): a valid checksum; "partial": the pseudo-header sum only (CHECKSUM_PARTIAL); "bad". */
  checksum?: "full" | "partial" | "bad";
}

/** Builds the packet described by `s`. */
export function buildPacket(s: PacketSpec): Uint8Array {
  const v6 = s.v6 === true;
  const src = s.src ?? (v6 ? [0xfd, 0, ...new Array(13).fill(0), 1] : [10, 0, 0, 1]);
  const dst = s.dst ?? (v6 ? [0xfd, 0, ...new Array(13).fill(0), 2] : [10, 0, 0, 2]);
  const proto = s.udp ? 17 : 6;
  const options = s.options ?? [];
  const l4h = s.udp ? 8 : 20 + options.length;
  const l4Len = l4h + s.payload.length;
  const l4 = s.udp ? [...be16(s.sport ?? 4000), ...be16(s.dport ?? 5000), ...be16(l4Len), 0, 0] : [
    ...be16(s.sport ?? 4000),
    ...be16(s.dport ?? 5000),
    ...be32(s.seq ?? 1000),
    ...be32(s.ack ?? 77),
    (l4h / 4) << 4,
    s.flags ?? 0x10,
    ...be16(65000),
    0,
    0,
    0,
    0,
    ...options,
  ];
  const l4Bytes = new Uint8Array(l4);
  const pseudo = new Uint8Array([...src, ...dst, 0, proto, ...be16(l4Len)]);
  const csumAt = s.udp ? 6 : 16;
  const mode = s.checksum ?? "full";
  let csum = mode === "partial" ? onesSum([pseudo]) : internetChecksum([pseudo, l4Bytes, s.payload]);
  if (mode === "full" && csum === 0) csum = 0xffff;
  if (mode === "bad") csum = csum ^ 0x5a5a;
  l4Bytes[csumAt] = csum >> 8;
  l4Bytes[csumAt + 1] = csum & 0xff;
  let ip: Uint8Array;
  if (v6) {
    ip = new Uint8Array([
      0x60 | ((s.tos ?? 0) >> 4),
      ((s.tos ?? 0) & 15) << 4,
      0,
      0,
      ...be16(l4Len),
      proto,
      s.ttl ?? 64,
      ...src,
      ...dst,
    ]);
  } else {
    ip = new Uint8Array([
      0x45,
      s.tos ?? 0,
      ...be16(20 + l4Len),
      ...be16(s.id ?? 0x1234),
      s.df === false ? 0 : 0x40,
      0,
      s.ttl ?? 64,
      proto,
      0,
      0,
      ...src,
      ...dst,
    ]);
    const c = internetChecksum([ip]);
    ip[10] = c >> 8;
    ip[11] = c & 0xff;
  }
  return concat([ip, l4Bytes, s.payload]);
}

/** Parsed view of a packet (for assertions). */
export interface Parsed {
  v6: boolean;
  ipHeaderOk: boolean;
  totalLength: number;
  id: number;
  seq: number;
  flags: number;
  l4ChecksumOk: boolean;
  udpLength: number;
  payload: Uint8Array;
}

/** Parses a packet and verifies its checksums independently. */
export function parsePacket(p: Uint8Array): Parsed {
  const v6 = p[0] >> 4 === 6;
  const iph = v6 ? 40 : (p[0] & 15) * 4;
  const proto = v6 ? p[6] : p[9];
  const udp = proto === 17;
  const l4h = udp ? 8 : (p[iph + 12] >> 4) * 4;
  const src = p.slice(v6 ? 8 : 12, v6 ? 24 : 16);
  const dst = p.slice(v6 ? 24 : 16, v6 ? 40 : 20);
  const l4 = p.slice(iph);
  const pseudo = new Uint8Array([...src, ...dst, 0, proto, ...be16(l4.length)]);
  return {
    v6,
    ipHeaderOk: v6 ? true : onesSum([p.slice(0, iph)]) === 0xffff,
    totalLength: v6 ? 40 + p[4] * 256 + p[5] : p[2] * 256 + p[3],
    id: v6 ? 0 : p[4] * 256 + p[5],
    seq: udp ? 0 : ((p[iph + 4] << 24) | (p[iph + 5] << 16) | (p[iph + 6] << 8) | p[iph + 7]) >>> 0,
    flags: udp ? 0 : p[iph + 13],
    l4ChecksumOk: onesSum([pseudo, l4]) === 0xffff,
    udpLength: udp ? p[iph + 4] * 256 + p[iph + 5] : 0,
    payload: p.slice(iph + l4h),
  };
}
