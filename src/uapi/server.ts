/**
 * The UAPI control socket `/var/run/wireguard/<ifname>.sock`, so the stock `wg` tool can read and
 * configure a twofold device.
 *
 * Behaviour mirrors wireguard-go (device/uapi.go, ipc/uapi_unix.go):
 * - the directory is created with mode 0755, the socket has mode 0600;
 * - a live socket of the same name makes `listen` fail, a stale one is removed;
 * - a connection may carry any number of `get=1` / `set=1` requests until EOF; an unknown operation
 *   closes the connection without a reply;
 * - requests from all connections are handled one at a time against the device;
 * - when the socket file disappears, `onRemoved` is called (wireguard-go exits then).
 * Unlike wireguard-go, a local user cannot wear the socket down (see accept-loop.ts): at most
 * {@link MAX_UAPI_CONNECTIONS} connections are open (the oldest one that has not sent a complete
 * request is closed to make room), a request must be complete within {@link REQUEST_TIMEOUT_MS} of
 * the connection opening or the previous reply, a reply must be taken within
 * {@link WRITE_TIMEOUT_MS}, and a failing accept (EMFILE) backs off and retries; each kind of refusal
 * is logged at most once per second.
 * Differences: a `set` is applied only once fully received and valid (see protocol.ts); a `set` cut off
 * by EOF is not applied (-EPROTO); lines longer than {@link MAX_LINE_BYTES} or requests larger than
 * {@link MAX_SET_REQUEST_BYTES} / {@link MAX_SET_REQUEST_LINES} are refused with -EIO and the connection is closed.
 * Nothing here logs request contents, so key material never reaches a log.
 * @module
 */
import { isParseError, parseSet, serializeGet, UapiErrno } from "./protocol.ts";
import type { UapiDevice } from "./types.ts";
import { claimSocketPath } from "../unix-socket.ts";
import { AcceptLoop, connectionDeadline as deadline, type ConnectionSlot } from "../accept-loop.ts";
import { LogThrottle } from "../log-throttle.ts";

/** Directory wireguard-go and `wg` use for UAPI sockets. */
export const DEFAULT_UAPI_DIR = "/var/run/wireguard";
/** Longest accepted request line in bytes, newline excluded. */
export const MAX_LINE_BYTES = 4096;
/** Largest accepted `set` body in bytes (about 15 000 peers with one allowed IP each). */
export const MAX_SET_REQUEST_BYTES = 4 * 1024 * 1024;
/** Most lines accepted in one `set` body (bounds per-line bookkeeping for floods of tiny lines). */
export const MAX_SET_REQUEST_LINES = 100_000;
/** Most UAPI connections open at once per interface. */
export const MAX_UAPI_CONNECTIONS = 64;
/** Time to send one complete request, from the connection opening or the previous reply, ms. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Time for the client to take a reply, ms. */
export const WRITE_TIMEOUT_MS = 10_000;
/** How often the socket file is checked for removal, in milliseconds. */
export const REMOVAL_POLL_MS = 500;
/** Longest socket path Linux accepts (sun_path is 108 bytes including the terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** Another daemon already answers on the interface's UAPI socket. */
export class UapiSocketInUseError extends Error {
  /** `path` is the socket that answers. */
  constructor(readonly ifname: string, readonly path: string) {
    super(`interface ${ifname} already has a running daemon (socket ${path})`);
    this.name = "UapiSocketInUseError";
  }
}

/** Options for {@link UapiServer.listen}. */
export interface UapiServerOptions {
  /** Socket directory; default {@link DEFAULT_UAPI_DIR}. */
  dir?: string;
  /** Called once when the socket file is removed or replaced by someone else. */
  onRemoved?: () => void;
  /** Receives one line per refused request (errno and line number only; never values). */
  log?: (message: string) => void;
  /** Most connections open at once (default {@link MAX_UAPI_CONNECTIONS}). */
  maxConnections?: number;
  /** Time to send a complete request, ms (default {@link REQUEST_TIMEOUT_MS}). */
  requestTimeoutMs?: number;
}

const END_OF_STREAM = Symbol("end of stream");
const LINE_TOO_LONG = Symbol("line too long");
type LineResult = string | typeof END_OF_STREAM | typeof LINE_TOO_LONG;

/** Reads `\n`-terminated lines from a connection without buffering more than one line's worth. */
class LineReader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(MAX_LINE_BYTES + 1 + 4096);
  #start = 0;
  #end = 0;
  #eof = false;
  #decoder = new TextDecoder();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next line without its `\n`; END_OF_STREAM at EOF (a partial last line is dropped). */
  async readLine(): Promise<LineResult> {
    let scanFrom = this.#start;
    while (true) {
      const nl = this.#buffer.subarray(scanFrom, this.#end).indexOf(10);
      if (nl >= 0) {
        const lineEnd = scanFrom + nl;
        if (lineEnd - this.#start > MAX_LINE_BYTES) return LINE_TOO_LONG;
        const line = this.#decoder.decode(this.#buffer.subarray(this.#start, lineEnd));
        this.#start = lineEnd + 1;
        return line;
      }
      if (this.#end - this.#start > MAX_LINE_BYTES) return LINE_TOO_LONG;
      if (this.#eof) return END_OF_STREAM;
      scanFrom = this.#end;
      if (this.#end === this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        scanFrom -= this.#start;
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (n === null) this.#eof = true;
      else this.#end += n;
    }
  }
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  let bytes = new TextEncoder().encode(text);
  const cancel = deadline(conn, WRITE_TIMEOUT_MS);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
  } finally {
    cancel();
  }
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : "";
}

/** Creates `dir` with mode 0755 when it does not exist yet; an existing directory is left alone. */
async function ensureSocketDir(dir: string): Promise<void> {
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) throw new Error(`UAPI socket directory ${dir} is not a directory`);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  await Deno.chmod(dir, 0o755);
}

/**
 * Makes room for a new socket at `path`: throws when a daemon answers there or when the file is not a
 * socket; removes a stale socket nobody listens on.
 */
function removeStaleSocket(path: string, ifname: string): Promise<void> {
  return claimSocketPath(
    path,
    (state) =>
      state === "live"
        ? new UapiSocketInUseError(ifname, path)
        : new Error(`${path} exists and is not a socket; refusing to replace it`),
  );
}

function validateInterfaceName(ifname: string): void {
  // IFNAMSIZ is 16 including the NUL; `wg` refuses names containing '/'.
  if (!/^[^/\s\0]{1,15}$/.test(ifname) || ifname === "." || ifname === "..") {
    throw new Error(`invalid interface name ${JSON.stringify(ifname)}`);
  }
}

/** A UAPI control socket serving one device. */
export class UapiServer {
  /** Filesystem path of the socket. */
  readonly path: string;
  #device: UapiDevice;
  #identity: { dev: number | null; ino: number | null };
  #onRemoved?: () => void;
  #log?: (message: string) => void;
  #queue: Promise<unknown> = Promise.resolve();
  #acceptLoop: AcceptLoop;
  #requestTimeoutMs: number;
  #timeoutLog = new LogThrottle();
  #failureLog = new LogThrottle();
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #pollInFlight: Promise<void> | null = null;
  #closed = false;

  private constructor(
    path: string,
    device: UapiDevice,
    listener: Deno.Listener,
    identity: { dev: number | null; ino: number | null },
    opts: UapiServerOptions,
  ) {
    this.path = path;
    this.#device = device;
    this.#identity = identity;
    this.#onRemoved = opts.onRemoved;
    this.#log = opts.log;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.#acceptLoop = new AcceptLoop(listener, {
      name: `UAPI ${path}`,
      maxConnections: opts.maxConnections ?? MAX_UAPI_CONNECTIONS,
      serve: (conn, slot) => this.#serveConnection(conn, slot),
      log: (message) => this.#log?.(message),
    });
    this.#pollTimer = setInterval(() => {
      if (this.#pollInFlight === null) {
        this.#pollInFlight = this.#checkSocketFile().finally(() => this.#pollInFlight = null);
      }
    }, REMOVAL_POLL_MS);
  }

  /**
   * Creates `<dir>/<ifname>.sock` and starts serving `device` on it. Throws when a daemon already
   * answers on that socket. The socket is bound in a private 0700 directory, set to 0600 and then
   * hard-linked into place, so it is never reachable with wider permissions and an existing file is
   * never silently replaced.
   */
  static async listen(ifname: string, device: UapiDevice, opts: UapiServerOptions = {}): Promise<UapiServer> {
    validateInterfaceName(ifname);
    const dir = opts.dir ?? DEFAULT_UAPI_DIR;
    const path = `${dir}/${ifname}.sock`;
    if (new TextEncoder().encode(path).length > MAX_SOCKET_PATH_BYTES) {
      throw new Error(`UAPI socket path too long: ${path}`);
    }
    await ensureSocketDir(dir);
    const stagingDir = await Deno.makeTempDir({ dir, prefix: ".uapi-staging-" });
    const stagingPath = `${stagingDir}/s`;
    let listener: Deno.Listener | null = null;
    try {
      listener = Deno.listen({ transport: "unix", path: stagingPath });
      await Deno.chmod(stagingPath, 0o600);
      for (let attempt = 0;; attempt++) {
        try {
          await Deno.link(stagingPath, path);
          break;
        } catch (e) {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
          await removeStaleSocket(path, ifname);
          if (attempt > 0) throw new Error(`interface ${ifname}: socket ${path} keeps reappearing`);
        }
      }
      const info = await Deno.lstat(path);
      return new UapiServer(path, device, listener, { dev: info.dev, ino: info.ino }, opts);
    } catch (e) {
      listener?.close();
      throw e;
    } finally {
      await Deno.remove(stagingDir, { recursive: true }).catch(() => {});
    }
  }

  /** Stops serving: closes the listener and all connections, and removes the socket file if still ours. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pollTimer);
    await this.#acceptLoop.close();
    await this.#pollInFlight;
    if (await this.#socketFileIsOurs()) await Deno.remove(this.path).catch(() => {});
  }

  async #socketFileIsOurs(): Promise<boolean> {
    try {
      const info = await Deno.lstat(this.path);
      return info.isSocket === true && info.ino === this.#identity.ino && info.dev === this.#identity.dev;
    } catch {
      return false;
    }
  }

  async #checkSocketFile(): Promise<void> {
    if (this.#closed || (await this.#socketFileIsOurs()) || this.#closed) return;
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#onRemoved?.();
  }

  /** Runs `task` after every earlier request (from any connection) has finished. */
  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#acceptLoop.openConnections;
  }

  async #serveConnection(conn: Deno.Conn, slot: ConnectionSlot): Promise<void> {
    const reader = new LineReader(conn);
    let cancel = () => false;
    try {
      while (!this.#closed) {
        slot.setIdle(true);
        cancel = deadline(conn, this.#requestTimeoutMs);
        const op = await reader.readLine();
        if (op === "get=1") {
          const terminator = await reader.readLine();
          if (cancel()) return this.#timedOut();
          slot.setIdle(false);
          if (terminator === END_OF_STREAM) return;
          if (terminator !== "") {
            this.#log?.(`UAPI get refused (errno ${UapiErrno.INVALID}): trailing data after get=1`);
            await writeAll(conn, `errno=${UapiErrno.INVALID}\n\n`);
            return;
          }
          await writeAll(conn, await this.#serialized(() => Promise.resolve(this.#get())));
        } else if (op === "set=1") {
          const body = await this.#readSetBody(reader);
          if (cancel()) return this.#timedOut();
          slot.setIdle(false);
          if (typeof body === "number") {
            this.#log?.(`UAPI set refused (errno ${body}): truncated or oversized request`);
            await writeAll(conn, `errno=${body}\n\n`);
            return;
          }
          const errno = await this.#serialized(() => this.#set(body));
          await writeAll(conn, `errno=${errno}\n\n`);
        } else {
          if (cancel()) return this.#timedOut();
          return; // EOF, garbage or unknown operation: close without a reply, as wireguard-go does
        }
      }
    } catch (e) {
      if (cancel()) return this.#timedOut();
      if (!this.#closed && !slot.closed) {
        this.#say(this.#failureLog, `UAPI connection failed: ${errorName(e)}`);
      }
    } finally {
      cancel();
    }
  }

  #timedOut(): void {
    this.#say(
      this.#timeoutLog,
      `UAPI ${this.path}: closed a connection that sent no complete request within ${this.#requestTimeoutMs} ms`,
    );
  }

  #say(throttle: LogThrottle, message: string): void {
    const line = throttle.admit(message, Date.now());
    if (line !== null) this.#log?.(line);
  }

  /** Reads `set` lines up to the blank line; a negated errno when the request is cut off or too big. */
  async #readSetBody(reader: LineReader): Promise<string[] | number> {
    const lines: string[] = [];
    let total = 0;
    while (true) {
      const line = await reader.readLine();
      if (line === END_OF_STREAM) return UapiErrno.PROTOCOL;
      if (line === LINE_TOO_LONG) return UapiErrno.IO;
      if (line === "") return lines;
      total += line.length + 1;
      if (total > MAX_SET_REQUEST_BYTES || lines.length >= MAX_SET_REQUEST_LINES) return UapiErrno.IO;
      lines.push(line);
    }
  }

  #get(): string {
    try {
      return serializeGet(this.#device.snapshot());
    } catch (e) {
      this.#log?.(`UAPI get failed: ${errorName(e)}`);
      return `errno=${UapiErrno.UNKNOWN}\n\n`;
    }
  }

  async #set(lines: string[]): Promise<number> {
    const req = parseSet(lines);
    if (isParseError(req)) {
      this.#log?.(`UAPI set refused (errno ${req.errno}): ${req.message}`);
      return req.errno;
    }
    let result: number;
    try {
      result = await this.#device.apply(req);
    } catch (e) {
      this.#log?.(`UAPI set failed: ${errorName(e)}`);
      return UapiErrno.UNKNOWN;
    }
    if (!Number.isInteger(result)) return UapiErrno.UNKNOWN;
    if (result !== 0) this.#log?.(`UAPI set refused by device (errno ${-Math.abs(result)})`);
    return -Math.abs(result);
  }
}
