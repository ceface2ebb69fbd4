/**
 * Sliding-window replay protection for transport-message counters (RFC 6479).
 *
 * The bitmap has 128 blocks of 64 bits; each 64-bit block is stored as two adjacent 32-bit words of a
 * `Uint32Array` so every operation stays in small-integer arithmetic (a `BigUint64Array` would box a
 * bigint per access). The window is (128 − 1) × 64 = 8128 counters, matching the kernel and
 * wireguard-go on 64-bit machines. Not safe for concurrent use; one filter per receiving keypair.
 * @module
 */

import {
  COUNTER_BLOCK_BITS,
  COUNTER_BLOCKS,
  COUNTER_WINDOW_SIZE,
  REJECT_AFTER_MESSAGES,
} from "./constants.ts";

const BLOCK_INDEX_MASK = COUNTER_BLOCKS - 1;
const BIT_INDEX_MASK = COUNTER_BLOCK_BITS - 1;

/** Replay filter for one receiving keypair. `validateCounter` allocates nothing. */
export class ReplayFilter {
  /** Highest counter accepted so far (0 after reset). */
  #highest = 0;
  /** 128 blocks × (low word, high word). */
  readonly #bitmap = new Uint32Array(COUNTER_BLOCKS * 2);

  /** Forgets every counter seen so far. */
  reset(): void {
    this.#highest = 0;
    this.#bitmap.fill(0);
  }

  /**
   * Returns true and records `counter` if it has not been seen and is inside the window; returns false
   * for replays, counters more than 8128 behind the highest seen, and counters `>= limit`.
   *
   * `counter` must be a non-negative integer; values `>= 2^53 − 1` (see REJECT_AFTER_MESSAGES) are
   * always rejected, whatever `limit` is. Call only after the packet has been authenticated.
   */
  validateCounter(counter: number, limit: number): boolean {
    if (!(counter >= 0 && counter < limit && counter < REJECT_AFTER_MESSAGES)) return false;
    // Integer division without 32-bit truncation: counters go up to 2^53.
    const block = (counter - (counter & BIT_INDEX_MASK)) / COUNTER_BLOCK_BITS;
    const bitmap = this.#bitmap;
    if (counter > this.#highest) {
      const current = (this.#highest - (this.#highest & BIT_INDEX_MASK)) / COUNTER_BLOCK_BITS;
      let advance = block - current;
      if (advance > COUNTER_BLOCKS) advance = COUNTER_BLOCKS;
      for (let i = 1; i <= advance; i++) {
        // `& mask` on a number below 2^53 keeps the correct low bits (ToInt32 is modulo 2^32).
        const w = ((current + i) & BLOCK_INDEX_MASK) << 1;
        bitmap[w] = 0;
        bitmap[w + 1] = 0;
      }
      this.#highest = counter;
    } else if (this.#highest - counter > COUNTER_WINDOW_SIZE) {
      return false;
    }
    const bit = counter & BIT_INDEX_MASK;
    const w = ((block & BLOCK_INDEX_MASK) << 1) + (bit >>> 5);
    const mask = 1 << (bit & 31);
    const old = bitmap[w];
    if ((old & mask) !== 0) return false;
    bitmap[w] = old | mask;
    return true;
  }
}
