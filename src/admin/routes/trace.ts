/**
 * `POST /v1/trace` (token required, as every POST): what the node does with a packet from a peer —
 * route steering, the packet filter's verdict with the deciding rule or lockdown entry, the aes0 gate,
 * the session and the MTU (node/trace.ts). Mounted under `/v1` by app.ts.
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { ApiError, errorResponse } from "../errors.ts";
import type { AdminBackend } from "../model.ts";
import { authErrors, bearer, routeApp } from "../route-kit.ts";

/** The question (see node/trace.ts TraceQuestion). */
export const TraceQuestionSchema = z.strictObject({
  peer: z.string().min(1).max(255).openapi({
    description: "The sending peer: its name, wg0 IP or AES IP.",
    example: "node-a",
  }),
  proto: z.enum(["tcp", "udp", "icmp"]).optional().openapi({ description: "Protocol (default tcp)." }),
  port: z.int().min(0).max(65535).optional().openapi({ description: "Destination port (TCP/UDP)." }),
  to: z.enum(["wg0", "aes0"]).optional().openapi({
    description: "Which of this node's addresses the packet is sent to; default: the interface the peer " +
      "was named by (an AES IP: aes0), else every interface the peer has.",
  }),
  packet: z.string().max(88_000).optional().openapi({
    description: "A raw IP packet in base64 instead of proto/port; its destination picks the interface.",
  }),
  destination: z.string().max(45).optional().openapi({
    description: "A host in a network this node routes (node.advertise) instead of one of its addresses: " +
      "the probe is forwarded into that LAN, on aes0 for an AES peer unless `to` says wg0.",
    example: "192.168.20.5",
  }),
}).openapi("TraceQuestion");

const TraceLayerSchema = z.object({
  layer: z.enum(["wg0", "aes0"]),
  destination: z.string(),
  steering: z.string().openapi({ description: "Why route steering puts the packet on this interface." }),
  enforcement: z.enum(["lockdown", "policy"]),
  verdict: z.object({
    accept: z.boolean(),
    reason: z.string().nullable().openapi({ description: "lockdown, policy, malformed or fragment." }),
    match: z.string().nullable().openapi({
      description: "lockdown-entry, policy-rule, default-allow, key-plane, established or related.",
    }),
    rule: z.string().nullable().openapi({ description: "The deciding rule or lockdown entry, in words." }),
  }),
  session: z.boolean().openapi({ description: "Whether the peer has a usable session on this interface." }),
  mtu: z.int(),
}).openapi("TraceLayer");

/** The answer (see node/trace.ts TraceResult). */
export const TraceResultSchema = z.object({
  peer: z.object({
    name: z.string(),
    wgIp: z.string(),
    aesIp: z.string().nullable(),
    aesCapable: z.boolean(),
    hub: z.boolean(),
  }),
  gate: z.object({ state: z.string(), reason: z.string(), epoch: z.int().nullable() }).nullable(),
  layers: z.array(TraceLayerSchema),
}).openapi("TraceResult");

/** A question as the API takes it. */
export type TraceQuestionBody = z.infer<typeof TraceQuestionSchema>;
/** An answer as the API returns it. */
export type TraceResultBody = z.infer<typeof TraceResultSchema>;

const traceRoute = createRoute({
  method: "post",
  path: "/trace",
  summary: "What the node does with a packet from a peer, step by step (a dry run of the real filter).",
  security: bearer,
  request: {
    body: {
      required: true,
      description: "Who sends what.",
      content: { "application/json": { schema: TraceQuestionSchema } },
    },
  },
  responses: {
    200: { description: "The trace.", content: { "application/json": { schema: TraceResultSchema } } },
    ...authErrors,
    400: errorResponse("Malformed JSON, or a body of the wrong shape."),
    422: errorResponse("A peer the config does not know, or a packet that is not base64."),
    503: errorResponse("This node cannot trace (no packet filter)."),
  },
});

/** The trace resource (mounted under `/v1`). */
export function traceApp(backend: AdminBackend): OpenAPIHono {
  const app = routeApp();
  app.openapi(traceRoute, (c) => {
    if (!backend.trace) throw new ApiError(503, "unavailable", "this node has no packet filter to trace");
    const result = backend.trace(c.req.valid("json"));
    if ("error" in result) throw new ApiError(422, "bad_trace", result.error);
    return c.json(TraceResultSchema.parse(result), 200);
  });
  return app;
}
