/**
 * Linux errno values (x86-64 and aarch64 share them) and their symbolic names: the one home for errno
 * numbers. Pure (no library is loaded), so modules that only speak errno on a protocol (the UAPI) can
 * use them without FFI; `libc.ts` re-exports them.
 * @module
 */
/** errno: operation not permitted. */
export const EPERM = 1;
/** errno: no such file or directory. */
export const ENOENT = 2;
/** errno: interrupted system call. */
export const EINTR = 4;
/** errno: input/output error. */
export const EIO = 5;
/** errno: bad file descriptor. */
export const EBADF = 9;
/** errno: try again (would block). */
export const EAGAIN = 11;
/** errno: out of memory. */
export const ENOMEM = 12;
/** errno: permission denied. */
export const EACCES = 13;
/** errno: device or resource busy. */
export const EBUSY = 16;
/** errno: file exists. */
export const EEXIST = 17;
/** errno: no such device. */
export const ENODEV = 19;
/** errno: invalid argument. */
export const EINVAL = 22;
/** errno: too many open files. */
export const EMFILE = 24;
/** errno: too many levels of symbolic links (also what open(2) with O_NOFOLLOW returns for a link). */
export const ELOOP = 40;
/** errno: no anode (wireguard-go's catch-all UAPI error). */
export const ENOANO = 55;
/** errno: protocol error. */
export const EPROTO = 71;
/** errno: message too long. */
export const EMSGSIZE = 90;
/** errno: protocol not supported. */
export const EPROTONOSUPPORT = 93;
/** errno: operation not supported. */
export const EOPNOTSUPP = 95;
/** errno: address family not supported. */
export const EAFNOSUPPORT = 97;
/** errno: address already in use. */
export const EADDRINUSE = 98;
/** errno: cannot assign requested address. */
export const EADDRNOTAVAIL = 99;
/** errno: network is unreachable. */
export const ENETUNREACH = 101;
/** errno: no buffer space available (netlink overrun). */
export const ENOBUFS = 105;
/** errno: connection refused. */
export const ECONNREFUSED = 111;
/** errno: no route to host. */
export const EHOSTUNREACH = 113;

/** Symbolic names for the errno values this project meets. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [EBADF]: "EBADF",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [EMFILE]: "EMFILE",
  [ELOOP]: "ELOOP",
  [EMSGSIZE]: "EMSGSIZE",
  [EPROTONOSUPPORT]: "EPROTONOSUPPORT",
  [EOPNOTSUPP]: "EOPNOTSUPP",
  [EAFNOSUPPORT]: "EAFNOSUPPORT",
  [EADDRINUSE]: "EADDRINUSE",
  [EADDRNOTAVAIL]: "EADDRNOTAVAIL",
  [ENETUNREACH]: "ENETUNREACH",
  [ENOBUFS]: "ENOBUFS",
  [ECONNREFUSED]: "ECONNREFUSED",
  [EHOSTUNREACH]: "EHOSTUNREACH",
};
