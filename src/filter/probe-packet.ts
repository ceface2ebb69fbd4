/**
 * Builds the packet a `twofold trace` question describes — "TCP from this peer to that address, port
 * 8080" — so the trace runs the data plane's own decision (`PacketFilter.decideInbound`, as a dry run)
 * on real bytes instead of re-implementing the rules. A SYN for TCP (a new connection), an 8-byte UDP
 * header, an echo request for ICMP/ICMPv6; checksums are zero (the filter does not read them).
 * @module
 */
import {
  icmpProtoOf,
  IPPROTO,
  IPV4_MIN_HEADER,
  IPV6_HEADER,
  TCP_FLAG,
  TCP_MIN_HEADER,
  UDP_HEADER,
} from "./ip-constants.ts";

/** What a trace asks about. */
export interface ProbeSpec {
  /** Source address (4 or 16 bytes). */
  src: Uint8Array;
  /** Destination address (same family). */
  dst: Uint8Array;
  /** Protocol. */
  proto: "tcp" | "udp" | "icmp";
  /** Destination port (TCP/UDP). */
  dstPort?: number;
  /** Source port (TCP/UDP); default 40000. */
  srcPort?: number;
  /** TCP flags; default a bare SYN (a new connection). */
  tcpFlags?: number;
}

/** Default source port of a probe. */
export const PROBE_SOURCE_PORT = 40000;
const ICMP_ECHO_BYTES = 8;
const DEFAULT_TTL = 64;

/** The probe packet for `spec`; throws RangeError for mismatched address families or a bad port. */
export function buildProbePacket(spec: ProbeSpec): Uint8Array {
  const family = spec.src.length === 4 ? 4 : 6;
  if ((spec.src.length !== 4 && spec.src.length !== 16) || spec.dst.length !== spec.src.length) {
    throw new RangeError("source and destination must both be IPv4 or both IPv6 addresses");
  }
  const port = (n: number | undefined, fallback: number) => {
    const v = n ?? fallback;
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new RangeError(`port ${v} is outside 0..65535`);
    return v;
  };
  const proto = spec.proto === "tcp" ? IPPROTO.tcp : spec.proto === "udp" ? IPPROTO.udp : icmpProtoOf(family);
  const l4Len = spec.proto === "tcp" ? TCP_MIN_HEADER : spec.proto === "udp" ? UDP_HEADER : ICMP_ECHO_BYTES;
  const ipLen = family === 4 ? IPV4_MIN_HEADER : IPV6_HEADER;
  const b = new Uint8Array(ipLen + l4Len);
  const dv = new DataView(b.buffer);
  if (family === 4) {
    b[0] = 0x45;
    dv.setUint16(2, b.length);
    b[8] = DEFAULT_TTL;
    b[9] = proto;
    b.set(spec.src, 12);
    b.set(spec.dst, 16);
  } else {
    b[0] = 0x60;
    dv.setUint16(4, l4Len);
    b[6] = proto;
    b[7] = DEFAULT_TTL;
    b.set(spec.src, 8);
    b.set(spec.dst, 24);
  }
  if (spec.proto === "icmp") {
    b[ipLen] = family === 4 ? 8 : 128; // echo request
  } else {
    dv.setUint16(ipLen, port(spec.srcPort, PROBE_SOURCE_PORT));
    dv.setUint16(ipLen + 2, port(spec.dstPort, 0));
    if (spec.proto === "tcp") {
      b[ipLen + 12] = (TCP_MIN_HEADER / 4) << 4;
      b[ipLen + 13] = spec.tcpFlags ?? TCP_FLAG.syn;
    } else {
      dv.setUint16(ipLen + 4, UDP_HEADER);
    }
  }
  return b;
}
