/**
 * The admin API of a running node as a Hono app (transport-free: `src/admin/server.ts` binds it to a
 * unix socket or a loopback TCP port; tests call `app.request()`), composed of one sub-app per resource
 * mounted with `app.route()`:
 *
 * | Mounted at     | Module                | Routes                                                             |
 * | -------------- | --------------------- | ------------------------------------------------------------------ |
 * | `/v1`          | routes/status.ts      | `GET /v1/status`                                                   |
 * | `/v1`          | routes/events.ts      | `GET /v1/events` (SSE)                                             |
 * | `/v1/lockdown` | routes/lockdown.ts    | `GET/PUT/POST /v1/lockdown/ports`, `DELETE …/ports/{proto}/{port}` |
 * | `/v1`          | routes/trace.ts       | `POST /v1/trace` (a dry run of the packet filter, token required)  |
 * | `/`            | routes/health.ts      | `GET /metrics`, `GET /healthz`, `GET /readyz`                      |
 * | `/v1`          | routes/openapi.ts     | `GET /v1/openapi.json` (generated from the zod route schemas)      |
 * | `/v1/debug`    | routes/bundle.ts      | `GET /v1/debug/bundle` (support bundle; token on every listener)   |
 * | `/`            | ui/routes.tsx         | `GET /` (the status page), `GET /ui/status`, `/ui/app.js`, `/ui/app.css` |
 *
 * Auth (here, before any route): every mutation needs `Authorization: Bearer <token>`; reads need it
 * too when `readsNeedToken` (a TCP listener), except `/healthz` and the status page's shell and assets
 * (`GET /`, `/ui/app.js`, `/ui/app.css`: they hold no status on such a listener); `/v1/debug/bundle` checks it itself on
 * every listener. No header → 401 with
 * `WWW-Authenticate: Bearer`; a wrong token → 403.
 *
 * Every status the admin API answers, errors as JSON `{error, detail}`:
 * - 200 success (every route);
 * - 400 malformed JSON, a body of the wrong shape, a bad query, path or `Last-Event-ID`; from the
 *   listener (http1.ts): a malformed request line, header or Content-Length;
 * - 401 no bearer token; 403 a token that is not the admin token;
 * - 404 an unknown route or lockdown entry;
 * - 409 adding a lockdown entry already present (or overlapping one);
 * - 411 (listener) a request body without a Content-Length (chunked);
 * - 413 a request body over {@link MAX_REQUEST_BODY_BYTES} (the listener refuses it by its
 *   Content-Length before reading it; the lockdown routes check again);
 * - 415 a PUT/POST of the lockdown list whose Content-Type is not application/json;
 * - 422 well-formed input with invalid values;
 * - 431 (listener) a request head over its limit;
 * - 500 an internal failure, or a lockdown list that could not be saved (only the message is logged;
 *   never a stack trace reaches the client);
 * - 503 `busy`: as many event streams open as allowed, a support bundle already being made, or
 *   (listener) as many connections as allowed;
 *   `not_ready`: `/readyz` with no AES peer's gate open (without a suspected PSK mismatch);
 * - 505 (listener) an HTTP version other than 1.x.
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { type Logger, logger as makeLogger } from "../log.ts";
import type { AdminBackend } from "./model.ts";
import { ApiError } from "./errors.ts";
import { TokenChecker } from "./auth.ts";
import { errorJson, routeApp } from "./route-kit.ts";
import { statusApp } from "./routes/status.ts";
import { eventsApp } from "./routes/events.ts";
import { lockdownApp } from "./routes/lockdown.ts";
import { healthApp, HEALTHZ_PATH } from "./routes/health.ts";
import { openapiApp } from "./routes/openapi.ts";
import { BUNDLE_MOUNT, bundleApp } from "./routes/bundle.ts";
import { uiApp } from "./ui/routes.tsx";
import { UI_PUBLIC_PATHS } from "./ui/assets.ts";
import { traceApp } from "./routes/trace.ts";
import { peerRoutesApp } from "./routes/peer-routes.ts";
import { reloadApp } from "./routes/reload.ts";

export { MAX_REQUEST_BODY_BYTES } from "./routes/lockdown.ts";

/** Options of {@link createAdminApp}. */
export interface AdminAppOptions {
  /** Bearer token required for every mutation (and, when readsNeedToken, for reads). */
  token: string;
  /** True on a TCP listener: reads need the token too. False on the unix socket (socket access = read access). */
  readsNeedToken: boolean;
  /** Heartbeat interval of the SSE stream, ms (default 15 000). */
  sseHeartbeatMs?: number;
  /** Chunks that may wait for one slow SSE client before it is dropped (default 1 024). */
  sseQueueLimit?: number;
  /** Most SSE streams open at once; one more is answered 503 `busy` (default 16). */
  sseMaxClients?: number;
  /** Aborting it ends every open SSE stream (the server's shutdown). */
  signal?: AbortSignal;
  /** Where the app logs (default: the "admin" logger). Messages never carry secrets or stacks. */
  log?: Logger;
}

/** The app type {@link createAdminApp} returns (a Hono app: `.fetch`, `.request`). */
export type AdminApp = OpenAPIHono;

const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const DEFAULT_SSE_HEARTBEAT_MS = 15_000;
const DEFAULT_SSE_QUEUE_LIMIT = 1_024;
const DEFAULT_SSE_MAX_CLIENTS = 16;

/** Checks the numeric options; throws RangeError naming the bad one. */
function streamOptions(
  opts: AdminAppOptions,
): { heartbeatMs: number; queueLimit: number; maxStreams: number } {
  const heartbeatMs = opts.sseHeartbeatMs ?? DEFAULT_SSE_HEARTBEAT_MS;
  const queueLimit = opts.sseQueueLimit ?? DEFAULT_SSE_QUEUE_LIMIT;
  if (!(heartbeatMs > 0)) throw new RangeError("sseHeartbeatMs must be positive");
  if (!Number.isInteger(queueLimit) || queueLimit < 1) {
    throw new RangeError("sseQueueLimit must be a positive integer");
  }
  const maxStreams = opts.sseMaxClients ?? DEFAULT_SSE_MAX_CLIENTS;
  if (!Number.isInteger(maxStreams) || maxStreams < 1) {
    throw new RangeError("sseMaxClients must be a positive integer");
  }
  return { heartbeatMs, queueLimit, maxStreams };
}

/** Turns whatever a route threw into `{error, detail}` (500 for the unexpected, logged without a stack). */
function onError(err: Error, c: Parameters<typeof errorJson>[0], log: Logger): Response {
  if (err instanceof ApiError) return errorJson(c, err);
  if (err instanceof HTTPException) {
    if (err.status === 400) {
      return errorJson(c, new ApiError(400, "malformed_json", "the request body is not valid JSON"));
    }
    if (err.status === 415) {
      return errorJson(c, new ApiError(415, "unsupported_media_type", "send the body as application/json"));
    }
    return errorJson(c, new ApiError(err.status as 400, "http_error", err.message || "request refused"));
  }
  log.error(
    `admin API: ${c.req.method} ${c.req.path} failed: ${err instanceof Error ? err.message : String(err)}`,
  );
  return errorJson(c, new ApiError(500, "internal", "the admin API failed to answer; see the node's log"));
}

/** Creates the admin app serving `backend`; see the module doc. */
export function createAdminApp(backend: AdminBackend, opts: AdminAppOptions): AdminApp {
  const tokens = new TokenChecker(opts.token);
  const log = opts.log ?? makeLogger("admin");
  const streams = streamOptions(opts);
  const app = routeApp();

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The admin token from the node's 0600 token file. Needed for every mutation, " +
      "and for every read except /healthz on a TCP listener; reads over the unix socket need only socket access.",
  });
  app.onError((err, c) => onError(err, c, log));
  app.notFound((c) =>
    errorJson(
      c,
      new ApiError(404, "not_found", `no route ${c.req.method} ${c.req.path}; see GET /v1/openapi.json`),
    )
  );

  // Auth first (so an unauthenticated caller learns nothing else), then each resource's own checks.
  app.use("*", async (c, next) => {
    const read = READ_METHODS.has(c.req.method);
    const open = read &&
      (!opts.readsNeedToken || c.req.path === HEALTHZ_PATH || UI_PUBLIC_PATHS.has(c.req.path));
    if (!open) tokens.require(c.req.header("Authorization"));
    await next();
    c.header("Cache-Control", "no-store");
  });

  app.route("/v1", statusApp(backend));
  app.route("/v1", eventsApp(backend, { ...streams, signal: opts.signal, log }));
  app.route("/v1/lockdown", lockdownApp(backend, log));
  app.route("/v1", traceApp(backend));
  app.route("/v1", peerRoutesApp(backend));
  app.route("/v1", reloadApp(backend));
  app.route("/", healthApp(backend));
  app.route("/v1", openapiApp(app));
  app.route(BUNDLE_MOUNT, bundleApp(backend, { token: opts.token, api: app, log }));
  app.route("/", uiApp(backend, { readsNeedToken: opts.readsNeedToken }));
  return app;
}
