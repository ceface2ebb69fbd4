/**
 * Crash-safe PSRD pools (docs/design.md §3.2, §4 invariants 1-4, 7, 8).
 *
 * Layout under `<stateDir>/psrd/`:
 * - `lock`: held with an exclusive advisory lock while a writable store is open, so two processes never
 *   allocate from the same pools.
 * - `ingested.json`: every block id ever ingested (also after its block is used up or removed), so a
 *   block can never be ingested, and its pad reused, twice.
 * - `blocks/<blockIdHex>/data`: the pad bytes (C2H region then H2C region), mode 0600. Only ever
 *   overwritten with zeros below the watermarks.
 * - `blocks/<blockIdHex>/state.json`: ids, lengths and the watermarks `tx_next` (next offset this side
 *   sends from, in its send region) and `rx_next` (lowest offset it accepts, in its receive region),
 *   replaced atomically (temp file, fsync, rename, fsync directory) before any reservation or acceptance
 *   returns.
 *
 * A missing or corrupt state file fails closed: the store refuses to open rather than restart a block at
 * offset 0. Watermarks only ever rise.
 * @module
 */
import { toHex } from "../encoding.ts";
import { logger } from "../log.ts";
import { syncDir, writeAll, writeFileAtomic } from "./durable-file.ts";
import {
  assertValidPsrdFile,
  isValidHubEndpoint,
  PSRD_MAX_REGION_BYTES,
  PsrdError,
  type PsrdFile,
  type PsrdRole,
} from "./psrd-file.ts";
import { checkSecretFile, FileRuleError } from "../config/secret-file.ts";

export { PsrdError, type PsrdRole } from "./psrd-file.ts";

const log = logger("psrd");

/** A stored block as seen by one side. Offsets and lengths are relative to the region's start. */
export interface BlockInfo {
  /** Block id (32 hex digits). */
  blockId: string;
  /** The side this store plays for the block. */
  role: PsrdRole;
  /** Hub id (hex). */
  hubId: string;
  /** Client id (hex). */
  clientId: string;
  /** The client's WireGuard public key (hex). */
  peerId: string;
  /** Where the client reaches the hub (HOST:PORT). */
  hubEndpoint: string;
  /** Next offset this side consumes in its send region. */
  txNext: number;
  /** Lowest offset this side accepts in its receive region. */
  rxNext: number;
  /** Bytes left in the send region. */
  txRemaining: number;
  /** Bytes left in the receive region. */
  rxRemaining: number;
  /** Length of the send region (C2H for a client, H2C for a hub). */
  txLen: number;
  /** Length of the receive region (H2C for a client, C2H for a hub). */
  rxLen: number;
}

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

interface BlockState {
  blockId: string;
  role: PsrdRole;
  hubId: string;
  clientId: string;
  peerId: string;
  hubEndpoint: string;
  c2hLen: number;
  h2cLen: number;
  txNext: number;
  rxNext: number;
  /** Send-region bytes below this offset are zero on disk. */
  txScrubbed: number;
  /** Receive-region bytes below this offset are zero on disk. */
  rxScrubbed: number;
}

interface Block {
  state: BlockState;
  dir: string;
  data: Deno.FsFile | null;
  lowWaterReported: boolean;
}

const DEFAULT_LOW_WATER = 64 * 1024;
const DEFAULT_SCRUB_EVERY = 64;
const BLOCK_NAME = /^[0-9a-f]{32}$/;
const INGEST_PREFIX = ".ingest-";
const ZEROS = new Uint8Array(64 * 1024);

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function txBase(s: BlockState): number {
  return s.role === "client" ? 0 : s.c2hLen;
}
function rxBase(s: BlockState): number {
  return s.role === "client" ? s.c2hLen : 0;
}
function txLen(s: BlockState): number {
  return s.role === "client" ? s.c2hLen : s.h2cLen;
}
function rxLen(s: BlockState): number {
  return s.role === "client" ? s.h2cLen : s.c2hLen;
}

function info(s: BlockState): BlockInfo {
  return {
    blockId: s.blockId,
    role: s.role,
    hubId: s.hubId,
    clientId: s.clientId,
    peerId: s.peerId,
    hubEndpoint: s.hubEndpoint,
    txNext: s.txNext,
    rxNext: s.rxNext,
    txRemaining: txLen(s) - s.txNext,
    rxRemaining: rxLen(s) - s.rxNext,
    txLen: txLen(s),
    rxLen: rxLen(s),
  };
}

function stateJson(s: BlockState): string {
  return JSON.stringify({
    version: 1,
    block_id: s.blockId,
    role: s.role,
    hub_id: s.hubId,
    client_id: s.clientId,
    peer_id: s.peerId,
    hub_endpoint: s.hubEndpoint,
    c2h_len: s.c2hLen,
    h2c_len: s.h2cLen,
    tx_next: s.txNext,
    rx_next: s.rxNext,
    tx_scrubbed: s.txScrubbed,
    rx_scrubbed: s.rxScrubbed,
  }) + "\n";
}

/** Parses a state file; returns a description of the first problem instead of a state when invalid. */
function parseState(text: string, blockId: string): BlockState | string {
  let o: Record<string, unknown>;
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return "not a JSON object";
    o = v;
  } catch {
    return "not valid JSON";
  }
  const int = (k: string) => typeof o[k] === "number" && Number.isSafeInteger(o[k]) && (o[k] as number) >= 0;
  const hex = (k: string, len: number) =>
    typeof o[k] === "string" && new RegExp(`^[0-9a-f]{${len}}$`).test(o[k]);
  if (o.version !== 1) return `"version" is not 1`;
  if (o.block_id !== blockId) return `"block_id" does not match the directory name`;
  if (o.role !== "client" && o.role !== "hub") return `"role" is not client or hub`;
  for (const [k, len] of [["hub_id", 32], ["client_id", 32], ["peer_id", 64]] as const) {
    if (!hex(k, len)) return `"${k}" is not ${len} hex digits`;
  }
  if (typeof o.hub_endpoint !== "string" || !isValidHubEndpoint(o.hub_endpoint)) {
    return `"hub_endpoint" is invalid`;
  }
  for (const k of ["c2h_len", "h2c_len", "tx_next", "rx_next", "tx_scrubbed", "rx_scrubbed"]) {
    if (!int(k)) return `"${k}" is not a non-negative integer`;
  }
  const s: BlockState = {
    blockId,
    role: o.role,
    hubId: o.hub_id as string,
    clientId: o.client_id as string,
    peerId: o.peer_id as string,
    hubEndpoint: o.hub_endpoint,
    c2hLen: o.c2h_len as number,
    h2cLen: o.h2c_len as number,
    txNext: o.tx_next as number,
    rxNext: o.rx_next as number,
    txScrubbed: o.tx_scrubbed as number,
    rxScrubbed: o.rx_scrubbed as number,
  };
  if (s.c2hLen < 1 || s.h2cLen < 1) return "a region length is zero";
  if (s.txNext > txLen(s) || s.rxNext > rxLen(s)) return "a watermark lies beyond its region";
  if (s.txScrubbed > s.txNext || s.rxScrubbed > s.rxNext) return "a scrub mark lies above its watermark";
  return s;
}

function parseIngested(text: string): Set<string> | null {
  try {
    const o = JSON.parse(text);
    if (o?.version !== 1 || !Array.isArray(o.block_ids)) return null;
    const ids = new Set<string>();
    for (const id of o.block_ids) {
      if (typeof id !== "string" || !BLOCK_NAME.test(id)) return null;
      ids.add(id);
    }
    return ids;
  } catch {
    return null;
  }
}

function ingestedJson(ids: Set<string>): string {
  return JSON.stringify({ version: 1, block_ids: [...ids].sort() }) + "\n";
}

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
      PsrdStore.#create(stateDir, root);
    }
    let lock: Deno.FsFile | null = null;
    if (!readOnly) {
      lock = Deno.openSync(`${root}/lock`, { read: true, write: true, create: true, mode: 0o600 });
      if (!lock.tryLockSync(true)) {
        lock.close();
        throw new PsrdError(`PSRD state ${root} is in use by another process: stop it first`);
      }
    }
    const blocks = new Map<string, Block>();
    try {
      const ingested = PsrdStore.#readIngested(root);
      if (!readOnly) PsrdStore.#removeLeftovers(root);
      for (const entry of Deno.readDirSync(`${root}/blocks`)) {
        if (!BLOCK_NAME.test(entry.name)) continue;
        blocks.set(entry.name, PsrdStore.#loadBlock(`${root}/blocks/${entry.name}`, entry.name, readOnly));
      }
      // A crash between a block's rename into place and the ingest record update: record it now.
      const missing = [...blocks.keys()].filter((id) => !ingested.has(id));
      if (missing.length > 0) {
        for (const id of missing) ingested.add(id);
        if (!readOnly) writeFileAtomic(root, "ingested.json", ingestedJson(ingested));
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

  /** Creates `<stateDir>/psrd` atomically (built aside, then renamed into place). */
  static #create(stateDir: string, root: string): void {
    Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${stateDir}/.psrd-new`;
    if (exists(tmp)) Deno.removeSync(tmp, { recursive: true });
    Deno.mkdirSync(`${tmp}/blocks`, { recursive: true, mode: 0o700 });
    Deno.chmodSync(tmp, 0o700);
    syncDir(`${tmp}/blocks`);
    writeFileAtomic(tmp, "ingested.json", ingestedJson(new Set()));
    Deno.renameSync(tmp, root);
    syncDir(stateDir);
  }

  static #readIngested(root: string): Set<string> {
    const path = `${root}/ingested.json`;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new PsrdError(
          `PSRD record of ingested blocks ${path} is missing: refusing to open (without it a used block could be ingested again)`,
        );
      }
      throw e;
    }
    const ids = parseIngested(text);
    if (!ids) {
      throw new PsrdError(
        `PSRD record of ingested blocks ${path} is corrupt: refusing to open (without it a used block could be ingested again)`,
      );
    }
    return ids;
  }

  /** Removes what a crash may leave behind: half-built ingests and unrenamed temp files. */
  static #removeLeftovers(root: string): void {
    const blocksDir = `${root}/blocks`;
    for (const entry of Deno.readDirSync(blocksDir)) {
      if (entry.name.startsWith(INGEST_PREFIX)) {
        Deno.removeSync(`${blocksDir}/${entry.name}`, { recursive: true });
      } else if (BLOCK_NAME.test(entry.name) && exists(`${blocksDir}/${entry.name}/state.json.tmp`)) {
        Deno.removeSync(`${blocksDir}/${entry.name}/state.json.tmp`);
      }
    }
    if (exists(`${root}/ingested.json.tmp`)) Deno.removeSync(`${root}/ingested.json.tmp`);
  }

  static #loadBlock(dir: string, blockId: string, readOnly: boolean): Block {
    const retire =
      `refusing to open (restarting the block would reuse pad bytes); retire the block by removing ${dir}`;
    let text: string;
    try {
      text = Deno.readTextFileSync(`${dir}/state.json`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new PsrdError(`PSRD block ${blockId}: state file ${dir}/state.json is missing: ${retire}`);
      }
      throw e;
    }
    const state = parseState(text, blockId);
    if (typeof state === "string") {
      throw new PsrdError(
        `PSRD block ${blockId}: state file ${dir}/state.json is corrupt (${state}): ${retire}`,
      );
    }
    const dataPath = `${dir}/data`;
    let st: Deno.FileInfo;
    try {
      st = checkSecretFile(dataPath, {
        label: `PSRD block ${blockId}: data file`,
        maxBytes: 2 * PSRD_MAX_REGION_BYTES,
      });
    } catch (e) {
      if (!(e instanceof FileRuleError)) throw e;
      if (e.broken === "missing") {
        throw new PsrdError(`PSRD block ${blockId}: data file ${dataPath} is missing: ${retire}`);
      }
      throw new PsrdError(e.message);
    }
    if (st.size !== state.c2hLen + state.h2cLen) {
      throw new PsrdError(`PSRD block ${blockId}: data file ${dataPath} has the wrong size: ${retire}`);
    }
    const data = readOnly ? null : Deno.openSync(dataPath, { read: true, write: true });
    if (data !== null && data.statSync().ino !== st.ino) {
      data.close();
      throw new PsrdError(
        `PSRD block ${blockId}: data file ${dataPath} changed while it was opened: try again`,
      );
    }
    return { state, dir, data, lowWaterReported: false };
  }

  /**
   * Stores a new block. Refuses (PsrdError) a block id ingested before, even when that block has since been
   * used up or removed. The block appears atomically: built in a temp directory, synced, renamed.
   */
  ingest(f: PsrdFile): BlockInfo {
    this.#checkWritable();
    assertValidPsrdFile(f);
    const blockId = toHex(f.blockId);
    const blocksDir = `${this.#root}/blocks`;
    if (this.#ingested.has(blockId) || exists(`${blocksDir}/${blockId}`)) {
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
    const tmp = `${blocksDir}/${INGEST_PREFIX}${blockId}`;
    if (exists(tmp)) Deno.removeSync(tmp, { recursive: true });
    Deno.mkdirSync(tmp, { mode: 0o700 });
    const data = Deno.openSync(`${tmp}/data`, { write: true, createNew: true, mode: 0o600 });
    try {
      Deno.chmodSync(`${tmp}/data`, 0o600);
      writeAll(data, f.data);
      data.syncSync();
    } finally {
      data.close();
    }
    writeFileAtomic(tmp, "state.json", stateJson(state));
    const dir = `${blocksDir}/${blockId}`;
    Deno.renameSync(tmp, dir);
    syncDir(blocksDir);
    this.#ingested.add(blockId);
    writeFileAtomic(this.#root, "ingested.json", ingestedJson(this.#ingested));
    const block: Block = {
      state,
      dir,
      data: Deno.openSync(`${dir}/data`, { read: true, write: true }),
      lowWaterReported: false,
    };
    this.#blocks.set(blockId, block);
    log.info(`ingested PSRD block ${blockId} (${f.role}, ${txLen(state)} B send, ${rxLen(state)} B receive)`);
    this.#checkLowWater(block);
    return info(state);
  }

  /** All stored blocks. */
  blocks(): BlockInfo[] {
    this.#checkOpen();
    return [...this.#blocks.values()].map((b) => info(b.state));
  }

  /** The block with id `blockIdHex`, if stored. */
  block(blockIdHex: string): BlockInfo | undefined {
    this.#checkOpen();
    const b = this.#blocks.get(blockIdHex.toLowerCase());
    return b ? info(b.state) : undefined;
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
      const i = info(s);
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
    const pad = this.#readAt(b, txBase(s) + offset, used);
    // Advance in memory first: if persisting fails half-way, a higher watermark only wastes bytes.
    s.txNext = offset + used;
    try {
      this.#persist(b);
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
    return this.#readAt(b, rxBase(b.state) + offset, used);
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
    this.#persist(b);
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
      this.#zero(b, txBase(s) + s.txScrubbed, tx - s.txScrubbed);
      this.#zero(b, rxBase(s) + s.rxScrubbed, rx - s.rxScrubbed);
      b.data!.syncSync();
      s.txScrubbed = tx;
      s.rxScrubbed = rx;
      this.#persist(b);
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
    this.#zero(b, 0, s.c2hLen + s.h2cLen);
    b.data!.syncSync();
    b.data!.close();
    b.data = null;
    this.#blocks.delete(s.blockId);
    const blocksDir = `${this.#root}/blocks`;
    Deno.removeSync(b.dir, { recursive: true });
    syncDir(blocksDir);
    log.info(`removed PSRD block ${s.blockId} (${s.role}, hub ${s.hubId}): pad overwritten with zeros`);
    return info(s);
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

  #persist(b: Block): void {
    writeFileAtomic(b.dir, "state.json", stateJson(b.state));
  }

  #readAt(b: Block, position: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    b.data!.seekSync(position, Deno.SeekMode.Start);
    for (let got = 0; got < len;) {
      const n = b.data!.readSync(out.subarray(got));
      if (n === null || n === 0) {
        out.fill(0);
        throw new PsrdError(`PSRD block ${b.state.blockId}: data file is shorter than its state says`);
      }
      got += n;
    }
    return out;
  }

  #zero(b: Block, position: number, len: number): void {
    if (len <= 0) return;
    b.data!.seekSync(position, Deno.SeekMode.Start);
    for (let left = len; left > 0;) {
      const n = b.data!.writeSync(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
      left -= n;
    }
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
    const i = info(b.state);
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
