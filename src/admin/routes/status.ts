/**
 * `GET /v1/status`: the node, its interfaces and both layers of every peer. The snapshot goes out
 * through its schema: only declared fields reach the client, so a field a backend left on its objects
 * by mistake (a key, say) is dropped, never serialized.
 * @module
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AdminBackend } from "../model.ts";
import { toStateBody } from "../lockdown-schema.ts";
import { NodeStatusSchema } from "../status-schema.ts";
import { authErrors, bearer, describeIssues, routeApp } from "../route-kit.ts";

const statusRoute = createRoute({
  method: "get",
  path: "/status",
  summary: "Node, interfaces and both layers of every peer.",
  security: bearer,
  responses: {
    200: { description: "A status snapshot.", content: { "application/json": { schema: NodeStatusSchema } } },
    ...authErrors,
  },
});

/** The status resource (mounted under `/v1`). */
export function statusApp(backend: AdminBackend): OpenAPIHono {
  const app = routeApp();
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
  return app;
}
