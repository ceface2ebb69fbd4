/**
 * Receive-path coalescing (GRO): before decrypted packets are written to a TUN opened with
 * IFF_VNET_HDR, consecutive segments of one TCP flow — and, when the TUN accepts USO, of one UDP
 * flow — are merged into one super-packet with a virtio_net_hdr, so the kernel's stack handles one
 * large packet instead of dozens. The rules follow the kernel's GRO (and wireguard-go's):
 *
 * - candidates: IPv4 without options and not fragmented, or IPv6 without extension headers;
 *   TCP with exactly ACK or ACK|PSH and a non-empty payload; UDP with a non-empty payload (and,
 *   over IPv4, a checksum present);
 * - one flow: same addresses and ports, and for TCP the same acknowledgement number;
 * - same IP fields: IPv4 TOS, TTL and DF bit; IPv6 first word (traffic class, flow label) and hop
 *   limit; TCP header length and options byte for byte;
 * - in order: a TCP segment is appended only when its sequence number continues the super-packet;
 *   UDP datagrams join only the newest packet of their flow, so datagrams are never reordered;
 * - sizes: the first segment's payload is the segment size; later ones may be equal or one final
 *   shorter one; nothing follows a shorter segment or a PSH; the result stays ≤ 65 535 bytes;
 * - checksums: both segments must carry a valid checksum (a bad one is written alone, so the
 *   kernel drops it as it would have).
 *
 * A merged packet gets NEEDS_CSUM with the pseudo-header sum in its checksum field (the kernel
 * completes it), a fresh IPv4 header checksum and length. Every written packet gets a header.
 *
 * Allocation-free after construction.
 *
 * @module
 */

import { checksumOf, foldSum, PROTO_TCP, PROTO_UDP, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { copyBytes } from "./copy-sum.ts";
import {
  getU16,
  getU32,
  IPV4_CHECKSUM,
  IPV4_FLAG_MF,
  IPV4_FLAGS_FRAGMENT,
  IPV4_MIN_HEADER,
  IPV4_PROTOCOL,
  IPV4_SRC,
  IPV4_TOS,
  IPV4_TOTAL_LENGTH,
  IPV4_TTL,
  IPV6_HEADER,
  IPV6_HOP_LIMIT,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LENGTH,
  IPV6_SRC,
  MAX_IP_PACKET,
  putU16,
  TCP_ACK,
  TCP_ACK_FLAG,
  TCP_CHECKSUM,
  TCP_DATA_OFFSET,
  TCP_FLAGS,
  TCP_MAX_HEADER,
  TCP_MIN_HEADER,
  TCP_PSH,
  TCP_SEQ,
  UDP_CHECKSUM,
  UDP_HEADER,
  UDP_LENGTH,
} from "./packet-layout.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
  writePlainVirtioNetHdr,
  writeVirtioNetHdrFields,
} from "./virtio-net-hdr.ts";

/** Packet kinds the coalescer tracks; NONE is written as it came. */
const enum Kind {
  NONE = -1,
  TCP4 = 0,
  TCP6 = 1,
  UDP4 = 2,
  UDP6 = 3,
}

/** Options for {@link GroBatch}. */
export interface GroOptions {
  /** Coalesce UDP too (only when the TUN accepted TUN_F_USO4/6; the kernel needs it for UDP_L4). */
  udp: boolean;
}

/**
 * Coalesces one batch of decrypted IP packets in place. Reuse one instance per worker; each call
 * starts from an empty flow table.
 */
export class GroBatch {
  /** Most packets one {@link coalesce} call accepts. */
  readonly capacity: number;
  /** After {@link coalesce}: the slots to write to the TUN, in order (first `n` entries). */
  readonly writeOrder: Int32Array;
  /** After {@link coalesce}: how many original packets each written slot carries, indexed like writeOrder (1 = alone). */
  readonly segmentsPerSlot: Int32Array;
  readonly #udp: boolean;
  readonly #slotItem: Int32Array;
  readonly #merged: Uint8Array;
  readonly #itemSlot: Int32Array;
  readonly #itemKind: Int32Array;
  readonly #itemL4hLen: Int32Array;
  readonly #itemGso: Int32Array;
  readonly #itemCount: Int32Array;
  readonly #itemLen: Int32Array;
  readonly #itemNextSeq: Float64Array;
  readonly #itemOpen: Uint8Array;
  #items = 0;

  /** Prepares tables for batches of up to `capacity` packets. */
  constructor(capacity: number, options: GroOptions) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error("GroBatch capacity must be a positive integer");
    }
    this.capacity = capacity;
    this.#udp = options.udp;
    this.writeOrder = new Int32Array(capacity);
    this.segmentsPerSlot = new Int32Array(capacity);
    this.#slotItem = new Int32Array(capacity);
    this.#merged = new Uint8Array(capacity);
    this.#itemSlot = new Int32Array(capacity);
    this.#itemKind = new Int32Array(capacity);
    this.#itemL4hLen = new Int32Array(capacity);
    this.#itemGso = new Int32Array(capacity);
    this.#itemCount = new Int32Array(capacity);
    this.#itemLen = new Int32Array(capacity);
    this.#itemNextSeq = new Float64Array(capacity);
    this.#itemOpen = new Uint8Array(capacity);
  }

  /**
   * Coalesces packets `bufs[i][off, off+lens[i])` for i in [0, count). `off` must leave room for a
   * virtio_net_hdr in front (off ≥ 10): every slot listed in {@link writeOrder} gets one at
   * `off - 10`, and its `lens[i]` becomes the (possibly larger) IP packet length; the TUN write is
   * then `bufs[i][off-10, off+lens[i])`. Merged payload is appended in the first packet's buffer,
   * so buffers must hold up to 65 535 bytes after `off` for merges to reach full size (a merge that
   * would not fit is simply not made). Returns how many slots to write.
   */
  coalesce(bufs: readonly Uint8Array[], off: number, lens: Int32Array, count: number): number {
    if (off < VIRTIO_NET_HDR_LEN) {
      throw new RangeError("GroBatch.coalesce: offset leaves no room for the header");
    }
    if (count > this.capacity) throw new RangeError("GroBatch.coalesce: more packets than capacity");
    this.#items = 0;
    for (let i = 0; i < count; i++) {
      this.#merged[i] = 0;
      this.#slotItem[i] = -1;
      const kind = this.#classify(bufs[i], off, lens[i]);
      if (kind === Kind.NONE) continue;
      if (!this.#tryMerge(bufs, off, lens, i, kind)) this.#insert(bufs[i], off, lens[i], i, kind);
    }
    let n = 0;
    for (let i = 0; i < count; i++) {
      if (this.#merged[i] === 1) continue;
      const item = this.#slotItem[i];
      if (item >= 0 && this.#itemCount[item] > 1) {
        lens[i] = this.#finish(bufs[i], off, item);
        this.segmentsPerSlot[n] = this.#itemCount[item];
      } else {
        writePlainVirtioNetHdr(bufs[i], off - VIRTIO_NET_HDR_LEN);
        this.segmentsPerSlot[n] = 1;
      }
      this.writeOrder[n++] = i;
    }
    return n;
  }

  #classify(b: Uint8Array, off: number, len: number): Kind {
    if (len < IPV4_MIN_HEADER) return Kind.NONE;
    const version = b[off] >> 4;
    let iphLen: number;
    let protocol: number;
    if (version === 4) {
      if ((b[off] & 0x0f) * 4 !== IPV4_MIN_HEADER) return Kind.NONE;
      if (getU16(b, off + IPV4_TOTAL_LENGTH) !== len) return Kind.NONE;
      const frag = getU16(b, off + IPV4_FLAGS_FRAGMENT);
      if ((b[off + IPV4_FLAGS_FRAGMENT] & IPV4_FLAG_MF) !== 0 || (frag & 0x1fff) !== 0) return Kind.NONE;
      iphLen = IPV4_MIN_HEADER;
      protocol = b[off + IPV4_PROTOCOL];
    } else if (version === 6) {
      if (len < IPV6_HEADER || getU16(b, off + IPV6_PAYLOAD_LENGTH) !== len - IPV6_HEADER) return Kind.NONE;
      iphLen = IPV6_HEADER;
      protocol = b[off + IPV6_NEXT_HEADER];
    } else {
      return Kind.NONE;
    }
    const l4 = off + iphLen;
    if (protocol === PROTO_TCP) {
      if (len < iphLen + TCP_MIN_HEADER) return Kind.NONE;
      const tcphLen = (b[l4 + TCP_DATA_OFFSET] >> 4) * 4;
      if (tcphLen < TCP_MIN_HEADER || tcphLen > TCP_MAX_HEADER || iphLen + tcphLen >= len) return Kind.NONE;
      const flags = b[l4 + TCP_FLAGS];
      if (flags !== TCP_ACK_FLAG && flags !== (TCP_ACK_FLAG | TCP_PSH)) return Kind.NONE;
      return version === 4 ? Kind.TCP4 : Kind.TCP6;
    }
    if (protocol === PROTO_UDP && this.#udp) {
      if (len <= iphLen + UDP_HEADER || getU16(b, l4 + UDP_LENGTH) !== len - iphLen) return Kind.NONE;
      if (version === 4 && getU16(b, l4 + UDP_CHECKSUM) === 0) return Kind.NONE;
      return version === 4 ? Kind.UDP4 : Kind.UDP6;
    }
    return Kind.NONE;
  }

  #insert(b: Uint8Array, off: number, len: number, slot: number, kind: Kind): void {
    const item = this.#items++;
    const iphLen = ipHeaderLength(kind);
    const isTcp = kind === Kind.TCP4 || kind === Kind.TCP6;
    const l4hLen = isTcp ? (b[off + iphLen + TCP_DATA_OFFSET] >> 4) * 4 : UDP_HEADER;
    const payload = len - iphLen - l4hLen;
    this.#itemSlot[item] = slot;
    this.#itemKind[item] = kind;
    this.#itemL4hLen[item] = l4hLen;
    this.#itemGso[item] = payload;
    this.#itemCount[item] = 1;
    this.#itemLen[item] = len;
    this.#itemNextSeq[item] = isTcp ? (getU32(b, off + iphLen + TCP_SEQ) + payload) % 0x100000000 : 0;
    // Still accepting: a TCP head with PSH takes nothing after it.
    this.#itemOpen[item] = isTcp && (b[off + iphLen + TCP_FLAGS] & TCP_PSH) !== 0 ? 0 : 1;
    this.#slotItem[slot] = item;
  }

  #tryMerge(bufs: readonly Uint8Array[], off: number, lens: Int32Array, slot: number, kind: Kind): boolean {
    const pkt = bufs[slot];
    const len = lens[slot];
    const isTcp = kind === Kind.TCP4 || kind === Kind.TCP6;
    const iphLen = ipHeaderLength(kind);
    const v6 = kind === Kind.TCP6 || kind === Kind.UDP6;
    const l4hLen = isTcp ? (pkt[off + iphLen + TCP_DATA_OFFSET] >> 4) * 4 : UDP_HEADER;
    const payload = len - iphLen - l4hLen;
    let pktChecked = false;
    for (let item = this.#items - 1; item >= 0; item--) {
      if (this.#itemKind[item] !== kind) continue;
      const head = bufs[this.#itemSlot[item]];
      if (!sameFlow(head, pkt, off, iphLen, v6, isTcp)) continue;
      if (
        this.#itemOpen[item] === 1 &&
        this.#itemL4hLen[item] === l4hLen &&
        payload <= this.#itemGso[item] &&
        this.#itemLen[item] + payload <= MAX_IP_PACKET &&
        off + this.#itemLen[item] + payload <= head.length &&
        sameIpFields(head, pkt, off, v6) &&
        (!isTcp || sameTcpOptions(head, pkt, off + iphLen, l4hLen)) &&
        (!isTcp || getU32(pkt, off + iphLen + TCP_SEQ) === this.#itemNextSeq[item])
      ) {
        if (
          this.#itemCount[item] === 1 &&
          !transportChecksumValid(head, off, this.#itemLen[item], iphLen, v6, isTcp)
        ) {
          this.#itemKind[item] = Kind.NONE; // a bad head is written alone; never merge into it
        } else {
          if (!pktChecked) {
            if (!transportChecksumValid(pkt, off, len, iphLen, v6, isTcp)) return true; // written alone below
            pktChecked = true;
          }
          copyBytes(pkt, off + iphLen + l4hLen, payload, head, off + this.#itemLen[item]);
          this.#itemLen[item] += payload;
          this.#itemCount[item]++;
          if (payload < this.#itemGso[item]) this.#itemOpen[item] = 0;
          if (isTcp) {
            this.#itemNextSeq[item] = (this.#itemNextSeq[item] + payload) % 0x100000000;
            if ((pkt[off + iphLen + TCP_FLAGS] & TCP_PSH) !== 0) {
              head[off + iphLen + TCP_FLAGS] |= TCP_PSH;
              this.#itemOpen[item] = 0;
            }
          }
          this.#merged[slot] = 1;
          return true;
        }
      }
      if (!isTcp) return false; // UDP joins only the newest packet of its flow (no reordering)
    }
    return false;
  }

  /** Rewrites the merged head's lengths and checksums and writes its GSO header; returns its length. */
  #finish(b: Uint8Array, off: number, item: number): number {
    const kind = this.#itemKind[item];
    const len = this.#itemLen[item];
    const isTcp = kind === Kind.TCP4 || kind === Kind.TCP6;
    const v6 = kind === Kind.TCP6 || kind === Kind.UDP6;
    const iphLen = ipHeaderLength(kind);
    const l4hLen = this.#itemL4hLen[item];
    if (v6) {
      putU16(b, off + IPV6_PAYLOAD_LENGTH, len - IPV6_HEADER);
    } else {
      putU16(b, off + IPV4_TOTAL_LENGTH, len);
      putU16(b, off + IPV4_CHECKSUM, 0);
      putU16(b, off + IPV4_CHECKSUM, checksumOf(sumBytes(b, off, off + iphLen, 0)));
    }
    const csumOffset = isTcp ? TCP_CHECKSUM : UDP_CHECKSUM;
    if (!isTcp) putU16(b, off + iphLen + UDP_LENGTH, len - iphLen);
    const pseudo = pseudoHeaderSum(
      b,
      off + (v6 ? IPV6_SRC : IPV4_SRC),
      v6 ? 16 : 4,
      isTcp ? PROTO_TCP : PROTO_UDP,
      len - iphLen,
    );
    putU16(b, off + iphLen + csumOffset, foldSum(pseudo));
    const gsoType = isTcp
      ? (v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4)
      : VIRTIO_NET_HDR_GSO_UDP_L4;
    writeVirtioNetHdrFields(
      b,
      off - VIRTIO_NET_HDR_LEN,
      VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType,
      iphLen + l4hLen,
      this.#itemGso[item],
      iphLen,
      csumOffset,
    );
    return len;
  }
}

function ipHeaderLength(kind: Kind): number {
  return kind === Kind.TCP6 || kind === Kind.UDP6 ? IPV6_HEADER : IPV4_MIN_HEADER;
}

/** Same addresses and ports (and, for TCP, the same acknowledgement number). */
function sameFlow(
  a: Uint8Array,
  b: Uint8Array,
  off: number,
  iphLen: number,
  v6: boolean,
  isTcp: boolean,
): boolean {
  const from = off + (v6 ? IPV6_SRC : IPV4_SRC);
  const to = from + (v6 ? 32 : 8);
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  const l4 = off + iphLen;
  for (let i = l4; i < l4 + 4; i++) if (a[i] !== b[i]) return false;
  if (isTcp) { for (let i = l4 + TCP_ACK; i < l4 + TCP_ACK + 4; i++) if (a[i] !== b[i]) return false; }
  return true;
}

/** IP header fields that must agree for two packets to become one (see the module comment). */
function sameIpFields(a: Uint8Array, b: Uint8Array, off: number, v6: boolean): boolean {
  if (v6) {
    return a[off] === b[off] && a[off + 1] === b[off + 1] && a[off + 2] === b[off + 2] &&
      a[off + 3] === b[off + 3] && a[off + IPV6_HOP_LIMIT] === b[off + IPV6_HOP_LIMIT];
  }
  return a[off + IPV4_TOS] === b[off + IPV4_TOS] &&
    a[off + IPV4_FLAGS_FRAGMENT] >> 5 === b[off + IPV4_FLAGS_FRAGMENT] >> 5 &&
    a[off + IPV4_TTL] === b[off + IPV4_TTL];
}

function sameTcpOptions(a: Uint8Array, b: Uint8Array, l4: number, tcphLen: number): boolean {
  for (let i = l4 + TCP_MIN_HEADER; i < l4 + tcphLen; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when the TCP/UDP checksum of the packet verifies (RFC 1071 over pseudo-header and segment). */
export function transportChecksumValid(
  b: Uint8Array,
  off: number,
  len: number,
  iphLen: number,
  v6: boolean,
  isTcp: boolean,
): boolean {
  const sum = pseudoHeaderSum(
    b,
    off + (v6 ? IPV6_SRC : IPV4_SRC),
    v6 ? 16 : 4,
    isTcp ? PROTO_TCP : PROTO_UDP,
    len - iphLen,
  );
  return checksumOf(sumBytes(b, off + iphLen, off + len, sum)) === 0;
}
