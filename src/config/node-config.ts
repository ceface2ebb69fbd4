/**
 * The edge node's configuration (`twofold up --config node.json`): a JSONC file checked against a
 * schema, then cross-checked field against field, then resolved into a NodeConfig with every default
 * applied, the aes0 MTU derived, addresses parsed and key files read.
 *
 * Every problem becomes one CliError line (exit 2) of the form
 * `config <file>: <field path>: <what is wrong>; <how to fix it>`, e.g.
 * `config node.json: peers[1].aesIp: 10.0.0.5 is outside aes0.subnet 100.127.0.0/16; pick an address
 * inside the subnet`. Messages never contain key material.
 *
 * Decisions worth knowing:
 * - aes0 needs at least {@link MIN_AES_MTU} (1280, the IPv6 minimum) so that any inner packet fits;
 *   with the aes0 overhead of 60 that means wg0.mtu ≥ 1340.
 * - The aes0 overhead ({@link AES_OVERHEAD}) is what an aes0 datagram adds inside wg0: the IP header of
 *   the wg0-inner packet + UDP + WireGuard data header + tag. wg0 addresses are IPv4 (100.64.0.0/10), so
 *   it is 60 whatever the physical underlay; it would be 80 only with IPv6 wg0 addressing.
 * - An AES peer with keySource "manual" may omit pskFile: its aes0 gate then stays closed until a
 *   PSK is set through UAPI (`wg set aes0 peer … preshared-key …`).
 * - A peer's wgIp must lie outside aes0.subnet: the default AES subnet 100.127.0.0/16 is inside wg0's
 *   100.64.0.0/10, and the longer aes0 route would capture it.
 * @module
 */
import { z } from "zod";
import type { Endpoint } from "../uapi/netaddr.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import type { KeySource } from "./key-source.ts";
import type { AdminListen } from "./admin-listen.ts";
import type { LockdownPort } from "./lockdown-ports.ts";
import type { RosenpassConfig } from "./rosenpass-config.ts";
import type { PolicyConfig } from "./policy-config.ts";
import type { RouteAccept } from "./route-accept.ts";
import type { NetmapSource } from "../netmap/source-config.ts";
import { configError, parseConfigJsonc, readConfigFile } from "./load.ts";
import {
  FieldProblem,
  firstIssue,
  formatPath,
  notAllowedProblem,
  unknownKeyProblem,
  wrongTypeProblem,
} from "./zod-errors.ts";
import type { SecretKey } from "./node/secret-key.ts";
import type { SiteConfig } from "./node/site.ts";
import * as identity from "./node/identity.ts";
import * as interfaces from "./node/interfaces.ts";
import type { OffloadMode } from "../wireguard/offload/offload-mode.ts";
import * as keys from "./node/keys.ts";
import * as peers from "./node/peers.ts";
import * as admin from "./node/admin.ts";
import * as lockdown from "./node/lockdown.ts";
import * as site from "./node/site.ts";
import * as rosenpass from "./node/rosenpass.ts";
import * as policies from "./node/policies.ts";
import * as netmap from "./node/netmap.ts";
import * as routes from "./node/routes.ts";

export { DEFAULT_STATE_DIR } from "./node/identity.ts";
export {
  AES_OVERHEAD,
  DEFAULT_AES_NAME,
  DEFAULT_AES_PORT,
  DEFAULT_AES_SUBNET,
  DEFAULT_WG_MTU,
  DEFAULT_WG_NAME,
  DEFAULT_WG_PORT,
  MAX_WG_MTU,
  MIN_AES_MTU,
  MIN_WG_MTU,
  WG_NETWORK,
} from "./node/interfaces.ts";
export { DEFAULT_ROTATION_SECONDS, MAX_MANUAL_AGE_SECONDS } from "./node/keys.ts";
export { ADMIN_TOKEN_FILE, DEFAULT_ADMIN_LISTEN } from "./node/admin.ts";
export { SecretKey } from "./node/secret-key.ts";
export type { SiteConfig } from "./node/site.ts";
export { readConfigFile } from "./load.ts";

/** An interface address with its on-link prefix length, e.g. 100.64.0.1/10. */
export interface InterfaceAddress {
  /** Address family. */
  family: 4 | 6;
  /** Address bytes (host bits kept). */
  ip: Uint8Array;
  /** On-link prefix length. */
  prefixLength: number;
  /** Canonical text, `ip/prefixLength`. */
  text: string;
}

/**
 * A peer's role: an ordinary edge node, a DSKE security hub, or the SKA key broker (neither carries
 * application traffic).
 */
export type PeerRole = "peer" | "hub" | "broker";
/** Where a peer's aes0 PSK comes from. */
export type { KeySource } from "./key-source.ts";

/** One resolved peer. */
export interface PeerConfig {
  /** Peer name (a DNS label). */
  name: string;
  /** Curve25519 public key. */
  publicKey: Uint8Array;
  /** The peer's wg0 address as a host prefix (/32). */
  wgIp: Cidr;
  /** The peer's aes0 address as a host prefix, or null for an AES-exempt peer (and every hub). */
  aesIp: Cidr | null;
  /** Underlay endpoint, or null when the peer reaches us first. */
  endpoint: Endpoint | null;
  /** Role. */
  role: PeerRole;
  /** Source of the aes0 PSK. */
  keySource: KeySource;
  /** Absolute path of the static PSK file (manual source), or null. */
  pskFile: string | null;
  /** The PSK read from pskFile when files were checked; null otherwise. */
  psk: SecretKey | null;
  /** Persistent keepalive interval in seconds; 0 = off. */
  persistentKeepalive: number;
  /**
   * Absolute path of the wg0 pre-shared key file (required for the SKA broker and on a broker's
   * peers: it makes the key-request channel quantum-safe); null or absent when wg0 runs without one.
   */
  wgPskFile?: string | null;
  /** Networks the peer advertises (site-to-site routes); absent or empty: none. */
  routes?: Cidr[];
  /**
   * The advertised networks this node accepts (`routes.accept`): steered like the peer's own traffic,
   * on aes0 for an AES peer, on wg0 for an AES-exempt one. Absent or empty: none.
   */
  acceptedRoutes?: Cidr[];
}

/** Whether `p` is an aes0 peer: an edge node with an AES IP (not AES-exempt, not a hub). */
export function isAesPeer(p: PeerConfig): boolean {
  return p.aesIp !== null && p.role === "peer";
}

/** A fully resolved node configuration. */
export interface NodeConfig {
  /** Identity and local paths. */
  node: {
    /** Node name (a DNS label). */
    name: string;
    /** Absolute path of the static private key file (base64, mode 0600). */
    privateKeyFile: string;
    /** Absolute state directory; one running node or hub holds it (a lock file inside). */
    stateDir: string;
    /**
     * Absolute directory of the interfaces' UAPI sockets (`<dir>/<name>.sock`). The stock `wg` tool
     * only looks in /var/run/wireguard, the default.
     */
    uapiSocketDir: string;
    /** The static private key, shared by wg0 and aes0; null when files were not checked. */
    privateKey: SecretKey | null;
    /** Our public key, derived from privateKey; null when files were not checked. */
    publicKey: Uint8Array | null;
    /**
     * The networks this node routes for others (`node.advertise`, site-to-site); null when the config
     * does not say (a map-driven node then takes what its map entry says).
     */
    advertise: Cidr[] | null;
  };
  /** The outer interface (ChaCha20-Poly1305). */
  wg0: {
    /** Interface (and UAPI socket) name; default wg0. */
    name: string;
    listenPort: number;
    address: InterfaceAddress;
    mtu: number;
    /** Whether the data plane may use the kernel's offloads (docs/offload.md). */
    offloads: OffloadMode;
  };
  /** The inner interface (AES-256-GCM), carried inside wg0. */
  aes0: {
    /** Interface (and UAPI socket) name; default aes0. */
    name: string;
    listenPort: number;
    subnet: Cidr;
    address: InterfaceAddress;
    mtu: number;
    /** True when mtu was derived from wg0.mtu rather than given. */
    mtuDerived: boolean;
    /** Whether the data plane may use the kernel's offloads (docs/offload.md). */
    offloads: OffloadMode;
  };
  /** PSK rotation policy. */
  keys: {
    rotationIntervalSeconds: number;
    /** Maximum age of a key a key plane rotates (dske, ska): past it the gate closes. */
    maxKeyAgeSeconds: number;
    /** Maximum age of a manual key (PSK file, UAPI write); null (the default): manual keys never expire. */
    manualMaxAgeSeconds: number | null;
    /** DSKE threshold k: shares from this many hubs reconstruct a key (2 ≤ k ≤ number of hubs). */
    dskeThreshold: number;
  };
  /** Peers, in file order. */
  peers: PeerConfig[];
  /** Routed networks this node takes from its peers (`routes`, config/route-accept.ts). */
  routes: { accept: RouteAccept };
  /** The local admin API. */
  admin: {
    /** Whether `twofold up` serves it. */
    enabled: boolean;
    /** Where it listens: a unix socket (absolute path) or a loopback TCP address. */
    listen: AdminListen;
    /** Absolute path of the bearer-token file (0600; created with a random token when absent). */
    tokenFile: string;
    /** Most admin connections open at once (event streams included). */
    maxConnections: number;
    /** Most event streams open at once (at most maxConnections). */
    maxEventStreams: number;
  };
  /** The wg0 lockdown list. */
  lockdown: {
    /**
     * Extra ports from the config, sorted and without duplicates. They seed the list when
     * `<stateDir>/lockdown.json` does not exist yet; after that the persisted list (changed through
     * the admin API) is the one in force.
     */
    extraPorts: LockdownPort[];
  };
  /** Rosenpass (post-quantum wg0 PSK): the node's keys and port, and every peer's mode (rosenpass-config.ts). */
  rosenpass: RosenpassConfig;
  /** The access policies (`policies`), or null when the section is absent (all-to-all). */
  policies: PolicyConfig | null;
  /**
   * Where the network map comes from, or null when the peers are inline. With a map, `wg0.address`,
   * `aes0.address`/`subnet` and `peers` are placeholders until node/netmap-config.ts fills them from the
   * node's view of the map (before anything starts).
   */
  netmap: NetmapSource | null;
  /** The map's DNS stub (runs only with a map). */
  dns: { port: number };
  /** Manual PSK files for AES peers from the map, by peer name (absolute paths). */
  pskFiles: Record<string, string>;
  /** This node routes for the LAN behind it (`site`), or null when the section is absent. */
  site: SiteConfig | null;
}

/** Options for {@link parseNodeConfig}. */
export interface ParseNodeConfigOptions {
  /** Directory that relative file paths in the config are resolved against. */
  baseDir: string;
  /** Read and check the private key and PSK files (modes, lengths); false for pure syntax checks. */
  checkFiles: boolean;
  /** Name of the config in error messages (`config <sourceName>: …`); default none. */
  sourceName?: string;
}

// ---------------------------------------------------------------------------------------------------
// Schema: each section's shape lives with its resolver in node/<section>.ts.

const nodeConfigFile = z.strictObject({
  node: identity.nodeSection,
  wg0: interfaces.wg0Section,
  aes0: interfaces.aes0Section,
  keys: keys.keysSection.prefault({}),
  peers: z.array(peers.peerEntry).default([]),
  admin: admin.adminSection.prefault({}),
  lockdown: lockdown.lockdownSection.prefault({}),
  site: site.siteSection.optional(),
  rosenpass: rosenpass.rosenpassSection.optional(),
  policies: policies.policiesSlot,
  netmap: netmap.netmapSection.optional(),
  dns: netmap.dnsSection.prefault({}),
  pskFiles: netmap.pskFilesSection.default({}),
  routes: routes.routesSection.prefault({}),
});

type RawConfig = z.output<typeof nodeConfigFile>;

/** Known keys of the object at `path`, for "unknown key" messages. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  const shape = path.length === 0 ? nodeConfigFile.shape : path[0] === "peers" ? peers.peerEntry.shape : ({
    node: identity.nodeSection,
    wg0: interfaces.wg0Section,
    aes0: interfaces.aes0Section,
    keys: keys.keysSection,
    admin: admin.adminSection,
    lockdown: lockdown.lockdownSection,
    site: site.siteSection,
    rosenpass: rosenpass.rosenpassSection,
    netmap: netmap.netmapSection,
    dns: netmap.dnsSection,
    routes: routes.routesSection,
  } as const)[
    String(path[0]) as "node"
  ]?.shape;
  return shape ? Object.keys(shape) : [];
}

/** One schema issue as a field problem. */
function problemFromIssue(issue: z.core.$ZodIssue): FieldProblem {
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0];
      return new FieldProblem(
        formatPath([...issue.path, key]),
        unknownKeyProblem(key, knownKeys(issue.path)),
      );
    }
    case "invalid_type":
      return new FieldProblem(formatPath(issue.path), wrongTypeProblem(issue, "examples/README.md"));
    case "invalid_value":
      return new FieldProblem(formatPath(issue.path), notAllowedProblem(issue.input, issue.values));
    default:
      return new FieldProblem(formatPath(issue.path), issue.message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Composition: the sections in the order their messages appear.

function resolve(raw: RawConfig, ctx: ParseNodeConfigOptions): NodeConfig {
  // A map-driven node's addresses and peers come from the map: stand-ins until it is read.
  const mapSections = netmap.resolve(raw, ctx);
  const { wg0, aes0, wgAddr, aesAddr } = interfaces.resolve(mapSections.interfaces);
  const keyPolicy = keys.resolve(raw.keys);
  const node = identity.resolve(raw.node, ctx);
  try {
    const self = { name: node.name, wgAddr, aesAddr, subnet: aes0.subnet, ownPublicKey: node.publicKey };
    const advertise = routes.resolveAdvertise(raw.node.advertise, aes0.subnet);
    const accept = routes.resolveAccept(raw.routes, mapSections.netmap !== null);
    const peerList = routes.resolvePeerRoutes(
      raw.peers,
      peers.resolve(raw.peers, ctx, self),
      advertise ?? [],
      accept,
      aes0.subnet,
    );
    keys.checkKeyPlanes(peerList, keyPolicy.dskeThreshold);
    return {
      node: { ...node, advertise },
      wg0,
      aes0,
      keys: keyPolicy,
      peers: peerList,
      routes: { accept },
      admin: admin.resolve(raw.admin, ctx, node.stateDir),
      lockdown: lockdown.resolve(raw.lockdown, aes0.listenPort),
      site: site.resolve(raw.site, { wg0: wg0.name, aes0: aes0.name }),
      rosenpass: rosenpass.resolve(raw.rosenpass, raw.peers, ctx, {
        wg0: wg0.listenPort,
        aes0: aes0.listenPort,
      }),
      policies: policies.resolve(
        raw.policies,
        mapSections.netmap === null ? [node.name, ...peerList.map((p) => p.name)] : null,
        advertise,
      ),
      netmap: mapSections.netmap,
      dns: mapSections.dns,
      pskFiles: mapSections.pskFiles,
    };
  } catch (e) {
    node.privateKey?.wipe();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Entry points.

/**
 * Parses and validates node configuration text (JSONC). Relative paths resolve against `opts.baseDir`;
 * with `opts.checkFiles` the private key and PSK files are read and checked too. Throws a CliError
 * (exit code 2) with one line naming the field and the fix.
 */
export function parseNodeConfig(text: string, opts: ParseNodeConfigOptions): NodeConfig {
  const data = parseConfigJsonc(text, opts.sourceName);
  const parsed = nodeConfigFile.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    throw configError(opts.sourceName, problemFromIssue(firstIssue(parsed.error.issues)).message);
  }
  try {
    return resolve(parsed.data, opts);
  } catch (e) {
    if (e instanceof FieldProblem) throw configError(opts.sourceName, e.message);
    throw e;
  }
}

/**
 * Reads, parses and validates the node configuration at `path`, including its key files. Throws a
 * CliError (exit code 2) with one line: `config <path>: <field>: <problem>; <fix>`.
 */
export async function loadNodeConfig(path: string): Promise<NodeConfig> {
  const { text, baseDir } = await readConfigFile(path, "node");
  return parseNodeConfig(text, { baseDir, checkFiles: true, sourceName: path });
}
