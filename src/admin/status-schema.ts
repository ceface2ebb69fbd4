/**
 * Zod schemas of what `GET /v1/status` and `GET /v1/events` return, for the OpenAPI document. They
 * mirror `model.ts` and `events/bus.ts`; a compile-time check below fails `deno check` when the two
 * drift apart.
 * @module
 */
import { z } from "@hono/zod-openapi";
import { NODE_EVENT_TYPES, type NodeEvent, type NodeEventType } from "../events/bus.ts";
import type { NodeStatus } from "./model.ts";
import { LockdownStateSchema } from "./lockdown-schema.ts";
import { KEY_SOURCES } from "../config/key-source.ts";

const iso = () => z.string().openapi({ format: "date-time", example: "2025-01-01T12:00:00.000Z" });
const intOrNull = () => z.number().int().nullable();

/** One interface. */
export const InterfaceStatusSchema = z.object({
  name: z.string().openapi({
    example: "aes0",
    description: "The interface's name on this host (config wg0.name / aes0.name; default wg0 / aes0).",
  }),
  cipherSuite: z.string().openapi({ example: "Noise_IKpsk2_25519_AESGCM_BLAKE2s" }),
  aead: z.string().openapi({ example: "AES-256-GCM" }),
  aeadBackend: z.string().openapi({ example: "libcrypto", description: '"libcrypto" (OpenSSL) or "noble".' }),
  listenPort: z.number().int(),
  mtu: z.number().int(),
  address: z.string().openapi({ example: "100.96.0.1/16" }),
  publicKey: z.string().openapi({ description: "Public key, base64." }),
  filterDrops: z.object({
    lockdown: z.number().int(),
    policy: z.number().int(),
    malformed: z.number().int(),
    fragment: z.number().int(),
  }).optional().openapi({ description: "Packets the packet filter dropped since start, by reason." }),
}).openapi("InterfaceStatus");

const layerFields = {
  endpoint: z.string().nullable().openapi({ example: "192.0.2.10:51820" }),
  allowedIps: z.array(z.string()),
  lastHandshake: iso().nullable(),
  lastHandshakeAgeSeconds: z.number().nullable(),
  rxBytes: z.number().int(),
  txBytes: z.number().int(),
};

/** wg0 per-peer state. */
export const Wg0PeerStatusSchema = z.object({
  ...layerFields,
  psk: z.object({
    source: z.enum(["none", "static", "rosenpass"]),
    epoch: intOrNull(),
    ageSeconds: z.number().nullable(),
  }),
  pq: z.object({
    mode: z.enum(["off", "permissive", "strict"]),
    state: z.enum(["off", "waiting", "exchanged", "stale"]),
    epoch: intOrNull(),
    ageSeconds: z.number().nullable(),
    exchanges: z.number().int(),
  }),
}).openapi("Wg0PeerStatus");

/** aes0 per-peer state. */
export const AesPeerStatusSchema = z.object({
  ...layerFields,
  keySource: z.enum(KEY_SOURCES),
  gate: z.object({
    state: z.enum(["closed", "open", "stale"]),
    reason: z.string(),
    mismatchSuspected: z.boolean(),
  }),
  keyEpoch: intOrNull(),
  keyAgeSeconds: z.number().nullable(),
  lastHandshakeEpoch: intOrNull(),
  keyLimits: z.object({
    rotationIntervalSeconds: z.number().nullable(),
    maxAgeSeconds: z.number().nullable(),
  }).nullable().optional().openapi({
    description:
      "The rotation interval (null for a manual key) and the age at which the key expires (null: never).",
  }),
  ska: z.object({
    role: z.enum(["initiator", "responder"]),
    lastEpoch: intOrNull(),
    lastIntermediateEpoch: intOrNull(),
    rotationsOk: z.number().int(),
    rotationsFailed: z.number().int(),
  }).nullable().optional(),
  dske: z.object({
    role: z.enum(["generator", "recoverer"]),
    lastEpoch: intOrNull(),
    rotationsOk: z.number().int(),
    rotationsFailed: z.number().int(),
    badHubs: z.array(z.string()),
    problem: z.string().nullable(),
    heldEpochs: z.array(z.number().int()),
  }).nullable(),
}).openapi("AesPeerStatus");

/** One peer, both layers. */
export const PeerStatusSchema = z.object({
  name: z.string(),
  publicKey: z.string(),
  role: z.enum(["peer", "hub", "broker"]),
  aes: z.boolean(),
  wg0: Wg0PeerStatusSchema,
  aes0: AesPeerStatusSchema.nullable(),
  routes: z.object({ advertised: z.array(z.string()), accepted: z.array(z.string()) }).openapi({
    description: "Networks the peer advertises (site-to-site) and those this node accepts and routes to it.",
  }),
}).openapi("PeerStatus");

/** One security hub. */
export const HubStatusSchema = z.object({
  name: z.string(),
  hubId: z.string(),
  endpoint: z.string(),
  reachable: z.boolean().nullable(),
  lastAnswerAgeSeconds: z.number().nonnegative().nullable(),
  misbehaving: z.boolean(),
  psrd: z.object({ txRemaining: z.number().int(), rxRemaining: z.number().int(), low: z.boolean() }),
}).openapi("HubStatus");

/** `GET /v1/status`. */
export const NodeStatusSchema = z.object({
  node: z.object({
    name: z.string(),
    publicKey: z.string(),
    version: z.string(),
    startedAt: iso(),
    uptimeSeconds: z.number(),
  }),
  interfaces: z.object({ wg0: InterfaceStatusSchema, aes0: InterfaceStatusSchema }),
  peers: z.array(PeerStatusSchema),
  dske: z.object({
    threshold: z.number().int(),
    rotationIntervalSeconds: z.number(),
    hubs: z.array(HubStatusSchema),
    rejectedPeerFrames: z.number().int(),
  }).nullable(),
  ska: z.object({
    broker: z.string(),
    brokerReachable: z.boolean().nullable(),
    rotationIntervalSeconds: z.number(),
  }).nullable().optional(),
  lockdown: LockdownStateSchema.openapi({
    description: "The lockdown list, as `GET /v1/lockdown/ports` reports it.",
  }),
  netmap: z.object({
    serial: z.number().int(),
    source: z.string(),
    appliedAt: iso(),
    ageSeconds: z.number(),
    restartNeeded: z.array(z.string()),
    lastRejected: z.string().nullable(),
  }).nullable().openapi({ description: "The running network map; null when the peers are inline." }),
  routes: z.object({ advertise: z.array(z.string()), accept: z.string() }).openapi({
    description:
      "What this node advertises for others, and its routes.accept policy (none, all, CIDRs, groups).",
  }),
}).openapi("NodeStatus");

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** One event of `GET /v1/events` (the SSE `data:` line). */
export const NodeEventSchema = z.object({
  id: z.number().int().openapi({ description: "Increasing id within one run of the node (the SSE id)." }),
  at: iso(),
  type: z.enum(NODE_EVENT_TYPES as [NodeEventType, ...NodeEventType[]]),
  layer: z.enum(["wg0", "aes0"]).optional(),
  peer: z.string().optional(),
  publicKey: z.string().optional(),
  epoch: z.number().int().optional(),
  hub: z.string().optional(),
  reason: z.string(),
  data: z.record(z.string(), scalar).optional(),
}).openapi("NodeEvent");

// Compile-time drift check: the schemas and the model types must describe the same data. The
// lockdown part differs on purpose (the backend gives the model's {proto, from, to}; the app answers
// with the API's entry, which adds `port`), so it is left out of the comparison.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type StatusNoLockdown = Omit<NodeStatus, "lockdown">;
type SchemaNoLockdown = Omit<z.infer<typeof NodeStatusSchema>, "lockdown">;
const _statusMatches: Same<StatusNoLockdown, SchemaNoLockdown> = true;
const _eventMatches: Same<NodeEvent, z.infer<typeof NodeEventSchema>> = true;
void _statusMatches;
void _eventMatches;
