/**
 * The send path's UDP GSO stage: a flushed batch of sealed WireGuard messages (one per MsgBatch
 * slot) is grouped into runs of consecutive messages to the same endpoint (gso-runs.ts), each run
 * laid end to end in one slot of an {@link OffloadMsgBatch} and sent as one UDP_SEGMENT message
 * that the kernel (or the device) cuts back into the datagrams; a few slots are reused round after
 * round, so at most {@link GSO_SLOTS} × 64 KiB is ever touched. Both batches live in one
 * SharedArrayBuffer so the copy is a memmove. Whether the socket can do it is probed once per
 * socket; an EIO refusal turns it off for that socket and the caller resends the rest plainly.
 * @module
 */
import { EAGAIN, EINTR, errno, POLLOUT } from "../../../ffi/libc.ts";
import { pollOne } from "../../../ffi/poll.ts";
import { MsgBatch } from "../../../ffi/udp.ts";
import { isGsoRefusal, OffloadMsgBatch, udpSegmentSupported } from "../../../ffi/udp-offload.ts";
import { copyBytes } from "../offload/copy-sum.ts";
import { planGsoRuns, UDP_GSO_MAX_BYTES } from "../offload/gso-runs.ts";

/** Bytes of one GSO slot: a whole run (at most 64 KiB of datagrams). */
const GSO_SLOT_BYTES = 65536;
/** GSO slots per sendmmsg round (memory touched: this × 64 KiB). */
export const GSO_SLOTS = 4;
/** Consecutive EAGAIN waits (5 ms each) before the rest of a batch is given up. */
export const MAX_SEND_STALLS = 20;

/** Milliseconds one back-pressure wait for room in the socket buffer lasts. */
const SEND_STALL_WAIT_MS = 5;

/** A message batch sendmmsg sends from a slot on (MsgBatch, OffloadMsgBatch). */
export interface SendableBatch {
  /** Sends `count` messages from slot `from`; returns how many went, or -1 with errno set. */
  send(fd: number, count: number, from: number): number;
}

/**
 * Sends slots `from`..`n`-1 of `batch` on `fd`. A full socket buffer (EAGAIN, EINTR) is back-pressure,
 * not loss: it waits for room (POLLOUT) up to {@link MAX_SEND_STALLS} times in a row. Returns the first
 * slot not sent (`n` when all went); short of `n`, `errno()` says why.
 */
export function sendWithBackpressure(batch: SendableBatch, fd: number, from: number, n: number): number {
  let off = from;
  let stalls = 0;
  while (off < n) {
    const sent = batch.send(fd, n - off, off);
    if (sent <= 0) {
      const e = errno();
      if (sent < 0 && (e === EAGAIN || e === EINTR) && ++stalls <= MAX_SEND_STALLS) {
        pollOne(fd, POLLOUT, SEND_STALL_WAIT_MS);
        continue;
      }
      break;
    }
    stalls = 0;
    off += sent;
  }
  return off;
}

/** How sending a batch ended. */
export interface SendOutcome {
  /** Messages the kernel took, from the first. */
  sent: number;
  /** True when the socket refused UDP GSO (EIO): GSO is now off for it; resend the rest plainly. */
  refused: boolean;
}

/** A message batch and, beside it in one backing, the GSO batch its runs are copied into. */
export class GsoSender {
  /** The batch the send path seals into (one message per slot). */
  readonly batch: MsgBatch;
  readonly #gso: OffloadMsgBatch;
  readonly #keys: Int32Array;
  readonly #runStart: Int32Array;
  readonly #runCount: Int32Array;
  readonly #outcome: SendOutcome = { sent: 0, refused: false };
  #fd = -1;
  #usable = false;
  #refused = false;

  /** A batch of `count` slots of `bufSize` bytes, and {@link GSO_SLOTS} GSO slots. */
  constructor(count: number, bufSize: number) {
    const batchBytes = (MsgBatch.byteLength(count, bufSize) + 7) & ~7;
    const sab = new SharedArrayBuffer(batchBytes + OffloadMsgBatch.byteLength(GSO_SLOTS, GSO_SLOT_BYTES));
    this.batch = new MsgBatch(count, bufSize, sab, 0);
    this.#gso = new OffloadMsgBatch(GSO_SLOTS, GSO_SLOT_BYTES, sab, batchBytes);
    this.#keys = new Int32Array(count);
    this.#runStart = new Int32Array(count);
    this.#runCount = new Int32Array(count);
  }

  /** Whether UDP GSO is in use on `fd` (probed the first time a socket is seen; off after a refusal). */
  usable(fd: number): boolean {
    if (fd !== this.#fd) {
      this.#fd = fd;
      this.#usable = fd >= 0 && udpSegmentSupported(fd);
    }
    return this.#usable;
  }

  /**
   * Sends messages 0..n-1 of {@link batch} on `fd` as GSO runs, waiting briefly while the socket
   * buffer is full. The outcome says how many messages went, and whether GSO was refused (the
   * rest must then go as plain datagrams). The returned object is reused.
   */
  send(fd: number, n: number): SendOutcome {
    const runs = this.#planRuns(n);
    const out = this.#outcome;
    out.sent = 0;
    out.refused = false;
    for (let first = 0; first < runs; first += GSO_SLOTS) {
      const count = Math.min(GSO_SLOTS, runs - first);
      this.#fill(first, count);
      const done = this.#sendSlots(fd, count);
      out.sent = first + done < runs ? this.#runStart[first + done] : n;
      if (done < count) {
        out.refused = this.#refused;
        break;
      }
    }
    return out;
  }

  /** Sends GSO slots 0..count-1, waiting briefly while the socket buffer is full; returns how many went. */
  #sendSlots(fd: number, count: number): number {
    this.#refused = false;
    const off = sendWithBackpressure(this.#gso, fd, 0, count);
    if (off < count && isGsoRefusal(errno())) {
      this.#usable = false;
      this.#refused = true;
    }
    return off;
  }

  /** Groups messages 0..n-1 into runs of consecutive messages to one address; returns the run count. */
  #planRuns(n: number): number {
    const b = this.batch;
    const keys = this.#keys;
    keys[0] = 0;
    for (let i = 1; i < n; i++) keys[i] = sameAddress(b, i, i - 1) ? keys[i - 1] : i;
    return planGsoRuns(b.lens, keys, n, this.#runStart, this.#runCount, undefined, UDP_GSO_MAX_BYTES);
  }

  /** Copies runs first..first+count-1 into GSO slots 0..count-1. */
  #fill(first: number, count: number): void {
    const b = this.batch;
    const gso = this.#gso;
    for (let slot = 0; slot < count; slot++) {
      const r = first + slot;
      const start = this.#runStart[r];
      const messages = this.#runCount[r];
      const dst = gso.bufs[slot];
      let at = 0;
      for (let k = start; k < start + messages; k++) {
        copyBytes(b.bufs[k], 0, b.lens[k], dst, at);
        at += b.lens[k];
      }
      gso.lens[slot] = at;
      gso.segSizes[slot] = messages > 1 ? b.lens[start] : 0;
      gso.setAddr(slot, b.addrs[start], b.addrLens[start]);
    }
  }
}

/** True when slots `i` and `j` of `b` have the same destination sockaddr. */
function sameAddress(b: MsgBatch, i: number, j: number): boolean {
  const len = b.addrLens[i];
  if (len !== b.addrLens[j]) return false;
  const x = b.addrs[i];
  const y = b.addrs[j];
  for (let k = 0; k < len; k++) if (x[k] !== y[k]) return false;
  return true;
}
