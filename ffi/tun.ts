/**
 * Linux TUN devices through /dev/net/tun (layer-3, no packet-information header).
 *
 * @module
 */

import {
  bigLen,
  cString,
  EACCES,
  EBUSY,
  EEXIST,
  EINVAL,
  ENODEV,
  ENOENT,
  EPERM,
  errno,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  pointerAt,
  SysError,
} from "./libc.ts";

/** ioctl TUNSETIFF = _IOW('T', 202, int). */
export const TUNSETIFF = 0x400454ca;
/** ifr_flags: layer-3 TUN device. */
export const IFF_TUN = 0x0001;
/** ifr_flags: no 4-byte packet-information prefix on reads/writes. */
export const IFF_NO_PI = 0x1000;
/** ifr_flags: one fd per queue, several queues per device. */
export const IFF_MULTI_QUEUE = 0x0100;
/** ifr_flags: every read and write starts with a struct virtio_net_hdr (offloads). */
export const IFF_VNET_HDR = 0x4000;
/** ioctl TUNSETOFFLOAD = _IOW('T', 208, unsigned int); the argument is the TUN_F_* bits by value. */
export const TUNSETOFFLOAD = 0x400454d0;
/** ioctl TUNSETVNETHDRSZ = _IOW('T', 216, int); the argument points at the header size. */
export const TUNSETVNETHDRSZ = 0x400454d8;
/** TUNSETOFFLOAD bit: userspace completes partial checksums (required by every other bit). */
export const TUN_F_CSUM = 0x01;
/** TUNSETOFFLOAD bit: IPv4 TCP super-packets. */
export const TUN_F_TSO4 = 0x02;
/** TUNSETOFFLOAD bit: IPv6 TCP super-packets. */
export const TUN_F_TSO6 = 0x04;
/** TUNSETOFFLOAD bit: IPv4 UDP super-packets (USO, Linux 6.2+). */
export const TUN_F_USO4 = 0x20;
/** TUNSETOFFLOAD bit: IPv6 UDP super-packets (USO, Linux 6.2+). */
export const TUN_F_USO6 = 0x40;
/** Longest interface name (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;

const TUN_PATH = "/dev/net/tun";

/** Options for {@link openTun}. */
export interface TunOptions {
  /** Create (or attach to) a multi-queue device; more queues come from {@link openTunQueue}. */
  multiQueue?: boolean;
  /** Open the fd with O_NONBLOCK (reads return -1/EAGAIN instead of waiting). */
  nonBlocking?: boolean;
  /**
   * Set IFF_VNET_HDR: every read/write carries a 10-byte virtio_net_hdr in front of the packet
   * (needed for {@link enableTunOffloads}; all queues of a device must agree).
   */
  vnetHdr?: boolean;
}

/** An open TUN queue: the fd and the kernel's name for the interface. */
export interface TunHandle {
  /** File descriptor; each read/write is one IP packet. */
  fd: number;
  /** Interface name (as assigned by the kernel, e.g. when a "%d" pattern was given). */
  name: string;
}

/**
 * Opens /dev/net/tun and attaches it to TUN interface `name` (created if absent; the interface
 * disappears when its last fd closes). Throws a {@link SysError} whose message names the fix.
 */
export function openTun(name: string, opts: TunOptions = {}): TunHandle {
  return attach(name, opts.multiQueue === true, opts.nonBlocking === true, opts.vnetHdr === true);
}

/**
 * Attaches one more queue to the multi-queue TUN interface `name` (first opened with
 * `openTun(name, { multiQueue: true })`).
 */
export function openTunQueue(
  name: string,
  opts: { nonBlocking?: boolean; vnetHdr?: boolean } = {},
): TunHandle {
  return attach(name, true, opts.nonBlocking === true, opts.vnetHdr === true);
}

function attach(name: string, multiQueue: boolean, nonBlocking: boolean, vnetHdr: boolean): TunHandle {
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length === 0 || nameBytes.length > IFNAMSIZ_MAX || nameBytes.includes(0)) {
    throw new Error(`TUN name "${name}" must be 1..${IFNAMSIZ_MAX} bytes`);
  }
  let flags = O_RDWR | O_CLOEXEC;
  if (nonBlocking) flags |= O_NONBLOCK;
  const fd = libc.open(cString(TUN_PATH), flags, 0);
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT || e === ENODEV) {
      throw new SysError(
        e,
        `open(${TUN_PATH})`,
        `no TUN support: ${TUN_PATH} is missing; load the tun module (modprobe tun) / run the container with --device /dev/net/tun`,
      );
    }
    if (e === EPERM || e === EACCES) {
      throw new SysError(e, `open(${TUN_PATH})`, `cannot open ${TUN_PATH}: needs root or CAP_NET_ADMIN`);
    }
    throw new SysError(e, `open(${TUN_PATH})`);
  }
  // struct ifreq: char ifr_name[16]; short ifr_flags at offset 16; 40 bytes in all.
  const ifr = new Uint8Array(40);
  ifr.set(nameBytes);
  let ifrFlags = IFF_TUN | IFF_NO_PI;
  if (multiQueue) ifrFlags |= IFF_MULTI_QUEUE;
  if (vnetHdr) ifrFlags |= IFF_VNET_HDR;
  new DataView(ifr.buffer).setUint16(16, ifrFlags, true);
  if (libc.ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
    const e = errno();
    libc.close(fd);
    throw new SysError(e, "ioctl(TUNSETIFF)", tunSetIffHint(e, name, multiQueue));
  }
  const end = ifr.indexOf(0);
  return { fd, name: new TextDecoder().decode(ifr.subarray(0, end < 0 ? 16 : end)) };
}

function tunSetIffHint(e: number, name: string, multiQueue: boolean): string {
  switch (e) {
    case EPERM:
      return `cannot create TUN "${name}": needs root or CAP_NET_ADMIN`;
    case EBUSY:
      return multiQueue
        ? `TUN "${name}" has no free queue slot or is held by a non-multi-queue user`
        : `TUN "${name}" is already in use by another process (close it, or use multiQueue)`;
    case EEXIST:
      return `"${name}" already exists and is not a TUN device (delete it or pick another name)`;
    case EINVAL:
      return `"${name}" already exists and is not a TUN device of this kind (another type of link, or a ` +
        "multi-queue mismatch)";
    default:
      return `cannot attach TUN "${name}"`;
  }
}

/**
 * Reads one packet from a TUN fd into `buf[off, off+maxLen)`. Returns its length, or -1 with
 * errno set (EAGAIN on an empty non-blocking queue). No allocation once warm (see pointerAt).
 */
export function tunRead(fd: number, buf: Uint8Array, off: number, maxLen: number): number {
  return libc.readPtr(fd, pointerAt(buf, off), bigLen(maxLen));
}

/** Writes the packet `buf[off, off+len)` to a TUN fd. Returns `len`, or -1 with errno set. */
export function tunWrite(fd: number, buf: Uint8Array, off: number, len: number): number {
  return libc.writePtr(fd, pointerAt(buf, off), bigLen(len));
}

/**
 * TUNSETOFFLOAD: tells the kernel which super-packets and partial checksums this reader handles
 * (TUN_F_* bits). Returns 0, or -1 with errno set (EINVAL for bits the kernel does not know).
 */
export function setTunOffload(fd: number, flags: number): number {
  return libc.ioctlValue(fd, BigInt(TUNSETOFFLOAD), BigInt(flags));
}

/** TUNSETVNETHDRSZ: the size of the header in front of each packet (10 for virtio_net_hdr). */
export function setTunVnetHdrSize(fd: number, size: number): void {
  const arg = new Uint8Array(4);
  new DataView(arg.buffer).setInt32(0, size, true);
  if (libc.ioctl(fd, BigInt(TUNSETVNETHDRSZ), arg) < 0) throw new SysError(errno(), "ioctl(TUNSETVNETHDRSZ)");
}

/**
 * Enables the offloads of a TUN fd opened with `vnetHdr`: checksum offload plus TSO for IPv4 and
 * IPv6, and USO too when `uso` is asked and the kernel accepts it (older kernels refuse the USO
 * bits with EINVAL; then TSO alone is set, and if even that is refused, none). Returns the TUN_F_*
 * bits in force (0 = packets still carry a header, but are never super-packets).
 */
export function enableTunOffloads(fd: number, opts: { uso?: boolean } = {}): number {
  const tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  const attempts = opts.uso === true ? [tso | TUN_F_USO4 | TUN_F_USO6, tso] : [tso];
  for (const flags of attempts) {
    if (setTunOffload(fd, flags) === 0) return flags;
  }
  setTunOffload(fd, 0);
  return 0;
}
