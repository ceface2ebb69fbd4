/**
 * Monitoring: `GET /metrics` (Prometheus text), `GET /healthz` (liveness, no token even over TCP) and
 * `GET /readyz` (200 when at least one AES peer's gate is open with no PSK mismatch suspected, or
 * there are none; else 503 naming each gate's state and reason).
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AdminBackend } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../metrics.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

/** The one path readable without a token on every listener. */
export const HEALTHZ_PATH = "/healthz";

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
  path: HEALTHZ_PATH,
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

/** How many closed gates a 503 from /readyz names before "…". */
const READYZ_NAMED_GATES = 8;

/** The monitoring resources (mounted at the root). */
export function healthApp(backend: AdminBackend): OpenAPIHono {
  const app = routeApp();
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
    const why = aes.slice(0, READYZ_NAMED_GATES).map((p) => {
      const g = p.aes0!.gate;
      return `${p.name} ${g.state}${g.mismatchSuspected ? ", PSK mismatch suspected" : ""} (${g.reason})`;
    });
    throw new ApiError(
      503,
      "not_ready",
      `no AES peer's aes0 gate is open without a suspected PSK mismatch: ${why.join("; ")}${
        aes.length > READYZ_NAMED_GATES ? "; …" : ""
      }`,
    );
  });
  return app;
}
