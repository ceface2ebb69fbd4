/**
 * The network map: one JSONC document for the whole network (domain, aes0 subnet, groups, every node
 * with its public key, wg0 IP, AES IP, role, endpoints, key source, groups and keepalive). A node finds
 * itself in it by its public key; every other node is its peer (see view.ts).
 *
 * Parsing is the node config's recipe: JSONC → zod schema (shape, types, defaults) → cross-entry rules
 * (uniqueness, subnets, groups) → a resolved {@link Netmap}. Every problem is one {@link NetmapError}
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
 * @module
 */
import { z } from "zod";
import { MAX_PEERS } from "../dataplane/shared-state.ts";
import { JsoncSyntaxError, parseJsonc } from "../config/jsonc.ts";
import { KEY_SOURCES, type KeySource } from "../config/key-source.ts";
import { WG_NETWORK } from "../config/wg-network.ts";
import {
  DNS_LABEL,
  DNS_LABEL_RULE,
  firstIssue,
  notAllowedProblem,
  quote,
  unknownKeyProblem,
  wrongTypeProblem,
} from "../config/zod-errors.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { type Endpoint, parseEndpoint } from "../uapi/netaddr.ts";
import {
  formatIpv4Number,
  formatPrefix,
  type Ipv4Prefix,
  parseIpv4Number,
  parseIpv4Prefix,
  prefixContains,
  prefixesOverlap,
  prefixLast,
} from "./ipv4.ts";

/** The map format this code reads and writes (`"version"`). */
export const NETMAP_FORMAT_VERSION = 1;
/** Label reserved for the AES names: `NAME.aes.DOM`. */
export const AES_LABEL = "aes";
/** Most nodes one map holds: every node's peers must fit one interface. */
export const MAX_NETMAP_NODES = MAX_PEERS + 1;
/** Longest domain name in text form (RFC 1035: 255 octets on the wire). */
export const MAX_DOMAIN_LENGTH = 253;
/** Prefix lengths from which a subnet has a network and a broadcast address that are never handed out. */
export const MAX_BITS_WITH_BROADCAST = 30;

/** One DNS label (the shared rule, config/zod-errors.ts). */
export { DNS_LABEL };
const LABEL_RULE = DNS_LABEL_RULE;

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

/** A bad map: one line `field: problem; fix` (never key material). */
export class NetmapError extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
    this.name = "NetmapError";
  }
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

// ---------------------------------------------------------------------------------------------------
// Field rules shared with the editing tool.

/** Lower-case domain without a trailing dot, or a NetmapError naming the rule. */
export function normalizeDomain(field: string, text: string): string {
  const domain = text.endsWith(".") ? text.slice(0, -1) : text;
  const labels = domain.split(".");
  const fix =
    `write a domain such as "fabric.example" (labels of ${LABEL_RULE}, at most ${MAX_DOMAIN_LENGTH} characters)`;
  if (domain.length === 0 || domain.length > MAX_DOMAIN_LENGTH || !labels.every((l) => DNS_LABEL.test(l))) {
    throw new NetmapError(field, `${quote(text)} is not a valid domain; ${fix}`);
  }
  return domain.toLowerCase();
}

/** Checks a node name (one DNS label, not the reserved `aes`). */
export function checkNodeName(field: string, name: string): void {
  if (!DNS_LABEL.test(name)) {
    throw new NetmapError(field, `${quote(name)} is not a valid name; use ${LABEL_RULE}`);
  }
  if (name.toLowerCase() === AES_LABEL) {
    throw new NetmapError(
      field,
      `"${name}" is reserved (NAME.${AES_LABEL}.DOMAIN holds the AES names); pick another name`,
    );
  }
}

/** Parses a base64 WireGuard public key (32 bytes) or throws a NetmapError. */
export function parseNetmapPublicKey(field: string, text: string): Uint8Array {
  let key: Uint8Array | null;
  try {
    key = decodeBase64(text.trim());
  } catch {
    key = null;
  }
  if (key === null || key.length !== 32) {
    throw new NetmapError(
      field,
      "is not a base64 WireGuard public key (32 bytes, 44 characters); print it on that node with `twofold pubkey < node.key`",
    );
  }
  return key;
}

/** The wg0 network as a prefix. */
export const WG_PREFIX: Ipv4Prefix = parseIpv4Prefix(WG_NETWORK) as Ipv4Prefix;

/** Whether `ip` is the network or broadcast address of `prefix` (only for prefixes of /30 and wider). */
export function isReservedInPrefix(prefix: Ipv4Prefix, ip: number): boolean {
  return prefix.bits <= MAX_BITS_WITH_BROADCAST && (ip === prefix.base || ip === prefixLast(prefix));
}

/** Parses and checks the aes subnet: IPv4, no host bits, not covering all of wg0's network. */
export function parseAesSubnet(field: string, text: string): Ipv4Prefix {
  const parsed = parseIpv4Prefix(text);
  if ("problem" in parsed) {
    throw new NetmapError(
      field,
      `${quote(text)} ${parsed.problem}; write an IPv4 subnet such as 100.127.0.0/16`,
    );
  }
  if (parsed.bits > MAX_BITS_WITH_BROADCAST) {
    throw new NetmapError(
      field,
      `/${parsed.bits} holds no usable address; use /${MAX_BITS_WITH_BROADCAST} or wider`,
    );
  }
  if (prefixesOverlap(parsed, WG_PREFIX) && parsed.bits <= WG_PREFIX.bits) {
    throw new NetmapError(
      field,
      `${
        formatPrefix(parsed)
      } covers all of ${WG_NETWORK}, leaving no wg0 address; use a smaller subnet such as 100.127.0.0/16`,
    );
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------------
// Cross-entry resolution.

function hostAddress(field: string, text: string, example: string): number {
  const plain = text.endsWith("/32") ? text.slice(0, -3) : text;
  const ip = parseIpv4Number(plain);
  if (ip === null) {
    throw new NetmapError(field, `${quote(text)} is not one IPv4 address; write e.g. ${example}`);
  }
  return ip;
}

/** Resolves a schema-checked document: every cross-entry rule, one NetmapError on the first problem. */
export function resolveNetmap(doc: NetmapDocument): Netmap {
  const domain = normalizeDomain("domain", doc.domain);
  const aesSubnet = parseAesSubnet("aesSubnet", doc.aesSubnet);
  const subnetText = formatPrefix(aesSubnet);

  const groups: string[] = [];
  const groupIndex = new Map<string, number>();
  doc.groups.forEach((g, i) => {
    if (!DNS_LABEL.test(g)) {
      throw new NetmapError(`groups[${i}]`, `${quote(g)} is not a valid group name; use ${LABEL_RULE}`);
    }
    const earlier = groupIndex.get(g.toLowerCase());
    if (earlier !== undefined) {
      throw new NetmapError(`groups[${i}]`, `"${g}" is listed twice (also groups[${earlier}]); keep one`);
    }
    groupIndex.set(g.toLowerCase(), i);
    groups.push(g);
  });

  if (doc.nodes.length > MAX_NETMAP_NODES) {
    throw new NetmapError(
      "nodes",
      `${doc.nodes.length} nodes, but one node's peers must fit one interface (${MAX_PEERS}); at most ${MAX_NETMAP_NODES} nodes`,
    );
  }

  const names = new Map<string, number>();
  const keys = new Map<string, number>();
  const addresses = new Map<number, string>();
  let aesKeySource: { source: NetmapKeySource; at: string } | null = null;
  const nodes: NetmapNode[] = [];

  doc.nodes.forEach((n, i) => {
    const at = `nodes[${i}] (${quote(n.name)})`;
    const entry = (j: number) => `nodes[${j}] (${quote(doc.nodes[j].name)})`;

    checkNodeName(`nodes[${i}].name`, n.name);
    const sameName = names.get(n.name.toLowerCase());
    if (sameName !== undefined) {
      throw new NetmapError(
        `${at}.name`,
        `is also the name of ${entry(sameName)}; names are unique, rename one`,
      );
    }
    names.set(n.name.toLowerCase(), i);

    const publicKey = parseNetmapPublicKey(`${at}.publicKey`, n.publicKey);
    const publicKeyText = encodeBase64(publicKey);
    const sameKey = keys.get(publicKeyText);
    if (sameKey !== undefined) {
      throw new NetmapError(
        `${at}.publicKey`,
        `same key as ${entry(sameKey)}; each node has its own key, check the copy`,
      );
    }
    keys.set(publicKeyText, i);

    const claim = (field: string, ip: number) => {
      const owner = addresses.get(ip);
      if (owner !== undefined) {
        throw new NetmapError(
          field,
          `${formatIpv4Number(ip)} is already used by ${owner}; every wg0 and AES address must be unique ` +
            "(twofold netmap add allocates free ones)",
        );
      }
      addresses.set(ip, `${at}`);
    };

    const wgIp = hostAddress(`${at}.wgIp`, n.wgIp, "100.64.0.2");
    if (!prefixContains(WG_PREFIX, wgIp) || isReservedInPrefix(WG_PREFIX, wgIp)) {
      throw new NetmapError(
        `${at}.wgIp`,
        `${
          formatIpv4Number(wgIp)
        } is outside ${WG_NETWORK} or its network/broadcast address; pick an address in 100.64.0.1-100.127.255.254`,
      );
    }
    if (prefixContains(aesSubnet, wgIp)) {
      throw new NetmapError(
        `${at}.wgIp`,
        `${
          formatIpv4Number(wgIp)
        } is inside aesSubnet ${subnetText}, so it would be routed into aes0; pick a wg0 address outside the AES subnet`,
      );
    }
    claim(`${at}.wgIp`, wgIp);

    let aesIp: number | null = null;
    if (n.aesIp !== undefined) {
      if (n.role !== "peer") {
        throw new NetmapError(
          `${at}.aesIp`,
          `a ${n.role} carries no application traffic, so it has no AES address; remove aesIp or set role "peer"`,
        );
      }
      aesIp = hostAddress(`${at}.aesIp`, n.aesIp, formatIpv4Number(aesSubnet.base + 1));
      if (!prefixContains(aesSubnet, aesIp)) {
        throw new NetmapError(
          `${at}.aesIp`,
          `${formatIpv4Number(aesIp)} is outside aesSubnet ${subnetText}; pick an address inside the subnet`,
        );
      }
      if (isReservedInPrefix(aesSubnet, aesIp)) {
        throw new NetmapError(
          `${at}.aesIp`,
          `${
            formatIpv4Number(aesIp)
          } is the network or broadcast address of ${subnetText}; pick another address`,
        );
      }
      claim(`${at}.aesIp`, aesIp);
    }

    let keySource: NetmapKeySource | null = null;
    if (aesIp === null) {
      if (n.keySource !== undefined) {
        throw new NetmapError(
          `${at}.keySource`,
          "has no aesIp (AES-exempt, hub or broker), so it has no aes0 PSK; remove keySource",
        );
      }
    } else {
      keySource = n.keySource ?? "manual";
      if (aesKeySource === null) aesKeySource = { source: keySource, at };
      else if (aesKeySource.source !== keySource) {
        throw new NetmapError(
          `${at}.keySource`,
          `"${keySource}" differs from ${aesKeySource.at} ("${aesKeySource.source}"); AES nodes all peer with ` +
            "one another, so give them the same keySource",
        );
      }
    }

    const endpoints = n.endpoints.map((text, j) => {
      const endpoint = parseEndpoint(text);
      if (endpoint === null || endpoint.port === 0) {
        throw new NetmapError(
          `${at}.endpoints[${j}]`,
          `${
            quote(text)
          } is not a numeric ip:port or [ipv6]:port with a port from 1 to 65535 (host names are not resolved)`,
        );
      }
      return endpoint;
    });

    const seenGroups = new Set<string>();
    n.groups.forEach((g, j) => {
      if (!groupIndex.has(g.toLowerCase())) {
        throw new NetmapError(
          `${at}.groups[${j}]`,
          `unknown group ${quote(g)}; declare it in the top-level "groups" or fix the spelling` +
            (groups.length ? ` (declared: ${groups.join(", ")})` : ""),
        );
      }
      if (seenGroups.has(g.toLowerCase())) {
        throw new NetmapError(`${at}.groups[${j}]`, `"${g}" is listed twice; keep one`);
      }
      seenGroups.add(g.toLowerCase());
    });

    nodes.push({
      name: n.name,
      publicKey,
      publicKeyText,
      wgIp,
      aesIp,
      role: n.role,
      endpoints,
      keySource,
      groups: [...n.groups],
      persistentKeepalive: n.persistentKeepalive,
    });
  });

  return { version: doc.version, serial: doc.serial, domain, aesSubnet, groups, nodes };
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
