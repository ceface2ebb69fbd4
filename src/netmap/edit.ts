/**
 * Edits of the map document behind `twofold netmap init|add|remove`: each takes a document and returns
 * a new one with the serial incremented, validated as a whole (a result that would not load is never
 * returned). Duplicates are refused with one line naming the entry that already has the name, key or
 * address. Pure: reading and writing the file is the CLI's job.
 * @module
 */
import { encodeBase64 } from "../encoding.ts";
import { formatEndpoint, parseEndpoint } from "../uapi/netaddr.ts";
import { nextAesIp, nextWgIp } from "./allocate.ts";
import { formatIpv4Number, formatPrefix } from "./ipv4.ts";
import {
  checkNodeName,
  type Netmap,
  NETMAP_FORMAT_VERSION,
  type NetmapDocument,
  NetmapError,
  type NetmapKeySource,
  type NetmapNodeEntry,
  normalizeDomain,
  parseAesSubnet,
  parseNetmapPublicKey,
  resolveNetmap,
} from "./schema.ts";

/** A new, empty map at serial 1. */
export function initDocument(domain: string, aesSubnet: string): NetmapDocument {
  const doc: NetmapDocument = {
    version: NETMAP_FORMAT_VERSION,
    serial: 1,
    domain: normalizeDomain("--domain", domain),
    aesSubnet: formatPrefix(parseAesSubnet("--aes-subnet", aesSubnet)),
    groups: [],
    nodes: [],
  };
  resolveNetmap(doc);
  return doc;
}

/** What `twofold netmap add` adds. */
export interface AddNodeRequest {
  /** The node's name (a DNS label). */
  name: string;
  /** Its base64 public key. */
  publicKey: string;
  /** `peer` (default), `hub` or `broker`. */
  role?: "peer" | "hub" | "broker";
  /** AES-exempt: no AES IP (implied for hubs and brokers). */
  exempt?: boolean;
  /** Groups; ones the map does not declare yet are declared. */
  groups?: string[];
  /** Underlay endpoints (numeric ip:port). */
  endpoints?: string[];
  /** aes0 PSK source; default: the one the map's AES nodes use, else manual. */
  keySource?: NetmapKeySource;
  /** Persistent keepalive, seconds. */
  persistentKeepalive?: number;
  /** Networks it routes for others (site-to-site); checked with the whole map. */
  routes?: string[];
}

/** The result of an edit: the new document and the resolved map. */
export interface EditResult {
  /** The new document (serial incremented). */
  doc: NetmapDocument;
  /** The same, resolved. */
  map: Netmap;
}

function clone(doc: NetmapDocument): NetmapDocument {
  return structuredClone(doc);
}

/** Adds a node with the next free wg0 IP and (unless exempt) the next free AES IP. */
export function addNode(doc: NetmapDocument, req: AddNodeRequest): EditResult {
  const current = resolveNetmap(doc);
  checkNodeName("name", req.name);
  const key = encodeBase64(parseNetmapPublicKey("--public-key", req.publicKey));
  const role = req.role ?? "peer";
  const sameName = current.nodes.find((n) => n.name.toLowerCase() === req.name.toLowerCase());
  if (sameName) {
    throw new NetmapError(
      "name",
      `"${req.name}" is already in the map; remove it first or pick another name`,
    );
  }
  const sameKey = current.nodes.find((n) => n.publicKeyText === key);
  if (sameKey) {
    throw new NetmapError(
      "--public-key",
      `is already the key of "${sameKey.name}"; each node has its own key`,
    );
  }
  const endpoints = (req.endpoints ?? []).map((text) => {
    const endpoint = parseEndpoint(text);
    if (endpoint === null || endpoint.port === 0) {
      throw new NetmapError(
        "--endpoint",
        `${JSON.stringify(text)} is not a numeric ip:port or [ipv6]:port with a port from 1 to 65535`,
      );
    }
    return formatEndpoint(endpoint);
  });
  const aes = role === "peer" && !req.exempt;
  if (!aes && req.keySource !== undefined) {
    throw new NetmapError("--key-source", "an AES-exempt node, hub or broker has no aes0 PSK; leave it out");
  }
  const entry: NetmapNodeEntry = {
    name: req.name,
    publicKey: key,
    wgIp: formatIpv4Number(nextWgIp(current)),
    role,
    endpoints,
    groups: [...(req.groups ?? [])],
    persistentKeepalive: req.persistentKeepalive ?? 0,
    routes: [...(req.routes ?? [])],
  };
  if (aes) {
    entry.aesIp = formatIpv4Number(nextAesIp(current));
    entry.keySource = req.keySource ?? current.nodes.find((n) => n.keySource !== null)?.keySource ?? "manual";
  }
  const next = clone(doc);
  const declared = new Set(next.groups.map((g) => g.toLowerCase()));
  for (const g of entry.groups) {
    if (!declared.has(g.toLowerCase())) {
      next.groups.push(g);
      declared.add(g.toLowerCase());
    }
  }
  next.nodes.push(entry);
  next.serial = doc.serial + 1;
  return { doc: next, map: resolveNetmap(next) };
}

/** Removes the node called `name` (case-insensitive). */
export function removeNode(doc: NetmapDocument, name: string): EditResult {
  const index = doc.nodes.findIndex((n) => n.name.toLowerCase() === name.toLowerCase());
  if (index < 0) {
    throw new NetmapError("name", `"${name}" is not in the map; \`twofold netmap list\` shows the names`);
  }
  const next = clone(doc);
  next.nodes.splice(index, 1);
  next.serial = doc.serial + 1;
  return { doc: next, map: resolveNetmap(next) };
}
