/**
 * The local web server of `twofold ui`: 127.0.0.1:PORT forwarding every request to a node's admin API
 * (usually its unix socket, which a browser cannot reach), so the node's status page opens in a
 * browser on the node itself or through an SSH tunnel to that port.
 *
 * Everything is served under a random path prefix made for each run (`/<key>/`, 128 bits, compared in
 * constant time), printed as part of the URL: other local users, who can reach 127.0.0.1 but not the
 * node's 0660 socket, cannot read through the proxy without it. A request without it is 404 and is not
 * forwarded. (It is not the admin token: it grants what the socket grants, reading, for this run only.)
 *
 * What it forwards is the browser's own request: the method, the path, the body and only the headers
 * the page uses (Accept, Authorization, Content-Type, Last-Event-ID). It never adds a token: changes
 * still need the token typed into the page. It answers only requests addressed to itself (the Host
 * header names 127.0.0.1:PORT or localhost:PORT, so a web page using DNS rebinding is refused) and
 * refuses a change coming from another origin. It is served by the project's accept loop and HTTP/1.1
 * handler, so connections are capped and slow ones time out as on the admin API; an event stream is
 * passed through as it comes and ends when the browser leaves.
 * @module
 */
import type { AdminListen } from "../admin/server.ts";
import { AcceptLoop } from "../accept-loop.ts";
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_WRITE_TIMEOUT_MS,
  errorResponseBytes,
  type HttpHandler,
  serveHttpConnection,
} from "../admin/http1.ts";
import { MAX_REQUEST_BODY_BYTES } from "../admin/app.ts";
import { describeTarget } from "./admin-client.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { encodeBase64 } from "../encoding.ts";

/** Most browser connections the proxy keeps open at once (event streams included). */
export const UI_PROXY_MAX_CONNECTIONS = 32;
/** Request headers passed to the node; everything else the browser sends (cookies too) is dropped. */
export const FORWARDED_HEADERS = ["accept", "authorization", "content-type", "last-event-id"] as const;
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length"]);

/** Bytes of the per-run path key. */
export const UI_PATH_KEY_BYTES = 16;

/** A fresh path key: base64url of {@link UI_PATH_KEY_BYTES} random bytes. */
export function newPathKey(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(UI_PATH_KEY_BYTES)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const encoder = new TextEncoder();

/**
 * The node's path for `pathname` when it starts with `/<key>/` (compared in constant time), "/" for
 * exactly `/<key>/`; null otherwise (including `/<key>` without the slash, answered with a redirect).
 */
export function stripPathKey(pathname: string, key: string): string | null {
  const prefix = `/${key}/`;
  const head = encoder.encode(pathname.slice(0, prefix.length));
  const want = encoder.encode(prefix);
  if (head.length !== want.length || !constantTimeEqual(head, want)) return null;
  return "/" + pathname.slice(prefix.length);
}

/** Options of {@link startUiProxy}. */
export interface UiProxyOptions {
  /** The node's admin API. */
  target: AdminListen;
  /** The local port (0: a free one). */
  port: number;
  /** Receives warnings (refusals, caps), never request contents. */
  log?: (message: string) => void;
  /** The path key (default: a fresh random one). */
  pathKey?: string;
}

/** A running proxy. */
export interface UiProxy {
  /** `http://127.0.0.1:PORT/<key>/`: the page. */
  url: string;
  /** The bound port. */
  port: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const json = (status: number, error: string, detail: string) =>
  new Response(JSON.stringify({ error, detail }), {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });

/** Whether `host` (a Host header) names this proxy: 127.0.0.1:PORT or localhost:PORT. */
export function isOwnHost(host: string | null, port: number): boolean {
  if (host === null) return false;
  const h = host.trim().toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}`;
}

/**
 * The request handler forwarding requests under `/<pathKey>/` to `target` through `client` (none for
 * TCP); see the module doc.
 */
export function proxyHandler(
  target: AdminListen,
  port: () => number,
  pathKey: string,
  client?: Deno.HttpClient,
): HttpHandler {
  const base = target.kind === "unix" ? "http://localhost" : `http://${describeTarget(target)}`;
  return async (req, info) => {
    if (!isOwnHost(req.headers.get("host"), port())) {
      return json(403, "forbidden", `this proxy answers only http://127.0.0.1:${port()}/`);
    }
    const origin = req.headers.get("origin");
    const read = req.method === "GET" || req.method === "HEAD";
    if (!read && origin !== null && !isOwnHost(origin.replace(/^https?:\/\//i, ""), port())) {
      return json(403, "forbidden", "a change from another origin is refused");
    }
    const url = new URL(req.url);
    const path = stripPathKey(url.pathname, pathKey);
    if (path === null) {
      if (url.pathname === `/${pathKey}`) {
        return new Response(null, { status: 308, headers: { Location: `/${pathKey}/` } });
      }
      return json(404, "not_found", "open the URL twofold ui printed (it holds this run's path key)");
    }
    const headers = new Headers();
    for (const name of FORWARDED_HEADERS) {
      const v = req.headers.get(name);
      if (v !== null) headers.set(name, v);
    }
    const stop = new AbortController();
    info.completed.then(() => stop.abort(), () => stop.abort());
    let r: Response;
    try {
      r = await fetch(`${base}${path}${url.search}`, {
        method: req.method,
        headers,
        body: read ? undefined : await req.arrayBuffer(),
        client,
        signal: stop.signal,
        redirect: "manual",
      });
    } catch {
      return json(
        502,
        "node_unreachable",
        `the node's admin API at ${describeTarget(target)} cannot be reached: is twofold up running?`,
      );
    }
    const out = new Headers();
    for (const [k, v] of r.headers) if (!HOP_BY_HOP.has(k.toLowerCase())) out.set(k, v);
    return new Response(r.body, { status: r.status, headers: out });
  };
}

/** Starts the proxy on 127.0.0.1:`port`. */
export function startUiProxy(opts: UiProxyOptions): UiProxy {
  const client = opts.target.kind === "unix"
    ? Deno.createHttpClient({ proxy: { transport: "unix", path: opts.target.path } })
    : undefined;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: opts.port });
  } catch (e) {
    client?.close();
    throw e;
  }
  const port = (listener.addr as Deno.NetAddr).port;
  const pathKey = opts.pathKey ?? newPathKey();
  const handler = proxyHandler(opts.target, () => port, pathKey, client);
  const limits = {
    headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
    bodyTimeoutMs: DEFAULT_BODY_TIMEOUT_MS,
    writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
    maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
    maxBodyBytes: MAX_REQUEST_BODY_BYTES,
  };
  const loop = new AcceptLoop(listener, {
    name: "twofold ui",
    maxConnections: UI_PROXY_MAX_CONNECTIONS,
    serve: (conn, slot) => serveHttpConnection(conn, slot, handler, limits),
    refusal: errorResponseBytes(503, "busy", "twofold ui is serving as many connections as it allows"),
    log: opts.log ?? ((m) => console.error(m)),
  });
  let closing: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${port}/${pathKey}/`,
    port,
    close() {
      closing ??= loop.close().finally(() => client?.close());
      return closing;
    },
  };
}
