/**
 * The map file on disk for the editing tool: read it, and replace it atomically (a temporary file next
 * to it, written and fsynced, renamed over it, directory fsynced), so a reader — a node watching the
 * file, a web server — sees the old map or the new one, never half of one. Edits hold a lock file
 * (`FILE.lock`, created exclusively) so two edits at once cannot lose one of them.
 * @module
 */
import { dirname } from "node:path";
import { CONFIG_FILE_MAX_BYTES, fileProblem } from "../config/secret-file.ts";
import { syncDir, writeAll } from "../dske/durable-file.ts";

/** Mode of a map file the tool creates (a map holds no secret). */
export const MAP_FILE_MODE = 0o644;
/** Suffix of the edit lock file. */
export const LOCK_SUFFIX = ".lock";

/** A problem with the map file: one line naming the file and the fix. */
export class MapFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MapFileError";
  }
}

/** The file rule for a map: a regular file of config size (it is not a secret). */
const MAP_FILE_RULE = { label: "map", maxBytes: CONFIG_FILE_MAX_BYTES };

/**
 * The map file's bytes, exactly (they are what a signature covers); MapFileError when it is missing,
 * unreadable, not a regular file or over the config size limit.
 */
export function readMapBytes(path: string): Uint8Array {
  try {
    const problem = fileProblem(Deno.statSync(path), path, MAP_FILE_RULE, false);
    if (problem) throw new MapFileError(`map ${path} ${problem.problem}: ${problem.fix}`);
    const bytes = Deno.readFileSync(path);
    if (bytes.length > MAP_FILE_RULE.maxBytes) {
      throw new MapFileError(
        `map ${path} is over the ${MAP_FILE_RULE.maxBytes}-byte limit: point it at the right file`,
      );
    }
    return bytes;
  } catch (e) {
    if (e instanceof MapFileError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      throw new MapFileError(
        `map ${path} does not exist: create one with \`twofold netmap init --domain DOM --aes-subnet CIDR --map ${path}\``,
      );
    }
    throw new MapFileError(`map ${path} cannot be read (${(e as Error).name}): check the path and its owner`);
  }
}

/**
 * Replaces `path` with `bytes` atomically, keeping the file's mode (or {@link MAP_FILE_MODE} for a new
 * file). With `createOnly`, an existing file is refused instead.
 */
export function writeFileReplacing(
  path: string,
  bytes: Uint8Array,
  opts: { createOnly?: boolean; mode?: number } = {},
): void {
  let mode = opts.mode ?? MAP_FILE_MODE;
  try {
    const info = Deno.statSync(path);
    if (opts.createOnly) throw new MapFileError(`${path} already exists; remove it or pick another --map`);
    if (info.mode !== null && opts.mode === undefined) mode = info.mode & 0o777;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true, mode });
  } catch (e) {
    throw new MapFileError(
      `cannot write next to ${path} (${(e as Error).name}); check the directory's permissions`,
    );
  }
  try {
    try {
      Deno.chmodSync(tmp, mode);
      writeAll(file, bytes);
      file.syncSync();
    } finally {
      file.close();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw e;
  }
  syncDir(dirname(path) || ".");
}

/**
 * Runs `edit` holding `path`'s lock file. Another edit in progress (or a stale lock left by a crash) is
 * one line naming the lock file.
 */
export function withMapLock<T>(path: string, edit: () => T): T {
  const lock = `${path}${LOCK_SUFFIX}`;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lock, { write: true, createNew: true, mode: 0o600 });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new MapFileError(
        `${lock} exists: another edit of the map is running; if none is, remove the stale lock file`,
      );
    }
    throw new MapFileError(`cannot create ${lock} (${(e as Error).name}); check the directory's permissions`);
  }
  file.close();
  try {
    return edit();
  } finally {
    Deno.removeSync(lock);
  }
}
