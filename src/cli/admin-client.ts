/**
 * What the admin CLI commands (`twofold status`, `events`, `lockdown`) share: the `--admin` and
 * `--token-file` options, and an HTTP client for a node's admin API over its unix socket (Deno's
 * `createHttpClient` with a unix proxy transport) or loopback TCP. Failures are one CliError line: exit 1
 * when the node refuses or cannot be reached, exit 2 for bad usage. The token is sent only as a bearer
 * header and never printed.
 * @module
 */
import { parseArgs } from "node:util";
import type { ApiErrorBody } from "../admin/errors.ts";
import { resolve as resolvePath } from "node:path";
import { type AdminListen, DEFAULT_ADMIN_SOCKET, parseAdminListen, readTokenFile } from "../admin/server.ts";
import { ADMIN_TOKEN_FILE, DEFAULT_STATE_DIR } from "../config/node-config.ts";
import { CliError, commandOfUsage, optionError } from "./errors.ts";

/** Default `--token-file`. */
export const DEFAULT_TOKEN_FILE = `${DEFAULT_STATE_DIR}/${ADMIN_TOKEN_FILE}`;

/** Parsed command line of an admin command. */
export interface AdminArgs {
  /** Where the admin API is. */
  target: AdminListen;
  /** The token file. */
  tokenFile: string;
  /** `--json`. */
  json: boolean;
  /** Positional arguments. */
  positionals: string[];
  /** Other string options asked for by the command. */
  strings: Record<string, string | undefined>;
}

/**
 * Parses `--admin`, `--token-file`, `--json`, `--help` and the command's extra string options
 * (`extra`). Bad options are CliErrors (exit 2) ending in `(usage)`; `--help` prints `help` (exit 0).
 */
export function parseAdminArgs(
  args: string[],
  usage: string,
  help: string,
  extra: string[] = [],
): AdminArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        admin: { type: "string" },
        "token-file": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(extra.map((name) => [name, { type: "string" as const }])),
      },
    });
  } catch (e) {
    throw optionError(commandOfUsage(usage), e);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) throw new CliError(help, 0);
  return {
    target: parseAdminTarget(v.admin as string | undefined),
    tokenFile: (v["token-file"] as string | undefined) ?? DEFAULT_TOKEN_FILE,
    json: v.json === true,
    positionals: parsed.positionals,
    strings: Object.fromEntries(extra.map((name) => [name, v[name] as string | undefined])),
  };
}

/**
 * `--admin`: `unix:/path`, a bare socket path (`/path.sock`, `./x.sock`), `127.0.0.1:PORT` or
 * `[::1]:PORT`; the default unix socket when omitted. Anything else is a CliError (exit 2).
 */
export function parseAdminTarget(text: string | undefined): AdminListen {
  if (text === undefined) return { kind: "unix", path: DEFAULT_ADMIN_SOCKET };
  const t = text.trim();
  try {
    if (t.startsWith(".")) return parseAdminListen(`unix:${resolvePath(t)}`);
    if (t.startsWith("unix:.")) return parseAdminListen(`unix:${resolvePath(t.slice(5))}`);
    return parseAdminListen(t);
  } catch (e) {
    throw new CliError(`--admin ${JSON.stringify(text)}: ${(e as Error).message}`);
  }
}

/** The target as text, for messages. */
export function describeTarget(t: AdminListen): string {
  return t.kind === "unix" ? t.path : t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/**
 * Reads the token file (checked as the node checks it: a regular file, mode 0600 or 0400, one token);
 * any problem is a CliError (exit 2) naming the file and the fix, never the token.
 */
export async function readAdminToken(path: string): Promise<string> {
  try {
    return await readTokenFile(path);
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, " ");
    const hint = /PermissionDenied|Permission denied|does not exist/.test(msg)
      ? " (run as root on the node, or pass --token-file with the node's admin.tokenFile)"
      : "";
    throw new CliError(`${msg}${hint}`);
  }
}

/** Options of {@link AdminClient.request}. */
export interface RequestOptions {
  /** JSON body. */
  body?: unknown;
  /** Send the bearer token (mutations; every request over TCP does). */
  auth?: boolean;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Aborts the request (and its body stream). */
  signal?: AbortSignal;
}

/** A client of one node's admin API. */
export class AdminClient {
  /** Where the API is. */
  readonly target: AdminListen;
  readonly #tokenFile: string;
  readonly #http: Deno.HttpClient | undefined;
  readonly #base: string;
  #token: string | undefined;

  /** A client for `target`; the token is read from `tokenFile` when a request needs it. */
  constructor(target: AdminListen, tokenFile: string = DEFAULT_TOKEN_FILE) {
    this.target = target;
    this.#tokenFile = tokenFile;
    if (target.kind === "unix") {
      this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: target.path } });
      this.#base = "http://localhost";
    } else {
      this.#base = `http://${describeTarget(target)}`;
    }
  }

  /** Releases the connection pool. */
  close(): void {
    this.#http?.close();
  }

  /**
   * Sends one request; returns the response whatever its status. A node that cannot be reached is a
   * CliError (exit 1) saying so; an aborted request rethrows the abort.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (opts.auth || this.target.kind === "tcp") {
      this.#token ??= await readAdminToken(this.#tokenFile);
      headers.authorization = `Bearer ${this.#token}`;
    }
    try {
      return await fetch(`${this.#base}${path}`, {
        method,
        headers,
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        client: this.#http,
        signal: opts.signal,
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw this.unreachable(e);
    }
  }

  /** The one-line error for a failed connection (exit 1). */
  unreachable(e: unknown): CliError {
    const where = describeTarget(this.target);
    const text = `${(e as Error)?.message ?? ""} ${String((e as Error)?.cause ?? "")}`;
    if (/No such file|Connection refused|os error (2|111)\b/i.test(text)) {
      return new CliError(`no node is listening on ${where}: is twofold up running?`, 1);
    }
    if (/Permission denied|os error 13\b/i.test(text)) {
      return new CliError(
        `no permission to connect to ${where}: run as root or as a member of the socket's group`,
        1,
      );
    }
    const detail = text.replace(/\s+/g, " ").trim().split(" at ")[0];
    return new CliError(`cannot reach the admin API at ${where}: ${detail}`, 1);
  }

  /**
   * Sends a request and returns its JSON body; an error status becomes a CliError (exit 1) with the
   * server's `detail`.
   */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.request(method, path, opts);
    const text = await r.text();
    if (!r.ok) throw apiError(r.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`the admin API answered ${method} ${path} with a body that is not JSON`, 1);
    }
  }
}

/** A CliError (exit 1) for an error response: the server's detail and the status. */
export function apiError(status: number, bodyText: string): CliError {
  let detail = "";
  try {
    const body = JSON.parse(bodyText) as Partial<ApiErrorBody>;
    detail = typeof body.detail === "string" ? body.detail : typeof body.error === "string" ? body.error : "";
  } catch {
    detail = "";
  }
  const hint = status === 401 || status === 403 ? " (pass --token-file with the node's admin.tokenFile)" : "";
  return new CliError(`${detail || "request failed"} (HTTP ${status})${hint}`, 1);
}
