/**
 * Per-source-IP token bucket for handshake messages under load (wireguard-go ratelimiter.go /
 * kernel ratelimiter.c): 20 packets per second with a burst of 5. Entries idle for more than a
 * second (by then their bucket is full again, so forgetting them changes nothing) are garbage
 * collected, and the table is capped: when it is full of active sources, new sources are refused
 * (as the kernel does) rather than evicting someone else's bucket.
 * @module
 */

/** Sustained packets per second per source. */
export const RATE_LIMIT_PACKETS_PER_SECOND = 20;
/** Packets a fresh or idle source may send at once. */
export const RATE_LIMIT_BURST = 5;
/** Idle time after which an entry is dropped (ms). */
export const RATE_LIMIT_GC_INTERVAL_MS = 1000;
/** Default cap on tracked sources. */
export const RATE_LIMIT_MAX_ENTRIES = 65536;

const PACKET_COST_MS = 1000 / RATE_LIMIT_PACKETS_PER_SECOND;
const MAX_TOKENS_MS = PACKET_COST_MS * RATE_LIMIT_BURST;

interface Bucket {
  tokens: number;
  lastTime: number;
}

/** Token-bucket rate limiter keyed by source IP. */
export class RateLimiter {
  readonly #clock: () => number;
  readonly #maxEntries: number;
  readonly #buckets = new Map<string, Bucket>();
  #lastGc: number;

  /** `clock` returns milliseconds; `maxEntries` bounds memory. */
  constructor(clock: () => number, maxEntries: number = RATE_LIMIT_MAX_ENTRIES) {
    this.#clock = clock;
    this.#maxEntries = maxEntries;
    this.#lastGc = clock();
  }

  /** Number of tracked sources. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Charges one packet to `ipKey`; true when it is within its allowance. */
  allow(ipKey: string): boolean {
    const now = this.#clock();
    if (now - this.#lastGc >= RATE_LIMIT_GC_INTERVAL_MS) this.gc();
    const bucket = this.#buckets.get(ipKey);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxEntries) {
        this.gc();
        if (this.#buckets.size >= this.#maxEntries) return false;
      }
      this.#buckets.set(ipKey, { tokens: MAX_TOKENS_MS - PACKET_COST_MS, lastTime: now });
      return true;
    }
    bucket.tokens = Math.min(MAX_TOKENS_MS, bucket.tokens + Math.max(0, now - bucket.lastTime));
    bucket.lastTime = now;
    if (bucket.tokens >= PACKET_COST_MS) {
      bucket.tokens -= PACKET_COST_MS;
      return true;
    }
    return false;
  }

  /** Drops entries idle for more than {@link RATE_LIMIT_GC_INTERVAL_MS}. */
  gc(): void {
    const now = this.#clock();
    this.#lastGc = now;
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.lastTime > RATE_LIMIT_GC_INTERVAL_MS) this.#buckets.delete(key);
    }
  }
}
