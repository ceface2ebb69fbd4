/**
 * A reusable `struct pollfd` array for threads that wait on several fds at once (the data-plane
 * workers): entries are written in place, `wait` calls poll(2) without allocating, and `revents`
 * reads what the kernel reported; {@link pollOne} waits on a single fd. One home for the pollfd
 * layout.
 * @module
 */
import { bigLen, libc } from "./libc.ts";

/** Bytes of one `struct pollfd { int fd; short events; short revents; }`. */
export const POLLFD_BYTES = 8;
const FD = 0;
const EVENTS = 4;
const REVENTS = 6;

/** A fixed-capacity pollfd array; entries past {@link PollSet.count} are not passed to poll. */
export class PollSet {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #capacity: number;
  #count = 0;
  #bigCount = bigLen(0);

  /** Room for `capacity` entries (a set that must hold more is replaced by a larger one). */
  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#bytes = new Uint8Array(capacity * POLLFD_BYTES);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Entries poll looks at (0…count-1). */
  get count(): number {
    return this.#count;
  }

  /** Entries this set can hold. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Sets how many entries poll looks at. */
  setCount(count: number): void {
    if (count < 0 || count > this.#capacity) throw new RangeError(`poll set holds ${this.#capacity} entries`);
    this.#count = count;
    this.#bigCount = bigLen(count);
  }

  /** Entry `i` waits for `events` on `fd` (a negative fd is ignored by poll: its revents stay 0). */
  set(i: number, fd: number, events: number): void {
    const at = i * POLLFD_BYTES;
    this.#view.setInt32(at + FD, fd, true);
    this.#view.setInt16(at + EVENTS, events, true);
    this.#view.setInt16(at + REVENTS, 0, true);
  }

  /** The fd of entry `i`. */
  fd(i: number): number {
    return this.#view.getInt32(i * POLLFD_BYTES + FD, true);
  }

  /** What the last {@link wait} reported for entry `i` (POLLIN, POLLERR, …; 0: nothing). */
  revents(i: number): number {
    return this.#view.getInt16(i * POLLFD_BYTES + REVENTS, true);
  }

  /**
   * Blocks up to `timeoutMs` (-1: forever) until an entry is ready; returns how many are (0: timed
   * out, -1: error with errno set, e.g. EINTR). Does not allocate.
   */
  wait(timeoutMs: number): number {
    return libc.poll(this.#bytes, this.#bigCount, timeoutMs);
  }
}

/** The one-entry set of {@link pollOne} (per thread: every worker has its own module instance). */
const single = new PollSet(1);
single.setCount(1);

/**
 * Waits up to `timeoutMs` (-1 = forever, 0 = just check) for `events` on one fd. Blocks the calling
 * thread. Returns the `revents` bits (0 on timeout) or -1 with `errno` set. Does not allocate.
 */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  single.set(0, fd, events);
  const r = single.wait(timeoutMs);
  if (r <= 0) return r;
  return single.revents(0);
}
