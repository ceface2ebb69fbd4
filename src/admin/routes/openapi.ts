/**
 * `GET /v1/openapi.json`: the OpenAPI 3 document of the whole admin API, generated (once) from the
 * route schemas of every resource mounted on `root`.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

const openapiRoute = createRoute({
  method: "get",
  path: "/openapi.json",
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

/** The document resource (mounted under `/v1`), describing `root`. */
export function openapiApp(root: OpenAPIHono): OpenAPIHono {
  const app = routeApp();
  let doc: unknown = null;
  app.openapi(openapiRoute, (c) => {
    doc ??= root.getOpenAPIDocument({
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
