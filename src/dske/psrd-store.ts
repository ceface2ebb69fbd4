/**
 * Crash-safe PSRD pools (docs/design.md §3.2, §4 invariants 1-4, 7, 8): what a node or hub may do with
 * its pre-shared random data. Ingest a block once, ever; reserve send bytes and accept receive bytes
 * only above the watermarks, which only ever rise and are persisted before any reservation or
 * acceptance returns; never wrap (an exhausted region fails closed); overwrite consumed bytes with
 * zeros; warn once per block when a region runs low. The files and their layout are
 * `psrd-store-files.ts`; the records `psrd-block-state.ts`.
 * @module
 */
import { toHex } from "../encoding.ts";
import { logger } from "../log.ts";
import { assertValidPsrdFile, PsrdError, type PsrdFile, type PsrdRole } from "./psrd-file.ts";
import {
  type BlockInfo,
  blockInfo,
  type BlockState,
  rxBase,
  rxLen,
  txBase,
  txLen,
} from "./psrd-block-state.ts";
import {
  blockDirExists,
  createPools,
  deleteBlockDir,
  exists,
  loadBlock,
  lockPools,
  openBlockData,
  persistState,
  readIngested,
  readPad,
  removeLeftovers,
  type StoredBlock,
  storedBlockIds,
  writeIngested,
  writeNewBlock,
  zeroPad,
} from "./psrd-store-files.ts";

export { PsrdError, type PsrdRole } from "./psrd-file.ts";
export type { BlockInfo } from "./psrd-block-state.ts";

const log = logger("psrd");

/** The send region of a block has fewer bytes left than a message needs: fail closed, never wrap. */
export class PsrdExhausted extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PsrdExhausted";
  }
}

/** Options of {@link PsrdStore.open}. */
export interface PsrdStoreOptions {
  /** Alarm threshold in bytes for either region (default 64 KiB). */
  lowWaterBytes?: number;
  /**
   * Called once per block (per open store) the first time the store sees its send or receive region with
   * fewer than `lowWaterBytes` left: on open, ingest, reservation or acceptance. Not called when read-only.
   */
  onLowWater?: (b: BlockInfo) => void;
  /** Scrub consumed bytes after this many reservations/acceptances (default 64). */
  scrubEvery?: number;
  /** Open for inspection only (e.g. `psrd list` while the service runs): no lock, no writes. */
  readOnly?: boolean;
}

/** A stored block and whether its low water was reported yet. */
interface Block extends StoredBlock {
  lowWaterReported: boolean;
}

const DEFAULT_LOW_WATER = 64 * 1024;
const DEFAULT_SCRUB_EVERY = 64;

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new PsrdError(`PSRD: ${name} must be an integer >= ${min}`);
}

/** Persistent PSRD pools of one node (client or hub), in `<stateDir>/psrd/`. Single-threaded, sync I/O. */
export class PsrdStore {
  readonly #root: string;
  readonly #blocks: Map<string, Block>;
  readonly #ingested: Set<string>;
  readonly #lock: Deno.FsFile | null;
  readonly #readOnly: boolean;
  readonly #lowWater: number;
  readonly #onLowWater?: (b: BlockInfo) => void;
  readonly #scrubEvery: number;
  #opsSinceScrub = 0;
  #closed = false;

  private constructor(
    root: string,
    blocks: Map<string, Block>,
    ingested: Set<string>,
    lock: Deno.FsFile | null,
    opts: PsrdStoreOptions,
  ) {
    this.#root = root;
    this.#blocks = blocks;
    this.#ingested = ingested;
    this.#lock = lock;
    this.#readOnly = opts.readOnly ?? false;
    this.#lowWater = opts.lowWaterBytes ?? DEFAULT_LOW_WATER;
    this.#onLowWater = opts.onLowWater;
    this.#scrubEvery = opts.scrubEvery ?? DEFAULT_SCRUB_EVERY;
  }

  /**
   * Opens (creating if needed, unless read-only) the pools in `<stateDir>/psrd/`. Fails closed with a
   * {@link PsrdError} when the directory is in use by another process, or when the ingest record, a
   * block's state file or a block's data file is missing or corrupt.
   */
  // deno-lint-ignore require-await
  static async open(stateDir: string, opts: PsrdStoreOptions = {}): Promise<PsrdStore> {
    checkCount("lowWaterBytes", opts.lowWaterBytes ?? DEFAULT_LOW_WATER, 0);
    checkCount("scrubEvery", opts.scrubEvery ?? DEFAULT_SCRUB_EVERY, 1);
    const root = `${stateDir}/psrd`;
    const readOnly = opts.readOnly ?? false;
    if (!exists(root)) {
      if (readOnly) return new PsrdStore(root, new Map(), new Set(), null, opts);
      createPools(stateDir, root);
    }
    const lock = readOnly ? null : lockPools(root);
    const blocks = new Map<string, Block>();
    try {
      const ingested = readIngested(root);
      if (!readOnly) removeLeftovers(root);
      for (const id of storedBlockIds(root)) {
        blocks.set(id, { ...loadBlock(`${root}/blocks/${id}`, id, readOnly), lowWaterReported: false });
      }
      // A crash between a block's rename into place and the ingest record update: record it now.
      const missing = [...blocks.keys()].filter((id) => !ingested.has(id));
      if (missing.length > 0) {
        for (const id of missing) ingested.add(id);
        if (!readOnly) writeIngested(root, ingested);
      }
      const store = new PsrdStore(root, blocks, ingested, lock, opts);
      for (const b of blocks.values()) store.#checkLowWater(b);
      return store;
    } catch (e) {
      for (const b of blocks.values()) b.data?.close();
      lock?.close();
      throw e;
    }
  }

  /**
   * Stores a new block. Refuses (PsrdError) a block id ingested before, even when that block has since been
   * used up or removed. The block appears atomically: built in a temp directory, synced, renamed.
   */
  ingest(f: PsrdFile): BlockInfo {
    this.#checkWritable();
    assertValidPsrdFile(f);
    const blockId = toHex(f.blockId);
    if (this.#ingested.has(blockId) || blockDirExists(this.#root, blockId)) {
      throw new PsrdError(
        `PSRD block ${blockId} was ingested before: a block is used once, ever; provision a new one`,
      );
    }
    const state: BlockState = {
      blockId,
      role: f.role,
      hubId: toHex(f.hubId),
      clientId: toHex(f.clientId),
      peerId: toHex(f.peerId),
      hubEndpoint: f.hubEndpoint,
      c2hLen: f.c2hLen,
      h2cLen: f.h2cLen,
      txNext: 0,
      rxNext: 0,
      txScrubbed: 0,
      rxScrubbed: 0,
    };
    const dir = writeNewBlock(this.#root, state, f.data);
    this.#ingested.add(blockId);
    writeIngested(this.#root, this.#ingested);
    const block: Block = { state, dir, data: openBlockData(dir), lowWaterReported: false };
    this.#blocks.set(blockId, block);
    log.info(
      `ingested PSRD block ${blockId} (${f.role}, ${txLen(state)} B send, ${rxLen(state)} B receive)`,
    );
    this.#checkLowWater(block);
    return blockInfo(state);
  }

  /** All stored blocks. */
  blocks(): BlockInfo[] {
    this.#checkOpen();
    return [...this.#blocks.values()].map((b) => blockInfo(b.state));
  }

  /** The block with id `blockIdHex`, if stored. */
  block(blockIdHex: string): BlockInfo | undefined {
    this.#checkOpen();
    const b = this.#blocks.get(blockIdHex.toLowerCase());
    return b ? blockInfo(b.state) : undefined;
  }

  /** Among blocks matching every given field (hex ids), the one with the most send bytes left. */
  findBlock(
    filter: { hubId?: string; clientId?: string; peerId?: string; role?: PsrdRole },
  ): BlockInfo | undefined {
    this.#checkOpen();
    let best: BlockInfo | undefined;
    for (const b of this.#blocks.values()) {
      const s = b.state;
      if (filter.hubId !== undefined && s.hubId !== filter.hubId.toLowerCase()) continue;
      if (filter.clientId !== undefined && s.clientId !== filter.clientId.toLowerCase()) continue;
      if (filter.peerId !== undefined && s.peerId !== filter.peerId.toLowerCase()) continue;
      if (filter.role !== undefined && s.role !== filter.role) continue;
      const i = blockInfo(s);
      if (!best || i.txRemaining > best.txRemaining) best = i;
    }
    return best;
  }

  /**
   * Reserves `used` bytes of the send region: persists `txNext = offset + used` (temp, fsync, rename,
   * fsync directory) before returning the offset and a copy of the pad. Throws {@link PsrdExhausted} when
   * fewer than `used` bytes are left (never wraps).
   */
  reserveTx(blockIdHex: string, used: number): { offset: number; pad: Uint8Array } {
    this.#checkWritable();
    const b = this.#get(blockIdHex);
    checkCount("used", used, 1);
    const s = b.state;
    const offset = s.txNext;
    const remaining = txLen(s) - offset;
    if (used > remaining) {
      throw new PsrdExhausted(
        `PSRD block ${s.blockId}: ${remaining} bytes left in the send region, ${used} needed: provision a new block`,
      );
    }
    const pad = readPad(b, txBase(s) + offset, used);
    // Advance in memory first: if persisting fails half-way, a higher watermark only wastes bytes.
    s.txNext = offset + used;
    try {
      persistState(b);
    } catch (e) {
      pad.fill(0);
      throw e;
    }
    this.#afterChange(b);
    return { offset, pad };
  }

  /** True when `[offset, offset + used)` lies in the receive region at or above `rxNext`. No state change. */
  canAccept(blockIdHex: string, offset: number, used: number): boolean {
    this.#checkOpen();
    const b = this.#blocks.get(blockIdHex.toLowerCase());
    if (!b) return false;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(used) || offset < 0 || used < 1) return false;
    return offset >= b.state.rxNext && offset + used <= rxLen(b.state);
  }

  /** A copy of the receive-region pad at `[offset, offset + used)`; throws unless {@link canAccept}. */
  rxPad(blockIdHex: string, offset: number, used: number): Uint8Array {
    this.#checkWritable();
    const b = this.#get(blockIdHex);
    if (!this.canAccept(blockIdHex, offset, used)) {
      throw new PsrdError(
        `PSRD block ${b.state.blockId}: receive range not acceptable (replayed or out of bounds)`,
      );
    }
    return readPad(b, rxBase(b.state) + offset, used);
  }

  /**
   * Call after the tag verified and before acting on the message: persists `rxNext = offset + used`
   * (fsync as for {@link reserveTx}). Throws a PsrdError unless {@link canAccept}.
   */
  acceptRx(blockIdHex: string, offset: number, used: number): void {
    this.#checkWritable();
    const b = this.#get(blockIdHex);
    if (!this.canAccept(blockIdHex, offset, used)) {
      throw new PsrdError(
        `PSRD block ${b.state.blockId}: receive range not acceptable (replayed or out of bounds)`,
      );
    }
    b.state.rxNext = offset + used;
    persistState(b);
    this.#afterChange(b);
  }

  /**
   * Overwrites consumed bytes on disk with zeros: below `txNext` in the send region and below `rxNext` in
   * the receive region (skipped bytes included), then syncs and records how far scrubbing got. Called
   * automatically every `scrubEvery` reservations/acceptances and by {@link close}.
   */
  scrub(): void {
    this.#checkWritable();
    this.#opsSinceScrub = 0;
    for (const b of this.#blocks.values()) {
      const s = b.state;
      const tx = s.txNext;
      const rx = s.rxNext;
      if (tx === s.txScrubbed && rx === s.rxScrubbed) continue;
      zeroPad(b, txBase(s) + s.txScrubbed, tx - s.txScrubbed);
      zeroPad(b, rxBase(s) + s.rxScrubbed, rx - s.rxScrubbed);
      b.data!.syncSync();
      s.txScrubbed = tx;
      s.rxScrubbed = rx;
      persistState(b);
    }
  }

  /**
   * Removes block `blockIdHex` (e.g. one provisioned for the wrong hub): overwrites its whole pad with
   * zeros and syncs, then deletes it. Its id stays in the ingest record, so it can never be ingested
   * again. Returns what the block was. Throws PsrdError for an unknown block.
   */
  remove(blockIdHex: string): BlockInfo {
    this.#checkWritable();
    const b = this.#get(blockIdHex);
    const s = b.state;
    zeroPad(b, 0, s.c2hLen + s.h2cLen);
    b.data!.syncSync();
    b.data!.close();
    b.data = null;
    this.#blocks.delete(s.blockId);
    deleteBlockDir(this.#root, b);
    log.info(`removed PSRD block ${s.blockId} (${s.role}, hub ${s.hubId}): pad overwritten with zeros`);
    return blockInfo(s);
  }

  /** Scrubs, then releases files and the lock. The store is unusable afterwards. */
  close(): void {
    if (this.#closed) return;
    try {
      if (!this.#readOnly) this.scrub();
    } finally {
      this.#closed = true;
      for (const b of this.#blocks.values()) b.data?.close();
      this.#lock?.close();
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new PsrdError("PSRD store is closed");
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#readOnly) throw new PsrdError("PSRD store was opened read-only");
  }

  #get(blockIdHex: string): Block {
    const b = this.#blocks.get(blockIdHex.toLowerCase());
    if (!b) throw new PsrdError(`unknown PSRD block ${blockIdHex.slice(0, 32)}`);
    return b;
  }

  #afterChange(b: Block): void {
    this.#checkLowWater(b);
    if (++this.#opsSinceScrub >= this.#scrubEvery) {
      try {
        this.scrub();
      } catch (e) {
        log.warn(`scrubbing consumed PSRD failed (${(e as Error).name}); will retry`);
      }
    }
  }

  #checkLowWater(b: Block): void {
    if (b.lowWaterReported || this.#readOnly) return;
    const i = blockInfo(b.state);
    if (i.txRemaining >= this.#lowWater && i.rxRemaining >= this.#lowWater) return;
    b.lowWaterReported = true;
    log.warn(
      `PSRD block ${i.blockId} is low: ${i.txRemaining} B left to send, ${i.rxRemaining} B left to receive; provision a new block`,
    );
    try {
      this.#onLowWater?.(i);
    } catch (e) {
      log.warn(`low-water callback failed (${(e as Error).name})`);
    }
  }
}
