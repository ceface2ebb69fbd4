/**
 * IPv4/IPv6 header parsing for the packet filter, over a byte array at an offset and into a reusable
 * {@link ParsedPacket}: no allocation, no copy (addresses are offsets into the caller's bytes), bounded
 * work (at most {@link MAX_IPV6_EXTENSION_HEADERS} IPv6 extension headers).
 *
 * What it checks (anything else a kernel would refuse is left to the kernel, which drops it too):
 * version, IPv4 IHL (≥ 5 words, inside the packet) and total length (≥ IHL, ≤ the bytes given), no
 * fragment reaching past 65 535 bytes; IPv6 payload length (inside the bytes given, so no jumbograms),
 * hop-by-hop only first, one fragment header at most, every extension header inside the packet; and the
 * transport header of an unfragmented packet or a first fragment: TCP (20 bytes, data offset ≥ 5 and
 * inside), UDP (8), ICMP/ICMPv6 (8). A first fragment too short for its transport header is a "tiny
 * fragment" (RFC 1858), reported apart from malformed packets.
 *
 * An ICMP error is parsed one level deeper in {@link ParseMode.quoted} mode, where the quoted packet may
 * be cut short (only the addresses and 8 bytes of its transport header are needed).
 * @module
 */
import {
  ICMP_HEADER,
  IPPROTO,
  IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_MIN_HEADER,
  IPV4_MORE_FRAGMENTS,
  IPV6_HEADER,
  MAX_DATAGRAM,
  MAX_IPV6_EXTENSION_HEADERS,
  QUOTED_L4_BYTES,
  TCP_MIN_HEADER,
  UDP_HEADER,
} from "./ip-constants.ts";

/** Outcome of {@link parsePacket}. */
export const ParseStatus = {
  /** Parsed; the fields of the ParsedPacket are valid. */
  ok: 0,
  /** Not a valid IP packet (bad version, IHL, lengths, extension headers or transport header). */
  malformed: 1,
  /** A first fragment that does not hold its whole transport header. */
  tinyFragment: 2,
} as const;
/** A parse status code. */
export type ParseStatusCode = typeof ParseStatus[keyof typeof ParseStatus];

/** How strictly to parse. */
export const ParseMode = {
  /** A packet on the wire: lengths must be exact and the transport header complete. */
  strict: 0,
  /** The packet an ICMP error quotes: may be truncated; 8 transport bytes suffice. */
  quoted: 1,
} as const;

/** Fragment position of a packet. */
export const Fragment = {
  /** Not a fragment (an IPv6 atomic fragment counts as none). */
  none: 0,
  /** Offset 0 with more fragments: carries the transport header. */
  first: 1,
  /** Offset > 0: follows its first fragment. */
  later: 2,
} as const;

/** The fields of one parsed packet; overwritten by each parse. Offsets are absolute in the parsed bytes. */
export class ParsedPacket {
  /** 4 or 6. */
  family: 4 | 6 = 4;
  /** Transport protocol (IPv4 protocol, or the IPv6 next header after the extension headers). */
  proto = 0;
  /** Offset of the source address (4 or 16 bytes). */
  srcOff = 0;
  /** Offset of the destination address. */
  dstOff = 0;
  /** Offset of the transport header. */
  l4Off = 0;
  /** End of the packet (offset one past its last byte, from the IP length fields). */
  end = 0;
  /** {@link Fragment} position. */
  fragment: number = Fragment.none;
  /** Fragment identification (IPv4 16 bits, IPv6 32 bits). */
  fragId = 0;
  /** Fragment offset in bytes. */
  fragOffset = 0;
  /** The protocol that keys the fragment (IPv4 protocol; the IPv6 fragment header's next header). */
  fragProto = 0;
  /** Offset where the fragmentable part starts (fragment offsets count from here). */
  fragPartOff = 0;
  /** Whether ports / ICMP fields below were read (TCP, UDP, ICMP of the family, not a later fragment). */
  hasL4 = false;
  /** TCP/UDP source port. */
  srcPort = 0;
  /** TCP/UDP destination port. */
  dstPort = 0;
  /** TCP flags byte. */
  tcpFlags = 0;
  /** ICMP type. */
  icmpType = 0;
  /** ICMP code. */
  icmpCode = 0;
  /** ICMP echo identifier. */
  icmpId = 0;
  /** End of the transport header bytes the parse read (offset one past). */
  l4End = 0;
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/**
 * Parses the IP packet in `buf[off, off+len)` into `out`. Returns a {@link ParseStatus}; on `ok`, every
 * field of `out` is set for this packet. Never throws for any bytes or any (off, len) inside `buf`.
 */
export function parsePacket(
  buf: Uint8Array,
  off: number,
  len: number,
  out: ParsedPacket,
  mode: number = ParseMode.strict,
): ParseStatusCode {
  if (off < 0 || len <= 0 || off + len > buf.length) return ParseStatus.malformed;
  const version = buf[off] >> 4;
  out.hasL4 = false;
  out.srcPort =
    out.dstPort =
    out.tcpFlags =
    out.icmpType =
    out.icmpCode =
    out.icmpId =
      0;
  out.fragId = out.fragOffset = 0;
  out.fragment = Fragment.none;
  if (version === 4) return parseV4(buf, off, len, out, mode);
  if (version === 6) return parseV6(buf, off, len, out, mode);
  return ParseStatus.malformed;
}

function parseV4(
  buf: Uint8Array,
  off: number,
  len: number,
  out: ParsedPacket,
  mode: number,
): ParseStatusCode {
  if (len < IPV4_MIN_HEADER) return ParseStatus.malformed;
  const ihl = (buf[off] & 0x0f) * 4;
  if (ihl < IPV4_MIN_HEADER || ihl > len) return ParseStatus.malformed;
  const total = u16(buf, off + 2);
  if (total < ihl) return ParseStatus.malformed;
  let end: number;
  if (mode === ParseMode.strict) {
    if (total > len) return ParseStatus.malformed;
    end = off + total;
  } else {
    end = off + (total < len ? total : len);
  }
  const flagsFrag = u16(buf, off + 6);
  const fragOffset = (flagsFrag & IPV4_FRAGMENT_OFFSET_MASK) * 8;
  if (fragOffset + total - ihl > MAX_DATAGRAM) return ParseStatus.malformed;
  out.family = 4;
  out.proto = buf[off + 9];
  out.srcOff = off + 12;
  out.dstOff = off + 16;
  out.l4Off = off + ihl;
  out.end = end;
  out.fragPartOff = off + ihl;
  out.fragProto = out.proto;
  out.fragId = u16(buf, off + 4);
  out.fragOffset = fragOffset;
  if (fragOffset > 0) {
    out.fragment = Fragment.later;
    out.l4End = out.l4Off;
    return ParseStatus.ok;
  }
  if (flagsFrag & IPV4_MORE_FRAGMENTS) out.fragment = Fragment.first;
  return parseL4(buf, out, mode);
}

function parseV6(
  buf: Uint8Array,
  off: number,
  len: number,
  out: ParsedPacket,
  mode: number,
): ParseStatusCode {
  if (len < IPV6_HEADER) return ParseStatus.malformed;
  const total = IPV6_HEADER + u16(buf, off + 4);
  let end: number;
  if (mode === ParseMode.strict) {
    if (total > len) return ParseStatus.malformed;
    end = off + total;
  } else {
    end = off + (total < len ? total : len);
  }
  out.family = 6;
  out.srcOff = off + 8;
  out.dstOff = off + 24;
  out.end = end;
  let next = buf[off + 6];
  let p = off + IPV6_HEADER;
  out.fragPartOff = p;
  out.fragProto = next;
  let seenFragment = false;
  for (let count = 0;; count++) {
    if (
      next !== IPPROTO.hopByHop && next !== IPPROTO.routing && next !== IPPROTO.destOptions &&
      next !== IPPROTO.fragment
    ) break;
    if (count >= MAX_IPV6_EXTENSION_HEADERS) return ParseStatus.malformed;
    if (next === IPPROTO.hopByHop && count !== 0) return ParseStatus.malformed;
    if (next === IPPROTO.fragment) {
      if (seenFragment || p + 8 > end) return ParseStatus.malformed;
      seenFragment = true;
      const field = u16(buf, p + 2);
      const fragOffset = field & 0xfff8;
      const more = (field & 1) === 1;
      out.fragId = ((buf[p + 4] << 24) | (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]) >>> 0;
      out.fragOffset = fragOffset;
      out.fragProto = buf[p];
      next = buf[p];
      p += 8;
      out.fragPartOff = p;
      if (fragOffset + (end - p) > MAX_DATAGRAM) return ParseStatus.malformed;
      if (fragOffset > 0) {
        out.fragment = Fragment.later;
        out.proto = next;
        out.l4Off = p;
        out.l4End = p;
        return ParseStatus.ok;
      }
      if (more) out.fragment = Fragment.first;
      continue;
    }
    if (p + 2 > end) return shortHeader(out, mode);
    const hlen = (buf[p + 1] + 1) * 8;
    if (p + hlen > end) return shortHeader(out, mode);
    next = buf[p];
    p += hlen;
  }
  if (!seenFragment) out.fragProto = next;
  out.proto = next;
  out.l4Off = p;
  return parseL4(buf, out, mode);
}

/** An extension header cut short: inside a first fragment a tiny fragment, else malformed. */
function shortHeader(out: ParsedPacket, mode: number): ParseStatusCode {
  return out.fragment === Fragment.first && mode === ParseMode.strict
    ? ParseStatus.tinyFragment
    : ParseStatus.malformed;
}

function parseL4(buf: Uint8Array, out: ParsedPacket, mode: number): ParseStatusCode {
  const p = out.l4Off;
  const avail = out.end - p;
  const proto = out.proto;
  const quoted = mode === ParseMode.quoted;
  const short = out.fragment === Fragment.first ? ParseStatus.tinyFragment : ParseStatus.malformed;
  out.l4End = p;
  if (proto === IPPROTO.tcp) {
    if (quoted) {
      if (avail < QUOTED_L4_BYTES) return ParseStatus.malformed;
      out.l4End = p + QUOTED_L4_BYTES;
    } else {
      if (avail < TCP_MIN_HEADER) return short;
      const dataOffset = (buf[p + 12] >> 4) * 4;
      if (dataOffset < TCP_MIN_HEADER) return ParseStatus.malformed;
      if (dataOffset > avail) return short;
      out.tcpFlags = buf[p + 13];
      out.l4End = p + dataOffset;
    }
    out.srcPort = u16(buf, p);
    out.dstPort = u16(buf, p + 2);
    out.hasL4 = true;
    return ParseStatus.ok;
  }
  if (proto === IPPROTO.udp) {
    if (avail < UDP_HEADER) return quoted ? ParseStatus.malformed : short;
    out.srcPort = u16(buf, p);
    out.dstPort = u16(buf, p + 2);
    out.l4End = p + UDP_HEADER;
    out.hasL4 = true;
    return ParseStatus.ok;
  }
  if ((proto === IPPROTO.icmp && out.family === 4) || (proto === IPPROTO.icmpv6 && out.family === 6)) {
    if (avail < ICMP_HEADER) return quoted ? ParseStatus.malformed : short;
    out.icmpType = buf[p];
    out.icmpCode = buf[p + 1];
    out.icmpId = u16(buf, p + 4);
    out.l4End = p + ICMP_HEADER;
    out.hasL4 = true;
    return ParseStatus.ok;
  }
  return ParseStatus.ok;
}

/** Whether the addresses at `a` (in `ab`) and `b` (in `bb`) are equal, for `family`. No allocation. */
export function sameAddress(ab: Uint8Array, a: number, bb: Uint8Array, b: number, family: 4 | 6): boolean {
  const n = family === 4 ? 4 : 16;
  for (let i = 0; i < n; i++) if (ab[a + i] !== bb[b + i]) return false;
  return true;
}
