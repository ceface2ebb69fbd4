/**
 * Send-path segmentation: turns what a TUN opened with IFF_VNET_HDR hands over — a plain packet,
 * a packet whose transport checksum is only partial, or a TCP/UDP super-packet up to 64 KiB — into
 * wire-ready IP packets of at most one MTU, each with a complete IPv4 header checksum and TCP/UDP
 * checksum. The rules match what the kernel's own GSO does: every segment repeats the IP and
 * transport headers; IPv4 total length and ID (+1 per segment) or IPv6 payload length are
 * rewritten; TCP sequence numbers advance by the segment size; FIN and PSH stay on the last
 * segment only and CWR on the first only; UDP segments get their own length and checksum.
 *
 * Pure and allocation-free: output goes into caller-owned buffers at a fixed offset (so the
 * encrypt worker can segment straight into its batch slots behind the WireGuard header).
 *
 * @module
 */

import { checksumOf, PROTO_TCP, PROTO_UDP, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { copyBytes } from "./copy-sum.ts";
import {
  getU16,
  getU32,
  IPV4_CHECKSUM,
  IPV4_ID,
  IPV4_MIN_HEADER,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOTAL_LENGTH,
  IPV6_HEADER,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
  IPV6_SRC,
  putU16,
  putU32,
  TCP_CHECKSUM,
  TCP_CWR,
  TCP_DATA_OFFSET,
  TCP_FIN,
  TCP_FLAGS,
  TCP_MIN_HEADER,
  TCP_PSH,
  TCP_SEQ,
  UDP_CHECKSUM,
  UDP_HEADER,
  UDP_LENGTH,
} from "./packet-layout.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  type VirtioNetHdr,
} from "./virtio-net-hdr.ts";

/** Why a packet could not be segmented (negative results of {@link segmentPacket}). */
export const SegmentError = {
  /** The virtio header contradicts the packet (wrong IP version/protocol, offsets out of range). */
  BadHeader: -1,
  /** More segments than the caller has output slots. */
  TooManySegments: -2,
  /** A segment would not fit in an output buffer. */
  SegmentTooLarge: -3,
  /** The gso_type is one this code does not handle (e.g. legacy UFO). */
  Unsupported: -4,
} as const;

/** A negative {@link SegmentError} value. */
export type SegmentErrorCode = typeof SegmentError[keyof typeof SegmentError];

/**
 * Writes the packet `src[srcOff, srcOff+srcLen)` described by `hdr` as one or more complete IP
 * packets: packet k goes to `outBufs[outStart+k]` at `outOff`, its length to `outLens[outStart+k]`.
 * At most `maxSegments` are written. Returns how many, or a negative {@link SegmentError}.
 */
export function segmentPacket(
  hdr: VirtioNetHdr,
  src: Uint8Array,
  srcOff: number,
  srcLen: number,
  outBufs: readonly Uint8Array[],
  outOff: number,
  outLens: Int32Array,
  outStart: number,
  maxSegments: number,
): number {
  if (maxSegments < 1) return SegmentError.TooManySegments;
  const kind = hdr.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
  if (kind === VIRTIO_NET_HDR_GSO_NONE) {
    const dst = outBufs[outStart];
    if (outOff + srcLen > dst.length) return SegmentError.SegmentTooLarge;
    copyBytes(src, srcOff, srcLen, dst, outOff);
    if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
      if (!completeChecksum(dst, outOff, srcLen, hdr.csumStart, hdr.csumOffset)) {
        return SegmentError.BadHeader;
      }
    }
    outLens[outStart] = srcLen;
    return 1;
  }
  const isTcp = kind === VIRTIO_NET_HDR_GSO_TCPV4 || kind === VIRTIO_NET_HDR_GSO_TCPV6;
  if (!isTcp && kind !== VIRTIO_NET_HDR_GSO_UDP_L4) return SegmentError.Unsupported;
  if (srcLen < 1 || hdr.gsoSize < 1) return SegmentError.BadHeader;
  const version = src[srcOff] >> 4;
  const v6 = version === 6;
  if (version !== 4 && !v6) return SegmentError.BadHeader;
  if ((kind === VIRTIO_NET_HDR_GSO_TCPV4 && v6) || (kind === VIRTIO_NET_HDR_GSO_TCPV6 && !v6)) {
    return SegmentError.BadHeader;
  }
  const protocol = isTcp ? PROTO_TCP : PROTO_UDP;
  const iphLen = hdr.csumStart;
  if (v6) {
    if (iphLen < IPV6_HEADER) return SegmentError.BadHeader;
    if (iphLen === IPV6_HEADER && src[srcOff + IPV6_NEXT_HEADER] !== protocol) return SegmentError.BadHeader;
  } else {
    if (iphLen !== (src[srcOff] & 0x0f) * 4 || iphLen < IPV4_MIN_HEADER) return SegmentError.BadHeader;
    if (src[srcOff + IPV4_PROTOCOL] !== protocol) return SegmentError.BadHeader;
  }
  if (iphLen + (isTcp ? TCP_MIN_HEADER : UDP_HEADER) > srcLen) return SegmentError.BadHeader;
  const l4hLen = isTcp ? (src[srcOff + iphLen + TCP_DATA_OFFSET] >> 4) * 4 : UDP_HEADER;
  if (l4hLen < (isTcp ? TCP_MIN_HEADER : UDP_HEADER)) return SegmentError.BadHeader;
  const hdrLen = iphLen + l4hLen;
  if (hdrLen > srcLen) return SegmentError.BadHeader;
  const gsoSize = hdr.gsoSize;
  const payloadLen = srcLen - hdrLen;
  const count = payloadLen === 0 ? 1 : Math.ceil(payloadLen / gsoSize);
  if (count > maxSegments) return SegmentError.TooManySegments;
  for (let k = 0; k < count; k++) {
    if (outOff + hdrLen + (count === 1 ? payloadLen : gsoSize) > outBufs[outStart + k].length) {
      return SegmentError.SegmentTooLarge;
    }
  }

  const srcAt = v6 ? IPV6_SRC : IPV4_SRC;
  const addrLen = v6 ? 16 : 4;
  const firstId = v6 ? 0 : getU16(src, srcOff + IPV4_ID);
  const firstSeq = isTcp ? getU32(src, srcOff + iphLen + TCP_SEQ) : 0;
  const originalFlags = isTcp ? src[srcOff + iphLen + TCP_FLAGS] : 0;
  let payloadAt = srcOff + hdrLen;
  let remaining = payloadLen;
  for (let k = 0; k < count; k++) {
    const dst = outBufs[outStart + k];
    const chunk = remaining < gsoSize ? remaining : gsoSize;
    const segLen = hdrLen + chunk;
    copyBytes(src, srcOff, hdrLen, dst, outOff);
    copyBytes(src, payloadAt, chunk, dst, outOff + hdrLen);
    const payloadSum = sumBytes(dst, outOff + hdrLen, outOff + hdrLen + chunk, 0);
    payloadAt += chunk;
    remaining -= chunk;

    if (v6) {
      putU16(dst, outOff + IPV6_PAYLOAD_LENGTH, segLen - IPV6_HEADER);
    } else {
      putU16(dst, outOff + IPV4_TOTAL_LENGTH, segLen);
      putU16(dst, outOff + IPV4_ID, (firstId + k) & 0xffff);
      putU16(dst, outOff + IPV4_CHECKSUM, 0);
      putU16(dst, outOff + IPV4_CHECKSUM, checksumOf(sumBytes(dst, outOff, outOff + iphLen, 0)));
    }

    const l4 = outOff + iphLen;
    let csumAt: number;
    if (isTcp) {
      putU32(dst, l4 + TCP_SEQ, firstSeq + k * gsoSize);
      let flags = originalFlags;
      if (k !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (k !== 0) flags &= ~TCP_CWR;
      dst[l4 + TCP_FLAGS] = flags;
      csumAt = l4 + TCP_CHECKSUM;
    } else {
      putU16(dst, l4 + UDP_LENGTH, l4hLen + chunk);
      csumAt = l4 + UDP_CHECKSUM;
    }
    putU16(dst, csumAt, 0);
    const l4Len = l4hLen + chunk;
    let sum = pseudoHeaderSum(dst, outOff + srcAt, addrLen, protocol, l4Len);
    sum = sumBytes(dst, l4, l4 + l4hLen, sum) + payloadSum;
    const csum = checksumOf(sum);
    putU16(dst, csumAt, csum === 0 ? 0xffff : csum);
    outLens[outStart + k] = segLen;
  }
  return count;
}

/**
 * Completes a partial transport checksum in place (what the kernel does for CHECKSUM_PARTIAL):
 * the field at `csumStart + csumOffset` holds the pseudo-header sum; the complement of the sum over
 * `[csumStart, len)` is stored there. Returns false when the offsets fall outside the packet.
 */
export function completeChecksum(
  buf: Uint8Array,
  off: number,
  len: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  if (csumStart + csumOffset + 2 > len) return false;
  const csum = checksumOf(sumBytes(buf, off + csumStart, off + len, 0));
  putU16(buf, off + csumStart + csumOffset, csum === 0 ? 0xffff : csum);
  return true;
}
