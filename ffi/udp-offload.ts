/**
 * UDP segmentation and receive offload on the underlay socket: UDP_SEGMENT sends one buffer of
 * equal-sized datagrams (one sealed WireGuard message each) in one message, the kernel splitting it;
 * UDP_GRO hands over several datagrams of one sender in one buffer, with the datagram size in a
 * control message. {@link OffloadMsgBatch} is a recvmmsg/sendmmsg batch with a control area per
 * slot for both; with segment size 0 a slot is an ordinary datagram, so one batch serves with
 * offloads on and off.
 *
 * Fallbacks: {@link udpSegmentSupported} probes the kernel; a send refused with EIO (the device
 * cannot do it, e.g. checksum offload off) means the caller turns GSO off for that socket
 * ({@link isGsoRefusal}) and resends the batch as single datagrams.
 *
 * @module
 */

import { addressAt, EIO, libc, SOL_UDP, UDP_GRO, UDP_SEGMENT } from "./libc.ts";
import {
  ADDR_STRIDE,
  IOV_WORDS,
  IOV_WORDS_SIZE,
  IOVEC_SIZE,
  linkMessageSlot,
  MMSG_WORDS,
  MMSGHDR_SIZE,
  SOCKADDR_IN6_SIZE,
  writePointer,
} from "./udp.ts";

/** Bytes of control space per slot (a cmsghdr of 16 bytes plus an int, with room to spare). */
export const CONTROL_STRIDE = 32;
/** CMSG_LEN(sizeof(uint16_t)) for a UDP_SEGMENT message on 64-bit Linux. */
const CMSG_LEN_U16 = 18;
/** CMSG_SPACE(sizeof(uint16_t)) / CMSG_SPACE(sizeof(int)) on 64-bit Linux. */
const CMSG_SPACE_SMALL = 24;
/** Offset of the data in a cmsghdr (len 8, level 4, type 4). */
const CMSG_DATA = 16;
/** Most segments the kernel accepts in one UDP_SEGMENT send (UDP_MAX_SEGMENTS). */
export const UDP_MAX_SEGMENTS = 64;

/** True when the kernel knows UDP_SEGMENT on this socket (getsockopt succeeds). */
export function udpSegmentSupported(fd: number): boolean {
  const value = new Uint8Array(4);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 4, true);
  return libc.getsockopt(fd, SOL_UDP, UDP_SEGMENT, value, len) === 0;
}

/** Turns UDP_GRO on for the socket; false when the kernel refuses (then datagrams come one by one). */
export function enableUdpGro(fd: number): boolean {
  const one = new Uint8Array(4);
  new DataView(one.buffer).setInt32(0, 1, true);
  return libc.setsockopt(fd, SOL_UDP, UDP_GRO, one, 4) === 0;
}

/** True when a failed UDP_SEGMENT send's errno means "this device cannot do GSO: turn it off". */
export function isGsoRefusal(errnoValue: number): boolean {
  return errnoValue === EIO;
}

const align8 = (n: number) => (n + 7) & ~7;

function layout(count: number, bufSize: number) {
  const data = 0;
  const addrs = align8(count * bufSize);
  const lens = addrs + count * ADDR_STRIDE;
  const addrLens = lens + count * 4;
  const flags = addrLens + count * 4;
  const segments = flags + count * 4;
  const control = align8(segments + count * 4);
  const hdrs = control + count * CONTROL_STRIDE;
  const iovs = hdrs + count * MMSGHDR_SIZE;
  return {
    data,
    addrs,
    lens,
    addrLens,
    flags,
    segments,
    control,
    hdrs,
    iovs,
    total: iovs + count * IOVEC_SIZE,
  };
}

const W = MMSG_WORDS;

/**
 * A preallocated recvmmsg/sendmmsg batch whose slots may each carry many datagrams (GSO/GRO).
 * Slot buffers should be 64 KiB for GRO receive. No allocation per call.
 */
export class OffloadMsgBatch {
  /** Bytes needed for `count` slots of `bufSize`. */
  static byteLength(count: number, bufSize: number): number {
    return layout(count, bufSize).total;
  }

  /** Number of slots. */
  readonly count: number;
  /** Bytes per slot buffer. */
  readonly bufSize: number;
  /** Slot buffers. */
  readonly bufs: Uint8Array[];
  /** Bytes in each slot: set by {@link recv}, read by {@link send}. */
  readonly lens: Int32Array;
  /** Peer sockaddr per slot: the source after recv, the destination for send. */
  readonly addrs: Uint8Array[];
  /** Sockaddr length per slot. */
  readonly addrLens: Uint32Array;
  /** msg_flags per slot after {@link recv}. */
  readonly msgFlags: Int32Array;
  /**
   * Datagram size per slot. On send: > 0 and smaller than `lens[i]` makes slot i a UDP_SEGMENT
   * message (the kernel cuts it every segSizes[i] bytes); 0 sends it as one datagram. After recv:
   * the UDP_GRO size when the kernel coalesced several datagrams into the slot, else 0 (one datagram).
   */
  readonly segSizes: Int32Array;
  readonly #hdr32: Uint32Array;
  readonly #iov32: Uint32Array;
  readonly #controlView: DataView;
  readonly #hdrPointers: bigint[];

  /**
   * Allocates (or maps onto `sab` at `sabOffset`, a multiple of 8) a batch of `count` slots of
   * `bufSize` bytes. Sharing one backing with other buffers lets copies between them use memmove.
   */
  constructor(count: number, bufSize: number, sab?: SharedArrayBuffer, sabOffset = 0) {
    if (!Number.isInteger(count) || count < 1 || count > 1024) {
      throw new Error("OffloadMsgBatch count must be 1..1024");
    }
    if (!Number.isInteger(bufSize) || bufSize < 1) {
      throw new Error("OffloadMsgBatch bufSize must be positive");
    }
    const l = layout(count, bufSize);
    if (sab !== undefined && (sabOffset % 8 !== 0 || sabOffset + l.total > sab.byteLength)) {
      throw new Error(
        `OffloadMsgBatch needs ${l.total} bytes at an 8-aligned offset of the SharedArrayBuffer`,
      );
    }
    const backing = sab ?? new ArrayBuffer(l.total);
    const base = sab === undefined ? 0 : sabOffset;
    const memory = new Uint8Array(backing);
    this.count = count;
    this.bufSize = bufSize;
    this.bufs = [];
    this.addrs = [];
    for (let i = 0; i < count; i++) {
      this.bufs.push(new Uint8Array(backing, base + l.data + i * bufSize, bufSize));
      this.addrs.push(new Uint8Array(backing, base + l.addrs + i * ADDR_STRIDE, SOCKADDR_IN6_SIZE));
    }
    this.lens = new Int32Array(backing, base + l.lens, count);
    this.addrLens = new Uint32Array(backing, base + l.addrLens, count);
    this.msgFlags = new Int32Array(backing, base + l.flags, count);
    this.segSizes = new Int32Array(backing, base + l.segments, count);
    this.#controlView = new DataView(backing, base + l.control, count * CONTROL_STRIDE);
    this.#hdr32 = new Uint32Array(backing, base + l.hdrs, count * W.size);
    this.#iov32 = new Uint32Array(backing, base + l.iovs, count * IOV_WORDS_SIZE);
    const start = addressAt(memory, base);
    this.#hdrPointers = [];
    for (let i = 0; i < count; i++) {
      this.#hdrPointers.push(BigInt(start + l.hdrs + i * MMSGHDR_SIZE));
      linkMessageSlot(this.#hdr32, this.#iov32, i, {
        name: start + l.addrs + i * ADDR_STRIDE,
        iov: start + l.iovs + i * IOVEC_SIZE,
        data: start + l.data + i * bufSize,
      }, bufSize);
      writePointer(this.#hdr32, i * W.size + W.control, start + l.control + i * CONTROL_STRIDE);
    }
  }

  /**
   * recvmmsg(2) into all slots; fills lens, addrs, addrLens, msgFlags and segSizes for the slots
   * received. Returns how many, or -1 with errno set.
   */
  recv(fd: number, flags = 0): number {
    const hdr = this.#hdr32;
    for (let i = 0; i < this.count; i++) {
      hdr[i * W.size + W.nameLen] = SOCKADDR_IN6_SIZE;
      hdr[i * W.size + W.controlLen] = CONTROL_STRIDE;
      hdr[i * W.size + W.controlLen + 1] = 0;
      this.#iov32[i * IOV_WORDS_SIZE + IOV_WORDS.len] = this.bufSize;
    }
    const n = libc.recvmmsg(fd, this.#hdrPointers[0], this.count, flags, 0n);
    for (let i = 0; i < n; i++) {
      const h = i * W.size;
      this.lens[i] = hdr[h + W.msgLen];
      this.addrLens[i] = hdr[h + W.nameLen];
      this.msgFlags[i] = hdr[h + W.flags];
      this.segSizes[i] = this.#groSize(i, hdr[h + W.controlLen]);
    }
    return n;
  }

  #groSize(slot: number, controlLen: number): number {
    const base = slot * CONTROL_STRIDE;
    const v = this.#controlView;
    let at = 0;
    while (at + CMSG_DATA <= controlLen) {
      const len = v.getUint32(base + at, true);
      if (len < CMSG_DATA) break;
      if (v.getInt32(base + at + 8, true) === SOL_UDP && v.getInt32(base + at + 12, true) === UDP_GRO) {
        return v.getInt32(base + at + CMSG_DATA, true);
      }
      at += align8(len);
    }
    return 0;
  }

  /**
   * sendmmsg(2) of slots start..start+n-1: `lens[i]` bytes of `bufs[i]` to `addrs[i]`, cut into
   * `segSizes[i]`-byte datagrams when that is set (see {@link segSizes}). Returns how many slots
   * were sent, or -1 with errno set (EIO: see {@link isGsoRefusal}).
   */
  send(fd: number, n: number, start = 0, flags = 0): number {
    if (n <= 0) return 0;
    if (start < 0 || start + n > this.count) throw new RangeError("OffloadMsgBatch.send: slots out of range");
    const hdr = this.#hdr32;
    const v = this.#controlView;
    for (let i = start; i < start + n; i++) {
      const h = i * W.size;
      const len = this.lens[i];
      this.#iov32[i * IOV_WORDS_SIZE + IOV_WORDS.len] = len < 0 ? 0 : len > this.bufSize ? this.bufSize : len;
      hdr[h + W.nameLen] = this.addrLens[i];
      const seg = this.segSizes[i];
      if (seg > 0 && seg < len) {
        const base = i * CONTROL_STRIDE;
        v.setUint32(base, CMSG_LEN_U16, true);
        v.setUint32(base + 4, 0, true);
        v.setInt32(base + 8, SOL_UDP, true);
        v.setInt32(base + 12, UDP_SEGMENT, true);
        v.setUint16(base + CMSG_DATA, seg, true);
        hdr[h + W.controlLen] = CMSG_SPACE_SMALL;
      } else {
        hdr[h + W.controlLen] = 0;
      }
      hdr[h + W.controlLen + 1] = 0;
    }
    return libc.sendmmsg(fd, this.#hdrPointers[start], n, flags);
  }

  /** Copies a raw sockaddr (16 or 28 bytes) into slot `i`'s destination. */
  setAddr(i: number, sockaddr: Uint8Array, len: number): void {
    for (let k = 0; k < len; k++) this.addrs[i][k] = sockaddr[k];
    this.addrLens[i] = len;
  }
}
