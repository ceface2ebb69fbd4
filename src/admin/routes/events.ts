/**
 * `GET /v1/events`: the node's typed events as Server-Sent Events, resumable with `Last-Event-ID` (or
 * `?since=`), at most `maxStreams` open at once (one more is answered 503 `busy`).
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Logger } from "../../log.ts";
import type { AdminBackend } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
import { NodeEventSchema } from "../status-schema.ts";
import { eventStream, SSE_QUEUE_BYTES } from "../sse.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

/** How the event streams run. */
export interface EventsOptions {
  /** Heartbeat interval, ms. */
  heartbeatMs: number;
  /** Chunks that may wait for one slow client before it is dropped. */
  queueLimit: number;
  /** Most streams open at once. */
  maxStreams: number;
  /** Aborting it ends every open stream (the server's shutdown). */
  signal?: AbortSignal;
  /** Where a dropped slow client is logged. */
  log: Logger;
}

const eventsRoute = createRoute({
  method: "get",
  path: "/events",
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

function parseEventId(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text.trim())) {
    throw new ApiError(400, "bad_request", `${name} must be a non-negative integer event id`);
  }
  return Number(text.trim());
}

/** The event-stream resource (mounted under `/v1`). */
export function eventsApp(backend: AdminBackend, opts: EventsOptions): OpenAPIHono {
  const app = routeApp();
  let openStreams = 0;
  app.openapi(eventsRoute, (c) => {
    const header = c.req.header("Last-Event-ID");
    const query = c.req.query("since");
    let since: number | null = null;
    if (header !== undefined && header.trim() !== "") since = parseEventId(header, "Last-Event-ID");
    else if (query !== undefined) since = parseEventId(query, "since");
    if (openStreams >= opts.maxStreams) {
      throw new ApiError(
        503,
        "busy",
        `${opts.maxStreams} event streams are open (the most this node serves); retry later`,
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
      heartbeatMs: opts.heartbeatMs,
      queueLimit: opts.queueLimit,
      signals,
      onEnd: (why) => {
        openStreams--;
        if (why === "too-slow") {
          opts.log.warn(
            `event client dropped: it did not keep up (${opts.queueLimit} events or ${SSE_QUEUE_BYTES} bytes queued)`,
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
  return app;
}
