/**
 * The PSRD pools on disk: the directory layout and every file operation on it, each one crash-safe.
 * `psrd-store.ts` decides what to read, write and remove; the records' contents are
 * `psrd-block-state.ts`.
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
 * offset 0.
 * @module
 */
import { syncDir, writeAll, writeFileAtomic } from "./durable-file.ts";
import { PSRD_MAX_REGION_BYTES, PsrdError } from "./psrd-file.ts";
import { checkSecretFile, FileRuleError } from "../config/secret-file.ts";
import {
  BLOCK_NAME,
  type BlockState,
  ingestedJson,
  parseIngested,
  parseState,
  stateJson,
} from "./psrd-block-state.ts";

/** A block on disk: its state, its directory and its open data file (null when opened read-only). */
export interface StoredBlock {
  /** The state as last persisted (or about to be). */
  state: BlockState;
  /** `<root>/blocks/<blockIdHex>`. */
  dir: string;
  /** The pad, open for reading and writing; null for a read-only store or once removed. */
  data: Deno.FsFile | null;
}

/** Prefix of the temp directory a block is built in before it is renamed into place. */
const INGEST_PREFIX = ".ingest-";
/** Zeros written over consumed or removed pad bytes, a chunk at a time. */
const ZEROS = new Uint8Array(64 * 1024);

/** True when `path` exists (as anything, links not followed). */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Creates `<stateDir>/psrd` atomically (built aside, then renamed into place). */
export function createPools(stateDir: string, root: string): void {
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

/** Takes the pools' exclusive lock; a PsrdError when another process holds it. */
export function lockPools(root: string): Deno.FsFile {
  const lock = Deno.openSync(`${root}/lock`, { read: true, write: true, create: true, mode: 0o600 });
  if (!lock.tryLockSync(true)) {
    lock.close();
    throw new PsrdError(`PSRD state ${root} is in use by another process: stop it first`);
  }
  return lock;
}

/** The ingest record; a PsrdError when it is missing or corrupt (fail closed). */
export function readIngested(root: string): Set<string> {
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

/** Replaces the ingest record atomically. */
export function writeIngested(root: string, ids: Set<string>): void {
  writeFileAtomic(root, "ingested.json", ingestedJson(ids));
}

/** Removes what a crash may leave behind: half-built ingests and unrenamed temp files. */
export function removeLeftovers(root: string): void {
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

/** The ids of the blocks stored under `root` (directory names; anything else is skipped). */
export function storedBlockIds(root: string): string[] {
  const ids: string[] = [];
  for (const entry of Deno.readDirSync(`${root}/blocks`)) {
    if (BLOCK_NAME.test(entry.name)) ids.push(entry.name);
  }
  return ids;
}

/** True when a block directory `blockId` exists under `root` (whatever the ingest record says). */
export function blockDirExists(root: string, blockId: string): boolean {
  return exists(`${root}/blocks/${blockId}`);
}

/**
 * Loads one block: its state file and its data file, each checked. A PsrdError naming the file and how
 * to retire the block when either is missing, corrupt or the wrong size (fail closed: restarting the
 * block would reuse pad bytes).
 */
export function loadBlock(dir: string, blockId: string, readOnly: boolean): StoredBlock {
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
  return { state, dir, data };
}

/**
 * Writes a new block (pad `pad`, state `state`) so that it appears atomically: built in a temp
 * directory, synced, renamed into `<root>/blocks/<blockId>`. Returns that directory.
 */
export function writeNewBlock(root: string, state: BlockState, pad: Uint8Array): string {
  const blocksDir = `${root}/blocks`;
  const tmp = `${blocksDir}/${INGEST_PREFIX}${state.blockId}`;
  if (exists(tmp)) Deno.removeSync(tmp, { recursive: true });
  Deno.mkdirSync(tmp, { mode: 0o700 });
  const data = Deno.openSync(`${tmp}/data`, { write: true, createNew: true, mode: 0o600 });
  try {
    Deno.chmodSync(`${tmp}/data`, 0o600);
    writeAll(data, pad);
    data.syncSync();
  } finally {
    data.close();
  }
  writeFileAtomic(tmp, "state.json", stateJson(state));
  const dir = `${blocksDir}/${state.blockId}`;
  Deno.renameSync(tmp, dir);
  syncDir(blocksDir);
  return dir;
}

/** Opens a stored block's pad for reading and writing. */
export function openBlockData(dir: string): Deno.FsFile {
  return Deno.openSync(`${dir}/data`, { read: true, write: true });
}

/** Replaces the block's state file atomically (temp, fsync, rename, fsync directory). */
export function persistState(b: StoredBlock): void {
  writeFileAtomic(b.dir, "state.json", stateJson(b.state));
}

/** Deletes a block's directory (its pad already zeroed and closed) and syncs the blocks directory. */
export function deleteBlockDir(root: string, b: StoredBlock): void {
  Deno.removeSync(b.dir, { recursive: true });
  syncDir(`${root}/blocks`);
}

/** A copy of `len` pad bytes at `position`; a PsrdError (nothing returned) when the file is short. */
export function readPad(b: StoredBlock, position: number, len: number): Uint8Array {
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

/** Overwrites `len` pad bytes at `position` with zeros (not synced). */
export function zeroPad(b: StoredBlock, position: number, len: number): void {
  if (len <= 0) return;
  b.data!.seekSync(position, Deno.SeekMode.Start);
  for (let left = len; left > 0;) {
    const n = b.data!.writeSync(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    left -= n;
  }
}
