/**
 * Raw libc bindings through Deno FFI (Linux, x86_64/aarch64 glibc).
 *
 * All symbols are synchronous FFI calls (fast path). Functions that return `ssize_t` are declared
 * with an `i32` result: every length the project handles fits in 31 bits and `-1` survives the
 * truncation, which keeps results plain numbers instead of `number | bigint`.
 *
 * Symbols whose name ends in `Ptr` take raw addresses (`usize`) instead of buffers so that callers
 * can address an offset inside a preallocated buffer without creating a subarray per call. 64-bit
 * parameters (`usize`, `u64`) must be passed as bigint to stay on the fast call path (a number works
 * but takes the slow path, ~0.2 µs more); {@link pointerAt} and {@link bigLen} return cached bigints
 * so data-path calls do not allocate.
 *
 * Errno values live in errno.ts (pure) and are re-exported here.
 *
 * @module
 */
import { ERRNO_NAMES } from "./errno.ts";

export * from "./errno.ts";

const symbols = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  readPtr: { name: "read", parameters: ["i32", "usize", "usize"], result: "i32" },
  writePtr: { name: "write", parameters: ["i32", "usize", "usize"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** ioctl whose argument is a plain integer, not a pointer (e.g. TUNSETOFFLOAD). */
  ioctlValue: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** socketpair(domain, type, protocol, int sv[2]) */
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  sendtoPtr: { name: "sendto", parameters: ["i32", "usize", "usize", "i32", "usize", "u32"], result: "i32" },
  recvfromPtr: {
    name: "recvfrom",
    parameters: ["i32", "usize", "usize", "i32", "usize", "usize"],
    result: "i32",
  },
  /** recvmmsg(fd, struct mmsghdr *vec (address), vlen, flags, struct timespec *timeout (address or 0)) */
  recvmmsg: { parameters: ["i32", "usize", "u32", "i32", "usize"], result: "i32" },
  /** sendmmsg(fd, struct mmsghdr *vec (address), vlen, flags) */
  sendmmsg: { parameters: ["i32", "usize", "u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  umask: { parameters: ["u32"], result: "u32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const library = Deno.dlopen("libc.so.6", symbols);

/** The libc symbol table (synchronous FFI functions). Destructure once and keep the references. */
export const libc: Deno.DynamicLibrary<typeof symbols>["symbols"] = library.symbols;

// errno is thread-local; sync FFI calls run on this isolate's thread, so the address is fixed.
const errnoView = new Deno.UnsafePointerView(libc.__errno_location()!);

/** The calling thread's current `errno` (read right after a failed call, before any await). */
export function errno(): number {
  return errnoView.getInt32(0);
}

/** Human-readable text for an errno value, from libc's `strerror`. */
export function strerror(code: number): string {
  const p = libc.strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}

/** A failed system call: carries the errno, its symbolic code and the call's name. */
export class SysError extends Error {
  /** The errno value (positive). */
  readonly errno: number;
  /** Symbolic errno name such as "EAGAIN", or "E<number>" when unknown. */
  readonly code: string;
  /** The call (or operation) that failed. */
  readonly syscall: string;

  /**
   * Builds the error. `detail` (if given) is prefixed to the strerror text; `note` (e.g. the
   * kernel's netlink extended-ack message) is appended in brackets.
   */
  constructor(errnoValue: number, syscall: string, detail?: string, note?: string) {
    const code = ERRNO_NAMES[errnoValue] ?? `E${errnoValue}`;
    const text = `${syscall}: ${strerror(errnoValue)} (${code})${note ? ` [kernel: ${note}]` : ""}`;
    super(detail ? `${detail}: ${text}` : text);
    this.name = "SysError";
    this.errno = errnoValue;
    this.code = code;
    this.syscall = syscall;
  }
}

/** Returns `ret` unless it is -1, in which case throws a {@link SysError} built from `errno`. */
export function check(ret: number, name: string): number {
  if (ret === -1) throw new SysError(errno(), name);
  return ret;
}

const addressCache = new WeakMap<ArrayBufferLike, number>();

/**
 * Native address of the first byte of `u8`, as a number (for computing `usize` pointer arguments).
 * The caller must keep the buffer referenced for as long as native code may use the address.
 */
export function bufferAddress(u8: Uint8Array): number {
  const p = Deno.UnsafePointer.of(u8 as Uint8Array<ArrayBuffer>);
  if (p === null) throw new Error("bufferAddress: buffer has no backing store");
  return Number(Deno.UnsafePointer.value(p));
}

/**
 * Native address of `u8[off]` as a number, with the backing buffer's base address cached so
 * repeated calls do not allocate. Same lifetime rule as {@link bufferAddress}.
 */
export function addressAt(u8: Uint8Array, off: number): number {
  const backing = u8.buffer;
  let base = addressCache.get(backing);
  if (base === undefined) {
    base = bufferAddress(u8) - u8.byteOffset;
    addressCache.set(backing, base);
  }
  return base + u8.byteOffset + off;
}

// 64-bit FFI parameters take the fast call path only when given a bigint, and creating a bigint
// allocates; these caches hand out the same bigint for the same value, so steady-state data-path
// calls (fixed buffers, recurring lengths) allocate nothing.
const BIG_LEN_CACHE = 65536;
const bigLens: bigint[] = [];
const POINTER_CACHE_PER_BUFFER = 4096;
const pointerCache = new WeakMap<ArrayBufferLike, Map<number, bigint>>();

/** `BigInt(n)` for `usize` length arguments, cached for 0..65536 (allocation-free once warm). */
export function bigLen(n: number): bigint {
  if (n >= 0 && n <= BIG_LEN_CACHE) {
    let v = bigLens[n];
    if (v === undefined) {
      for (let i = bigLens.length; i <= n; i++) bigLens.push(BigInt(i));
      v = bigLens[n];
    }
    return v;
  }
  return BigInt(n);
}

/**
 * Native address of `u8[off]` as a bigint for `usize` pointer arguments, cached per backing buffer
 * and offset (up to 4096 distinct offsets per buffer), so a data path that reuses its buffers does
 * not allocate. Same lifetime rule as {@link bufferAddress}.
 */
export function pointerAt(u8: Uint8Array, off: number): bigint {
  const backing = u8.buffer;
  const at = u8.byteOffset + off;
  let perBuffer = pointerCache.get(backing);
  if (perBuffer === undefined) {
    perBuffer = new Map();
    pointerCache.set(backing, perBuffer);
  }
  let p = perBuffer.get(at);
  if (p === undefined) {
    p = BigInt(addressAt(u8, off));
    if (perBuffer.size < POINTER_CACHE_PER_BUFFER) perBuffer.set(at, p);
  }
  return p;
}

/** NUL-terminated UTF-8 copy of `s`, for `char *` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Sets or clears O_NONBLOCK on `fd`. */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = check(libc.fcntl(fd, F_GETFL, 0), "fcntl(F_GETFL)");
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) check(libc.fcntl(fd, F_SETFL, next), "fcntl(F_SETFL)");
}

/** A resource limit: the soft limit in force and the hard ceiling it may be raised to. */
export interface ResourceLimit {
  /** The limit in force. */
  soft: bigint;
  /** The most an unprivileged process may raise the soft limit to. */
  hard: bigint;
}

/** The process's open-file limit (RLIMIT_NOFILE). */
export function fileDescriptorLimit(): ResourceLimit {
  const buf = new Uint8Array(16);
  check(libc.getrlimit(RLIMIT_NOFILE, buf), "getrlimit(RLIMIT_NOFILE)");
  const view = new DataView(buf.buffer);
  return { soft: view.getBigUint64(0, true), hard: view.getBigUint64(8, true) };
}

/** Sets the process's open-file soft limit (RLIMIT_NOFILE), keeping the hard limit. */
export function setFileDescriptorSoftLimit(soft: bigint): void {
  const { hard } = fileDescriptorLimit();
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setBigUint64(0, soft, true);
  view.setBigUint64(8, hard, true);
  check(libc.setrlimit(RLIMIT_NOFILE, buf), "setrlimit(RLIMIT_NOFILE)");
}

/**
 * Raises the open-file soft limit to the hard limit (a daemon serving many sockets should not run
 * out of descriptors at the distribution's default soft limit of 1 024); returns the limit now.
 */
export function raiseFileDescriptorLimit(): ResourceLimit {
  const limit = fileDescriptorLimit();
  if (limit.soft < limit.hard) setFileDescriptorSoftLimit(limit.hard);
  return fileDescriptorLimit();
}

/** Closes `fd`, ignoring errors (for cleanup paths). */
export function closeQuietly(fd: number): void {
  if (fd >= 0) libc.close(fd);
}

// ---- constants (Linux generic values; x86_64 and aarch64 agree on all of these) ----

/** getrlimit/setrlimit resource: open file descriptors (Linux generic). */
export const RLIMIT_NOFILE = 7;
/** Address family IPv4. */
export const AF_INET = 2;
/** Address family IPv6. */
export const AF_INET6 = 10;
/** Address family netlink. */
export const AF_NETLINK = 16;
/** Address family unix (local) sockets. */
export const AF_UNIX = 1;
/** Unspecified address family. */
export const AF_UNSPEC = 0;
/** Datagram socket type. */
export const SOCK_DGRAM = 2;
/** Raw socket type. */
export const SOCK_RAW = 3;
/** socket() flag: close on exec. */
export const SOCK_CLOEXEC = 0o2000000;
/** socket() flag: non-blocking. */
export const SOCK_NONBLOCK = 0o4000;
/** open() flag: read and write. */
export const O_RDWR = 2;
/** open() flag: non-blocking. */
export const O_NONBLOCK = 0o4000;
/** open() flag: close on exec. */
export const O_CLOEXEC = 0o2000000;
/** fcntl command: get file status flags. */
export const F_GETFL = 3;
/** fcntl command: set file status flags. */
export const F_SETFL = 4;
/** poll event: data to read. */
export const POLLIN = 0x1;
/** poll event: writable. */
export const POLLOUT = 0x4;
/** poll event: error. */
export const POLLERR = 0x8;
/** poll event: hang-up. */
export const POLLHUP = 0x10;
/** Socket-level option level. */
export const SOL_SOCKET = 1;
/** IPPROTO_IP option level. */
export const IPPROTO_IP = 0;
/** IPPROTO_IP option (honoured by IPv6 sockets too): allow binding an address not (yet) on any interface. */
export const IP_FREEBIND = 15;
/** IPPROTO_IPV6 option level. */
export const IPPROTO_IPV6 = 41;
/** IPPROTO_UDP protocol number. */
export const IPPROTO_UDP = 17;
/** Option level of UDP socket options (same number as IPPROTO_UDP). */
export const SOL_UDP = 17;
/** SOL_UDP option / cmsg type: send one buffer as datagrams of this many payload bytes (UDP GSO). */
export const UDP_SEGMENT = 103;
/** SOL_UDP option / cmsg type: receive coalesced datagrams with their segment size (UDP GRO). */
export const UDP_GRO = 104;
/** SOL_SOCKET option: allow reuse of local addresses. */
export const SO_REUSEADDR = 2;
/** SOL_SOCKET option: only send and receive through the named interface (needs CAP_NET_RAW). */
export const SO_BINDTODEVICE = 25;
/** SOL_SOCKET option: send buffer size. */
export const SO_SNDBUF = 7;
/** SOL_SOCKET option: receive buffer size. */
export const SO_RCVBUF = 8;
/** SOL_SOCKET option: receive timeout (struct timeval). */
export const SO_RCVTIMEO = 20;
/** SOL_SOCKET option: send buffer size, ignoring rmem_max (needs CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** SOL_SOCKET option: receive buffer size, ignoring rmem_max (needs CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;
/** IPPROTO_IPV6 option: restrict an AF_INET6 socket to IPv6 only. */
export const IPV6_V6ONLY = 26;
/** send/recv flag: non-blocking for this call. */
export const MSG_DONTWAIT = 0x40;
/** recv flag / msg_flags bit: datagram was truncated. */
export const MSG_TRUNC = 0x20;
/** recvmmsg flag: block for the first message only. */
export const MSG_WAITFORONE = 0x10000;
/** eventfd flag: non-blocking. */
export const EFD_NONBLOCK = 0o4000;
/** eventfd flag: close on exec. */
export const EFD_CLOEXEC = 0o2000000;
