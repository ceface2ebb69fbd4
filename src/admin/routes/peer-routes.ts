/**
 * `GET /v1/routes`: every peer route of the node — which interface traffic to a peer's address or to a
 * network a peer routes (site-to-site, accepted or not) takes,
 * which peer, why (its class), and for AES routes whether the gate is open (a closed gate means the
 * traffic goes nowhere, never to wg0). `?target=IP|NAME` narrows it to one address or one peer (404
 * when nothing matches). Mounted at `/v1` by app.ts, behind its auth middleware.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AdminBackend, PeerRoute } from "../model.ts";
import { ApiError, errorResponse } from "../errors.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";
import { parseCidr, parseIp } from "../../wireguard/allowedips.ts";
import { cidrContainsIp } from "../../config/routed-network.ts";

/** One route, as the API answers it. */
export const PeerRouteSchema = z.object({
  destination: z.string().openapi({ example: "100.127.0.2/32" }),
  interface: z.string(),
  layer: z.enum(["wg0", "aes0"]),
  peer: z.string(),
  publicKey: z.string(),
  peerClass: z.enum(["aes", "exempt", "hub"]),
  why: z.string(),
  gateOpen: z.boolean().nullable(),
  note: z.string().nullable(),
  kind: z.enum(["address", "network"]),
  accepted: z.boolean().nullable(),
}).openapi("PeerRoute");

const routesRoute = createRoute({
  method: "get",
  path: "/routes",
  summary: "Peer routes: interface, peer, peer class and gate state per peer address.",
  security: bearer,
  request: {
    query: z.object({
      target: z.string().max(253).optional().openapi({ description: "an IP address or a peer name" }),
    }),
  },
  responses: {
    200: {
      description: "The routes (all, or those for the target).",
      content: { "application/json": { schema: z.object({ routes: z.array(PeerRouteSchema) }) } },
    },
    404: errorResponse("No peer route for the target."),
    ...authErrors,
  },
});

/**
 * The route for `target` (case-insensitive): a peer address or a network as written; else, for an IP,
 * the advertised networks holding it, the longest prefix first (accepted or not, so the answer can say
 * which); else a peer name's routes.
 */
export function findRoutes(routes: readonly PeerRoute[], target: string): PeerRoute[] {
  const t = target.trim().toLowerCase();
  const byIp = routes.filter((r) => r.destination === t || r.destination === `${t}/32`);
  if (byIp.length > 0) return byIp;
  const ip = ipOrNull(t);
  if (ip !== null) {
    const holding = routes.filter((r) =>
      r.kind === "network" && cidrContainsIp(parseCidr(r.destination), ip)
    );
    if (holding.length > 0) return holding.sort((a, b) => prefixLength(b) - prefixLength(a));
  }
  return routes.filter((r) => r.peer.toLowerCase() === t);
}

function ipOrNull(text: string): Uint8Array | null {
  try {
    return parseIp(text);
  } catch {
    return null;
  }
}

function prefixLength(r: PeerRoute): number {
  return Number(r.destination.slice(r.destination.indexOf("/") + 1));
}

/** The `/routes` sub-app for `backend` (mounted at `/v1`). */
export function peerRoutesApp(backend: AdminBackend): OpenAPIHono {
  const app = routeApp();
  app.openapi(routesRoute, (c) => {
    const { target } = c.req.valid("query");
    const all = backend.routes();
    if (target === undefined) return c.json({ routes: all }, 200);
    const found = findRoutes(all, target);
    if (found.length === 0) {
      throw new ApiError(
        404,
        "not_found",
        `no peer route for ${
          JSON.stringify(target)
        }: not a peer name, a peer's address or in a network a peer advertises (the kernel's other routes decide)`,
      );
    }
    return c.json({ routes: found }, 200);
  });
  return app;
}
