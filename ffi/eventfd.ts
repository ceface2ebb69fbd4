/**
 * eventfd(2) as a wake-up between threads: one side {@link signalEventFd}s, the other polls the fd and
 * {@link drainEventFd}s it before doing the work it was woken for. Non-blocking and close-on-exec.
 * @module
 */
import { bigLen, check, EFD_CLOEXEC, EFD_NONBLOCK, libc } from "./libc.ts";

const EIGHT = bigLen(8);
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const drainScratch = new Uint8Array(8);

/** A new non-blocking, close-on-exec eventfd (throws a SysError when the kernel refuses). */
export function createEventFd(): number {
  return check(libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
}

/** Wakes whoever polls `fd` (adds 1 to its counter). Does not allocate. */
export function signalEventFd(fd: number): void {
  libc.write(fd, ONE, EIGHT);
}

/** Clears `fd`'s counter (a non-blocking read; nothing pending is fine). Does not allocate. */
export function drainEventFd(fd: number): void {
  libc.read(fd, drainScratch, EIGHT);
}
