/**
 * Numbers of the IPv4/IPv6 wire formats the packet filter reads: protocol numbers, header sizes, the
 * ICMP/ICMPv6 message types it treats specially, and the bounds it puts on header walking. One home for
 * them, so the parser, the tracker and the rule tables agree.
 * @module
 */

/** IPv4 header without options. */
export const IPV4_MIN_HEADER = 20;
/** Fixed IPv6 header. */
export const IPV6_HEADER = 40;
/** Smallest TCP header (data offset 5). */
export const TCP_MIN_HEADER = 20;
/** UDP header. */
export const UDP_HEADER = 8;
/** ICMP/ICMPv6 header up to and including the echo identifier and sequence (or the error's unused word). */
export const ICMP_HEADER = 8;
/** Bytes of a transport header an ICMP error must quote for the filter to read its ports (RFC 792). */
export const QUOTED_L4_BYTES = 8;

/** IP protocol numbers (IPv4 protocol field, IPv6 next header). */
export const IPPROTO = {
  hopByHop: 0,
  icmp: 1,
  tcp: 6,
  udp: 17,
  routing: 43,
  fragment: 44,
  icmpv6: 58,
  noNextHeader: 59,
  destOptions: 60,
} as const;

/** Most IPv6 extension headers walked before a packet counts as malformed (a bound on work per packet). */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

/** IPv4 flags/fragment-offset field: more fragments. */
export const IPV4_MORE_FRAGMENTS = 0x2000;
/** IPv4 flags/fragment-offset field: the offset, in 8-byte units. */
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;
/** Largest IP datagram: no fragment may reach past it. */
export const MAX_DATAGRAM = 65535;

/** TCP flag bits. */
export const TCP_FLAG = { fin: 0x01, syn: 0x02, rst: 0x04, ack: 0x10 } as const;

/** ICMPv4 message types the filter distinguishes. */
export const ICMP4 = {
  echoReply: 0,
  destUnreachable: 3,
  echoRequest: 8,
  timeExceeded: 11,
  parameterProblem: 12,
} as const;

/** ICMPv6 message types the filter distinguishes. */
export const ICMP6 = {
  destUnreachable: 1,
  packetTooBig: 2,
  timeExceeded: 3,
  parameterProblem: 4,
  echoRequest: 128,
  echoReply: 129,
} as const;

/** Whether an ICMP(v6) type is an error message that quotes the packet it is about. */
export function isIcmpError(family: 4 | 6, type: number): boolean {
  return family === 4
    ? type === ICMP4.destUnreachable || type === ICMP4.timeExceeded || type === ICMP4.parameterProblem
    : type >= ICMP6.destUnreachable && type <= ICMP6.parameterProblem;
}

/** Whether an ICMP(v6) type is an echo request. */
export function isEchoRequest(family: 4 | 6, type: number): boolean {
  return type === (family === 4 ? ICMP4.echoRequest : ICMP6.echoRequest);
}

/** Whether an ICMP(v6) type is an echo reply. */
export function isEchoReply(family: 4 | 6, type: number): boolean {
  return type === (family === 4 ? ICMP4.echoReply : ICMP6.echoReply);
}

/** The ICMP protocol number of a family (1 for IPv4, 58 for IPv6). */
export function icmpProtoOf(family: 4 | 6): number {
  return family === 4 ? IPPROTO.icmp : IPPROTO.icmpv6;
}
