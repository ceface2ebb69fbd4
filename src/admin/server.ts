/**
 * Binding the admin app to a listener: a unix socket (default `/run/twofold/admin.sock`, mode 0660;
 * socket access is read access) or a loopback TCP port (reads need the token too). A non-loopback
 * address is refused, at parse time and again at start. Also the admin token file: a random token in
 * a 0600 file, created on first start.
 *
 * The listener is served by the project's own accept loop and HTTP/1.1 connection handler (see
 * accept-loop.ts and http1.ts), so a local user cannot take the node down or hold the API: at most
 * {@link DEFAULT_ADMIN_MAX_CONNECTIONS} connections (the oldest silent one is closed to make room),
 * at most {@link DEFAULT_ADMIN_MAX_EVENT_STREAMS} event streams, request heads within 10 s, bodies
 * within 10 s, every response write taken within 30 s, and a failing accept (out of descriptors)
 * backs off and retries instead of ending the server. Nothing here touches the data plane.
 * @module
 */
import { encodeBase64 } from "../encoding.ts";
import type { AdminBackend } from "./model.ts";
import { createAdminApp, MAX_REQUEST_BODY_BYTES } from "./app.ts";
import { type Logger, logger as makeLogger } from "../log.ts";
import { claimSocketPath } from "../unix-socket.ts";
import { FileRuleError, KEY_FILE_MAX_BYTES, readSecretFile } from "../config/secret-file.ts";
import { AcceptLoop, type AcceptLoopStats } from "../accept-loop.ts";
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_WRITE_TIMEOUT_MS,
  errorResponseBytes,
  type HttpConnectionLimits,
  type HttpHandlerInfo,
  serveHttpConnection,
} from "./http1.ts";

import {
  ADMIN_LISTEN_FIX,
  type AdminListen,
  AdminListenError,
  DEFAULT_ADMIN_MAX_CONNECTIONS,
  DEFAULT_ADMIN_MAX_EVENT_STREAMS,
  formatAdminListen,
  isLoopbackHost,
} from "../config/admin-listen.ts";

/** Re-exported for the admin server's callers; the rules live in `config/admin-listen.ts`. */
export {
  type AdminListen,
  AdminListenError,
  DEFAULT_ADMIN_MAX_CONNECTIONS,
  DEFAULT_ADMIN_MAX_EVENT_STREAMS,
  DEFAULT_ADMIN_SOCKET,
  formatAdminListen,
  isLoopbackHost,
  parseAdminListen,
} from "../config/admin-listen.ts";

/** A token file that is missing, empty or too open (the message names the fix, never the token). */
export class AdminTokenError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "AdminTokenError";
  }
}

/**
 * Reads the admin token from `path`. Refuses (with {@link AdminTokenError}) what the secret-file rules
 * refuse (a missing file, a non-file, a symbolic link, a file group or others may read or write: it
 * must be 0600 or 0400, an oversized file), and an empty token or one with spaces. Surrounding
 * whitespace (the trailing newline) is ignored.
 */
// deno-lint-ignore require-await
export async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    const bytes = readSecretFile(path, {
      label: "admin token file",
      maxBytes: KEY_FILE_MAX_BYTES,
      createHint: "start the node once to create it (or write a random token there, mode 0600)",
    });
    text = new TextDecoder().decode(bytes).trim();
    bytes.fill(0);
  } catch (e) {
    if (e instanceof FileRuleError) throw new AdminTokenError(e.message);
    throw e;
  }
  if (text === "") {
    throw new AdminTokenError(`admin token file ${path} is empty; delete it to have a new token generated`);
  }
  if (/\s/.test(text)) {
    throw new AdminTokenError(`admin token file ${path} must hold one token without spaces`);
  }
  return text;
}

/**
 * Returns the token in `path`, first creating the file (and its directory, mode 0700) with a random
 * 256-bit token (base64url, mode 0600) when it does not exist. An existing file is checked as
 * {@link readTokenFile} does.
 */
export async function ensureTokenFile(path: string): Promise<string> {
  try {
    await Deno.lstat(path);
    return await readTokenFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 0));
  if (dir !== "") await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const token = encodeBase64(crypto.getRandomValues(new Uint8Array(32)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  try {
    await Deno.writeTextFile(path, token + "\n", { createNew: true, mode: 0o600 });
  } catch (e) {
    // Another process created it first: use theirs.
    if (e instanceof Deno.errors.AlreadyExists) return await readTokenFile(path);
    throw new AdminTokenError(`cannot create admin token file ${path}: ${(e as Error).message}`);
  }
  await Deno.chmod(path, 0o600);
  return token;
}

/** Options of {@link startAdminServer}. */
export interface AdminServerOptions {
  /** Where to listen. */
  listen: AdminListen;
  /** The admin bearer token. */
  token: string;
  /** Receives error messages (never stacks or secrets); default: the "admin" logger. */
  onError?: (msg: string) => void;
  /** SSE heartbeat interval, ms (default 15 000). */
  sseHeartbeatMs?: number;
  /** Chunks that may wait for one slow SSE client before it is dropped (default 1 024). */
  sseQueueLimit?: number;
  /** Where the app logs (default: the "admin" logger); `onError`, when given, takes its errors. */
  log?: Logger;
  /** Most connections open at once (default {@link DEFAULT_ADMIN_MAX_CONNECTIONS}). */
  maxConnections?: number;
  /** Most event streams open at once (default {@link DEFAULT_ADMIN_MAX_EVENT_STREAMS}). */
  maxEventStreams?: number;
  /** Per-connection timeouts and sizes (defaults: see http1.ts). */
  limits?: Partial<HttpConnectionLimits>;
}

/** A running admin server. */
export interface AdminServer {
  /** `unix:/path` or `host:port` (the bound port when 0 was asked). */
  address: string;
  /** Ends open event streams, stops listening, closes every connection and removes the socket. */
  close(): Promise<void>;
  /** Connections open now. */
  readonly openConnections: number;
  /** What the accept loop did so far (accepted, evicted, refused, failed accepts). */
  readonly stats: Readonly<AcceptLoopStats>;
}

function clearStaleSocket(path: string): Promise<void> {
  return claimSocketPath(path, (state) =>
    new AdminListenError(
      state === "live"
        ? `another process already serves the admin API on ${path}; stop it or choose another path`
        : `${path} exists and is not a socket; remove it or choose another admin path`,
    ));
}

/**
 * Starts the admin API for `backend` on `opts.listen`. Unix: creates the socket's directory (0755) when
 * missing, removes a stale socket (refusing when a live server answers on it or the path is not a
 * socket) and sets the socket to 0660. TCP: refuses a non-loopback host.
 */
export async function startAdminServer(
  backend: AdminBackend,
  opts: AdminServerOptions,
): Promise<AdminServer> {
  const base = opts.log ?? makeLogger("admin");
  const log: Logger = opts.onError ? { ...base, error: opts.onError } : base;
  const stop = new AbortController();
  const listen = opts.listen;
  const tcpHost = listen.kind === "tcp" && listen.host.toLowerCase() === "localhost" ? "127.0.0.1" : (
    listen.kind === "tcp" ? listen.host : ""
  );
  if (listen.kind === "tcp" && !isLoopbackHost(tcpHost)) {
    throw new AdminListenError(
      `admin address ${formatAdminListen(listen)} is not loopback; ${ADMIN_LISTEN_FIX}`,
    );
  }
  const app = createAdminApp(backend, {
    token: opts.token,
    readsNeedToken: listen.kind === "tcp",
    sseHeartbeatMs: opts.sseHeartbeatMs,
    sseQueueLimit: opts.sseQueueLimit,
    sseMaxClients: opts.maxEventStreams ?? DEFAULT_ADMIN_MAX_EVENT_STREAMS,
    signal: stop.signal,
    log,
  });
  const limits: HttpConnectionLimits = {
    headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
    bodyTimeoutMs: DEFAULT_BODY_TIMEOUT_MS,
    writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
    maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
    maxBodyBytes: MAX_REQUEST_BODY_BYTES,
    ...opts.limits,
  };
  // The connection info goes to the app as its env (the SSE route watches `info.completed`).
  const handler = async (req: Request, info: HttpHandlerInfo) => {
    try {
      return await app.fetch(req, info);
    } catch (e) {
      log.error(`admin API request failed: ${e instanceof Error ? e.message : String(e)}`);
      return new Response(JSON.stringify({ error: "internal", detail: "the admin API failed to answer" }), {
        status: 500,
        headers: { "Content-Type": "application/json" },
      });
    }
  };

  let listener: Deno.Listener;
  let address: string;
  if (listen.kind === "unix") {
    const dir = listen.path.slice(0, Math.max(listen.path.lastIndexOf("/"), 0));
    if (dir !== "") await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    await clearStaleSocket(listen.path);
    listener = Deno.listen({ transport: "unix", path: listen.path });
    try {
      await Deno.chmod(listen.path, 0o660);
    } catch (e) {
      listener.close();
      throw e;
    }
    address = `unix:${listen.path}`;
  } else {
    const host = tcpHost;
    listener = Deno.listen({ hostname: host, port: listen.port });
    const addr = listener.addr as Deno.NetAddr;
    address = formatAdminListen({ kind: "tcp", host, port: addr.port });
  }
  const loop = new AcceptLoop(listener, {
    name: "admin API",
    maxConnections: opts.maxConnections ?? DEFAULT_ADMIN_MAX_CONNECTIONS,
    serve: (conn, slot) => serveHttpConnection(conn, slot, handler, limits),
    refusal: errorResponseBytes(
      503,
      "busy",
      "the admin API is serving as many connections as it allows; retry shortly",
    ),
    log: (msg) => log.warn(msg),
  });

  let closing: Promise<void> | null = null;
  return {
    address,
    get openConnections() {
      return loop.openConnections;
    },
    stats: loop.stats,
    close() {
      closing ??= (async () => {
        stop.abort();
        await loop.close();
        if (listen.kind === "unix") {
          try {
            const info = await Deno.lstat(listen.path);
            if (info.isSocket) await Deno.remove(listen.path);
          } catch { /* already gone */ }
        }
      })();
      return closing;
    },
  };
}
