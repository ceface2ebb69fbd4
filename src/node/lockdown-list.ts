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
import { LockdownListError, type LockdownPort, normalizeLockdownPorts } from "../config/lockdown-ports.ts";

/** Re-exported for the node and the CLI; the rules live in `config/lockdown-ports.ts`. */
export {
  LockdownListError,
  normalizeLockdownPorts,
  type NormalizeOptions,
  parseProtoPort,
  PORT_SPEC_HINT,
} from "../config/lockdown-ports.ts";
import { writeFileAtomic } from "../dske/durable-file.ts";
import { CONFIG_FILE_MAX_BYTES, FileRuleError, readConfigText } from "../config/secret-file.ts";

/** Name of the persisted list inside the state directory. */
export const LOCKDOWN_FILE = "lockdown.json";

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
