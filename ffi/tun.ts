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
/** Longest interface name (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;

const TUN_PATH = "/dev/net/tun";

/** Options for {@link openTun}. */
export interface TunOptions {
  /** Create (or attach to) a multi-queue device; more queues come from {@link openTunQueue}. */
  multiQueue?: boolean;
  /** Open the fd with O_NONBLOCK (reads return -1/EAGAIN instead of waiting). */
  nonBlocking?: boolean;
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
  return attach(name, opts.multiQueue === true, opts.nonBlocking === true);
}

/**
 * Attaches one more queue to the multi-queue TUN interface `name` (first opened with
 * `openTun(name, { multiQueue: true })`).
 */
export function openTunQueue(name: string, opts: { nonBlocking?: boolean } = {}): TunHandle {
  return attach(name, true, opts.nonBlocking === true);
}

function attach(name: string, multiQueue: boolean, nonBlocking: boolean): TunHandle {
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
