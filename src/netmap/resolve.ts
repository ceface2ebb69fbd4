/**
 * The network map's cross-entry resolution: a schema-checked document (schema.ts) becomes a resolved
 * {@link Netmap} — unique names, keys and addresses, the wg0 network and the aes subnet, one key source
 * for the AES nodes, declared groups, routed networks that stay outside the tunnel ranges and never
 * overlap — or one {@link NetmapError} naming the entry and the fix. Each rule is one named check. Pure.
 * @module
 */
import { DNS_LABEL, quote } from "../config/zod-errors.ts";
import { WG_NETWORK } from "../config/wg-network.ts";
import { MAX_PEERS } from "../wireguard/dataplane/shared-state.ts";
import { encodeBase64 } from "../encoding.ts";
import { type Endpoint, parseEndpoint } from "../uapi/netaddr.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import {
  type Advertisement,
  findOverlap,
  overlapProblem,
  parseRoutedNetwork,
  tunnelOverlap,
} from "../config/routed-network.ts";
import {
  formatIpv4Number,
  formatPrefix,
  type Ipv4Prefix,
  numberToIpv4,
  parseIpv4Number,
  prefixContains,
} from "./ipv4.ts";
import {
  checkNodeName,
  isReservedInPrefix,
  LABEL_RULE,
  MAX_NETMAP_NODES,
  NetmapError,
  normalizeDomain,
  parseAesSubnet,
  parseNetmapPublicKey,
  WG_PREFIX,
} from "./field-rules.ts";
import type { Netmap, NetmapDocument, NetmapKeySource, NetmapNode, NetmapNodeEntry } from "./schema.ts";

function hostAddress(field: string, text: string, example: string): number {
  const plain = text.endsWith("/32") ? text.slice(0, -3) : text;
  const ip = parseIpv4Number(plain);
  if (ip === null) {
    throw new NetmapError(field, `${quote(text)} is not one IPv4 address; write e.g. ${example}`);
  }
  return ip;
}

/** The declared groups: DNS labels, each once. Returns the names and their lower-case index. */
function resolveGroups(doc: NetmapDocument): { groups: string[]; index: Map<string, number> } {
  const groups: string[] = [];
  const index = new Map<string, number>();
  doc.groups.forEach((g, i) => {
    if (!DNS_LABEL.test(g)) {
      throw new NetmapError(`groups[${i}]`, `${quote(g)} is not a valid group name; use ${LABEL_RULE}`);
    }
    const earlier = index.get(g.toLowerCase());
    if (earlier !== undefined) {
      throw new NetmapError(`groups[${i}]`, `"${g}" is listed twice (also groups[${earlier}]); keep one`);
    }
    index.set(g.toLowerCase(), i);
    groups.push(g);
  });
  return { groups, index };
}

/** What the entries seen so far hold, each with its first owner, and the map-wide facts they check against. */
class MapRegistry {
  readonly names = new Map<string, number>();
  readonly keys = new Map<string, number>();
  readonly addresses = new Map<number, string>();
  aesKeySource: { source: NetmapKeySource; at: string } | null = null;
  readonly subnetText: string;

  constructor(
    readonly doc: NetmapDocument,
    readonly aesSubnet: Ipv4Prefix,
    readonly groups: { groups: string[]; index: Map<string, number> },
  ) {
    this.subnetText = formatPrefix(aesSubnet);
  }

  /** `nodes[j] ("name")`. */
  entry(j: number): string {
    return `nodes[${j}] (${quote(this.doc.nodes[j].name)})`;
  }

  /** Claims a wg0 or AES address for entry `at`, or fails naming who has it. */
  claim(field: string, ip: number, at: string): void {
    const owner = this.addresses.get(ip);
    if (owner !== undefined) {
      throw new NetmapError(
        field,
        `${formatIpv4Number(ip)} is already used by ${owner}; every wg0 and AES address must be unique ` +
          "(twofold netmap add allocates free ones)",
      );
    }
    this.addresses.set(ip, at);
  }
}

/** `nodes[i].name` and `.publicKey`: valid and unique. */
function resolveIdentity(
  i: number,
  at: string,
  seen: MapRegistry,
): { publicKey: Uint8Array; publicKeyText: string } {
  const n = seen.doc.nodes[i];
  checkNodeName(`nodes[${i}].name`, n.name);
  const sameName = seen.names.get(n.name.toLowerCase());
  if (sameName !== undefined) {
    throw new NetmapError(
      `${at}.name`,
      `is also the name of ${seen.entry(sameName)}; names are unique, rename one`,
    );
  }
  seen.names.set(n.name.toLowerCase(), i);
  const publicKey = parseNetmapPublicKey(`${at}.publicKey`, n.publicKey);
  const publicKeyText = encodeBase64(publicKey);
  const sameKey = seen.keys.get(publicKeyText);
  if (sameKey !== undefined) {
    throw new NetmapError(
      `${at}.publicKey`,
      `same key as ${seen.entry(sameKey)}; each node has its own key, check the copy`,
    );
  }
  seen.keys.set(publicKeyText, i);
  return { publicKey, publicKeyText };
}

/** `nodes[i].wgIp`: in the wg0 network, not reserved, outside the aes subnet, unique. */
function resolveWgIp(n: NetmapNodeEntry, at: string, seen: MapRegistry): number {
  const wgIp = hostAddress(`${at}.wgIp`, n.wgIp, "100.64.0.2");
  if (!prefixContains(WG_PREFIX, wgIp) || isReservedInPrefix(WG_PREFIX, wgIp)) {
    throw new NetmapError(
      `${at}.wgIp`,
      `${
        formatIpv4Number(wgIp)
      } is outside ${WG_NETWORK} or its network/broadcast address; pick an address in 100.64.0.1-100.127.255.254`,
    );
  }
  if (prefixContains(seen.aesSubnet, wgIp)) {
    throw new NetmapError(
      `${at}.wgIp`,
      `${
        formatIpv4Number(wgIp)
      } is inside aesSubnet ${seen.subnetText}, so it would be routed into aes0; pick a wg0 address outside the AES subnet`,
    );
  }
  seen.claim(`${at}.wgIp`, wgIp, at);
  return wgIp;
}

/** `nodes[i].aesIp`: only for role peer, inside the aes subnet, not reserved, unique; null when absent. */
function resolveAesIp(n: NetmapNodeEntry, at: string, seen: MapRegistry): number | null {
  if (n.aesIp === undefined) return null;
  if (n.role !== "peer") {
    throw new NetmapError(
      `${at}.aesIp`,
      `a ${n.role} carries no application traffic, so it has no AES address; remove aesIp or set role "peer"`,
    );
  }
  const aesIp = hostAddress(`${at}.aesIp`, n.aesIp, formatIpv4Number(seen.aesSubnet.base + 1));
  if (!prefixContains(seen.aesSubnet, aesIp)) {
    throw new NetmapError(
      `${at}.aesIp`,
      `${formatIpv4Number(aesIp)} is outside aesSubnet ${seen.subnetText}; pick an address inside the subnet`,
    );
  }
  if (isReservedInPrefix(seen.aesSubnet, aesIp)) {
    throw new NetmapError(
      `${at}.aesIp`,
      `${
        formatIpv4Number(aesIp)
      } is the network or broadcast address of ${seen.subnetText}; pick another address`,
    );
  }
  seen.claim(`${at}.aesIp`, aesIp, at);
  return aesIp;
}

/** `nodes[i].keySource`: only with an AES IP (default manual), the same for every AES node. */
function resolveKeySource(n: NetmapNodeEntry, at: string, aesIp: number | null, seen: MapRegistry) {
  if (aesIp === null) {
    if (n.keySource !== undefined) {
      throw new NetmapError(
        `${at}.keySource`,
        "has no aesIp (AES-exempt, hub or broker), so it has no aes0 PSK; remove keySource",
      );
    }
    return null;
  }
  const keySource = n.keySource ?? "manual";
  if (seen.aesKeySource === null) seen.aesKeySource = { source: keySource, at };
  else if (seen.aesKeySource.source !== keySource) {
    throw new NetmapError(
      `${at}.keySource`,
      `"${keySource}" differs from ${seen.aesKeySource.at} ("${seen.aesKeySource.source}"); AES nodes all peer with ` +
        "one another, so give them the same keySource",
    );
  }
  return keySource;
}

/** `nodes[i].endpoints`: numeric ip:port each. */
function resolveEndpoints(n: NetmapNodeEntry, at: string): Endpoint[] {
  return n.endpoints.map((text, j) => {
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
}

/** `nodes[i].groups`: declared, each once. */
function checkNodeGroups(n: NetmapNodeEntry, at: string, seen: MapRegistry): void {
  const declared = seen.groups;
  const seenGroups = new Set<string>();
  n.groups.forEach((g, j) => {
    if (!declared.index.has(g.toLowerCase())) {
      throw new NetmapError(
        `${at}.groups[${j}]`,
        `unknown group ${quote(g)}; declare it in the top-level "groups" or fix the spelling` +
          (declared.groups.length ? ` (declared: ${declared.groups.join(", ")})` : ""),
      );
    }
    if (seenGroups.has(g.toLowerCase())) {
      throw new NetmapError(`${at}.groups[${j}]`, `"${g}" is listed twice; keep one`);
    }
    seenGroups.add(g.toLowerCase());
  });
}

/** `nodes[i].routes`: only for role peer, strict CIDRs outside the tunnel ranges. */
function resolveRoutes(n: NetmapNodeEntry, at: string, seen: MapRegistry): Cidr[] {
  if (n.routes.length && n.role !== "peer") {
    throw new NetmapError(
      `${at}.routes`,
      `a ${n.role} carries no application traffic, so it routes no network; remove routes or set role "peer"`,
    );
  }
  const aesCidr: Cidr = { family: 4, addr: numberToIpv4(seen.aesSubnet.base), bits: seen.aesSubnet.bits };
  return n.routes.map((text, j) => {
    const parsed = parseRoutedNetwork(text);
    if ("problem" in parsed) throw new NetmapError(`${at}.routes[${j}]`, `${quote(text)} ${parsed.problem}`);
    const tunnel = tunnelOverlap(parsed, aesCidr);
    if (tunnel !== null) throw new NetmapError(`${at}.routes[${j}]`, tunnel);
    return parsed;
  });
}

/** No two advertised networks overlap, within one node or across nodes; the problem names both. */
function checkRouteOverlaps(doc: NetmapDocument, nodes: readonly NetmapNode[]): void {
  const ads: Advertisement[] = nodes.flatMap((n, i) =>
    n.routes.map((route, j) => ({
      route,
      field: `nodes[${i}] (${quote(doc.nodes[i].name)}).routes[${j}]`,
      owner: quote(n.name),
    }))
  );
  const overlap = findOverlap(ads);
  if (overlap) throw new NetmapError(overlap[0].field, overlapProblem(...overlap));
}

/** One node entry, its rules in the order their messages appear. */
function resolveNode(i: number, seen: MapRegistry): NetmapNode {
  const n = seen.doc.nodes[i];
  const at = seen.entry(i);
  const { publicKey, publicKeyText } = resolveIdentity(i, at, seen);
  const wgIp = resolveWgIp(n, at, seen);
  const aesIp = resolveAesIp(n, at, seen);
  const keySource = resolveKeySource(n, at, aesIp, seen);
  const endpoints = resolveEndpoints(n, at);
  checkNodeGroups(n, at, seen);
  const routes = resolveRoutes(n, at, seen);
  return {
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
    routes,
  };
}

/** Resolves a schema-checked document: every cross-entry rule, one NetmapError on the first problem. */
export function resolveNetmap(doc: NetmapDocument): Netmap {
  const domain = normalizeDomain("domain", doc.domain);
  const aesSubnet = parseAesSubnet("aesSubnet", doc.aesSubnet);
  const groups = resolveGroups(doc);
  if (doc.nodes.length > MAX_NETMAP_NODES) {
    throw new NetmapError(
      "nodes",
      `${doc.nodes.length} nodes, but one node's peers must fit one interface (${MAX_PEERS}); at most ${MAX_NETMAP_NODES} nodes`,
    );
  }
  const seen = new MapRegistry(doc, aesSubnet, groups);
  const nodes = doc.nodes.map((_, i) => resolveNode(i, seen));
  checkRouteOverlaps(doc, nodes);
  return { version: doc.version, serial: doc.serial, domain, aesSubnet, groups: groups.groups, nodes };
}
