/**
 * A fixed-size, set-associative hash table of flow keys (a few 32-bit words each) with two expiry stamps
 * per entry, over flat typed arrays in one buffer. The connection tracker keeps it in a
 * SharedArrayBuffer (the encrypt worker inserts, the decrypt worker looks up); the fragment table keeps
 * it in plain memory. Memory is bounded by construction and no operation allocates.
 *
 * Layout: `buckets × WAYS` entries; each entry is one seqlock word, the key words and the value words
 * (Int32), plus two Float64 stamps: `expiresOut` (written by the inserting side) and `expiresIn`
 * (written by the looking-up side; one writer per stamp). An entry lives while either stamp is in the
 * future. A full bucket gives its slot to the new key by evicting the entry that expires first (expired
 * entries first; among one protocol, the least recently used).
 *
 * Concurrency: one writer of keys. The writer makes the seqlock odd while it rewrites an entry and even
 * (never 0) after; a reader compares a key only between two equal, even seqlock reads, so a torn entry
 * is a miss — and a miss only ever drops a packet. The hash is keyed by a seed the owner supplies
 * (random in production), so a sender cannot aim at one bucket.
 * @module
 */

/** Entries per bucket. */
export const WAYS = 8;

/** Shape of a table. */
export interface FlowTableLayout {
  /** Buckets; a power of two. */
  buckets: number;
  /** 32-bit words per key. */
  keyWords: number;
  /** 32-bit value words per entry. */
  valueWords: number;
}

const HEADER_BYTES = 16; // seed (Int32), then padding for Float64 alignment

/** Bytes a table of `layout` needs. */
export function flowTableBytes(layout: FlowTableLayout): number {
  const entries = layout.buckets * WAYS;
  const ints = entries * (1 + layout.keyWords + layout.valueWords);
  const intBytes = Math.ceil((ints * 4) / 8) * 8;
  return HEADER_BYTES + intBytes + entries * 2 * 8;
}

/** A view of a flow table over a buffer (shared or not); construct one per thread over the same buffer. */
export class FlowTable {
  /** Entries in the table. */
  readonly capacity: number;
  /** Key words per entry. */
  readonly keyWords: number;
  /** Value words per entry. */
  readonly valueWords: number;
  readonly #stride: number;
  readonly #bucketMask: number;
  readonly #ints: Int32Array;
  readonly #stamps: Float64Array;
  readonly #seed: number;

  /**
   * Views `buffer` as a table of `layout`. With `seed` (a random 32-bit number, on the side that creates
   * the table) the buffer is initialised: emptied and the seed stored; without it, the stored seed is
   * used (the other side of a shared table).
   */
  constructor(buffer: ArrayBufferLike, layout: FlowTableLayout, seed?: number) {
    if (layout.buckets < 1 || (layout.buckets & (layout.buckets - 1)) !== 0) {
      throw new RangeError(`flow table buckets must be a power of two, got ${layout.buckets}`);
    }
    if (buffer.byteLength < flowTableBytes(layout)) {
      throw new RangeError(
        `flow table buffer of ${buffer.byteLength} bytes is smaller than its layout needs`,
      );
    }
    this.capacity = layout.buckets * WAYS;
    this.keyWords = layout.keyWords;
    this.valueWords = layout.valueWords;
    this.#stride = 1 + layout.keyWords + layout.valueWords;
    this.#bucketMask = layout.buckets - 1;
    const ints = this.capacity * this.#stride;
    const header = new Int32Array(buffer, 0, 1);
    this.#ints = new Int32Array(buffer, HEADER_BYTES, ints);
    const stampsAt = HEADER_BYTES + Math.ceil((ints * 4) / 8) * 8;
    this.#stamps = new Float64Array(buffer, stampsAt, this.capacity * 2);
    if (seed !== undefined) {
      this.#ints.fill(0);
      this.#stamps.fill(0);
      Atomics.store(header, 0, seed | 0);
    }
    this.#seed = Atomics.load(header, 0);
  }

  /** Bucket index of a key (seeded 32-bit mix of its words). */
  bucketOf(key: Int32Array): number {
    let h = this.#seed ^ 0x9e3779b9;
    for (let i = 0; i < this.keyWords; i++) {
      let k = Math.imul(key[i], 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.#bucketMask;
  }

  /**
   * Index of the live entry holding `key` (a stamp after `now`), or -1. Safe against a concurrent
   * writer: a key read while being rewritten is a miss.
   */
  find(key: Int32Array, now: number): number {
    const ints = this.#ints;
    const stride = this.#stride;
    const first = this.bucketOf(key) * WAYS;
    for (let e = first; e < first + WAYS; e++) {
      const base = e * stride;
      // cheap pre-check without the seqlock: most ways differ in their first two words
      if (ints[base + 1] !== key[0] || ints[base + 2] !== key[1]) continue;
      const seq = Atomics.load(ints, base);
      if (seq === 0 || (seq & 1) === 1) continue;
      let same = true;
      for (let i = 0; i < this.keyWords; i++) {
        if (ints[base + 1 + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      const live = this.#stamps[2 * e] > now || this.#stamps[2 * e + 1] > now;
      if (Atomics.load(ints, base) !== seq) continue;
      return live ? e : -1;
    }
    return -1;
  }

  /**
   * Writer side: the entry for `key`, inserted if absent (evicting the entry of its bucket that expires
   * first); a new entry has zeroed values and both stamps 0, so the caller sets `expiresOut`. An existing
   * entry (live or expired) keeps its values and stamps. Returns the entry index.
   */
  upsert(key: Int32Array): number {
    const ints = this.#ints;
    const stride = this.#stride;
    const first = this.bucketOf(key) * WAYS;
    let victim = first;
    let victimExpiry = Infinity;
    for (let e = first; e < first + WAYS; e++) {
      const base = e * stride;
      const seq = ints[base];
      if (seq === 0) {
        if (victimExpiry > -Infinity) {
          victim = e;
          victimExpiry = -Infinity;
        }
        continue;
      }
      let same = true;
      for (let i = 0; i < this.keyWords; i++) {
        if (ints[base + 1 + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (same) return e;
      const expiry = Math.max(this.#stamps[2 * e], this.#stamps[2 * e + 1]);
      if (expiry < victimExpiry) {
        victim = e;
        victimExpiry = expiry;
      }
    }
    const base = victim * stride;
    const seq = ints[base];
    Atomics.store(ints, base, seq | 1);
    for (let i = 0; i < this.keyWords; i++) ints[base + 1 + i] = key[i];
    for (let i = 0; i < this.valueWords; i++) ints[base + 1 + this.keyWords + i] = 0;
    this.#stamps[2 * victim] = 0;
    this.#stamps[2 * victim + 1] = 0;
    Atomics.store(ints, base, ((seq | 1) + 1) | 0 || 2);
    return victim;
  }

  /** Value word `i` of entry `e`. */
  value(e: number, i: number): number {
    return this.#ints[e * this.#stride + 1 + this.keyWords + i];
  }

  /** Sets value word `i` of entry `e` (writer side). */
  setValue(e: number, i: number, v: number): void {
    this.#ints[e * this.#stride + 1 + this.keyWords + i] = v;
  }

  /** The inserting side's expiry of entry `e`. */
  expiresOut(e: number): number {
    return this.#stamps[2 * e];
  }

  /** Sets the inserting side's expiry of entry `e`. */
  setExpiresOut(e: number, at: number): void {
    this.#stamps[2 * e] = at;
  }

  /** The looking-up side's expiry of entry `e`. */
  expiresIn(e: number): number {
    return this.#stamps[2 * e + 1];
  }

  /** Sets the looking-up side's expiry of entry `e` (the only stamp that side writes). */
  setExpiresIn(e: number, at: number): void {
    this.#stamps[2 * e + 1] = at;
  }

  /** Live entries at `now` (a scan, for tests and status; not for the packet path). */
  liveCount(now: number): number {
    let n = 0;
    for (let e = 0; e < this.capacity; e++) {
      if (
        this.#ints[e * this.#stride] !== 0 && (this.#stamps[2 * e] > now || this.#stamps[2 * e + 1] > now)
      ) n++;
    }
    return n;
  }
}
