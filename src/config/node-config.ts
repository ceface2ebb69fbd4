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
import { MAX_PEERS } from "../dataplane/shared-state.ts";
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { CliError } from "../operator-error.ts";
import { publicKey as derivePublicKey } from "../crypto/x25519.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { readPskFile } from "./psk-file.ts";
import { type Endpoint, parseEndpoint } from "../uapi/netaddr.ts";
import { type Cidr, formatCidr, formatIp, parseCidr, parseIp } from "../wireguard/allowedips.ts";
import { JsoncSyntaxError, parseJsonc } from "./jsonc.ts";
import { KEY_SOURCES, type KeySource, usesDske, usesSka } from "./key-source.ts";
import {
  CONFIG_FILE_MAX_BYTES,
  FileRuleError,
  KEY_FILE_MAX_BYTES,
  readConfigText,
  readSecretFile,
} from "./secret-file.ts";
import {
  type AdminListen,
  AdminListenError,
  DEFAULT_ADMIN_MAX_CONNECTIONS,
  DEFAULT_ADMIN_MAX_EVENT_STREAMS,
  DEFAULT_ADMIN_SOCKET,
  parseAdminListen,
} from "./admin-listen.ts";
import {
  LockdownListError,
  type LockdownPort,
  normalizeLockdownPorts,
  parseProtoPort,
} from "./lockdown-ports.ts";
import { DSKE_PORT as DSKE_TCP_PORT } from "./ports.ts";
import { DEFAULT_UAPI_DIR } from "../uapi/server.ts";
import { INTERFACE_NAME_RULE, isValidInterfaceName } from "../wireguard/interface-name.ts";
import {
  nodeRosenpassSection,
  peerRosenpassEntry,
  resolveRosenpass,
  type RosenpassConfig,
  RosenpassConfigProblem,
} from "./rosenpass-config.ts";
import { parsePolicyConfig, type PolicyConfig, PolicyConfigError } from "./policy-config.ts";
import { type NetmapSource, netmapSourceSection, resolveNetmapSource } from "../netmap/source-config.ts";
import { NetmapError } from "../netmap/schema.ts";
import { DNS_PORT } from "../dns/server.ts";
import { WG_NETWORK } from "./wg-network.ts";

/** Default state directory (PSRD pools, watermarks, epoch counters). */
export const DEFAULT_STATE_DIR = "/var/lib/twofold";
/** Default name of the outer interface (also its UAPI socket name, `wg show wg0`). */
export const DEFAULT_WG_NAME = "wg0";
/** Default name of the inner interface. */
export const DEFAULT_AES_NAME = "aes0";
/** Default wg0 UDP listen port. */
export const DEFAULT_WG_PORT = 51820;
/** Default aes0 UDP listen port (reached inside wg0). */
export const DEFAULT_AES_PORT = 51830;
/** Default wg0 MTU, as wireguard-go. */
export const DEFAULT_WG_MTU = 1420;
/** Default aes0 subnet. */
export const DEFAULT_AES_SUBNET = "100.127.0.0/16";
/** The network every wg0 address must belong to (RFC 6598 shared address space). */
export { WG_NETWORK };
/** Smallest aes0 MTU accepted: the IPv6 minimum link MTU, so any inner packet fits. */
export const MIN_AES_MTU = 1280;
/**
 * Bytes one aes0 datagram adds inside wg0: the IPv4 header of the wg0-inner packet (wg0 addresses are
 * always IPv4, in 100.64.0.0/10) 20 + UDP 8 + WireGuard data header 16 + Poly1305/GCM tag 16. The
 * physical underlay's family does not change it (wg0.mtu already accounts for that).
 */
export const AES_OVERHEAD = 20 + 8 + 16 + 16;
/** Smallest wg0 MTU accepted: aes0 must keep MIN_AES_MTU. */
export const MIN_WG_MTU = MIN_AES_MTU + AES_OVERHEAD;
/** Largest wg0 MTU accepted (jumbo frames). */
export const MAX_WG_MTU = 9000;
/** Default PSK rotation interval, seconds. */
export const DEFAULT_ROTATION_SECONDS = 120;
/** Largest `keys.manualMaxAgeSeconds` accepted: a year (beyond it, leave the option out). */
export const MAX_MANUAL_AGE_SECONDS = 366 * 86400;
/** Default admin API listen address: the unix socket. */
export const DEFAULT_ADMIN_LISTEN = `unix:${DEFAULT_ADMIN_SOCKET}`;
/** Name of the admin token file inside the state directory (the default `admin.tokenFile`). */
export const ADMIN_TOKEN_FILE = "admin.token";

/** A 32-byte secret that never shows its bytes in strings, JSON or `Deno.inspect`. */
export class SecretKey {
  readonly #bytes: Uint8Array;
  /** Takes ownership of `bytes` (the caller should not keep using them). */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  /** The key bytes; do not log them. */
  bytes(): Uint8Array {
    return this.#bytes;
  }
  /** Overwrites the key with zeros. */
  wipe(): void {
    this.#bytes.fill(0);
  }
  /** Always "[secret]". */
  toString(): string {
    return "[secret]";
  }
  /** Always "[secret]". */
  toJSON(): string {
    return "[secret]";
  }
  /** Keeps the bytes out of console.log and Deno.inspect. */
  [Symbol.for("Deno.customInspect")](): string {
    return "SecretKey([secret])";
  }
}

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
  };
  /** The outer interface (ChaCha20-Poly1305). */
  wg0: {
    /** Interface (and UAPI socket) name; default wg0. */
    name: string;
    listenPort: number;
    address: InterfaceAddress;
    mtu: number;
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
// Schema: shape, types, ranges, defaults. Cross-field rules follow in resolve().

const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const NAME_RULE = "must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen";

const nameField = z.string().regex(DNS_LABEL, { error: NAME_RULE });
const pathField = z.string().min(1, { error: "must not be empty; give a file path" });
const portField = (fallback: number) =>
  z.int()
    .min(1, { error: "must be a UDP port from 1 to 65535" })
    .max(65535, { error: "must be a UDP port from 1 to 65535" })
    .default(fallback);

const nodeSection = z.strictObject({
  name: nameField,
  privateKeyFile: pathField,
  stateDir: pathField.default(DEFAULT_STATE_DIR),
  uapiSocketDir: pathField.default(DEFAULT_UAPI_DIR),
});

const interfaceName = (fallback: string) => z.string().default(fallback);

const wg0Section = z.strictObject({
  name: interfaceName(DEFAULT_WG_NAME),
  listenPort: portField(DEFAULT_WG_PORT),
  address: z.string().optional(),
  mtu: z.int()
    .min(MIN_WG_MTU, {
      error:
        `must be at least ${MIN_WG_MTU}, so that aes0 keeps ${MIN_AES_MTU} (the IPv6 minimum) after its ` +
        `${AES_OVERHEAD}-byte overhead; the default is ${DEFAULT_WG_MTU}`,
    })
    .max(MAX_WG_MTU, { error: `must be at most ${MAX_WG_MTU}; the default is ${DEFAULT_WG_MTU}` })
    .default(DEFAULT_WG_MTU),
});

const aes0Section = z.strictObject({
  name: interfaceName(DEFAULT_AES_NAME),
  listenPort: portField(DEFAULT_AES_PORT),
  subnet: z.string().optional(),
  address: z.string().optional(),
  mtu: z.int().optional(),
});

const keysSection = z.strictObject({
  rotationIntervalSeconds: z.int()
    .min(1, { error: "must be at least 1 second" })
    .max(7 * 86400, { error: "must be at most 604800 seconds (a week)" })
    .default(DEFAULT_ROTATION_SECONDS),
  maxKeyAgeSeconds: z.int().min(1, { error: "must be at least 1 second" }).optional(),
  manualMaxAgeSeconds: z.int()
    .min(1, { error: "must be at least 1 second; leave it out so that manual keys never expire" })
    .max(MAX_MANUAL_AGE_SECONDS, {
      error: `must be at most ${MAX_MANUAL_AGE_SECONDS} seconds (a year); leave it out for no expiry`,
    })
    .optional(),
  dskeThreshold: z.int()
    .min(2, { error: "must be at least 2 (one hub alone would hold the whole key)" })
    .max(255, { error: "must be at most 255" })
    .default(2),
});

const peerEntry = z.strictObject({
  name: nameField,
  publicKey: z.string(),
  wgIp: z.string(),
  aesIp: z.string().optional(),
  endpoint: z.string().optional(),
  role: z.enum(["peer", "hub", "broker"]).default("peer"),
  keySource: z.enum(KEY_SOURCES).default("manual"),
  pskFile: pathField.optional(),
  wgPskFile: pathField.optional(),
  persistentKeepalive: z.int()
    .min(0, { error: "must be 0 (off) to 65535 seconds" })
    .max(65535, { error: "must be 0 (off) to 65535 seconds" })
    .default(0),
  rosenpass: peerRosenpassEntry.optional(),
});

const adminSection = z.strictObject({
  enabled: z.boolean().default(true),
  listen: z.string().min(1, { error: `must not be empty; the default is "${DEFAULT_ADMIN_LISTEN}"` })
    .default(DEFAULT_ADMIN_LISTEN),
  tokenFile: pathField.optional(),
  maxConnections: z.int().min(1, { error: "must be at least 1" }).max(4096, { error: "must be at most 4096" })
    .default(DEFAULT_ADMIN_MAX_CONNECTIONS),
  maxEventStreams: z.int().min(1, { error: "must be at least 1" }).max(1024, {
    error: "must be at most 1024",
  })
    .default(DEFAULT_ADMIN_MAX_EVENT_STREAMS),
});

const lockdownSection = z.strictObject({
  extraPorts: z.array(z.string()).default([]),
});

/** `dns`: the map's DNS stub on the wg0 address (only with a `netmap`). */
const dnsSection = z.strictObject({
  port: z.int()
    .min(1, { error: "must be a port from 1 to 65535" })
    .max(65535, { error: "must be a port from 1 to 65535" })
    .default(DNS_PORT),
});

const nodeConfigFile = z.strictObject({
  node: nodeSection,
  wg0: wg0Section,
  aes0: aes0Section,
  keys: keysSection.prefault({}),
  peers: z.array(peerEntry).default([]),
  admin: adminSection.prefault({}),
  lockdown: lockdownSection.prefault({}),
  rosenpass: nodeRosenpassSection.optional(),
  /** Checked by parsePolicyConfig (config/policy-config.ts), which names its own fields. */
  policies: z.unknown().optional(),
  netmap: netmapSourceSection.optional(),
  dns: dnsSection.prefault({}),
  pskFiles: z.record(nameField, pathField).default({}),
});

type RawConfig = z.output<typeof nodeConfigFile>;

/** Known keys of the object at `path`, for "unknown key" messages. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  const shape = path.length === 0 ? nodeConfigFile.shape : path[0] === "peers" ? peerEntry.shape : ({
    node: nodeSection,
    wg0: wg0Section,
    aes0: aes0Section,
    keys: keysSection,
    admin: adminSection,
    lockdown: lockdownSection,
    rosenpass: nodeRosenpassSection,
    netmap: netmapSourceSection,
    dns: dnsSection,
  } as const)[
    String(path[0]) as "node"
  ]?.shape;
  return shape ? Object.keys(shape) : [];
}

// ---------------------------------------------------------------------------------------------------
// Errors.

/** A problem with one field; turned into a CliError line by parseNodeConfig. */
class FieldProblem extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

/** `["peers", 2, "aesIp"]` → `peers[2].aesIp`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(top level)" : out;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "a whole number" : "a fractional number";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

const EXPECTED: Record<string, string> = {
  string: "a string in double quotes",
  int: "a whole number",
  number: "a number",
  object: "an object { … }",
  array: "an array [ … ]",
  boolean: "true or false",
};

/** Quotes a short operator-supplied value for a message (never used for key material). */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** One schema issue as a field problem. */
function problemFromIssue(issue: z.core.$ZodIssue): FieldProblem {
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0];
      const known = knownKeys(issue.path);
      const meant = known.find((k) => k.toLowerCase() === key.toLowerCase());
      return new FieldProblem(
        formatPath([...issue.path, key]),
        `unknown key; remove it or fix the spelling (allowed here: ${known.join(", ")})` +
          (meant ? `; did you mean "${meant}"?` : ""),
      );
    }
    case "invalid_type": {
      const field = formatPath(issue.path);
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return new FieldProblem(field, `missing; add it (${expected})`);
      const got = describeType(issue.input);
      const fix = typeof issue.input === "string" && (issue.expected === "number" || issue.expected === "int")
        ? "remove the quotes around the number"
        : "see examples/README.md for the format";
      return new FieldProblem(field, `expected ${expected}, got ${got}; ${fix}`);
    }
    case "invalid_value":
      return new FieldProblem(
        formatPath(issue.path),
        `${quote(issue.input)} is not allowed; use one of ${issue.values.map((v) => quote(v)).join(", ")}`,
      );
    default:
      return new FieldProblem(formatPath(issue.path), issue.message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Field parsers.

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `ip` lies inside `prefix`. */
function inside(ip: Uint8Array, prefix: Cidr): boolean {
  if (ip.length !== prefix.addr.length) return false;
  return sameBytes(parseCidr(`${formatIp(ip)}/${prefix.bits}`).addr, prefix.addr);
}

/** Splits `addr[/len]`; the address parsed with parseIp, or a FieldProblem. */
function splitAddress(field: string, text: string, what: string): { ip: Uint8Array; bits: number | null } {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let ip: Uint8Array;
  try {
    ip = parseIp(addrText);
  } catch {
    throw new FieldProblem(field, `${quote(text)} is not an IP address; write ${what}`);
  }
  if (slash < 0) return { ip, bits: null };
  const bitsText = text.slice(slash + 1);
  const max = ip.length * 8;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max) {
    throw new FieldProblem(field, `${quote(text)} has an invalid prefix length; use 0 to ${max}`);
  }
  return { ip, bits: Number(bitsText) };
}

/** A peer's single address (`ip` or `ip/32`, `ip/128`) as a host prefix. */
function parseHostAddress(field: string, text: string): Cidr {
  const { ip, bits } = splitAddress(field, text, "one address such as 100.64.0.2");
  const full = ip.length * 8;
  if (bits !== null && bits !== full) {
    throw new FieldProblem(
      field,
      `${quote(text)} must be a single address; write it without a prefix (/${full})`,
    );
  }
  return { family: ip.length === 4 ? 4 : 6, addr: ip, bits: full };
}

/** An interface name under the kernel's and wg's rules; returns it. */
function checkInterfaceName(field: string, name: string, fallback: string): string {
  if (!isValidInterfaceName(name)) {
    throw new FieldProblem(
      field,
      `${quote(name)} is not a usable interface name (${INTERFACE_NAME_RULE}); the default is "${fallback}"`,
    );
  }
  return name;
}

function interfaceAddress(ip: Uint8Array, prefixLength: number): InterfaceAddress {
  return { family: ip.length === 4 ? 4 : 6, ip, prefixLength, text: `${formatIp(ip)}/${prefixLength}` };
}

function parsePublicKey(field: string, text: string): Uint8Array {
  let key: Uint8Array | null = null;
  try {
    key = decodeBase64(text.trim());
  } catch {
    key = null;
  }
  if (key === null || key.length !== 32) {
    throw new FieldProblem(
      field,
      "is not a base64 WireGuard public key (32 bytes, 44 characters); print it on that node with `twofold pubkey < node.key`",
    );
  }
  return key;
}

/**
 * Reads the static private key (one base64 line) through the secret-file rules (regular file, no
 * symbolic link, mode 0600 or narrower, small). Never echoes the contents.
 */
function readPrivateKeyFile(field: string, path: string): Uint8Array {
  const make = `create it with \`twofold keygen > ${path} && chmod 600 ${path}\``;
  let text: string;
  try {
    const bytes = readSecretFile(path, {
      label: "private key file",
      maxBytes: KEY_FILE_MAX_BYTES,
      createHint: make,
    });
    text = new TextDecoder().decode(bytes).trim();
    bytes.fill(0);
  } catch (e) {
    if (!(e instanceof FileRuleError)) throw e;
    throw new FieldProblem(field, `${path} ${e.problem}; ${e.fix}`);
  }
  let key: Uint8Array | null;
  try {
    key = /^[A-Za-z0-9+/]{43}=$/.test(text) ? decodeBase64(text) : null;
  } catch {
    key = null;
  }
  if (key === null || key.length !== 32 || key.every((b) => b === 0)) {
    key?.fill(0);
    throw new FieldProblem(
      field,
      `${path} does not hold one base64 32-byte private key (44 characters); ${make}`,
    );
  }
  return key;
}

// ---------------------------------------------------------------------------------------------------
// Cross-field resolution.

function resolve(raw: RawConfig, opts: ParseNodeConfigOptions): NodeConfig {
  const mapped = resolveMapSection(raw, opts);
  if (mapped) return mapped;
  if (raw.wg0.address === undefined) {
    throw new FieldProblem(
      "wg0.address",
      'missing; give this node\'s wg0 address (e.g. "100.64.0.1/10") or a "netmap" section it comes from',
    );
  }
  if (raw.aes0.address === undefined) {
    throw new FieldProblem(
      "aes0.address",
      'missing; give this node\'s aes0 address (e.g. "100.127.0.1/16") or a "netmap" section it comes from',
    );
  }
  if (Object.keys(raw.pskFiles).length > 0) {
    throw new FieldProblem("pskFiles", 'applies to peers from a "netmap" only; give inline peers a pskFile');
  }
  return resolveInline(raw as InlineRawConfig, opts);
}

/**
 * Stand-ins for the addresses a map-driven node takes from its map entry: they let the rest of the
 * config resolve (ports, MTU, keys, admin) by the inline rules; node/netmap-config.ts replaces them.
 */
const MAP_PLACEHOLDER = { wg0Address: "100.64.0.1/10", aes0Address: "100.127.0.1/16" } as const;

/** A config with a `netmap` section (null without one): addresses and peers come from the map. */
function resolveMapSection(raw: RawConfig, opts: ParseNodeConfigOptions): NodeConfig | null {
  if (raw.netmap === undefined) return null;
  const fromMap: [string, unknown][] = [
    ["wg0.address", raw.wg0.address],
    ["aes0.address", raw.aes0.address],
    ["aes0.subnet", raw.aes0.subnet],
  ];
  for (const [field, value] of fromMap) {
    if (value !== undefined) {
      throw new FieldProblem(
        field,
        "comes from the network map (this node's entry) when netmap is set; remove it",
      );
    }
  }
  if (raw.peers.length > 0) {
    throw new FieldProblem(
      "peers",
      "come from the network map when netmap is set; remove them (or remove netmap)",
    );
  }
  let source: NetmapSource;
  try {
    source = resolveNetmapSource(raw.netmap, opts.baseDir);
  } catch (e) {
    if (e instanceof NetmapError) throw new FieldProblem(e.field, e.problem);
    throw e;
  }
  const pskFiles: Record<string, string> = {};
  for (const [name, file] of Object.entries(raw.pskFiles)) {
    const path = resolvePath(opts.baseDir, file);
    if (opts.checkFiles) {
      try {
        readPskFile(path).fill(0);
      } catch (e) {
        throw new FieldProblem(`pskFiles.${name}`, (e as Error).message);
      }
    }
    pskFiles[name.toLowerCase()] = path;
  }
  const inline = resolveInline({
    ...raw,
    wg0: { ...raw.wg0, address: MAP_PLACEHOLDER.wg0Address },
    aes0: { ...raw.aes0, address: MAP_PLACEHOLDER.aes0Address },
  }, opts);
  return { ...inline, netmap: source, pskFiles };
}

type InlineRawConfig = RawConfig & {
  wg0: RawConfig["wg0"] & { address: string };
  aes0: RawConfig["aes0"] & { address: string };
};

function resolveInline(raw: InlineRawConfig, opts: ParseNodeConfigOptions): NodeConfig {
  const wgNetwork = parseCidr(WG_NETWORK);

  // wg0
  const wgAddr = splitAddress("wg0.address", raw.wg0.address, "an address such as 100.64.0.1/10");
  if (wgAddr.bits === null) {
    // No silent default: the prefix decides which peers are on-link, so the operator states it.
    throw new FieldProblem(
      "wg0.address",
      `${quote(raw.wg0.address)} needs a prefix length; write ${formatIp(wgAddr.ip)}/${wgNetwork.bits}`,
    );
  }
  const wgBits = wgAddr.bits;
  if (!inside(wgAddr.ip, wgNetwork)) {
    throw new FieldProblem(
      "wg0.address",
      `${quote(raw.wg0.address)} is outside ${WG_NETWORK}; pick an address in 100.64.0.0-100.127.255.255`,
    );
  }
  if (wgBits < wgNetwork.bits) {
    throw new FieldProblem(
      "wg0.address",
      `prefix /${wgBits} is wider than ${WG_NETWORK}; use /${wgNetwork.bits}`,
    );
  }
  const wg0 = {
    name: checkInterfaceName("wg0.name", raw.wg0.name, DEFAULT_WG_NAME),
    listenPort: raw.wg0.listenPort,
    address: interfaceAddress(wgAddr.ip, wgBits),
    mtu: raw.wg0.mtu,
  };

  // aes0
  if (raw.aes0.listenPort === raw.wg0.listenPort) {
    throw new FieldProblem(
      "aes0.listenPort",
      `${raw.aes0.listenPort} equals wg0.listenPort; give the two interfaces different ports`,
    );
  }
  const subnetRaw = raw.aes0.subnet ?? DEFAULT_AES_SUBNET;
  const subnetParts = splitAddress("aes0.subnet", subnetRaw, "a subnet such as 100.127.0.0/16");
  if (subnetParts.bits === null) {
    throw new FieldProblem(
      "aes0.subnet",
      `${quote(subnetRaw)} needs a prefix length, e.g. 100.127.0.0/16`,
    );
  }
  const subnet = parseCidr(subnetRaw);
  if (!sameBytes(subnet.addr, subnetParts.ip)) {
    throw new FieldProblem(
      "aes0.subnet",
      `${quote(subnetRaw)} has host bits set; use ${formatCidr(subnet)}`,
    );
  }
  const subnetText = formatCidr(subnet);
  const aesAddr = splitAddress("aes0.address", raw.aes0.address, "an address such as 100.127.0.1/16");
  if (!inside(aesAddr.ip, subnet)) {
    throw new FieldProblem(
      "aes0.address",
      `${formatIp(aesAddr.ip)} is outside aes0.subnet ${subnetText}; pick an address inside the subnet`,
    );
  }
  if (aesAddr.bits !== null && aesAddr.bits !== subnet.bits) {
    throw new FieldProblem(
      "aes0.address",
      `prefix /${aesAddr.bits} differs from aes0.subnet ${subnetText}; write /${subnet.bits} or omit it`,
    );
  }
  if (inside(wgAddr.ip, subnet)) {
    throw new FieldProblem(
      "wg0.address",
      `${formatIp(wgAddr.ip)} is inside aes0.subnet ${subnetText}, so it would be routed into aes0; ` +
        "pick a wg0 address outside the AES subnet",
    );
  }
  const overhead = AES_OVERHEAD;
  const derivedMtu = wg0.mtu - overhead;
  let aesMtu = derivedMtu;
  if (raw.aes0.mtu !== undefined) {
    if (raw.aes0.mtu > derivedMtu) {
      throw new FieldProblem(
        "aes0.mtu",
        `${raw.aes0.mtu} does not fit inside wg0 (wg0.mtu ${wg0.mtu} - ${overhead} = ${derivedMtu}); ` +
          `set it to ${derivedMtu} or less, or omit it to derive it`,
      );
    }
    if (raw.aes0.mtu < MIN_AES_MTU) {
      throw new FieldProblem(
        "aes0.mtu",
        `${raw.aes0.mtu} is below ${MIN_AES_MTU} (IPv6 minimum); raise it or omit it to derive ${derivedMtu}`,
      );
    }
    aesMtu = raw.aes0.mtu;
  }
  const aesName = checkInterfaceName("aes0.name", raw.aes0.name, DEFAULT_AES_NAME);
  if (aesName === wg0.name) {
    throw new FieldProblem(
      "aes0.name",
      `"${aesName}" is also wg0.name; give the two interfaces different names`,
    );
  }
  const aes0 = {
    name: aesName,
    listenPort: raw.aes0.listenPort,
    subnet,
    address: interfaceAddress(aesAddr.ip, subnet.bits),
    mtu: aesMtu,
    mtuDerived: raw.aes0.mtu === undefined,
  };

  // keys
  const rotation = raw.keys.rotationIntervalSeconds;
  const maxAge = raw.keys.maxKeyAgeSeconds ?? 3 * rotation;
  if (maxAge <= rotation) {
    throw new FieldProblem(
      "keys.maxKeyAgeSeconds",
      `${maxAge} is not longer than keys.rotationIntervalSeconds (${rotation}), so every key would expire ` +
        `before its successor arrives; use at least ${rotation + 1} (default ${3 * rotation})`,
    );
  }

  // node
  const privateKeyFile = resolvePath(opts.baseDir, raw.node.privateKeyFile);
  let privateKey: SecretKey | null = null;
  let ownPublicKey: Uint8Array | null = null;
  if (opts.checkFiles) {
    privateKey = new SecretKey(readPrivateKeyFile("node.privateKeyFile", privateKeyFile));
    ownPublicKey = derivePublicKey(privateKey.bytes());
  }
  const node = {
    name: raw.node.name,
    privateKeyFile,
    stateDir: resolvePath(opts.baseDir, raw.node.stateDir),
    uapiSocketDir: resolvePath(opts.baseDir, raw.node.uapiSocketDir),
    privateKey,
    publicKey: ownPublicKey,
  };

  try {
    const peers = resolvePeers(raw, opts, { wgAddr: wgAddr.ip, aesAddr: aesAddr.ip, subnet, ownPublicKey });
    if (peers.length > MAX_PEERS) {
      throw new FieldProblem(
        "peers",
        `${peers.length} peers, but an interface holds at most ${MAX_PEERS}; split them over more nodes`,
      );
    }
    const k = raw.keys.dskeThreshold;
    const hubs = peers.filter((p) => p.role === "hub").length;
    if (peers.some((p) => usesDske(p.keySource)) && hubs < k) {
      throw new FieldProblem(
        "keys.dskeThreshold",
        `k = ${k} but only ${hubs} hub(s) are configured (peers with role "hub"); DSKE needs at least k hubs: ` +
          `add hubs or lower keys.dskeThreshold`,
      );
    }
    const brokers = peers.filter((p) => p.role === "broker").length;
    if (brokers > 1) {
      throw new FieldProblem("peers", `${brokers} peers have role "broker"; a node uses one SKA broker`);
    }
    if (peers.some((p) => usesSka(p.keySource)) && brokers === 0) {
      throw new FieldProblem(
        "peers",
        'a peer has keySource "ska" or "ska+dske" but no peer has role "broker"; add the SKA broker as a peer',
      );
    }
    const keys = {
      rotationIntervalSeconds: rotation,
      maxKeyAgeSeconds: maxAge,
      manualMaxAgeSeconds: raw.keys.manualMaxAgeSeconds ?? null,
      dskeThreshold: k,
    };
    const admin = resolveAdmin(raw, opts, node.stateDir);
    const lockdown = { extraPorts: resolveExtraPorts(raw.lockdown.extraPorts, aes0.listenPort) };
    const rosenpass = resolveRosenpassFields(raw, opts, wg0.listenPort, aes0.listenPort);
    const policies = resolvePolicies(raw.policies, [node.name, ...peers.map((p) => p.name)]);
    return {
      node,
      wg0,
      aes0,
      keys,
      peers,
      admin,
      lockdown,
      rosenpass,
      policies,
      netmap: null,
      dns: raw.dns,
      pskFiles: {},
    };
  } catch (e) {
    privateKey?.wipe();
    throw e;
  }
}

/** `rosenpass` and every `peers[i].rosenpass` (rules in rosenpass-config.ts). */
function resolveRosenpassFields(
  raw: RawConfig,
  opts: ParseNodeConfigOptions,
  wgPort: number,
  aesPort: number,
): RosenpassConfig {
  try {
    return resolveRosenpass(
      raw.rosenpass,
      raw.peers.map((p, i) => ({
        at: `peers[${i}]`,
        name: p.name,
        rosenpass: p.rosenpass,
        hasWgPskFile: p.wgPskFile !== undefined,
      })),
      {
        baseDir: opts.baseDir,
        checkFiles: opts.checkFiles,
        takenPorts: { "wg0.listenPort": wgPort, "aes0.listenPort": aesPort },
      },
    );
  } catch (e) {
    if (e instanceof RosenpassConfigProblem) throw new FieldProblem(e.field, e.problem);
    throw e;
  }
}

/** `admin`: the listen address (loopback or a unix socket only) and the token file. */
function resolveAdmin(raw: RawConfig, opts: ParseNodeConfigOptions, stateDir: string): NodeConfig["admin"] {
  const text = raw.admin.listen.trim();
  // A unix socket path may be relative to the config file, like every other path.
  const unixPath = text.startsWith("unix:")
    ? text.slice(5)
    : text.startsWith("/") || text.startsWith(".")
    ? text
    : null;
  let listen: AdminListen;
  try {
    listen = parseAdminListen(unixPath ? `unix:${resolvePath(opts.baseDir, unixPath)}` : text);
  } catch (e) {
    if (!(e instanceof AdminListenError)) throw e;
    throw new FieldProblem("admin.listen", e.message);
  }
  const tokenFile = raw.admin.tokenFile !== undefined
    ? resolvePath(opts.baseDir, raw.admin.tokenFile)
    : `${stateDir}/${ADMIN_TOKEN_FILE}`;
  const { maxConnections, maxEventStreams } = raw.admin;
  if (maxEventStreams > maxConnections) {
    throw new FieldProblem(
      "admin.maxEventStreams",
      `${maxEventStreams} is more than admin.maxConnections (${maxConnections}); each stream holds a connection`,
    );
  }
  return { enabled: raw.admin.enabled, listen, tokenFile, maxConnections, maxEventStreams };
}

/** `policies`: absent → null (all-to-all); a PolicyConfigError becomes this file's one-line field problem. */
function resolvePolicies(raw: unknown, knownPeers: string[]): PolicyConfig | null {
  if (raw === undefined) return null;
  try {
    return parsePolicyConfig(raw, knownPeers);
  } catch (e) {
    if (e instanceof PolicyConfigError) {
      throw new FieldProblem(e.field, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
}

/**
 * `lockdown.extraPorts`: `PROTO/PORT` or `PROTO/FIRST-LAST` entries, under the admin API's rules (no
 * overlaps, at most 256, not just a port the lockdown always allows).
 */
function resolveExtraPorts(entries: string[], aesPort: number): LockdownPort[] {
  const ports = entries.map((text, i) => {
    try {
      return parseProtoPort(text);
    } catch (e) {
      throw new FieldProblem(`lockdown.extraPorts[${i}]`, (e as Error).message);
    }
  });
  try {
    return normalizeLockdownPorts(ports, {
      label: (i) => `extraPorts[${i}]`,
      alwaysAllowed: { aesUdpPort: aesPort, dskeTcpPort: DSKE_TCP_PORT },
    });
  } catch (e) {
    if (!(e instanceof LockdownListError)) throw e;
    throw new FieldProblem(
      e.index === null ? "lockdown.extraPorts" : `lockdown.extraPorts[${e.index}]`,
      e.problem,
    );
  }
}

interface NodeIdentity {
  wgAddr: Uint8Array;
  aesAddr: Uint8Array;
  subnet: Cidr;
  ownPublicKey: Uint8Array | null;
}

function resolvePeers(raw: RawConfig, opts: ParseNodeConfigOptions, self: NodeIdentity): PeerConfig[] {
  const wgNetwork = parseCidr(WG_NETWORK);
  const subnetText = formatCidr(self.subnet);
  const ipOwners = new Map<string, string>([
    [formatIp(self.wgAddr), "this node (wg0.address)"],
    [formatIp(self.aesAddr), "this node (aes0.address)"],
  ]);
  const names = new Map<string, number>([[raw.node.name.toLowerCase(), -1]]);
  const keys = new Map<string, number>();
  if (self.ownPublicKey) keys.set(encodeBase64(self.ownPublicKey), -1);
  const peers: PeerConfig[] = [];

  const claim = (field: string, ip: Uint8Array, owner: string) => {
    const text = formatIp(ip);
    const previous = ipOwners.get(text);
    if (previous !== undefined) {
      throw new FieldProblem(
        field,
        `${text} is already used by ${previous}; every wg0 and AES address must be unique`,
      );
    }
    ipOwners.set(text, owner);
  };

  try {
    raw.peers.forEach((p, i) => {
      const at = `peers[${i}]`;

      const earlier = names.get(p.name.toLowerCase());
      if (earlier === -1) {
        throw new FieldProblem(
          `${at}.name`,
          `"${p.name}" is this node's own name (node.name); remove this entry`,
        );
      }
      if (earlier !== undefined) {
        throw new FieldProblem(
          `${at}.name`,
          `"${p.name}" is listed twice (also peers[${earlier}]); merge the entries or rename one`,
        );
      }
      names.set(p.name.toLowerCase(), i);

      const publicKey = parsePublicKey(`${at}.publicKey`, p.publicKey);
      const keyText = encodeBase64(publicKey);
      const keyOwner = keys.get(keyText);
      if (keyOwner === -1) {
        throw new FieldProblem(
          `${at}.publicKey`,
          "is this node's own public key (from node.privateKeyFile); remove this entry or fix the key",
        );
      }
      if (keyOwner !== undefined) {
        throw new FieldProblem(
          `${at}.publicKey`,
          `same key as peers[${keyOwner}] ("${
            raw.peers[keyOwner].name
          }"); each peer has its own key, check the copy`,
        );
      }
      keys.set(keyText, i);

      const wgIp = parseHostAddress(`${at}.wgIp`, p.wgIp);
      if (!inside(wgIp.addr, wgNetwork)) {
        throw new FieldProblem(
          `${at}.wgIp`,
          `${formatIp(wgIp.addr)} is outside ${WG_NETWORK}; pick an address in 100.64.0.0-100.127.255.255`,
        );
      }
      if (inside(wgIp.addr, self.subnet)) {
        throw new FieldProblem(
          `${at}.wgIp`,
          `${formatIp(wgIp.addr)} is inside aes0.subnet ${subnetText}, so it would be routed into aes0; ` +
            "pick a wg0 address outside the AES subnet",
        );
      }
      claim(`${at}.wgIp`, wgIp.addr, `${at}.wgIp ("${p.name}")`);

      let aesIp: Cidr | null = null;
      if (p.aesIp !== undefined) {
        if (p.role === "hub") {
          throw new FieldProblem(
            `${at}.aesIp`,
            'hubs carry no application traffic, so a hub has no AES address; remove aesIp or set role "peer"',
          );
        }
        if (p.role === "broker") {
          throw new FieldProblem(
            `${at}.aesIp`,
            "the SKA broker carries no application traffic, so it has no AES address; remove aesIp",
          );
        }
        aesIp = parseHostAddress(`${at}.aesIp`, p.aesIp);
        if (!inside(aesIp.addr, self.subnet)) {
          throw new FieldProblem(
            `${at}.aesIp`,
            `${formatIp(aesIp.addr)} is outside aes0.subnet ${subnetText}; pick an address inside the subnet`,
          );
        }
        claim(`${at}.aesIp`, aesIp.addr, `${at}.aesIp ("${p.name}")`);
      }

      let endpoint: Endpoint | null = null;
      if (p.endpoint !== undefined) {
        endpoint = parseEndpoint(p.endpoint);
        if (endpoint === null || endpoint.port === 0) {
          throw new FieldProblem(
            `${at}.endpoint`,
            `${quote(p.endpoint)} is not a numeric ip:port or [ipv6]:port with a port from 1 to 65535 ` +
              "(host names are not resolved)",
          );
        }
      }

      let pskFile: string | null = null;
      let psk: SecretKey | null = null;
      if (p.pskFile !== undefined) {
        if (aesIp === null) {
          throw new FieldProblem(
            `${at}.pskFile`,
            `"${p.name}" has no aesIp (AES-exempt), so it has no aes0 PSK; remove pskFile or add aesIp`,
          );
        }
        if (p.keySource !== "manual") {
          throw new FieldProblem(
            `${at}.pskFile`,
            `keySource "${p.keySource}" supplies the PSK itself; remove pskFile or set keySource "manual"`,
          );
        }
        pskFile = resolvePath(opts.baseDir, p.pskFile);
        if (opts.checkFiles) {
          try {
            psk = new SecretKey(readPskFile(pskFile));
          } catch (e) {
            throw new FieldProblem(`${at}.pskFile`, (e as Error).message);
          }
        }
      }

      let wgPskFile: string | null = null;
      if (p.wgPskFile !== undefined) {
        wgPskFile = resolvePath(opts.baseDir, p.wgPskFile);
        if (opts.checkFiles) {
          try {
            readPskFile(wgPskFile).fill(0);
          } catch (e) {
            throw new FieldProblem(`${at}.wgPskFile`, (e as Error).message);
          }
        }
      } else if (p.role === "broker") {
        throw new FieldProblem(
          `${at}.wgPskFile`,
          'missing: the SKA broker\'s wg0 link needs a pre-shared key; run "twofold broker enroll" and set wgPskFile',
        );
      }

      peers.push({
        name: p.name,
        publicKey,
        wgIp,
        aesIp,
        endpoint,
        role: p.role,
        keySource: p.keySource,
        pskFile,
        psk,
        persistentKeepalive: p.persistentKeepalive,
        wgPskFile,
      });
    });
  } catch (e) {
    for (const peer of peers) peer.psk?.wipe();
    throw e;
  }
  return peers;
}

// ---------------------------------------------------------------------------------------------------
// Entry points.

function configError(opts: ParseNodeConfigOptions, detail: string): CliError {
  const where = opts.sourceName ? `config ${opts.sourceName}` : "config";
  return new CliError(`${where}: ${detail.replace(/\s+/g, " ")}`, 2);
}

/**
 * Parses and validates node configuration text (JSONC). Relative paths resolve against `opts.baseDir`;
 * with `opts.checkFiles` the private key and PSK files are read and checked too. Throws a CliError
 * (exit code 2) with one line naming the field and the fix.
 */
export function parseNodeConfig(text: string, opts: ParseNodeConfigOptions): NodeConfig {
  let data: unknown;
  try {
    data = parseJsonc(text);
  } catch (e) {
    if (e instanceof JsoncSyntaxError) {
      const fix = e.problem.includes(";") ? "" : "; fix the JSON syntax there";
      throw configError(opts, `${e.message}${fix}`);
    }
    throw e;
  }
  const parsed = nodeConfigFile.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    // A misspelled key also makes its correct spelling "missing": name the unknown key, the real mistake.
    const issues = parsed.error.issues;
    const problem = problemFromIssue(issues.find((i) => i.code === "unrecognized_keys") ?? issues[0]);
    throw configError(opts, problem.message);
  }
  try {
    return resolve(parsed.data, opts);
  } catch (e) {
    if (e instanceof FieldProblem) throw configError(opts, e.message);
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

/**
 * Reads a config file for {@link loadNodeConfig} and the hub config; returns its text and the directory
 * relative paths in it resolve against. A file the config-file rules refuse (missing, unreadable, not a
 * regular file, over {@link CONFIG_FILE_MAX_BYTES}) is one CliError line (exit 2).
 */
// deno-lint-ignore require-await
export async function readConfigFile(
  path: string,
  kind: "node" | "hub" | "broker",
): Promise<{ text: string; baseDir: string }> {
  const absolute = resolvePath(path);
  try {
    const text = readConfigText(absolute, { label: "config", maxBytes: CONFIG_FILE_MAX_BYTES });
    return { text, baseDir: resolvePath(absolute, "..") };
  } catch (e) {
    if (!(e instanceof FileRuleError)) throw e;
    const fix = e.broken === "missing" || e.broken === "not-regular" || e.broken === "too-large"
      ? `pass the path of a ${kind} config with --config`
      : e.fix;
    throw new CliError(`config ${path}: the file ${e.problem}; ${fix}`, 2);
  }
}
