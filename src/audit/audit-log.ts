/**
 * The audit log writer: appends sealed records (see chain.ts) to `<stateDir>/audit.jsonl`, fsyncs
 * at most every `fsyncIntervalMs` while records are pending (and on close), and rotates the file when
 * it would grow past `maxFileBytes`: the full file is renamed `audit.<first seq, 12 digits>.jsonl`
 * (so `audit*.jsonl` lists the files oldest first) and the new file's first record links to the last
 * record of the old one; at most `keepFiles` rotated files are kept. On open it continues the chain of
 * the newest file; a last line cut by a crash is kept as it is (the verifier names it) and the next
 * record starts on a new line, linked to the last complete record.
 * @module
 */
import { type AuditInput, GENESIS_HASH, sealRecord } from "./chain.ts";
import { syncDir, writeAll } from "../dske/durable-file.ts";
import { logger } from "../log.ts";

/** The current audit file in the state directory. */
export const AUDIT_FILE = "audit.jsonl";
/** fsync pending records at least this often (ms). */
export const DEFAULT_FSYNC_INTERVAL_MS = 1_000;
/** Rotate before the current file would exceed this size. */
export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Rotated files kept beside the current one. */
export const DEFAULT_KEEP_FILES = 8;

/** The name a full audit file is rotated to: its first record's sequence number, zero-padded. */
export function rotatedFileName(firstSeq: number): string {
  return `audit.${String(firstSeq).padStart(12, "0")}.jsonl`;
}
const ROTATED = /^audit\.(\d{12})\.jsonl$/;

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** See {@link DEFAULT_FSYNC_INTERVAL_MS}. */
  fsyncIntervalMs?: number;
  /** See {@link DEFAULT_MAX_FILE_BYTES}. */
  maxFileBytes?: number;
  /** See {@link DEFAULT_KEEP_FILES}. */
  keepFiles?: number;
  /** Clock (unix ms) for records appended without a time. */
  clock?: () => number;
}

const encoder = new TextEncoder();
const TAIL = /\{"seq":(\d+),.*,"hash":"([0-9a-f]{64})"\}$/;

/** Where the chain stands in one file: its first seq and its last complete record. */
interface FileTail {
  firstSeq?: number;
  lastSeq: number;
  lastHash: string;
  endsMidLine: boolean;
}

function readTail(path: string): FileTail | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const lines = text.split("\n").filter((l) => l !== "");
  const first = /^\{"seq":(\d+),/.exec(lines[0] ?? "");
  const tail: FileTail = {
    firstSeq: first ? Number(first[1]) : undefined,
    lastSeq: 0,
    lastHash: GENESIS_HASH,
    endsMidLine: text !== "" && !text.endsWith("\n"),
  };
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = TAIL.exec(lines[i]);
    if (m) {
      tail.lastSeq = Number(m[1]);
      tail.lastHash = m[2];
      break;
    }
  }
  return tail;
}

/** An open audit log. Appending never throws: a failed write is logged once and counted. */
export class AuditLog {
  readonly #dir: string;
  readonly #path: string;
  readonly #fsyncIntervalMs: number;
  readonly #maxFileBytes: number;
  readonly #keepFiles: number;
  readonly #clock: () => number;
  readonly #log = logger("audit");
  #file: Deno.FsFile;
  #size: number;
  #firstSeq: number | undefined;
  #seq: number;
  #hash: string;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #dirty = false;
  #closed = false;
  #failures = 0;

  private constructor(dir: string, opts: AuditLogOptions) {
    this.#dir = dir;
    this.#path = `${dir}/${AUDIT_FILE}`;
    this.#fsyncIntervalMs = opts.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
    this.#maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.#keepFiles = opts.keepFiles ?? DEFAULT_KEEP_FILES;
    this.#clock = opts.clock ?? Date.now;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let tail = readTail(this.#path);
    if (tail === null || tail.lastSeq === 0) {
      const rotated = this.#rotatedFiles();
      const newest = rotated.at(-1);
      const previous = newest ? readTail(`${dir}/${newest}`) : null;
      if (previous && previous.lastSeq > 0) {
        tail = {
          ...(tail ?? { endsMidLine: false }),
          lastSeq: previous.lastSeq,
          lastHash: previous.lastHash,
        };
      }
    }
    this.#seq = tail?.lastSeq ?? 0;
    this.#hash = tail?.lastHash ?? GENESIS_HASH;
    this.#firstSeq = tail?.firstSeq;
    this.#file = Deno.openSync(this.#path, { append: true, create: true, mode: 0o600 });
    this.#size = this.#file.statSync().size;
    if (tail?.endsMidLine) this.#write("\n");
  }

  /** Opens (creating when needed) the audit log in `dir` and continues its chain. */
  static open(dir: string, opts: AuditLogOptions = {}): AuditLog {
    return new AuditLog(dir, opts);
  }

  /** Sequence number of the last record written (0 before the first). */
  get headSeq(): number {
    return this.#seq;
  }

  /** Hash of the last record written. */
  get headHash(): string {
    return this.#hash;
  }

  /** Records that could not be written. */
  get failures(): number {
    return this.#failures;
  }

  /** Appends one record at time `at` (ISO 8601; default now). */
  append(input: AuditInput, at: string = new Date(this.#clock()).toISOString()): void {
    if (this.#closed) return;
    try {
      const sealed = sealRecord(this.#hash, this.#seq + 1, at, input);
      const line = `${sealed.line}\n`;
      if (this.#size > 0 && this.#size + encoder.encode(line).length > this.#maxFileBytes) this.#rotate();
      this.#write(line);
      this.#seq++;
      this.#hash = sealed.hash;
      this.#firstSeq ??= this.#seq;
      this.#scheduleSync();
    } catch (e) {
      if (this.#failures++ === 0) {
        this.#log.error(`cannot write the audit log ${this.#path}: ${(e as Error).message}`);
      }
    }
  }

  /** Writes pending records to disk now. */
  flush(): void {
    if (this.#syncTimer !== undefined) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    if (!this.#dirty || this.#closed) return;
    this.#dirty = false;
    try {
      this.#file.syncSync();
    } catch (e) {
      this.#log.warn(`cannot fsync the audit log: ${(e as Error).message}`);
    }
  }

  /** Flushes and closes; later appends are ignored. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#file.close();
  }

  #write(text: string): void {
    const bytes = encoder.encode(text);
    writeAll(this.#file, bytes);
    this.#size += bytes.length;
    this.#dirty = true;
  }

  #scheduleSync(): void {
    if (this.#syncTimer !== undefined) return;
    const timer = setTimeout(() => this.flush(), this.#fsyncIntervalMs);
    Deno.unrefTimer(timer);
    this.#syncTimer = timer;
  }

  #rotatedFiles(): string[] {
    const names: string[] = [];
    for (const e of Deno.readDirSync(this.#dir)) if (e.isFile && ROTATED.test(e.name)) names.push(e.name);
    return names.sort();
  }

  #rotate(): void {
    this.flush();
    this.#file.close();
    const name = rotatedFileName(this.#firstSeq ?? this.#seq + 1);
    Deno.renameSync(this.#path, `${this.#dir}/${name}`);
    this.#file = Deno.openSync(this.#path, { append: true, create: true, mode: 0o600 });
    syncDir(this.#dir);
    this.#size = 0;
    this.#firstSeq = undefined;
    const rotated = this.#rotatedFiles();
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.#keepFiles))) {
      Deno.removeSync(`${this.#dir}/${old}`);
    }
    // The journal keeps this head: a reference to compare a later `twofold audit verify` with.
    this.#log.info(`audit log rotated to ${name}: head record ${this.#seq} ${this.#hash}`);
  }
}
