/**
 * The network map: one JSONC document for the whole network (domain, aes0 subnet, groups, every node
 * with its public key, wg0 IP, AES IP, role, endpoints, key source, groups and keepalive). A node finds
 * itself in it by its public key; every other node is its peer (see view.ts).
 *
 * Parsing is the node config's recipe: JSONC → zod schema (shape, types, defaults; here) → cross-entry
 * rules (uniqueness, subnets, groups, routes; resolve.ts, on the field rules of field-rules.ts) → a
 * resolved {@link Netmap}. Every problem is one {@link NetmapError}
 * line naming the entry and the fix, e.g.
 * `nodes[2] ("node-c").wgIp: 100.64.0.2 is already used by nodes[0] ("node-a"); every wg0 and AES
 * address must be unique (twofold netmap add allocates free ones)`.
 *
 * Decisions worth knowing:
 * - wg0 IPs are IPv4 in 100.64.0.0/10 and outside the aes subnet (the longer aes0 route would capture
 *   them), never the /10's network or broadcast address; AES IPs are IPv4 inside the aes subnet, never
 *   its network or broadcast address (for subnets of /30 and wider).
 * - The label `aes` is reserved: `NAME.aes.DOM` is the AES name of NAME.
 * - Hubs and brokers carry no application traffic, so they have no AES IP and no key source.
 * - Every AES node peers with every other AES node, so they must agree on the key source.
 * - At most MAX_PEERS + 1 nodes: each node's view has one interface's worth of peers.
 * - A peer may advertise networks it routes (`routes`, site-to-site): outside the tunnel ranges, and no
 *   two advertisements overlap (config/routed-network.ts); hubs and brokers route nothing.
 * @module
 */
import { z } from "zod";
import { JsoncSyntaxError, parseJsonc } from "../config/jsonc.ts";
import { KEY_SOURCES, type KeySource } from "../config/key-source.ts";
import {
  DNS_LABEL,
  firstIssue,
  notAllowedProblem,
  quote,
  unknownKeyProblem,
  wrongTypeProblem,
} from "../config/zod-errors.ts";
import type { Endpoint } from "../uapi/netaddr.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import type { Ipv4Prefix } from "./ipv4.ts";
import { NetmapError } from "./field-rules.ts";
import { resolveNetmap } from "./resolve.ts";

/** The map format this code reads and writes (`"version"`). */
export const NETMAP_FORMAT_VERSION = 1;
/** One DNS label (the shared rule, config/zod-errors.ts). */
export { DNS_LABEL };
// The field rules and the resolution, for everyone who reads or edits maps through this module.
export {
  AES_LABEL,
  checkNodeName,
  isReservedInPrefix,
  MAX_BITS_WITH_BROADCAST,
  MAX_DOMAIN_LENGTH,
  MAX_NETMAP_NODES,
  NetmapError,
  normalizeDomain,
  parseAesSubnet,
  parseNetmapPublicKey,
  WG_PREFIX,
} from "./field-rules.ts";
export { resolveNetmap } from "./resolve.ts";

/** A node's role: an edge node, a DSKE security hub, or an SKA broker (the last two: wg0 only). */
export type NetmapRole = "peer" | "hub" | "broker";
/** Where an AES node's aes0 PSKs come from (the key sources of the node config). */
export type NetmapKeySource = KeySource;

/** One resolved node of the map. */
export interface NetmapNode {
  /** Name, a DNS label, as written (compare in lower case). */
  name: string;
  /** Curve25519 public key (32 bytes). */
  publicKey: Uint8Array;
  /** The same key in base64, the node's identity in diffs and lookups. */
  publicKeyText: string;
  /** wg0 address (IPv4, as a number). */
  wgIp: number;
  /** aes0 address (IPv4, as a number), or null for an AES-exempt node (and every hub and broker). */
  aesIp: number | null;
  /** Role. */
  role: NetmapRole;
  /** Underlay endpoints in preference order (may be empty: the node reaches its peers first). */
  endpoints: Endpoint[];
  /** aes0 PSK source; null when the node has no AES IP. */
  keySource: NetmapKeySource | null;
  /** Group names (each declared in the map's `groups`). */
  groups: string[];
  /** Persistent keepalive in seconds; 0 = off. */
  persistentKeepalive: number;
  /** Networks it routes for others (site-to-site): strict prefixes, outside the tunnel ranges, unique. */
  routes: Cidr[];
}

/** A resolved, validated network map. */
export interface Netmap {
  /** Format version ({@link NETMAP_FORMAT_VERSION}). */
  version: number;
  /** Serial, incremented on every edit; nodes never go back to a lower one. */
  serial: number;
  /** The DNS domain, lower case, without a trailing dot. */
  domain: string;
  /** The aes0 subnet. */
  aesSubnet: Ipv4Prefix;
  /** Declared group names. */
  groups: string[];
  /** Nodes, in file order. */
  nodes: NetmapNode[];
}

// ---------------------------------------------------------------------------------------------------
// Schema: shape, types, defaults. Cross-entry rules follow in resolveNetmap().

const keepaliveField = z.int()
  .min(0, { error: "must be 0 (off) to 65535 seconds" })
  .max(65535, { error: "must be 0 (off) to 65535 seconds" });

const nodeEntry = z.strictObject({
  name: z.string(),
  publicKey: z.string(),
  wgIp: z.string(),
  aesIp: z.string().optional(),
  role: z.enum(["peer", "hub", "broker"]).default("peer"),
  endpoints: z.array(z.string()).default([]),
  keySource: z.enum(KEY_SOURCES).optional(),
  groups: z.array(z.string()).default([]),
  persistentKeepalive: keepaliveField.default(0),
  routes: z.array(z.string()).default([]),
});

const netmapFile = z.strictObject({
  version: z.literal(NETMAP_FORMAT_VERSION, {
    error: `must be ${NETMAP_FORMAT_VERSION}; this twofold reads map format ${NETMAP_FORMAT_VERSION} only`,
  }),
  serial: z.int()
    .min(0, { error: "must be a whole number from 0 up" })
    .max(Number.MAX_SAFE_INTEGER, { error: "is too large; start a new map with a smaller serial" }),
  domain: z.string(),
  aesSubnet: z.string(),
  groups: z.array(z.string()).default([]),
  nodes: z.array(nodeEntry).default([]),
});

/** The map document as written in the file (strings, defaults applied). */
export type NetmapDocument = z.output<typeof netmapFile>;
/** One node entry as written in the file. */
export type NetmapNodeEntry = z.output<typeof nodeEntry>;

// ---------------------------------------------------------------------------------------------------
// Schema issues as one line.

function formatPath(path: readonly PropertyKey[], data: unknown): string {
  let out = "";
  let cursor: unknown = data;
  for (const part of path) {
    if (typeof part === "number") {
      out += `[${part}]`;
      cursor = Array.isArray(cursor) ? cursor[part] : undefined;
      const name = (cursor as { name?: unknown } | undefined)?.name;
      if (out.startsWith("nodes") && out.indexOf("]") === out.length - 1 && typeof name === "string") {
        out += ` (${quote(name)})`;
      }
    } else {
      out += out === "" ? String(part) : `.${String(part)}`;
      cursor = cursor && typeof cursor === "object"
        ? (cursor as Record<string, unknown>)[part as string]
        : undefined;
    }
  }
  return out === "" ? "(top level)" : out;
}

function knownKeys(path: readonly PropertyKey[]): string[] {
  return Object.keys(path.length === 0 ? netmapFile.shape : nodeEntry.shape);
}

function problemFromIssue(issue: z.core.$ZodIssue, data: unknown): NetmapError {
  const field = formatPath(issue.path, data);
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0];
      return new NetmapError(
        formatPath([...issue.path, key], data),
        unknownKeyProblem(key, knownKeys(issue.path)),
      );
    }
    case "invalid_type":
      return new NetmapError(field, wrongTypeProblem(issue, "docs/netmap.md"));
    case "invalid_value":
      return issue.values.length === 1 && issue.message.startsWith("must")
        ? new NetmapError(field, issue.message)
        : new NetmapError(field, notAllowedProblem(issue.input, issue.values));
    default:
      return new NetmapError(field, issue.message);
  }
}

/**
 * Parses map text (JSONC) into the document as written: syntax and schema only. Throws a NetmapError
 * (a syntax error is reported as `line L:C: …`).
 */
export function parseNetmapDocument(text: string): NetmapDocument {
  let data: unknown;
  try {
    data = parseJsonc(text);
  } catch (e) {
    if (e instanceof JsoncSyntaxError) {
      throw new NetmapError(
        `line ${e.line}:${e.column}`,
        e.problem.includes(";") ? e.problem : `${e.problem}; fix the JSON syntax there`,
      );
    }
    throw e;
  }
  const parsed = netmapFile.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const issues = parsed.error.issues;
    throw problemFromIssue(firstIssue(issues), data);
  }
  return parsed.data;
}

/** Parses and validates map text (JSONC) into a {@link Netmap}; one NetmapError line on the first problem. */
export function parseNetmap(text: string): Netmap {
  return resolveNetmap(parseNetmapDocument(text));
}

/**
 * The document as the editing tool writes it: two-space JSON, fields in a fixed order, defaults that
 * say nothing (no groups, no endpoints, keepalive 0, role peer) left out.
 */
export function formatNetmapDocument(doc: NetmapDocument): string {
  const nodes = doc.nodes.map((n) => {
    const out: Record<string, unknown> = { name: n.name, publicKey: n.publicKey, wgIp: n.wgIp };
    if (n.aesIp !== undefined) out.aesIp = n.aesIp;
    if (n.role !== "peer") out.role = n.role;
    if (n.endpoints.length) out.endpoints = n.endpoints;
    if (n.keySource !== undefined) out.keySource = n.keySource;
    if (n.groups.length) out.groups = n.groups;
    if (n.persistentKeepalive !== 0) out.persistentKeepalive = n.persistentKeepalive;
    if (n.routes.length) out.routes = n.routes;
    return out;
  });
  const out = {
    version: doc.version,
    serial: doc.serial,
    domain: doc.domain,
    aesSubnet: doc.aesSubnet,
    groups: doc.groups,
    nodes,
  };
  return JSON.stringify(out, null, 2) + "\n";
}
