/**
 * Field offsets of the IPv4, IPv6, TCP and UDP headers the offload code reads and rewrites, so
 * segmentation and coalescing name fields instead of using bare numbers.
 *
 * @module
 */

/** IPv4: version/IHL byte. */
export const IPV4_VERSION_IHL = 0;
/** IPv4: type of service. */
export const IPV4_TOS = 1;
/** IPv4: total length (16 bits). */
export const IPV4_TOTAL_LENGTH = 2;
/** IPv4: identification (16 bits). */
export const IPV4_ID = 4;
/** IPv4: flags and fragment offset (16 bits). */
export const IPV4_FLAGS_FRAGMENT = 6;
/** IPv4: time to live. */
export const IPV4_TTL = 8;
/** IPv4: protocol. */
export const IPV4_PROTOCOL = 9;
/** IPv4: header checksum (16 bits). */
export const IPV4_CHECKSUM = 10;
/** IPv4: source address (destination follows). */
export const IPV4_SRC = 12;
/** IPv4 header without options. */
export const IPV4_MIN_HEADER = 20;
/** IPv4 flags byte: more fragments. */
export const IPV4_FLAG_MF = 0x20;

/** IPv6: payload length (16 bits). */
export const IPV6_PAYLOAD_LENGTH = 4;
/** IPv6: next header. */
export const IPV6_NEXT_HEADER = 6;
/** IPv6: hop limit. */
export const IPV6_HOP_LIMIT = 7;
/** IPv6: source address (destination follows). */
export const IPV6_SRC = 8;
/** IPv6 fixed header. */
export const IPV6_HEADER = 40;

/** TCP: sequence number (32 bits). */
export const TCP_SEQ = 4;
/** TCP: acknowledgement number (32 bits). */
export const TCP_ACK = 8;
/** TCP: data offset (high nibble, in 32-bit words). */
export const TCP_DATA_OFFSET = 12;
/** TCP: flags byte. */
export const TCP_FLAGS = 13;
/** TCP: checksum (16 bits); also the virtio csum_offset for TCP. */
export const TCP_CHECKSUM = 16;
/** TCP header without options. */
export const TCP_MIN_HEADER = 20;
/** TCP header with the most options. */
export const TCP_MAX_HEADER = 60;
/** TCP flag FIN. */
export const TCP_FIN = 0x01;
/** TCP flag SYN. */
export const TCP_SYN = 0x02;
/** TCP flag RST. */
export const TCP_RST = 0x04;
/** TCP flag PSH. */
export const TCP_PSH = 0x08;
/** TCP flag ACK. */
export const TCP_ACK_FLAG = 0x10;
/** TCP flag CWR. */
export const TCP_CWR = 0x80;

/** UDP: length (16 bits). */
export const UDP_LENGTH = 4;
/** UDP: checksum (16 bits); also the virtio csum_offset for UDP. */
export const UDP_CHECKSUM = 6;
/** UDP header. */
export const UDP_HEADER = 8;

/** Largest IP packet a 16-bit length field allows (also the largest GSO super-packet). */
export const MAX_IP_PACKET = 65535;

/** Reads a big-endian 16-bit field. */
export function getU16(buf: Uint8Array, at: number): number {
  return (buf[at] << 8) | buf[at + 1];
}

/** Writes a big-endian 16-bit field. */
export function putU16(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 8) & 0xff;
  buf[at + 1] = value & 0xff;
}

/** Reads a big-endian 32-bit field as an unsigned number. */
export function getU32(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/** Writes a big-endian 32-bit field (taken modulo 2^32). */
export function putU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 24) & 0xff;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}
