/**
 * UDP sockets through FFI: opening/binding, sockaddr encoding, and batched recvmmsg/sendmmsg with
 * preallocated buffers (no allocation per call on the data path).
 *
 * Address convention: a socket opened with `family: 6` or `"dual"` is AF_INET6, and every address
 * written for it must be a sockaddr_in6; IPv4 peers of a dual-stack socket are written as IPv4-mapped
 * IPv6 (::ffff:a.b.c.d), which is also what the kernel reports for them on receive. So addresses
 * received on a socket can be sent back on the same socket byte for byte. Pass `v4Mapped = true` to
 * {@link encodeSockaddr} for such sockets (see {@link usesV4Mapped}); for `family: 4` sockets write
 * plain sockaddr_in. {@link decodeSockaddr} turns mapped addresses back into dotted IPv4 text.
 *
 * @module
 */

import {
  addressAt,
  AF_INET,
  AF_INET6,
  bigLen,
  EADDRINUSE,
  EPERM,
  errno,
  IP_FREEBIND,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  libc,
  pointerAt,
  SO_BINDTODEVICE,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SysError,
} from "./libc.ts";
import { formatIp, isV4Mapped, parseIp } from "./ip-text.ts";

/** Size of struct sockaddr_in. */
export const SOCKADDR_IN_SIZE = 16;
/** Size of struct sockaddr_in6; every per-message address slot holds at least this much. */
export const SOCKADDR_IN6_SIZE = 28;
/** Offset of the big-endian port in a sockaddr_in and a sockaddr_in6. */
export const SOCKADDR_PORT = 2;
/** Offset of the address in a sockaddr_in. */
export const SIN_ADDR = 4;
/** Offset of the address in a sockaddr_in6 (after family, port and flowinfo). */
export const SIN6_ADDR = 8;
/** Offset of the IPv4 address inside an IPv4-mapped sockaddr_in6 (::ffff:a.b.c.d). */
export const SIN6_V4_MAPPED_ADDR = SIN6_ADDR + 12;
/** Offset of the scope id in a sockaddr_in6. */
const SIN6_SCOPE_ID = 24;
/** Bytes reserved per message address in a {@link MsgBatch} (28 rounded up to 8). */
export const ADDR_STRIDE = 32;
/** sizeof(struct mmsghdr) on 64-bit Linux: msghdr (56) + msg_len (4) + padding. */
export const MMSGHDR_SIZE = 64;
/** sizeof(struct iovec) on 64-bit Linux. */
export const IOVEC_SIZE = 16;

/** Socket family choice for {@link openUdp}. */
export type UdpFamily = 4 | 6 | "dual";

/** Options for {@link openUdp}. */
export interface UdpOptions {
  /** 4 = AF_INET; 6 = AF_INET6 with IPV6_V6ONLY; "dual" = AF_INET6 accepting IPv4 too. */
  family: UdpFamily;
  /** Local address to bind (default: any address of the family). */
  bindAddress?: string;
  /**
   * Interface the socket is tied to (SO_BINDTODEVICE, needs CAP_NET_RAW): it then receives only
   * datagrams that arrived through that interface, whatever their destination address. The
   * interface must exist.
   */
  bindDevice?: string;
  /** Receive buffer bytes (SO_RCVBUFFORCE when permitted, else SO_RCVBUF). */
  rcvbuf?: number;
  /** Send buffer bytes (SO_SNDBUFFORCE when permitted, else SO_SNDBUF). */
  sndbuf?: number;
  /** Open with SOCK_NONBLOCK. */
  nonBlocking?: boolean;
  /**
   * Set IP_FREEBIND: `bindAddress` need not exist on any interface yet (used to probe, before an
   * interface is up, whether its address and port will be bindable).
   */
  freeBind?: boolean;
}

/** An open, bound UDP socket. */
export interface UdpSocket {
  /** File descriptor. */
  fd: number;
  /** Bound local port (the kernel's choice when 0 was asked for). */
  port: number;
  /** The family the socket was opened with. */
  family: UdpFamily;
}

/** True when addresses for a socket of `family` must be sockaddr_in6 (IPv4 as v4-mapped). */
export function usesV4Mapped(family: UdpFamily): boolean {
  return family !== 4;
}

function setIntOpt(fd: number, level: number, opt: number, value: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return libc.setsockopt(fd, level, opt, b, 4);
}

function setBuffer(fd: number, force: number, plain: number, bytes: number, what: string): void {
  if (setIntOpt(fd, SOL_SOCKET, force, bytes) === 0) return;
  const e = errno();
  if (e !== EPERM || setIntOpt(fd, SOL_SOCKET, plain, bytes) !== 0) {
    throw new SysError(errno(), `setsockopt(${what})`);
  }
}

/**
 * Opens a UDP socket bound to `port` (0 = ephemeral) and reports the bound port. Throws a
 * SysError "UDP port N is in use …" on EADDRINUSE.
 */
export function openUdp(port: number, opts: UdpOptions): UdpSocket {
  const v6 = opts.family !== 4;
  const type = SOCK_DGRAM | SOCK_CLOEXEC | (opts.nonBlocking ? SOCK_NONBLOCK : 0);
  const fd = libc.socket(v6 ? AF_INET6 : AF_INET, type, 0);
  if (fd < 0) throw new SysError(errno(), "socket(UDP)");
  try {
    if (v6 && setIntOpt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts.family === 6 ? 1 : 0) !== 0) {
      throw new SysError(errno(), "setsockopt(IPV6_V6ONLY)");
    }
    if (opts.freeBind && setIntOpt(fd, IPPROTO_IP, IP_FREEBIND, 1) !== 0) {
      throw new SysError(errno(), "setsockopt(IP_FREEBIND)");
    }
    if (opts.rcvbuf !== undefined) setBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, opts.rcvbuf, "SO_RCVBUF");
    if (opts.sndbuf !== undefined) setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, opts.sndbuf, "SO_SNDBUF");
    if (opts.bindDevice !== undefined) {
      const name = new TextEncoder().encode(opts.bindDevice + "\0");
      if (libc.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) !== 0) {
        const e = errno();
        throw new SysError(
          e,
          "setsockopt(SO_BINDTODEVICE)",
          e === EPERM
            ? `cannot tie the UDP socket to interface ${opts.bindDevice}: needs root or CAP_NET_RAW`
            : `cannot tie the UDP socket to interface ${opts.bindDevice}`,
        );
      }
    }
    const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
    const len = encodeSockaddr(opts.bindAddress ?? (v6 ? "::" : "0.0.0.0"), port, sa, 0, v6);
    if (libc.bind(fd, sa, len) !== 0) {
      const e = errno();
      if (e === EADDRINUSE) {
        throw new SysError(
          e,
          "bind",
          `UDP port ${port} is in use (another process, or another twofold/WireGuard instance, holds it); choose another listen port`,
        );
      }
      throw new SysError(e, "bind", `cannot bind UDP ${opts.bindAddress ?? "*"}:${port}`);
    }
    const out = new Uint8Array(SOCKADDR_IN6_SIZE);
    const outLen = new Uint8Array(4);
    new DataView(outLen.buffer).setUint32(0, out.length, true);
    if (libc.getsockname(fd, out, outLen) !== 0) throw new SysError(errno(), "getsockname");
    return { fd, port: decodeSockaddr(out, 0).port, family: opts.family };
  } catch (e) {
    libc.close(fd);
    throw e;
  }
}

// ---- sockaddr ----

/**
 * Writes a sockaddr for `ip`:`port` at `out[off]` and returns its length (16 or 28). IPv6 text may
 * carry a zone ("fe80::1%eth0" or "%3"). With `v4Mapped`, IPv4 is written as an IPv4-mapped
 * sockaddr_in6 (required for AF_INET6 / dual-stack sockets); otherwise as sockaddr_in.
 */
export function encodeSockaddr(
  ip: string,
  port: number,
  out: Uint8Array,
  off: number,
  v4Mapped = false,
): number {
  let scope = 0;
  let text = ip;
  const pct = ip.indexOf("%");
  if (pct >= 0) {
    const zone = ip.slice(pct + 1);
    text = ip.slice(0, pct);
    scope = /^\d+$/.test(zone) ? Number(zone) : libc.if_nametoindex(new TextEncoder().encode(zone + "\0"));
    if (scope === 0) throw new Error(`unknown IPv6 zone "${zone}"`);
  }
  const bytes = parseIp(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port ${port}`);
  const dv = new DataView(out.buffer, out.byteOffset + off);
  if (bytes.length === 4 && !v4Mapped) {
    dv.setUint16(0, AF_INET, true);
    dv.setUint16(SOCKADDR_PORT, port, false);
    out.set(bytes, off + SIN_ADDR);
    out.fill(0, off + SIN_ADDR + 4, off + SOCKADDR_IN_SIZE);
    return SOCKADDR_IN_SIZE;
  }
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(SOCKADDR_PORT, port, false);
  dv.setUint32(4, 0, true); // flowinfo
  if (bytes.length === 4) {
    out.fill(0, off + SIN6_ADDR, off + SIN6_V4_MAPPED_ADDR - 2);
    out[off + SIN6_V4_MAPPED_ADDR - 2] = 0xff;
    out[off + SIN6_V4_MAPPED_ADDR - 1] = 0xff;
    out.set(bytes, off + SIN6_V4_MAPPED_ADDR);
  } else {
    out.set(bytes, off + SIN6_ADDR);
  }
  dv.setUint32(SIN6_SCOPE_ID, scope, true);
  return SOCKADDR_IN6_SIZE;
}

/**
 * Reads the sockaddr_in/in6 at `buf[off]`. IPv4-mapped IPv6 comes back as dotted IPv4; a non-zero
 * IPv6 scope id is appended as "%<index>". Throws on other families.
 */
export function decodeSockaddr(buf: Uint8Array, off: number): { ip: string; port: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset + off);
  const family = dv.getUint16(0, true);
  const port = dv.getUint16(SOCKADDR_PORT, false);
  if (family === AF_INET) return { ip: formatIp(buf, off + SIN_ADDR, 4), port };
  if (family === AF_INET6) {
    if (isV4Mapped(buf, off + SIN6_ADDR)) return { ip: formatIp(buf, off + SIN6_V4_MAPPED_ADDR, 4), port };
    const scope = dv.getUint32(SIN6_SCOPE_ID, true);
    const ip = formatIp(buf, off + SIN6_ADDR, 16);
    return { ip: scope === 0 ? ip : `${ip}%${scope}`, port };
  }
  throw new Error(`unsupported sockaddr family ${family}`);
}

/** Length of the sockaddr at `buf[off]` judged by its family (16, 28, or 0 if unknown). */
export function sockaddrLength(buf: Uint8Array, off: number): number {
  const family = buf[off] | (buf[off + 1] << 8);
  return family === AF_INET ? SOCKADDR_IN_SIZE : family === AF_INET6 ? SOCKADDR_IN6_SIZE : 0;
}

/**
 * Writes the address and port of the sockaddr at `buf[off]` into `out` as IP bytes (4 for IPv4 and
 * IPv4-mapped IPv6, else 16) followed by the big-endian port — the "source" WireGuard binds cookies
 * to — and returns how many bytes were written (6 or 18), or 0 for another family. Allocation-free.
 */
export function sockaddrIpPort(buf: Uint8Array, off: number, out: Uint8Array): number {
  const len = sockaddrLength(buf, off);
  if (len === 0) return 0;
  const v4 = len === SOCKADDR_IN_SIZE || isV4Mapped(buf, off + SIN6_ADDR);
  const ipAt = off + (len === SOCKADDR_IN_SIZE ? SIN_ADDR : v4 ? SIN6_V4_MAPPED_ADDR : SIN6_ADDR);
  const ipLen = v4 ? 4 : 16;
  for (let i = 0; i < ipLen; i++) out[i] = buf[ipAt + i];
  out[ipLen] = buf[off + SOCKADDR_PORT];
  out[ipLen + 1] = buf[off + SOCKADDR_PORT + 1];
  return ipLen + 2;
}

/**
 * True when the sockaddrs at `a[aOff]` and `b[bOff]` name the same endpoint (family, port, address,
 * and for IPv6 the scope). Allocation-free, for roaming checks on the data path.
 */
export function sockaddrEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  const len = sockaddrLength(a, aOff);
  if (len === 0 || len !== sockaddrLength(b, bOff)) return false;
  for (let i = 0; i < 4; i++) if (a[aOff + i] !== b[bOff + i]) return false; // family + port
  const start = len === SOCKADDR_IN_SIZE ? SIN_ADDR : SIN6_ADDR;
  const end = len === SOCKADDR_IN_SIZE ? SIN_ADDR + 4 : SOCKADDR_IN6_SIZE;
  for (let i = start; i < end; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

// ---- single datagrams ----

const socklenScratch = new Uint32Array(1);
const socklenPointer = pointerAt(new Uint8Array(socklenScratch.buffer), 0);

/**
 * sendto(2) of `buf[off, off+len)` to the sockaddr in `addrBuf[0, addrLen)`. Returns bytes sent or
 * -1 (read {@link errno}). No allocation per call.
 */
export function sendTo(
  fd: number,
  buf: Uint8Array,
  off: number,
  len: number,
  addrBuf: Uint8Array,
  addrLen: number,
  flags = 0,
): number {
  return libc.sendtoPtr(fd, pointerAt(buf, off), bigLen(len), flags, pointerAt(addrBuf, 0), addrLen);
}

/**
 * recvfrom(2) into `buf[off, off+len)`, writing the sender's sockaddr to `addrOut` (≥ 28 bytes
 * recommended). Returns bytes received or -1 (read {@link errno}). No allocation per call.
 */
export function recvFrom(
  fd: number,
  buf: Uint8Array,
  off: number,
  len: number,
  addrOut: Uint8Array,
  flags = 0,
): number {
  socklenScratch[0] = addrOut.length < 128 ? addrOut.length : 128;
  return libc.recvfromPtr(fd, pointerAt(buf, off), bigLen(len), flags, pointerAt(addrOut, 0), socklenPointer);
}

// ---- batches ----

const align8 = (n: number) => (n + 7) & ~7;

function layout(count: number, bufSize: number) {
  const data = 0;
  const addrs = align8(count * bufSize);
  const lens = addrs + count * ADDR_STRIDE;
  const addrLens = lens + count * 4;
  const flags = addrLens + count * 4;
  const hdrs = align8(flags + count * 4);
  const iovs = hdrs + count * MMSGHDR_SIZE;
  return { data, addrs, lens, addrLens, flags, hdrs, iovs, total: iovs + count * IOVEC_SIZE };
}

/**
 * struct mmsghdr and struct iovec as 32-bit words (x86_64): msg_name 0-1, msg_namelen 2, msg_iov 4-5,
 * msg_iovlen 6-7, msg_control 8-9, msg_controllen 10-11, msg_flags 12, msg_len 14; iov_base 0-1,
 * iov_len 2-3. Shared with the offload batch (udp-offload.ts).
 */
export const MMSG_WORDS = {
  name: 0,
  nameLen: 2,
  iov: 4,
  iovLen: 6,
  control: 8,
  controlLen: 10,
  flags: 12,
  msgLen: 14,
  /** Words per mmsghdr. */
  size: MMSGHDR_SIZE / 4,
} as const;
/** struct iovec as 32-bit words: iov_base 0-1, iov_len 2; {@link IOV_WORDS_SIZE} words per iovec. */
export const IOV_WORDS = { base: 0, len: 2 } as const;
/** Words per iovec. */
export const IOV_WORDS_SIZE = IOVEC_SIZE / 4;

/** Stores a native address as two little-endian 32-bit words at `index` (a pointer field). */
export function writePointer(u32: Uint32Array, index: number, address: number): void {
  u32[index] = address % 0x100000000;
  u32[index + 1] = Math.floor(address / 0x100000000);
}

/**
 * Points message `i` of an mmsghdr array (`hdr32`) and its one iovec (`iov32`) at native memory: its
 * address slot (a sockaddr_in6-sized name), its iovec, and the iovec at `bufSize` bytes of data. Both
 * batch types (plain and with a control message per slot) wire their slots with it.
 */
export function linkMessageSlot(
  hdr32: Uint32Array,
  iov32: Uint32Array,
  i: number,
  slot: { name: number; iov: number; data: number },
  bufSize: number,
): void {
  const h = i * MMSG_WORDS.size;
  const v = i * IOV_WORDS_SIZE;
  writePointer(hdr32, h + MMSG_WORDS.name, slot.name);
  hdr32[h + MMSG_WORDS.nameLen] = SOCKADDR_IN6_SIZE;
  writePointer(hdr32, h + MMSG_WORDS.iov, slot.iov);
  hdr32[h + MMSG_WORDS.iovLen] = 1;
  writePointer(iov32, v + IOV_WORDS.base, slot.data);
  iov32[v + IOV_WORDS.len] = bufSize;
}

/**
 * Preallocated message batch for recvmmsg/sendmmsg. The mmsghdr and iovec arrays are built once
 * and point into the batch's own buffers; {@link recv} and {@link send} only update lengths.
 * Memory (packet buffers, addresses, lengths, headers) lives in one ArrayBuffer, or in a caller's
 * SharedArrayBuffer of at least {@link MsgBatch.byteLength} bytes so other workers can see it.
 */
export class MsgBatch {
  /** Bytes needed to hold a batch of `count` messages of `bufSize` bytes. */
  static byteLength(count: number, bufSize: number): number {
    return layout(count, bufSize).total;
  }

  /** Number of message slots. */
  readonly count: number;
  /** Bytes per packet buffer. */
  readonly bufSize: number;
  /** Packet buffers, one per slot (each exactly bufSize bytes). */
  readonly bufs: Uint8Array[];
  /** Datagram length per slot: set by {@link recv}, read by {@link send}. */
  readonly lens: Int32Array;
  /** Peer sockaddr storage per slot (28 bytes each): source after recv, destination for send. */
  readonly addrs: Uint8Array[];
  /** Sockaddr length per slot (16 or 28). */
  readonly addrLens: Uint32Array;
  /** msg_flags per slot after {@link recv} (MSG_TRUNC marks a datagram larger than bufSize). */
  readonly msgFlags: Int32Array;
  readonly #hdr32: Uint32Array;
  readonly #iov32: Uint32Array;
  readonly #hdrPointers: bigint[];
  readonly #memory: Uint8Array;

  /** Allocates (or maps onto `sab` at `sabOffset`, a multiple of 8) a batch of `count` × `bufSize`. */
  constructor(count: number, bufSize: number, sab?: SharedArrayBuffer, sabOffset = 0) {
    if (!Number.isInteger(count) || count < 1 || count > 1024) {
      throw new Error("MsgBatch count must be 1..1024");
    }
    if (!Number.isInteger(bufSize) || bufSize < 1) {
      throw new Error("MsgBatch bufSize must be a positive integer");
    }
    const l = layout(count, bufSize);
    if (sab !== undefined && (sabOffset % 8 !== 0 || sabOffset + l.total > sab.byteLength)) {
      throw new Error(`MsgBatch needs ${l.total} bytes at an 8-aligned offset of the SharedArrayBuffer`);
    }
    const backing = sab ?? new ArrayBuffer(l.total);
    const base = sab === undefined ? 0 : sabOffset;
    this.count = count;
    this.bufSize = bufSize;
    this.#memory = new Uint8Array(backing, base, l.total);
    this.bufs = [];
    this.addrs = [];
    for (let i = 0; i < count; i++) {
      this.bufs.push(new Uint8Array(backing, base + l.data + i * bufSize, bufSize));
      this.addrs.push(new Uint8Array(backing, base + l.addrs + i * ADDR_STRIDE, SOCKADDR_IN6_SIZE));
    }
    this.lens = new Int32Array(backing, base + l.lens, count);
    this.addrLens = new Uint32Array(backing, base + l.addrLens, count);
    this.msgFlags = new Int32Array(backing, base + l.flags, count);
    this.#hdr32 = new Uint32Array(backing, base + l.hdrs, count * MMSGHDR_SIZE / 4);
    this.#iov32 = new Uint32Array(backing, base + l.iovs, count * IOVEC_SIZE / 4);
    const start = addressAt(this.#memory, 0);
    this.#hdrPointers = [];
    for (let i = 0; i < count; i++) this.#hdrPointers.push(BigInt(start + l.hdrs + i * MMSGHDR_SIZE));
    this.#hdr32.fill(0);
    this.#iov32.fill(0);
    for (let i = 0; i < count; i++) {
      linkMessageSlot(this.#hdr32, this.#iov32, i, {
        name: start + l.addrs + i * ADDR_STRIDE,
        iov: start + l.iovs + i * IOVEC_SIZE,
        data: start + l.data + i * bufSize,
      }, bufSize);
    }
  }

  /**
   * recvmmsg(2) into all slots. Returns the number of datagrams received (filling lens, addrs,
   * addrLens, msgFlags for slots 0..n-1), or -1 with {@link errno} set (EAGAIN when nothing is
   * waiting on a non-blocking socket or with MSG_DONTWAIT). Blocks per the socket and `flags`.
   */
  recv(fd: number, flags = 0): number {
    const hdr = this.#hdr32;
    const iov = this.#iov32;
    const count = this.count;
    for (let i = 0; i < count; i++) {
      hdr[i * MMSG_WORDS.size + MMSG_WORDS.nameLen] = SOCKADDR_IN6_SIZE;
      iov[i * IOV_WORDS_SIZE + IOV_WORDS.len] = this.bufSize;
    }
    const n = libc.recvmmsg(fd, this.#hdrPointers[0], count, flags, 0n);
    for (let i = 0; i < n; i++) {
      this.lens[i] = hdr[i * MMSG_WORDS.size + MMSG_WORDS.msgLen];
      this.addrLens[i] = hdr[i * MMSG_WORDS.size + MMSG_WORDS.nameLen];
      this.msgFlags[i] = hdr[i * MMSG_WORDS.size + MMSG_WORDS.flags];
    }
    return n;
  }

  /**
   * sendmmsg(2) of slots start..start+n-1, each `lens[i]` bytes of `bufs[i]` to `addrs[i]`
   * (`addrLens[i]` bytes). Returns how many were sent (possibly fewer than n; resend the rest from
   * start + result), or -1 with {@link errno} set.
   */
  send(fd: number, n: number, start = 0, flags = 0): number {
    if (n <= 0) return 0;
    if (start < 0 || start + n > this.count) throw new RangeError("MsgBatch.send: slots out of range");
    const hdr = this.#hdr32;
    const iov = this.#iov32;
    for (let i = start; i < start + n; i++) {
      const len = this.lens[i];
      iov[i * IOV_WORDS_SIZE + IOV_WORDS.len] = len < 0 ? 0 : len > this.bufSize ? this.bufSize : len;
      hdr[i * MMSG_WORDS.size + MMSG_WORDS.nameLen] = this.addrLens[i];
    }
    return libc.sendmmsg(fd, this.#hdrPointers[start], n, flags);
  }

  /**
   * Sets slot `i`'s destination: copies slot `j` of another batch (e.g. reply to a received
   * datagram's source), or `len` bytes of raw sockaddr from `src[j]` (len defaults to what the
   * family implies).
   */
  setAddr(i: number, src: MsgBatch | Uint8Array, j = 0, len?: number): void {
    if (src instanceof MsgBatch) {
      this.addrs[i].set(src.addrs[j]);
      this.addrLens[i] = src.addrLens[j];
      return;
    }
    const n = len ?? sockaddrLength(src, j);
    if (n <= 0 || n > SOCKADDR_IN6_SIZE) throw new Error("MsgBatch.setAddr: not a sockaddr_in/in6");
    for (let k = 0; k < n; k++) this.addrs[i][k] = src[j + k];
    this.addrLens[i] = n;
  }

  /** Convenience (allocates): sets slot `i`'s destination from text; see {@link encodeSockaddr}. */
  setAddrIp(i: number, ip: string, port: number, v4Mapped = false): void {
    this.addrLens[i] = encodeSockaddr(ip, port, this.addrs[i], 0, v4Mapped);
  }
}
