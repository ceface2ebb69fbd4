/**
 * `struct virtio_net_hdr` — the 10-byte header a TUN opened with IFF_VNET_HDR puts in front of
 * every packet read or written. It says whether the packet is a GSO super-packet (and of which
 * kind and segment size) and whether its transport checksum still has to be completed. Fields are
 * in the host's byte order (little-endian on every platform twofold runs on).
 *
 * @module
 */

/** Bytes of a virtio_net_hdr (the size TUNSETVNETHDRSZ is set to). */
export const VIRTIO_NET_HDR_LEN = 10;

/** flags: the transport checksum is partial; complete it from csumStart, store at csumOffset. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags: the checksum has been verified (the receiver may skip it). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

/** gso_type: not a super-packet. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** gso_type: IPv4 TCP super-packet (TSO). */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** gso_type: IPv4 UDP fragmentation offload (legacy UFO; never produced here). */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
/** gso_type: IPv6 TCP super-packet (TSO). */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** gso_type: UDP super-packet split into datagrams of gsoSize payload bytes (USO). */
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** gso_type bit: the TCP flow uses ECN (CWR belongs on the first segment only). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Decoded virtio_net_hdr; reuse one object per worker (the codec writes into it). */
export interface VirtioNetHdr {
  /** VIRTIO_NET_HDR_F_* bits. */
  flags: number;
  /** VIRTIO_NET_HDR_GSO_* kind, possibly with the ECN bit. */
  gsoType: number;
  /** Bytes of IP plus transport headers at the front of the packet. */
  hdrLen: number;
  /** Payload bytes per segment (0 when not a super-packet). */
  gsoSize: number;
  /** Where the checksummed range starts (the transport header), counted from the IP header. */
  csumStart: number;
  /** Where the checksum field is, counted from csumStart (16 for TCP, 6 for UDP). */
  csumOffset: number;
}

/** A zeroed header object (GSO_NONE, no flags). */
export function emptyVirtioNetHdr(): VirtioNetHdr {
  return { flags: 0, gsoType: VIRTIO_NET_HDR_GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

/** Reads the header at `buf[off, off+10)` into `out` and returns it. */
export function readVirtioNetHdr(buf: Uint8Array, off: number, out: VirtioNetHdr): VirtioNetHdr {
  out.flags = buf[off];
  out.gsoType = buf[off + 1];
  out.hdrLen = buf[off + 2] | (buf[off + 3] << 8);
  out.gsoSize = buf[off + 4] | (buf[off + 5] << 8);
  out.csumStart = buf[off + 6] | (buf[off + 7] << 8);
  out.csumOffset = buf[off + 8] | (buf[off + 9] << 8);
  return out;
}

/** Writes `hdr` at `buf[off, off+10)`. */
export function writeVirtioNetHdr(buf: Uint8Array, off: number, hdr: VirtioNetHdr): void {
  writeVirtioNetHdrFields(
    buf,
    off,
    hdr.flags,
    hdr.gsoType,
    hdr.hdrLen,
    hdr.gsoSize,
    hdr.csumStart,
    hdr.csumOffset,
  );
}

/** Writes a header from its fields (no object needed on the hot path). */
export function writeVirtioNetHdrFields(
  buf: Uint8Array,
  off: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  buf[off] = flags;
  buf[off + 1] = gsoType;
  buf[off + 2] = hdrLen & 0xff;
  buf[off + 3] = hdrLen >>> 8;
  buf[off + 4] = gsoSize & 0xff;
  buf[off + 5] = gsoSize >>> 8;
  buf[off + 6] = csumStart & 0xff;
  buf[off + 7] = csumStart >>> 8;
  buf[off + 8] = csumOffset & 0xff;
  buf[off + 9] = csumOffset >>> 8;
}

/** Writes the all-zero header: a plain packet, checksum complete. */
export function writePlainVirtioNetHdr(buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + VIRTIO_NET_HDR_LEN);
}
