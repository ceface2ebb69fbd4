/**
 * What the admin CLI commands (`twofold status`, `events`, `lockdown`) share: the `--config`, `--admin`
 * and `--token-file` options, and an HTTP client for a node's admin API over its unix socket (Deno's
 * `createHttpClient` with a unix proxy transport) or loopback TCP. Failures are one CliError line: exit 1
 * when the node refuses or cannot be reached, exit 2 for bad usage. The token is sent only as a bearer
 * header and never printed.
 *
 * Where the node is: `--config node.json` reads `admin.listen` and `admin.tokenFile` from the node's
 * own config, with the node's defaults (the token in `<node.stateDir>/admin.token`); `--admin` and
 * `--token-file` override it; without any, the node defaults apply. Errors about the socket or the
 * token name the path and where it came from, so they never send the operator to the wrong file.
 * @module
 */
import { parseArgs } from "node:util";
import type { ApiErrorBody } from "../admin/errors.ts";
import { resolve as resolvePath } from "node:path";
import { type AdminListen, DEFAULT_ADMIN_SOCKET, parseAdminListen, readTokenFile } from "../admin/server.ts";
import {
  ADMIN_TOKEN_FILE,
  DEFAULT_STATE_DIR,
  type NodeConfig,
  parseNodeConfig,
  readConfigFile,
} from "../config/node-config.ts";
import { CliError, commandOfUsage, optionError } from "./errors.ts";

/** Default `--token-file`. */
export const DEFAULT_TOKEN_FILE = `${DEFAULT_STATE_DIR}/${ADMIN_TOKEN_FILE}`;

/** Where the admin address and the token file came from, for error messages. */
export interface AdminSource {
  /** `option` (--admin), `config` (admin.listen of `config`) or `default`. */
  target: "option" | "config" | "default";
  /** `option` (--token-file), `config` (admin.tokenFile of `config`) or `default`. */
  token: "option" | "config" | "default";
  /** The --config path, when given. */
  config: string | null;
}

/** Parsed command line of an admin command. */
export interface AdminArgs {
  /** Where the admin API is. */
  target: AdminListen;
  /** The token file. */
  tokenFile: string;
  /** Where the target and the token file came from. */
  source: AdminSource;
  /** `--json`. */
  json: boolean;
  /** Positional arguments. */
  positionals: string[];
  /** Other string options asked for by the command. */
  strings: Record<string, string | undefined>;
}

/**
 * Parses `--config`, `--admin`, `--token-file`, `--json`, `--help` and the command's extra string
 * options (`extra`, with one-letter aliases from `shortOptions`, e.g. `{ output: "o" }`). Bad options are CliErrors (exit 2) ending in `(usage)`; `--help` prints `help`
 * (exit 0); an unreadable or invalid `--config`, or one with the admin API disabled, is a CliError
 * (exit 2) naming the file.
 */
export async function parseAdminArgs(
  args: string[],
  usage: string,
  help: string,
  extra: string[] = [],
  shortOptions: Record<string, string> = {},
): Promise<AdminArgs> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        admin: { type: "string" },
        "token-file": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(
          extra.map((name) => [
            name,
            shortOptions[name]
              ? { type: "string" as const, short: shortOptions[name] }
              : { type: "string" as const },
          ]),
        ),
      },
    });
  } catch (e) {
    throw optionError(commandOfUsage(usage), e);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) throw new CliError(help, 0);
  const configPath = v.config as string | undefined;
  const admin = configPath === undefined ? null : await adminSectionOf(configPath);
  const adminOption = v.admin as string | undefined;
  const tokenOption = v["token-file"] as string | undefined;
  return {
    target: adminOption === undefined && admin ? admin.listen : parseAdminTarget(adminOption),
    tokenFile: tokenOption !== undefined ? resolvePath(tokenOption) : admin?.tokenFile ?? DEFAULT_TOKEN_FILE,
    source: {
      target: adminOption !== undefined ? "option" : admin ? "config" : "default",
      token: tokenOption !== undefined ? "option" : admin ? "config" : "default",
      config: configPath ?? null,
    },
    json: v.json === true,
    positionals: parsed.positionals,
    strings: Object.fromEntries(extra.map((name) => [name, v[name] as string | undefined])),
  };
}

/**
 * The admin section of the node config at `path`, resolved as the node resolves it (relative paths
 * against the config's directory, the token file defaulting into node.stateDir). Key files are not
 * read: the CLI needs no secrets from the config.
 */
export async function adminSectionOf(path: string): Promise<NodeConfig["admin"]> {
  const { text, baseDir } = await readConfigFile(path, "node");
  const cfg = parseNodeConfig(text, { baseDir, checkFiles: false, sourceName: path });
  if (!cfg.admin.enabled) {
    throw new CliError(
      `config ${path}: admin.enabled is false, so that node serves no admin API; set it to true and restart the node`,
      2,
    );
  }
  return cfg.admin;
}

/** Where the token file came from, and what to do when it is not the node's, for error messages. */
function tokenOrigin(path: string, source: AdminSource | undefined): string {
  switch (source?.token) {
    case undefined:
      return `token file ${path}; pass --config with the node's config, or --token-file with its admin.tokenFile`;
    case "option":
      return `${path} is the --token-file given; the node's is its admin.tokenFile, or pass --config with its config`;
    case "config":
      return `${path} is admin.tokenFile of ${source.config}; is that the config of the node that runs?`;
    default:
      return `${path} is the default; for a node with another node.stateDir or admin.tokenFile pass --config ` +
        "with its config";
  }
}

/** Where the admin address came from, for the "no node listening" message. */
function targetOrigin(source: AdminSource | undefined): string {
  switch (source?.target) {
    case undefined:
    case "option":
      return "";
    case "config":
      return ` (admin.listen of ${source.config})`;
    default:
      return " (the default; for a node with another admin.listen pass --config with its config)";
  }
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
export async function readAdminToken(path: string, source?: AdminSource): Promise<string> {
  try {
    return await readTokenFile(path);
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, " ");
    const denied = /PermissionDenied|Permission denied/.test(msg);
    const missing = /does not exist/.test(msg);
    const hint = denied
      ? " (run as root on the node, or as the token file's owner)"
      : missing
      ? ` (${tokenOrigin(path, source)})`
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
  readonly #source: AdminSource | undefined;
  readonly #http: Deno.HttpClient | undefined;
  readonly #base: string;
  #token: string | undefined;

  /**
   * A client for `target`; the token is read from `tokenFile` when a request needs it. `source` says
   * where both came from, for error messages.
   */
  constructor(
    target: AdminListen,
    tokenFile: string = DEFAULT_TOKEN_FILE,
    source?: AdminSource,
  ) {
    this.target = target;
    this.#tokenFile = tokenFile;
    this.#source = source;
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
      this.#token ??= await readAdminToken(this.#tokenFile, this.#source);
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
      return new CliError(
        `no node is listening on ${where}${targetOrigin(this.#source)}: is twofold up running?`,
        1,
      );
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
    if (!r.ok) throw this.apiError(r.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`the admin API answered ${method} ${path} with a body that is not JSON`, 1);
    }
  }

  /** {@link apiError} for this client: a refused token names the token file and where it came from. */
  apiError(status: number, bodyText: string): CliError {
    return apiError(status, bodyText, tokenOrigin(this.#tokenFile, this.#source));
  }
}

/**
 * A CliError (exit 1) for an error response: the server's detail and the status; for 401/403 also
 * `tokenHint` (which token file was used, see {@link AdminClient.apiError}).
 */
export function apiError(status: number, bodyText: string, tokenHint?: string): CliError {
  let detail = "";
  try {
    const body = JSON.parse(bodyText) as Partial<ApiErrorBody>;
    detail = typeof body.detail === "string" ? body.detail : typeof body.error === "string" ? body.error : "";
  } catch {
    detail = "";
  }
  const hint = status === 401 || status === 403
    ? ` (${tokenHint ?? "pass --config with the node's config, or --token-file with its admin.tokenFile"})`
    : "";
  return new CliError(`${detail || "request failed"} (HTTP ${status})${hint}`, 1);
}
