/**
 * Opening and reading a file through libc with flags Deno's `open` does not offer: `O_NOFOLLOW` (a
 * symbolic link as the last path component fails with ELOOP instead of being followed) and
 * `O_NONBLOCK` (a FIFO that slipped in after a check does not block `open` until a writer comes).
 * The config and secret-file reader (`src/config/secret-file.ts`) is the one user.
 * @module
 */
import { check, cString, EINTR, errno, libc, O_CLOEXEC, O_NONBLOCK, SysError } from "./libc.ts";

/** open(2) flag: read only. */
export const O_RDONLY = 0;
/**
 * open(2) flag: do not follow a symbolic link in the last component. Unlike the constants in libc.ts
 * its value differs between x86_64 and aarch64.
 */
export const O_NOFOLLOW = Deno.build.arch === "aarch64" ? 0o100000 : 0o400000;
/** Largest single read(2): results are declared i32 (see libc.ts). */
const READ_CHUNK = 1 << 20;

/**
 * Opens `path` read-only, non-blocking and close-on-exec; with `noFollow`, a symbolic link as the last
 * component is refused (SysError with errno ELOOP). Returns the fd; throws SysError on failure.
 */
export function openReadOnly(path: string, opts: { noFollow: boolean }): number {
  const flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (opts.noFollow ? O_NOFOLLOW : 0);
  const fd = libc.open(cString(path), flags, 0);
  if (fd < 0) throw new SysError(errno(), "open");
  return fd;
}

/**
 * What the open file `fd` is (type, device, inode, mode, size), read through `/proc/self/fd` so it
 * describes the file actually opened, whatever the path points to now.
 */
export function statFd(fd: number): Deno.FileInfo {
  return Deno.statSync(`/proc/self/fd/${fd}`);
}

/**
 * Reads from `fd` until end of file or until `max` bytes are read, whichever comes first; returns the
 * bytes read. A caller that wants to know whether more was there asks for one byte more than it accepts.
 */
export function readAtMost(fd: number, max: number): Uint8Array {
  const buf = new Uint8Array(max);
  let off = 0;
  while (off < max) {
    const n = libc.read(fd, buf.subarray(off), BigInt(Math.min(READ_CHUNK, max - off)));
    if (n === 0) break;
    if (n < 0) {
      if (errno() === EINTR) continue;
      buf.fill(0);
      throw new SysError(errno(), "read");
    }
    off += n;
  }
  if (off === max) return buf;
  const out = buf.slice(0, off);
  buf.fill(0);
  return out;
}

/** Closes `fd` (throws SysError on failure). */
export function closeFd(fd: number): void {
  check(libc.close(fd), "close");
}
