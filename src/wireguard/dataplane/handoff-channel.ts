/**
 * The in-process path between aes0 and wg0 (docs/offload.md, "aes0 → wg0 in-process hand-off"):
 * two single-producer single-consumer rings in shared memory, one per direction, each with an
 * eventfd the producer writes to wake the consumer's `poll`. aes0's encrypt worker puts its sealed
 * datagrams with their endpoint on the send ring for wg0's encrypt worker; wg0's decrypt worker puts
 * the aes0 datagrams it opened, with their source sockaddr, on the receive ring for aes0's decrypt
 * worker. The header says whether aes0 is attached and from which address and port it sends, and
 * wg0's MTU (what the kernel would check a handed-off packet against).
 *
 * Every datagram that cannot take this path (channel detached, ring full, too large for a slot, an
 * endpoint of the other family) takes the kernel's path instead, as without the hand-off.
 * @module
 */
import { createEventFd, drainEventFd, signalEventFd } from "../../../ffi/eventfd.ts";
import { libc } from "../../../ffi/libc.ts";
import { ADDR_STRIDE } from "../../../ffi/udp.ts";
import type { HandoffLocal } from "./handoff-packet.ts";

/** Slots per ring (a power of two): a full aes0 send batch with offloads (128) twice over. */
export const HANDOFF_RING_SLOTS = 256;
/** A consumer tells a waiting producer about free slots every this many datagrams taken (a power of two). */
const NOTIFY_EVERY = 32;
/** How long a producer waits for room in a full ring, per stall (ms), and how many stalls in a row. */
const STALL_MS = 5;
const MAX_STALLS = 20;
/** Bytes of one slot: its lengths, the sockaddr and the datagram. */
const SLOT_BYTES = 2048;
/** Slot layout: datagram length (i32), sockaddr length (i32), sockaddr, datagram. */
const SLOT_LEN = 0;
const SLOT_ADDR_LEN = 4;
const SLOT_ADDR = 8;
const SLOT_DATA = SLOT_ADDR + ADDR_STRIDE;
/** The largest datagram a slot holds (wg0 MTUs up to ~2 000 bytes; larger ones take the kernel's path). */
export const HANDOFF_MAX_DATAGRAM = SLOT_BYTES - SLOT_DATA;

/** Header words. */
const C = {
  /** 1 while aes0 is attached (its local address and port below are valid). */
  attached: 0,
  localPort: 1,
  /** 4 or 16: the local address's length. */
  localLen: 2,
  /** wg0's MTU (0 until published). */
  outerMtu: 3,
  sendWakeFd: 4,
  receiveWakeFd: 5,
  /** Bumped on every attach (workers re-read the local address when it moves). */
  localVersion: 6,
  /** A random id both ends find each other by when they run in the same worker (worker-loop.ts). */
  id: 7,
} as const;
const HEADER_WORDS = 8;
const LOCAL_ADDRESS_BYTES = 16;
/** Per ring: head (next slot to consume) and tail (next slot to produce), as ever-growing int32s. */
const RING_WORDS = 2;
const HEAD = 0;
const TAIL = 1;

/** Which ring: aes0 → wg0 (send) or wg0 → aes0 (receive). */
export const enum HandoffDirection {
  send = 0,
  receive = 1,
}

const HEADER_BYTES = (HEADER_WORDS + 2 * RING_WORDS) * 4 + LOCAL_ADDRESS_BYTES;
const RING_BYTES = HANDOFF_RING_SLOTS * SLOT_BYTES;

/** A datagram taken from a ring: its length and where its sockaddr was copied (reused). */
export interface HandoffEntry {
  /** Bytes of datagram. */
  len: number;
  /** Bytes of sockaddr. */
  addrLen: number;
}

/** One side's view of the shared channel (the owner, wg0's data plane, creates it with {@link create}). */
export class HandoffChannel {
  /** The shared buffer (sent to the workers of both devices). */
  readonly sab: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #local: Uint8Array;
  readonly #bytes: Uint8Array;
  readonly #slots: Int32Array;
  #cachedLocal: HandoffLocal | null = null;
  #cachedVersion = -1;

  /** Views the channel in `sab` (or a new one in memory, without wake fds, for tests). */
  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(HEADER_BYTES + 2 * RING_BYTES);
    this.#words = new Int32Array(this.sab, 0, HEADER_WORDS + 2 * RING_WORDS);
    this.#local = new Uint8Array(this.sab, (HEADER_WORDS + 2 * RING_WORDS) * 4, LOCAL_ADDRESS_BYTES);
    this.#bytes = new Uint8Array(this.sab, HEADER_BYTES);
    this.#slots = new Int32Array(this.sab, HEADER_BYTES);
    if (sab === undefined) {
      this.#words[C.sendWakeFd] = -1;
      this.#words[C.receiveWakeFd] = -1;
      this.#words[C.id] = crypto.getRandomValues(new Int32Array(1))[0];
    }
  }

  /** The channel's id (the same in every view of it). */
  get id(): number {
    return this.#words[C.id];
  }

  /** A new channel with its two wake eventfds (close them with {@link closeWakeFds}). */
  static create(): HandoffChannel {
    const ch = new HandoffChannel();
    ch.#words[C.sendWakeFd] = createEventFd();
    ch.#words[C.receiveWakeFd] = createEventFd();
    return ch;
  }

  /** Closes the wake eventfds (the owner, after every worker of both devices stopped). */
  closeWakeFds(): void {
    for (const w of [C.sendWakeFd, C.receiveWakeFd]) {
      if (this.#words[w] >= 0) libc.close(this.#words[w]);
      this.#words[w] = -1;
    }
  }

  /** The eventfd the consumer of `direction`'s ring polls. */
  wakeFd(direction: HandoffDirection): number {
    return this.#words[direction === HandoffDirection.send ? C.sendWakeFd : C.receiveWakeFd];
  }

  /** Wakes the consumer of `direction`'s ring (no-op without wake fds). */
  wake(direction: HandoffDirection): void {
    const fd = this.wakeFd(direction);
    if (fd >= 0) signalEventFd(fd);
  }

  /** Clears `direction`'s wake-up (the consumer, before draining its ring). */
  clearWake(direction: HandoffDirection): void {
    const fd = this.wakeFd(direction);
    if (fd >= 0) drainEventFd(fd);
  }

  /** aes0 sends from `address`:`port` through the channel from now on. */
  attach(address: Uint8Array, port: number): void {
    Atomics.store(this.#words, C.attached, 0);
    this.#local.set(address);
    Atomics.store(this.#words, C.localLen, address.length);
    Atomics.store(this.#words, C.localPort, port);
    Atomics.add(this.#words, C.localVersion, 1);
    Atomics.store(this.#words, C.attached, 1);
  }

  /** aes0 no longer takes datagrams from the channel (it is stopping). */
  detach(): void {
    Atomics.store(this.#words, C.attached, 0);
  }

  /** True while aes0 is attached. */
  get attached(): boolean {
    return Atomics.load(this.#words, C.attached) === 1;
  }

  /** Version of the local address (compare before trusting a cached {@link local}). */
  get localVersion(): number {
    return Atomics.load(this.#words, C.localVersion);
  }

  /** aes0's local address and port (a copy, re-read only after an attach moved them). */
  local(): HandoffLocal {
    const version = this.localVersion;
    if (this.#cachedLocal === null || version !== this.#cachedVersion) {
      const len = Atomics.load(this.#words, C.localLen);
      this.#cachedLocal = {
        address: this.#local.slice(0, len),
        port: Atomics.load(this.#words, C.localPort),
      };
      this.#cachedVersion = version;
    }
    return this.#cachedLocal;
  }

  /** Publishes wg0's MTU (the largest handed-off packet). */
  setOuterMtu(mtu: number): void {
    Atomics.store(this.#words, C.outerMtu, mtu);
  }

  /** wg0's MTU (0: not published). */
  get outerMtu(): number {
    return Atomics.load(this.#words, C.outerMtu);
  }

  /**
   * Producer: appends `data[from, from+len)` with the sockaddr `addr[0, addrLen)`; false when the
   * ring is full or the datagram does not fit a slot (the caller then takes the kernel's path).
   */
  push(
    direction: HandoffDirection,
    addr: Uint8Array,
    addrLen: number,
    data: Uint8Array,
    from: number,
    len: number,
  ): boolean {
    if (len > HANDOFF_MAX_DATAGRAM || addrLen > ADDR_STRIDE) return false;
    const ring = HEADER_WORDS + direction * RING_WORDS;
    const tail = this.#words[ring + TAIL]; // only this producer writes it
    if (((tail - Atomics.load(this.#words, ring + HEAD)) | 0) >= HANDOFF_RING_SLOTS) return false;
    const at = this.#slotOffset(direction, tail);
    this.#slots[(at + SLOT_LEN) >> 2] = len;
    this.#slots[(at + SLOT_ADDR_LEN) >> 2] = addrLen;
    for (let k = 0; k < addrLen; k++) this.#bytes[at + SLOT_ADDR + k] = addr[k];
    this.#bytes.set(data.subarray(from, from + len), at + SLOT_DATA); // a view, then one memcpy
    Atomics.store(this.#words, ring + TAIL, (tail + 1) | 0);
    return true;
  }

  /**
   * Consumer: takes the oldest datagram of `direction`'s ring into `data[at…]` and its sockaddr into
   * `addr[0…]`, filling `entry`; false when the ring is empty. `data` must hold
   * {@link HANDOFF_MAX_DATAGRAM} bytes from `at`.
   */
  take(
    direction: HandoffDirection,
    data: Uint8Array,
    at: number,
    addr: Uint8Array,
    entry: HandoffEntry,
  ): boolean {
    const ring = HEADER_WORDS + direction * RING_WORDS;
    const head = this.#words[ring + HEAD]; // only this consumer writes it
    if (head === Atomics.load(this.#words, ring + TAIL)) return false;
    const slot = this.#slotOffset(direction, head);
    const len = this.#slots[(slot + SLOT_LEN) >> 2];
    const addrLen = this.#slots[(slot + SLOT_ADDR_LEN) >> 2];
    for (let k = 0; k < addrLen; k++) addr[k] = this.#bytes[slot + SLOT_ADDR + k];
    data.set(this.#bytes.subarray(slot + SLOT_DATA, slot + SLOT_DATA + len), at);
    entry.len = len;
    entry.addrLen = addrLen;
    Atomics.store(this.#words, ring + HEAD, (head + 1) | 0);
    if (((head + 1) & (NOTIFY_EVERY - 1)) === 0) Atomics.notify(this.#words, ring + HEAD);
    return true;
  }

  /** Consumer: tells a producer waiting in {@link waitForRoom} that slots are free (after a drain). */
  notifyRoom(direction: HandoffDirection): void {
    Atomics.notify(this.#words, HEADER_WORDS + direction * RING_WORDS + HEAD);
  }

  /**
   * Producer (a worker): {@link push}, and while the ring is full, wakes the consumer and waits for
   * room, as a sender waits for room in a full socket buffer: up to {@link MAX_STALLS} waits of
   * {@link STALL_MS}. False when it is still full (or the datagram does not fit a slot).
   */
  pushOrWait(
    direction: HandoffDirection,
    addr: Uint8Array,
    addrLen: number,
    data: Uint8Array,
    from: number,
    len: number,
  ): boolean {
    if (len > HANDOFF_MAX_DATAGRAM || addrLen > ADDR_STRIDE) return false;
    for (let stall = 0; stall <= MAX_STALLS; stall++) {
      if (this.push(direction, addr, addrLen, data, from, len)) return true;
      this.wake(direction);
      this.waitForRoom(direction, STALL_MS);
    }
    return false;
  }

  /**
   * Producer (a worker; the main thread may not block): waits up to `timeoutMs` while
   * `direction`'s ring is full, as a sender waits for room in a full socket buffer. True when there
   * is room now.
   */
  waitForRoom(direction: HandoffDirection, timeoutMs: number): boolean {
    const ring = HEADER_WORDS + direction * RING_WORDS;
    const head = Atomics.load(this.#words, ring + HEAD);
    if (((this.#words[ring + TAIL] - head) | 0) < HANDOFF_RING_SLOTS) return true;
    Atomics.wait(this.#words, ring + HEAD, head, timeoutMs);
    return ((this.#words[ring + TAIL] - Atomics.load(this.#words, ring + HEAD)) | 0) < HANDOFF_RING_SLOTS;
  }

  /** Drops everything queued in `direction`'s ring (the consumer, when aes0 is detached). */
  discard(direction: HandoffDirection): void {
    const ring = HEADER_WORDS + direction * RING_WORDS;
    Atomics.store(this.#words, ring + HEAD, Atomics.load(this.#words, ring + TAIL));
  }

  #slotOffset(direction: HandoffDirection, counter: number): number {
    return direction * RING_BYTES + (counter & (HANDOFF_RING_SLOTS - 1)) * SLOT_BYTES;
  }
}
