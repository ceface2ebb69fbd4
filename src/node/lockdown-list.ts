/**
 * The wg0 lockdown extra-port list of a node: the TCP/UDP ports (or ranges) wg0 delivers beyond ICMP,
 * UDP 51830 and TCP 51831 when both peers use AES. It is validated, kept sorted without duplicates,
 * persisted atomically in `<stateDir>/lockdown.json` (write, fsync, rename, fsync directory) before it
 * is applied, and loaded at start. A file that exists but cannot be read or parsed stops the node
 * ({@link LockdownListError}); it is never silently replaced by an empty list.
 *
 * The text form `PROTO/PORT` or `PROTO/FIRST-LAST` (e.g. `tcp/8080`, `udp/6000-6010`) is what the
 * config (`lockdown.extraPorts`) and the CLI (`twofold lockdown add …`) use.
 * @module
 */
import type { LockdownPort } from "../admin/model.ts";
import {
  type AlwaysAllowed,
  formatEntry,
  isAlwaysAllowed,
  MAX_LOCKDOWN_ENTRIES,
  overlaps,
  sortEntries,
} from "../admin/lockdown-schema.ts";
import { writeFileAtomic } from "../dske/durable-file.ts";
import { CONFIG_FILE_MAX_BYTES, FileRuleError, readConfigText } from "../config/secret-file.ts";

/** Name of the persisted list inside the state directory. */
export const LOCKDOWN_FILE = "lockdown.json";

/** A list that is invalid, or a persisted list that cannot be loaded or saved. */
export class LockdownListError extends Error {
  /** Index of the bad entry, when one entry is to blame. */
  readonly index: number | null;
  /** What is wrong with that entry, without the entry's own label (the message is label + problem). */
  readonly problem: string;

  /** Creates the error; `entry` names the bad entry and its problem. */
  constructor(message: string, entry?: { index: number; problem: string }) {
    super(message);
    this.name = "LockdownListError";
    this.index = entry?.index ?? null;
    this.problem = entry?.problem ?? message;
  }
}

/** Options of {@link normalizeLockdownPorts}. */
export interface NormalizeOptions {
  /** How an entry is named in messages (default `entry N`). */
  label?: (index: number) => string;
  /** Also refuse an entry that is just a port the lockdown always allows. */
  alwaysAllowed?: AlwaysAllowed;
}

const SPEC = /^(tcp|udp)\/([0-9]{1,5})(?:-([0-9]{1,5}))?$/;
/** How to write one entry, for error messages. */
export const PORT_SPEC_HINT =
  "write PROTO/PORT or PROTO/FIRST-LAST with PROTO tcp or udp, e.g. tcp/8080 or udp/6000-6010";

/** Parses `tcp/8080` or `udp/6000-6010`; throws a LockdownListError naming the problem. */
export function parseProtoPort(text: string): LockdownPort {
  const m = SPEC.exec(text.trim().toLowerCase());
  if (!m) throw new LockdownListError(`${JSON.stringify(text)} is not a port or range; ${PORT_SPEC_HINT}`);
  const from = Number(m[2]);
  const to = m[3] === undefined ? from : Number(m[3]);
  return checkPort({ proto: m[1] as "tcp" | "udp", from, to }, JSON.stringify(text));
}

function checkPort(p: LockdownPort, what: string): LockdownPort {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!ok(p.from) || !ok(p.to)) throw new LockdownListError(`${what}: ports must be from 1 to 65535`);
  if (p.from > p.to) {
    throw new LockdownListError(`${what}: the range ends before it starts; write the lower port first`);
  }
  return { proto: p.proto, from: p.from, to: p.to };
}

/**
 * Validates a list with the admin API's rules (protocols, port bounds, ranges in order, at most
 * MAX_LOCKDOWN_ENTRIES, no two entries of one protocol overlapping; with `alwaysAllowed`, no entry that
 * is just such a port) and returns it sorted (protocol, first port, last port). Throws a
 * LockdownListError naming the first bad entry (`entry N`, or `opts.label(N)`) with its index.
 */
export function normalizeLockdownPorts(
  ports: readonly LockdownPort[],
  opts: NormalizeOptions = {},
): LockdownPort[] {
  const label = opts.label ?? ((i: number) => `entry ${i}`);
  const bad = (i: number, problem: string, sep = " ") =>
    new LockdownListError(`${label(i)}${sep}${problem}`, { index: i, problem });
  if (!Array.isArray(ports)) throw new LockdownListError("the list must be an array");
  if (ports.length > MAX_LOCKDOWN_ENTRIES) {
    throw new LockdownListError(
      `${ports.length} entries is more than ${MAX_LOCKDOWN_ENTRIES}; merge them into ranges`,
    );
  }
  const out: LockdownPort[] = [];
  ports.forEach((p, i) => {
    if (typeof p !== "object" || p === null || (p.proto !== "tcp" && p.proto !== "udp")) {
      throw bad(i, 'proto must be "tcp" or "udp"', ": ");
    }
    let c: LockdownPort;
    try {
      c = checkPort(p, `(${p.proto}/${p.from}-${p.to})`);
    } catch (e) {
      throw bad(i, (e as Error).message);
    }
    if (opts.alwaysAllowed && isAlwaysAllowed(c, opts.alwaysAllowed)) {
      throw bad(
        i,
        `${formatEntry(c)} is always allowed by the lockdown (aes0 and the key plane); leave it out`,
        ": ",
      );
    }
    const j = out.findIndex((q) => overlaps(c, q));
    if (j >= 0) {
      throw bad(
        i,
        `(${formatEntry(c)}) overlaps ${label(j)} (${formatEntry(out[j])}); merge them into one entry`,
      );
    }
    out.push(c);
  });
  return sortEntries(out);
}

/** Where a loaded list came from. */
export type LockdownSource = "file" | "config";

/** The persisted lockdown list of one node. */
export class LockdownList {
  /** Absolute path of the persisted file. */
  readonly path: string;
  /** Where the list in force at start came from. */
  readonly source: LockdownSource;
  readonly #dir: string;
  #ports: LockdownPort[];
  readonly #listeners = new Set<(ports: LockdownPort[]) => void>();

  private constructor(dir: string, ports: LockdownPort[], source: LockdownSource) {
    this.#dir = dir;
    this.path = `${dir}/${LOCKDOWN_FILE}`;
    this.#ports = ports;
    this.source = source;
  }

  /**
   * Loads `<stateDir>/lockdown.json`; when it does not exist, starts from `initial` (the config's
   * `lockdown.extraPorts`) without writing anything. A file that exists but is unreadable or invalid is
   * a LockdownListError whose message names the file and the fix. A leftover `lockdown.json.tmp` from an
   * interrupted write is removed (the rename never happened, so the old file is the list).
   */
  static open(stateDir: string, initial: readonly LockdownPort[] = []): LockdownList {
    const path = `${stateDir}/${LOCKDOWN_FILE}`;
    try {
      Deno.removeSync(`${path}.tmp`);
    } catch {
      // none left over
    }
    let text: string;
    try {
      text = readConfigText(path, { label: "lockdown list", maxBytes: CONFIG_FILE_MAX_BYTES });
    } catch (e) {
      if (e instanceof FileRuleError && e.broken === "missing") {
        return new LockdownList(stateDir, normalizeLockdownPorts(initial), "config");
      }
      if (e instanceof FileRuleError) throw new LockdownListError(e.message);
      throw e;
    }
    let ports: LockdownPort[];
    try {
      const data = JSON.parse(text) as unknown;
      if (typeof data !== "object" || data === null || (data as { version?: unknown }).version !== 1) {
        throw new LockdownListError('expected {"version": 1, "ports": [...]}');
      }
      ports = normalizeLockdownPorts((data as { ports: LockdownPort[] }).ports);
    } catch (e) {
      const detail = e instanceof SyntaxError ? "not JSON" : (e as Error).message;
      throw new LockdownListError(
        `lockdown list ${path} is corrupt (${detail}); fix it, or remove it to start from the config's ` +
          "lockdown.extraPorts",
      );
    }
    return new LockdownList(stateDir, ports, "file");
  }

  /** The list in force (a copy). */
  get ports(): LockdownPort[] {
    return this.#ports.map((p) => ({ ...p }));
  }

  /**
   * Validates `ports`, persists the list atomically and only then makes it the list in force; returns
   * it. On any failure the previous list stays in force and a LockdownListError is thrown.
   */
  set(ports: readonly LockdownPort[]): LockdownPort[] {
    const next = normalizeLockdownPorts(ports);
    const text = JSON.stringify({ version: 1, ports: next }, null, 2) + "\n";
    try {
      Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(this.#dir, LOCKDOWN_FILE, text);
    } catch (e) {
      throw new LockdownListError(`saving the lockdown list to ${this.path} failed: ${(e as Error).message}`);
    }
    this.#ports = next;
    for (const l of this.#listeners) l(this.ports);
    return this.ports;
  }

  /** Calls `listener` with the new list after every change ({@link set}); returns an unsubscribe. */
  onChange(listener: (ports: LockdownPort[]) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}
