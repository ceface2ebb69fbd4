/**
 * The admin API of a running node as a Hono app (transport-free: `src/admin/server.ts` binds it to a
 * unix socket or a loopback TCP port; tests call `app.request()`).
 *
 * Routes: `GET /v1/status`, `GET /v1/events` (SSE), `GET|PUT|POST /v1/lockdown/ports`,
 * `DELETE /v1/lockdown/ports/{proto}/{port}`, `GET /metrics`, `GET /healthz`, `GET /readyz`,
 * `GET /v1/openapi.json` (generated from the zod route schemas).
 *
 * Auth: every mutation needs `Authorization: Bearer <token>`; reads need it too when
 * `readsNeedToken` (a TCP listener), except `/healthz`. No header → 401 with
 * `WWW-Authenticate: Bearer`; a wrong token → 403.
 *
 * Errors are JSON `{error, detail}`: 400 malformed JSON, a body of the wrong shape, a bad query or
 * path; 401; 403; 404 unknown route or lockdown entry; 409 adding an entry already present (or
 * overlapping one); 415 a PUT/POST of the lockdown list whose Content-Type is not application/json; 422 well-formed input
 * with invalid values; 500 (only the message is logged, never a stack trace reaches the client).
 *
 * Lockdown changes are serialized; after `backend.setLockdown` succeeds the app publishes one
 * `lockdown-changed` event (reason, and `data: {added, removed, count, enforced}` with added/removed
 * as space-separated `proto/port` lists) when the list actually changed.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import type { Context } from "hono";
import { type Logger, logger as makeLogger } from "../log.ts";
import type { AdminBackend, LockdownPort, LockdownState } from "./model.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { TokenChecker } from "./auth.ts";
import {
  type AlwaysAllowed,
  checkEntries,
  diffEntries,
  DSKE_TCP_PORT,
  formatEntry,
  LockdownAddSchema,
  LockdownEntryInputSchema,
  LockdownReplaceSchema,
  LockdownStateSchema,
  MAX_LOCKDOWN_ENTRIES,
  overlaps,
  parsePortSpec,
  parseProto,
  sortEntries,
  toStateBody,
} from "./lockdown-schema.ts";
import { NodeEventSchema, NodeStatusSchema } from "./status-schema.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { eventStream, SSE_QUEUE_BYTES } from "./sse.ts";

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

const JSON_CT = /^application\/([\w.-]+\+)?json$/i;
/** Largest request body the API takes, bytes (the listener refuses larger ones before reading them). */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const bearer = [{ bearerAuth: [] as string[] }];
const authErrors = {
  401: errorResponse("No bearer token (on a mutation, or on any read over TCP)."),
  403: errorResponse("A bearer token that is not the admin token."),
};
const mutationErrors = {
  ...authErrors,
  400: errorResponse("Malformed JSON, or a body of the wrong shape."),
  415: errorResponse("Content-Type is not application/json."),
  422: errorResponse("Well-formed input with invalid values (range, protocol, overlap, too many entries)."),
  500: errorResponse("The list could not be saved; the previous list stays in force."),
};
const lockdownOk = {
  description: "The lockdown list now in force, and whether a firewall enforces it.",
  content: { "application/json": { schema: LockdownStateSchema } },
};
const jsonBody = <T extends z.ZodType>(schema: T, description: string) => ({
  required: true,
  description,
  content: { "application/json": { schema } },
});

const statusRoute = createRoute({
  method: "get",
  path: "/v1/status",
  summary: "Node, interfaces and both layers of every peer.",
  security: bearer,
  responses: {
    200: { description: "A status snapshot.", content: { "application/json": { schema: NodeStatusSchema } } },
    ...authErrors,
  },
});

const eventsRoute = createRoute({
  method: "get",
  path: "/v1/events",
  summary: "Server-Sent Events of the node's typed events.",
  description: "Each event: `id:` the event id, `event:` its type, `data:` the NodeEvent as JSON. " +
    "With `Last-Event-ID` (or `?since=`) the stream first replays the kept events after that id, then " +
    "follows live. `: heartbeat` comments keep the connection alive. A client that does not keep up is " +
    "dropped and may reconnect with `Last-Event-ID`.",
  security: bearer,
  request: {
    query: z.object({
      since: z.string().optional().openapi({
        description: "Replay kept events with an id greater than this (like Last-Event-ID).",
        example: "0",
      }),
    }),
    headers: z.object({
      "Last-Event-ID": z.string().optional().openapi({ description: "Resume after this event id." }),
    }),
  },
  responses: {
    200: {
      description: "An endless text/event-stream; every `data:` line is a NodeEvent.",
      content: { "text/event-stream": { schema: NodeEventSchema } },
    },
    400: errorResponse("Last-Event-ID or since is not a non-negative integer."),
    ...authErrors,
    503: errorResponse("As many event streams are open as the node allows (`busy`); retry later."),
  },
});

const lockdownGetRoute = createRoute({
  method: "get",
  path: "/v1/lockdown/ports",
  summary: "The wg0 lockdown extra-port list.",
  security: bearer,
  responses: { 200: lockdownOk, ...authErrors },
});

const lockdownPutRoute = createRoute({
  method: "put",
  path: "/v1/lockdown/ports",
  summary: "Replace the lockdown list.",
  security: bearer,
  request: { body: jsonBody(LockdownReplaceSchema, "The whole new list.") },
  responses: { 200: lockdownOk, ...mutationErrors },
});

const lockdownPostRoute = createRoute({
  method: "post",
  path: "/v1/lockdown/ports",
  summary: "Add one entry, or several at once (all or none), to the lockdown list.",
  security: bearer,
  request: {
    body: jsonBody(
      z.union([LockdownEntryInputSchema, LockdownAddSchema]),
      'One entry (`{"proto":"tcp","port":8080}`), or `{"ports": [...]}` to add several in one change: ' +
        "when any of them is refused, none is added.",
    ),
  },
  responses: {
    200: lockdownOk,
    ...mutationErrors,
    409: errorResponse("An entry (or one overlapping it) is already in the list; nothing was added."),
  },
});

const lockdownDeleteRoute = createRoute({
  method: "delete",
  path: "/v1/lockdown/ports/{proto}/{port}",
  summary: "Remove one entry (exactly as listed) from the lockdown list.",
  security: bearer,
  request: {
    params: z.object({
      proto: z.string().openapi({
        param: { name: "proto", in: "path" },
        enum: ["tcp", "udp"],
        example: "tcp",
      }),
      port: z.string().openapi({
        param: { name: "port", in: "path" },
        description: 'A port ("8080") or a range ("6000-6010"), as listed.',
        example: "8080",
      }),
    }),
  },
  responses: {
    200: lockdownOk,
    ...authErrors,
    400: errorResponse("The path's protocol or port is malformed."),
    404: errorResponse("No such entry in the list."),
    422: errorResponse("The port is out of range or a reversed range."),
    500: errorResponse("The list could not be saved; the previous list stays in force."),
  },
});

const textOk = (description: string, type: string) => ({
  description,
  content: { [type]: { schema: z.string() } },
});

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  summary: "Prometheus text exposition (metric names twofold_*).",
  security: bearer,
  responses: { 200: textOk("Prometheus text format 0.0.4.", "text/plain"), ...authErrors },
});

const HealthSchema = z.object({
  status: z.string().openapi({ example: "ok" }),
  detail: z.string(),
}).openapi("Health");

const healthzRoute = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Liveness: 200 whenever the process serves (no token needed, even over TCP).",
  responses: { 200: { description: "Alive.", content: { "application/json": { schema: HealthSchema } } } },
});

const readyzRoute = createRoute({
  method: "get",
  path: "/readyz",
  summary:
    "Readiness: 200 when at least one AES peer's gate is open with no PSK mismatch suspected, or there are no AES peers.",
  security: bearer,
  responses: {
    200: { description: "Ready.", content: { "application/json": { schema: HealthSchema } } },
    503: errorResponse(
      "No AES peer's gate is open (or every open one suspects a PSK mismatch); the detail names each gate's state and reason.",
    ),
    ...authErrors,
  },
});

const openapiRoute = createRoute({
  method: "get",
  path: "/v1/openapi.json",
  summary: "This OpenAPI 3 document.",
  security: bearer,
  responses: {
    200: {
      description: "The document.",
      content: { "application/json": { schema: z.looseObject({ openapi: z.string() }) } },
    },
    ...authErrors,
  },
});

/** Formats zod issues as "path: message; path: message" (at most three). */
/** A schema issue as zod reports it; a union's carries each alternative's issues. */
interface SchemaIssue {
  path: readonly PropertyKey[];
  message: string;
  code?: string;
  errors?: readonly (readonly SchemaIssue[])[];
}

/**
 * A union's issues replaced by those of the alternative that came closest (fewest issues; the first on
 * a tie), so that `{"proto":"tcp"}` is told its port is missing rather than "invalid input".
 */
function flattenUnions(issues: readonly SchemaIssue[]): SchemaIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== "invalid_union" || !i.errors || i.errors.length === 0) return [i];
    const closest = i.errors.reduce((best, e) => e.length < best.length ? e : best);
    return flattenUnions(closest).map((e) => ({ ...e, path: [...i.path, ...e.path] }));
  });
}

function describeIssues(schemaIssues: readonly SchemaIssue[]): string {
  const issues = flattenUnions(schemaIssues);
  const parts = issues.slice(0, 3).map((i) => {
    const where = i.path.reduce<string>(
      (s, k) => typeof k === "number" ? `${s}[${k}]` : s === "" ? String(k) : `${s}.${String(k)}`,
      "",
    );
    return `${where || "body"}: ${i.message}`;
  });
  return parts.join("; ") + (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "");
}

function errorJson(c: Context, e: ApiError): Response {
  if (e.status === 401) c.header("WWW-Authenticate", 'Bearer realm="twofold-admin"');
  c.header("Cache-Control", "no-store");
  return c.json(e.body, e.status);
}

function parseEventId(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text.trim())) {
    throw new ApiError(400, "bad_request", `${name} must be a non-negative integer event id`);
  }
  return Number(text.trim());
}

/** Creates the admin app serving `backend`; see the module doc. */
export function createAdminApp(backend: AdminBackend, opts: AdminAppOptions): AdminApp {
  const tokens = new TokenChecker(opts.token);
  const log = opts.log ?? makeLogger("admin");
  const heartbeatMs = opts.sseHeartbeatMs ?? 15_000;
  const queueLimit = opts.sseQueueLimit ?? 1_024;
  if (!(heartbeatMs > 0)) throw new RangeError("sseHeartbeatMs must be positive");
  if (!Number.isInteger(queueLimit) || queueLimit < 1) {
    throw new RangeError("sseQueueLimit must be a positive integer");
  }
  const maxStreams = opts.sseMaxClients ?? 16;
  if (!Number.isInteger(maxStreams) || maxStreams < 1) {
    throw new RangeError("sseMaxClients must be a positive integer");
  }
  let openStreams = 0;

  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (result.success) return;
      const where = result.target === "json" ? "the request body" : `the ${result.target}`;
      return errorJson(
        c,
        new ApiError(
          400,
          result.target === "json" ? "invalid_body" : "bad_request",
          `${where} does not have the expected shape: ${describeIssues(result.error.issues)}`,
        ),
      );
    },
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "The admin token from the node's 0600 token file. Needed for every mutation, " +
      "and for every read except /healthz on a TCP listener; reads over the unix socket need only socket access.",
  });

  app.onError((err, c) => {
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
  });

  app.notFound((c) =>
    errorJson(
      c,
      new ApiError(404, "not_found", `no route ${c.req.method} ${c.req.path}; see GET /v1/openapi.json`),
    )
  );

  // Auth first (so an unauthenticated caller learns nothing else), then the media type of bodies.
  app.use("*", async (c, next) => {
    const read = READ_METHODS.has(c.req.method);
    const open = read && (!opts.readsNeedToken || c.req.path === "/healthz");
    if (!open) tokens.require(c.req.header("Authorization"));
    await next();
    c.header("Cache-Control", "no-store");
  });
  app.use("/v1/lockdown/ports", async (c, next) => {
    if (c.req.method === "PUT" || c.req.method === "POST") {
      const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0].trim();
      if (!JSON_CT.test(mediaType)) {
        throw new ApiError(
          415,
          "unsupported_media_type",
          `the body must be JSON: send 'Content-Type: application/json' (got ${
            mediaType === "" ? "none" : JSON.stringify(mediaType.slice(0, 60))
          })`,
        );
      }
    }
    await next();
  });
  app.use(
    "/v1/lockdown/ports",
    bodyLimit({
      maxSize: MAX_REQUEST_BODY_BYTES,
      onError: () => {
        throw new ApiError(
          413,
          "body_too_large",
          `the request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes`,
        );
      },
    }),
  );

  // --- lockdown -------------------------------------------------------------------------------------

  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => {});
    return p;
  };

  const alwaysAllowed = (): AlwaysAllowed => ({
    aesUdpPort: backend.status().interfaces.aes0.listenPort,
    dskeTcpPort: DSKE_TCP_PORT,
  });

  const apply = async (next: LockdownPort[], how: string): Promise<LockdownState> => {
    const prev = backend.lockdown().ports;
    let state: LockdownState;
    try {
      state = await backend.setLockdown(sortEntries(next));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log.error(`lockdown list not saved (${how}): ${msg}`);
      throw new ApiError(
        500,
        "lockdown_not_saved",
        `the lockdown list could not be saved (${msg.slice(0, 200)}); the previous list stays in force`,
      );
    }
    const { added, removed } = diffEntries(prev, state.ports);
    if (added.length > 0 || removed.length > 0) {
      const list = (l: LockdownPort[]) => l.map(formatEntry).join(" ");
      const summary = [
        ...added.map((p) => `+${formatEntry(p)}`),
        ...removed.map((p) => `-${formatEntry(p)}`),
      ];
      backend.events.publish({
        type: "lockdown-changed",
        reason: `${how} via the admin API: ${summary.join(" ")}`,
        data: {
          added: list(added),
          removed: list(removed),
          count: state.ports.length,
          enforced: state.enforced,
        },
      });
      log.info(`lockdown list changed (${how}): ${summary.join(" ")}; ${state.ports.length} entries`);
    }
    return state;
  };

  // --- routes ---------------------------------------------------------------------------------------

  // The snapshot goes out through the schema: only declared fields reach the client, so a field a
  // backend left on its objects by mistake (a key, say) is dropped, never serialized.
  app.openapi(statusRoute, (c) => {
    const s = backend.status();
    const checked = NodeStatusSchema.safeParse({ ...s, lockdown: toStateBody(s.lockdown) });
    if (!checked.success) {
      throw new Error(
        `the status snapshot does not match its schema: ${describeIssues(checked.error.issues)}`,
      );
    }
    return c.json(checked.data, 200);
  });

  app.openapi(eventsRoute, (c) => {
    const header = c.req.header("Last-Event-ID");
    const query = c.req.query("since");
    let since: number | null = null;
    if (header !== undefined && header.trim() !== "") since = parseEventId(header, "Last-Event-ID");
    else if (query !== undefined) since = parseEventId(query, "since");
    if (openStreams >= maxStreams) {
      throw new ApiError(
        503,
        "busy",
        `${maxStreams} event streams are open (the most this node serves); retry later`,
      );
    }
    // Under the admin listener the connection's end is `info.completed` (passed as the env).
    // Elsewhere (app.request) the request's signal.
    const signals: AbortSignal[] = [];
    const info = c.env as { completed?: unknown } | undefined;
    if (info?.completed instanceof Promise) {
      const gone = new AbortController();
      info.completed.then(() => gone.abort(), () => gone.abort());
      signals.push(gone.signal);
    } else {
      signals.push(c.req.raw.signal);
    }
    if (opts.signal) signals.push(opts.signal);
    openStreams++;
    const body = eventStream(backend.events, {
      since,
      heartbeatMs,
      queueLimit,
      signals,
      onEnd: (why) => {
        openStreams--;
        if (why === "too-slow") {
          log.warn(
            `event client dropped: it did not keep up (${queueLimit} events or ${SSE_QUEUE_BYTES} bytes queued)`,
          );
        }
      },
    });
    return new Response(body, {
      status: 200,
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
      },
    }) as never;
  });

  app.openapi(lockdownGetRoute, (c) => c.json(toStateBody(backend.lockdown()), 200));

  app.openapi(lockdownPutRoute, async (c) => {
    const body = c.req.valid("json");
    const state = await serialized(() => {
      const next = checkEntries(body.ports, alwaysAllowed());
      return apply(next, "replaced");
    });
    return c.json(toStateBody(state), 200);
  });

  app.openapi(lockdownPostRoute, async (c) => {
    const body = c.req.valid("json");
    const several = "ports" in body;
    const requested = several ? body.ports : [body];
    const state = await serialized(() => {
      // All or none: every entry is checked against the others and the list before anything changes.
      const entries = checkEntries(requested, alwaysAllowed(), several ? (i) => `ports[${i}]` : () => "body");
      const current = backend.lockdown().ports;
      const nothing = several ? "; nothing was added" : "";
      for (const entry of entries) {
        const same = current.find((p) =>
          p.proto === entry.proto && p.from === entry.from && p.to === entry.to
        );
        if (same) {
          throw new ApiError(
            409,
            "already_present",
            `${formatEntry(entry)} is already in the lockdown list${nothing}`,
          );
        }
        const clash = current.find((p) => overlaps(p, entry));
        if (clash) {
          throw new ApiError(
            409,
            "conflict",
            `${formatEntry(entry)} overlaps ${
              formatEntry(clash)
            } already in the list; remove that first or PUT the whole list${nothing}`,
          );
        }
      }
      if (current.length + entries.length > MAX_LOCKDOWN_ENTRIES) {
        throw new ApiError(
          422,
          "invalid_value",
          `the list holds ${current.length} entries; adding ${entries.length} would pass the ${MAX_LOCKDOWN_ENTRIES} allowed; use ranges${nothing}`,
        );
      }
      return apply([...current, ...entries], "added");
    });
    return c.json(toStateBody(state), 200);
  });

  app.openapi(lockdownDeleteRoute, async (c) => {
    const { proto, port } = c.req.valid("param");
    if (!/^(tcp|udp)$/i.test(proto) || !/^\d{1,5}(-\d{1,5})?$/.test(port)) {
      throw new ApiError(
        400,
        "bad_request",
        "the path must be /v1/lockdown/ports/{tcp|udp}/{port or LOW-HIGH}, e.g. /v1/lockdown/ports/udp/6000-6010",
      );
    }
    const p = parseProto(proto, "proto");
    const { from, to } = parsePortSpec(port, "port");
    const state = await serialized(() => {
      const current = backend.lockdown().ports;
      const i = current.findIndex((q) => q.proto === p && q.from === from && q.to === to);
      if (i < 0) {
        throw new ApiError(
          404,
          "not_found",
          `${
            formatEntry({ proto: p, from, to })
          } is not in the lockdown list (GET /v1/lockdown/ports lists it)`,
        );
      }
      return apply(current.filter((_, j) => j !== i), "removed");
    });
    return c.json(toStateBody(state), 200);
  });

  app.openapi(metricsRoute, (c) => {
    const text = renderMetrics(backend.status(), backend.counters(), backend.events);
    return c.body(text, 200, { "Content-Type": METRICS_CONTENT_TYPE }) as never;
  });

  app.openapi(healthzRoute, (c) => c.json({ status: "ok", detail: "the admin API is serving" }, 200));

  app.openapi(readyzRoute, (c) => {
    const aes = backend.status().peers.filter((p) => p.aes0 !== null);
    if (aes.length === 0) return c.json({ status: "ready", detail: "no AES peers" }, 200);
    // A gate with a suspected PSK mismatch is open but carries nothing: not ready.
    const open = aes.filter((p) => p.aes0!.gate.state === "open" && !p.aes0!.gate.mismatchSuspected);
    if (open.length > 0) {
      return c.json({
        status: "ready",
        detail: `aes0 gate open for ${open.map((p) => p.name).join(", ")} (${open.length} of ${aes.length})`,
      }, 200);
    }
    const why = aes.slice(0, 8).map((p) => {
      const g = p.aes0!.gate;
      return `${p.name} ${g.state}${g.mismatchSuspected ? ", PSK mismatch suspected" : ""} (${g.reason})`;
    });
    throw new ApiError(
      503,
      "not_ready",
      `no AES peer's aes0 gate is open without a suspected PSK mismatch: ${why.join("; ")}${
        aes.length > 8 ? "; …" : ""
      }`,
    );
  });

  let doc: unknown = null;
  app.openapi(openapiRoute, (c) => {
    doc ??= app.getOpenAPIDocument({
      openapi: "3.0.3",
      info: {
        title: "twofold admin API",
        version: "1",
        description: "Local admin API of a twofold node: status, events, lockdown list, metrics, health.",
      },
    });
    return c.json(doc as { openapi: string }, 200);
  });

  return app;
}
