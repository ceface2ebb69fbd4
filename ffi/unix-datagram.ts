/**
 * Unix datagram sockets through libc, for the systemd notify protocol: Deno's own unix datagram
 * support is unstable and cannot reach abstract socket names, which systemd uses for
 * `$NOTIFY_SOCKET`. Addresses are built by the caller (src/systemd/notify.ts) as `sockaddr_un` bytes.
 * Also a connected pair ({@link packetPipe}) that carries one packet per read/write, as a TUN does.
 * @module
 */
import {
  AF_UNIX,
  check,
  closeQuietly,
  libc,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
} from "./libc.ts";
import { pollOne } from "./poll.ts";

/** `sizeof(struct sockaddr_un)` on Linux: the family (2 bytes) and 108 bytes of path. */
export const SOCKADDR_UN_SIZE = 110;
/** Bytes of `sun_path`. */
export const SUN_PATH_SIZE = 108;

/** Sends one datagram `data` to the unix socket address `addr` (sockaddr_un bytes) from a fresh socket. */
export function sendUnixDatagram(addr: Uint8Array, data: Uint8Array): void {
  const fd = check(libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket(AF_UNIX)");
  try {
    const sent = libc.sendto(
      fd,
      data as Uint8Array<ArrayBuffer>,
      BigInt(data.length),
      0,
      addr as Uint8Array<ArrayBuffer>,
      addr.length,
    );
    check(sent, "sendto(NOTIFY_SOCKET)");
  } finally {
    closeQuietly(fd);
  }
}

/** A bound unix datagram socket that receives (tests use it as a stand-in for systemd's socket). */
export class UnixDatagramReceiver {
  readonly #fd: number;

  /** Binds a new datagram socket to `addr` (sockaddr_un bytes). */
  constructor(addr: Uint8Array) {
    this.#fd = check(libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket(AF_UNIX)");
    try {
      check(libc.bind(this.#fd, addr as Uint8Array<ArrayBuffer>, addr.length), "bind(AF_UNIX)");
    } catch (e) {
      closeQuietly(this.#fd);
      throw e;
    }
  }

  /** The next datagram, waiting up to `timeoutMs` (blocks the thread); null on timeout. */
  receive(timeoutMs: number): Uint8Array | null {
    if (pollOne(this.#fd, POLLIN, timeoutMs) <= 0) return null;
    const buf = new Uint8Array(4096);
    const n = check(libc.recvfrom(this.#fd, buf, BigInt(buf.length), 0, null, null), "recvfrom(AF_UNIX)");
    return buf.slice(0, n);
  }

  /** Closes the socket (a filesystem socket's file stays; the caller removes it). */
  close(): void {
    closeQuietly(this.#fd);
  }
}

/**
 * Two connected, non-blocking unix datagram sockets: each write on one end is exactly one read on the
 * other, as a TUN device carries one IP packet per read and write. Lets a device run over a packet
 * pipe in memory (tests) instead of a TUN, which needs privileges.
 */
export function packetPipe(): [number, number] {
  const fds = new Int32Array(2);
  check(
    libc.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, new Uint8Array(fds.buffer)),
    "socketpair(AF_UNIX)",
  );
  return [fds[0], fds[1]];
}
