/**
 * The wg0 lockdown extra-port list: `GET|PUT|POST /v1/lockdown/ports` and
 * `DELETE /v1/lockdown/ports/{proto}/{port}`. Bodies must be JSON (415) of at most
 * {@link MAX_REQUEST_BODY_BYTES} (413). Changes are serialized; after `backend.setLockdown` succeeds one
 * `lockdown-changed` event is published (reason, and `data: {added, removed, count, enforced}` with
 * added/removed as space-separated `proto/port` lists) when the list actually changed.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "../../log.ts";
import type { AdminBackend, LockdownPort, LockdownState } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
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
} from "../lockdown-schema.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

/** Largest request body the API takes, bytes (the listener refuses larger ones before reading them). */
export const MAX_REQUEST_BODY_BYTES = 64 * 1024;

const JSON_CT = /^application\/([\w.-]+\+)?json$/i;

const mutationErrors = {
  ...authErrors,
  400: errorResponse("Malformed JSON, or a body of the wrong shape."),
  413: errorResponse(`A body larger than ${MAX_REQUEST_BODY_BYTES} bytes.`),
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

const getRoute = createRoute({
  method: "get",
  path: "/ports",
  summary: "The wg0 lockdown extra-port list.",
  security: bearer,
  responses: { 200: lockdownOk, ...authErrors },
});

const putRoute = createRoute({
  method: "put",
  path: "/ports",
  summary: "Replace the lockdown list.",
  security: bearer,
  request: { body: jsonBody(LockdownReplaceSchema, "The whole new list.") },
  responses: { 200: lockdownOk, ...mutationErrors },
});

const postRoute = createRoute({
  method: "post",
  path: "/ports",
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

const deleteRoute = createRoute({
  method: "delete",
  path: "/ports/{proto}/{port}",
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

/** 415 unless a PUT/POST body is declared as JSON. */
function requireJson(method: string, contentType: string | undefined): void {
  if (method !== "PUT" && method !== "POST") return;
  const mediaType = (contentType ?? "").split(";")[0].trim();
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

/** Applies list changes one at a time and reports each real change (event and log line). */
class LockdownWriter {
  readonly backend: AdminBackend;
  readonly log: Logger;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(backend: AdminBackend, log: Logger) {
    this.backend = backend;
    this.log = log;
  }

  /** Runs `fn` after every change already queued. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn, fn);
    this.#chain = p.catch(() => {});
    return p;
  }

  /** The ports always reachable, whatever the list says (refused as entries). */
  alwaysAllowed(): AlwaysAllowed {
    return { aesUdpPort: this.backend.status().interfaces.aes0.listenPort, dskeTcpPort: DSKE_TCP_PORT };
  }

  /** Saves `next` (500 when it cannot be saved) and publishes `lockdown-changed` when it changed. */
  async apply(next: LockdownPort[], how: string, caller: string): Promise<LockdownState> {
    const prev = this.backend.lockdown().ports;
    let state: LockdownState;
    try {
      state = await this.backend.setLockdown(sortEntries(next));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.log.error(`lockdown list not saved (${how}): ${msg}`);
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
      this.backend.events.publish({
        type: "lockdown-changed",
        reason: `${how} via the admin API: ${summary.join(" ")}`,
        data: {
          caller,
          added: list(added),
          removed: list(removed),
          count: state.ports.length,
          enforced: state.enforced,
        },
      });
      this.log.info(`lockdown list changed (${how}): ${summary.join(" ")}; ${state.ports.length} entries`);
    }
    return state;
  }

  /** Adds `entries` (all or none): 409 for one already listed or overlapping, 422 past the maximum. */
  add(entries: LockdownPort[], several: boolean, caller: string): Promise<LockdownState> {
    const current = this.backend.lockdown().ports;
    const nothing = several ? "; nothing was added" : "";
    for (const entry of entries) {
      const same = current.find((p) => p.proto === entry.proto && p.from === entry.from && p.to === entry.to);
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
    return this.apply([...current, ...entries], "added", caller);
  }

  /** Removes the entry listed exactly as `proto`/`from`-`to` (404 when there is none). */
  remove(proto: LockdownPort["proto"], from: number, to: number, caller: string): Promise<LockdownState> {
    const current = this.backend.lockdown().ports;
    const i = current.findIndex((q) => q.proto === proto && q.from === from && q.to === to);
    if (i < 0) {
      throw new ApiError(
        404,
        "not_found",
        `${formatEntry({ proto, from, to })} is not in the lockdown list (GET /v1/lockdown/ports lists it)`,
      );
    }
    return this.apply(current.filter((_, j) => j !== i), "removed", caller);
  }
}

/**
 * Who made a change, for the `lockdown-changed` event and so the audit log: every change carries the
 * admin token (the auth middleware ran), so the caller is "the token holder" plus where the request came
 * from (the unix socket or the loopback TCP peer). The unix peer's uid (SO_PEERCRED) is not available:
 * Deno's unix listener does not expose the connection's descriptor.
 */
function callerOf(c: { env: unknown }): string {
  const peer = (c.env as { peer?: unknown } | undefined)?.peer;
  return `admin token via ${typeof peer === "string" ? peer : "in-process request"}`;
}

/** The lockdown resource (mounted under `/v1/lockdown`). */
export function lockdownApp(backend: AdminBackend, log: Logger): OpenAPIHono {
  const app = routeApp();
  const writer = new LockdownWriter(backend, log);
  app.use("/ports", async (c, next) => {
    requireJson(c.req.method, c.req.header("Content-Type"));
    await next();
  });
  app.use(
    "/ports",
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

  app.openapi(getRoute, (c) => c.json(toStateBody(backend.lockdown()), 200));

  app.openapi(putRoute, async (c) => {
    const body = c.req.valid("json");
    const state = await writer.serialized(() =>
      writer.apply(checkEntries(body.ports, writer.alwaysAllowed()), "replaced", callerOf(c))
    );
    return c.json(toStateBody(state), 200);
  });

  app.openapi(postRoute, async (c) => {
    const body = c.req.valid("json");
    const several = "ports" in body;
    const requested = several ? body.ports : [body];
    // All or none: every entry is checked against the others and the list before anything changes.
    const state = await writer.serialized(() =>
      writer.add(
        checkEntries(requested, writer.alwaysAllowed(), several ? (i) => `ports[${i}]` : () => "body"),
        several,
        callerOf(c),
      )
    );
    return c.json(toStateBody(state), 200);
  });

  app.openapi(deleteRoute, async (c) => {
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
    const state = await writer.serialized(() => writer.remove(p, from, to, callerOf(c)));
    return c.json(toStateBody(state), 200);
  });
  return app;
}
