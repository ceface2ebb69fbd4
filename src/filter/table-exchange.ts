/**
 * How a compiled rule table reaches the workers of an interface and is replaced atomically: two table
 * buffers and a generation number in one SharedArrayBuffer. The generation's parity names the buffer
 * in force. The control plane (the only writer) writes a new table into the other buffer and then
 * bumps the generation with one atomic store, so a reader sees either the whole old table or the whole
 * new one.
 *
 * A reader switches when it syncs (once per poll round, before its next packet) and acknowledges the
 * generation it now uses. The writer only rewrites a buffer no reader still uses: while some reader has
 * not acknowledged the current generation, {@link TableWriter.publish} returns false and the caller
 * retries (the data-plane workers sync at least every poll timeout, 100 ms). Readers never wait and never
 * copy: a table is a view into the shared buffer.
 *
 * Layout: Int32 header — generation, capacity in words, the word length of each buffer, then one
 * acknowledgement slot per reader (-1 = slot unused) — followed by the two buffers.
 * @module
 */
import { RuleTable } from "./rule-table.ts";

/** Most readers (workers, plus a trace reader) one exchange serves. */
export const MAX_TABLE_READERS = 8;
const H_GENERATION = 0;
const H_CAPACITY = 1;
const H_LENGTH = 2; // two words
const H_ACK = 4;
const HEADER_WORDS = H_ACK + MAX_TABLE_READERS;

/** Bytes of an exchange whose tables may hold up to `capacityWords` words each. */
export function tableExchangeBytes(capacityWords: number): number {
  return (HEADER_WORDS + 2 * capacityWords) * 4;
}

function views(sab: SharedArrayBuffer): { header: Int32Array; buffers: [Int32Array, Int32Array] } {
  const header = new Int32Array(sab, 0, HEADER_WORDS);
  const cap = Atomics.load(header, H_CAPACITY);
  return {
    header,
    buffers: [
      new Int32Array(sab, HEADER_WORDS * 4, cap),
      new Int32Array(sab, (HEADER_WORDS + cap) * 4, cap),
    ],
  };
}

/** The control plane's side: creates the exchange and publishes tables. */
export class TableWriter {
  /** The shared buffer to hand to readers. */
  readonly sab: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #buffers: [Int32Array, Int32Array];

  /** Creates an exchange holding `initial` (generation 0); tables may grow to `capacityWords` words. */
  constructor(initial: Int32Array, capacityWords: number) {
    this.sab = new SharedArrayBuffer(tableExchangeBytes(capacityWords));
    const header = new Int32Array(this.sab, 0, HEADER_WORDS);
    header[H_CAPACITY] = capacityWords;
    header.fill(-1, H_ACK, H_ACK + MAX_TABLE_READERS);
    ({ header: this.#header, buffers: this.#buffers } = views(this.sab));
    this.#write(0, initial);
  }

  /** The generation in force. */
  get generation(): number {
    return Atomics.load(this.#header, H_GENERATION);
  }

  #write(buffer: number, table: Int32Array): void {
    if (table.length > this.#buffers[buffer].length) {
      throw new RangeError(
        `rule table of ${table.length} words exceeds the exchange's ${this.#buffers[buffer].length}`,
      );
    }
    new RuleTable(table); // refuse to publish anything a reader could not use
    this.#buffers[buffer].set(table);
    Atomics.store(this.#header, H_LENGTH + buffer, table.length);
  }

  /** Whether every registered reader uses the current generation (so the other buffer is free). */
  readersCaughtUp(): boolean {
    const g = this.generation;
    for (let i = 0; i < MAX_TABLE_READERS; i++) {
      const ack = Atomics.load(this.#header, H_ACK + i);
      if (ack !== -1 && ack !== g) return false;
    }
    return true;
  }

  /**
   * Makes `table` the one in force, atomically, and returns true; returns false (nothing changed) while
   * a reader still uses the previous table — retry after the readers' next sync. Throws RangeError for
   * a table that is invalid or too large.
   */
  publish(table: Int32Array): boolean {
    if (!this.readersCaughtUp()) return false;
    const g = this.generation;
    this.#write((g + 1) & 1, table);
    Atomics.store(this.#header, H_GENERATION, g + 1);
    return true;
  }
}

/** A worker's side: the table in force, switched only when the worker syncs. */
export class TableReader {
  readonly #header: Int32Array;
  readonly #buffers: [Int32Array, Int32Array];
  readonly #slot: number;
  #generation = -1;
  #table!: RuleTable;

  /** Registers reader `slot` (0..MAX_TABLE_READERS-1, one per thread) on the exchange in `sab`. */
  constructor(sab: SharedArrayBuffer, slot: number) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_TABLE_READERS) {
      throw new RangeError(`table reader slot ${slot} is outside 0..${MAX_TABLE_READERS - 1}`);
    }
    ({ header: this.#header, buffers: this.#buffers } = views(sab));
    this.#slot = slot;
    this.sync();
  }

  /** The table in force at the last sync. */
  get table(): RuleTable {
    return this.#table;
  }

  /** The generation of {@link table}. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Switches to the newest table if one was published (cheap otherwise) and acknowledges it; returns
   * whether it switched. Call between packets, never while a decision is in progress.
   */
  sync(): boolean {
    for (;;) {
      const g = Atomics.load(this.#header, H_GENERATION);
      if (g === this.#generation) return false;
      Atomics.store(this.#header, H_ACK + this.#slot, g);
      // Re-check after acknowledging: a writer that looked at the acks before this store may have
      // published again; then take the newer table (the one just acknowledged may be rewritten).
      if (Atomics.load(this.#header, H_GENERATION) !== g) continue;
      const b = g & 1;
      this.#table = new RuleTable(this.#buffers[b].subarray(0, Atomics.load(this.#header, H_LENGTH + b)));
      this.#generation = g;
      return true;
    }
  }

  /** Unregisters the reader (it no longer holds a table back). */
  close(): void {
    Atomics.store(this.#header, H_ACK + this.#slot, -1);
  }
}
