/**
 * `POST /v1/reload` (token required, like every mutation): the node re-reads its PSK files, the live
 * parts of its config and its network map's source through the same guarded paths as SIGHUP, and
 * answers what it did and which changes need a restart.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AdminBackend } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

/** The answer of a reload. */
export const ReloadOutcomeSchema = z.object({
  summary: z.string(),
  restartNeeded: z.array(z.string()),
}).openapi("ReloadOutcome");

const reloadRoute = createRoute({
  method: "post",
  path: "/reload",
  summary: "Re-read PSK files, the node config's live parts and the network map (as SIGHUP).",
  security: bearer,
  responses: {
    200: {
      description: "What was re-read and applied; changes that need a restart.",
      content: { "application/json": { schema: ReloadOutcomeSchema } },
    },
    409: errorResponse("This node cannot reload (not run by `twofold up`)."),
    ...authErrors,
  },
});

/** The reload resource (mounted under `/v1`). */
export function reloadApp(backend: AdminBackend): OpenAPIHono {
  const app = routeApp();
  app.openapi(reloadRoute, async (c) => {
    if (!backend.reload) {
      throw new ApiError(409, "not_supported", "this node cannot reload; restart it instead");
    }
    const outcome = await backend.reload();
    return c.json(ReloadOutcomeSchema.parse(outcome), 200);
  });
  return app;
}
