/**
 * The `peers` section: each peer's name, key, wg0 and aes0 addresses, endpoint, role and PSK files,
 * and the rules across peers (unique names, keys and addresses; none of them this node's own).
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { MAX_PEERS } from "../../wireguard/dataplane/shared-state.ts";
import { decodeBase64, encodeBase64 } from "../../encoding.ts";
import { type Endpoint, parseEndpoint } from "../../uapi/netaddr.ts";
import { type Cidr, formatCidr, formatIp, parseCidr } from "../../wireguard/allowedips.ts";
import { KEY_SOURCES } from "../key-source.ts";
import { readPskFile } from "../psk-file.ts";
import { peerRosenpassEntry } from "../rosenpass-config.ts";
import { FieldProblem, quote } from "../zod-errors.ts";
import { inside, nameField, parseHostAddress, pathField } from "./fields.ts";
import { WG_NETWORK } from "../wg-network.ts";
import { SecretKey } from "./secret-key.ts";
import type { ParseNodeConfigOptions, PeerConfig } from "../node-config.ts";

/** Schema of one `peers[]` entry. */
export const peerEntry = z.strictObject({
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
  routes: z.array(z.string()).default([]),
});

/** One peer entry as written (defaults applied). */
export type RawPeer = z.output<typeof peerEntry>;

/** This node as the peer rules see it: its name, addresses, AES subnet and (when read) public key. */
export interface NodeIdentity {
  name: string;
  wgAddr: Uint8Array;
  aesAddr: Uint8Array;
  subnet: Cidr;
  ownPublicKey: Uint8Array | null;
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

/** What the peers seen so far hold: names, keys and addresses, each with its first owner. */
class Registry {
  readonly ipOwners = new Map<string, string>();
  readonly names = new Map<string, number>();
  readonly keys = new Map<string, number>();

  constructor(self: NodeIdentity) {
    this.ipOwners.set(formatIp(self.wgAddr), "this node (wg0.address)");
    this.ipOwners.set(formatIp(self.aesAddr), "this node (aes0.address)");
    this.names.set(self.name.toLowerCase(), -1);
    if (self.ownPublicKey) this.keys.set(encodeBase64(self.ownPublicKey), -1);
  }

  /** Claims `ip` for `owner`, or fails naming who has it. */
  claim(field: string, ip: Uint8Array, owner: string): void {
    const text = formatIp(ip);
    const previous = this.ipOwners.get(text);
    if (previous !== undefined) {
      throw new FieldProblem(
        field,
        `${text} is already used by ${previous}; every wg0 and AES address must be unique`,
      );
    }
    this.ipOwners.set(text, owner);
  }

  /** Claims peer `i`'s name. */
  claimName(at: string, i: number, name: string): void {
    const earlier = this.names.get(name.toLowerCase());
    if (earlier === -1) {
      throw new FieldProblem(
        `${at}.name`,
        `"${name}" is this node's own name (node.name); remove this entry`,
      );
    }
    if (earlier !== undefined) {
      throw new FieldProblem(
        `${at}.name`,
        `"${name}" is listed twice (also peers[${earlier}]); merge the entries or rename one`,
      );
    }
    this.names.set(name.toLowerCase(), i);
  }

  /** Parses and claims peer `i`'s public key. */
  claimKey(at: string, i: number, text: string, all: readonly RawPeer[]): Uint8Array {
    const publicKey = parsePublicKey(`${at}.publicKey`, text);
    const keyText = encodeBase64(publicKey);
    const keyOwner = this.keys.get(keyText);
    if (keyOwner === -1) {
      throw new FieldProblem(
        `${at}.publicKey`,
        "is this node's own public key (from node.privateKeyFile); remove this entry or fix the key",
      );
    }
    if (keyOwner !== undefined) {
      throw new FieldProblem(
        `${at}.publicKey`,
        `same key as peers[${keyOwner}] ("${all[keyOwner].name}"); each peer has its own key, check the copy`,
      );
    }
    this.keys.set(keyText, i);
    return publicKey;
  }
}

/** `peers[i].wgIp`: a host in {@link WG_NETWORK}, outside the AES subnet, unique. */
function resolveWgIp(at: string, p: RawPeer, self: NodeIdentity, seen: Registry): Cidr {
  const wgIp = parseHostAddress(`${at}.wgIp`, p.wgIp);
  if (!inside(wgIp.addr, parseCidr(WG_NETWORK))) {
    throw new FieldProblem(
      `${at}.wgIp`,
      `${formatIp(wgIp.addr)} is outside ${WG_NETWORK}; pick an address in 100.64.0.0-100.127.255.255`,
    );
  }
  if (inside(wgIp.addr, self.subnet)) {
    throw new FieldProblem(
      `${at}.wgIp`,
      `${formatIp(wgIp.addr)} is inside aes0.subnet ${
        formatCidr(self.subnet)
      }, so it would be routed into aes0; ` +
        "pick a wg0 address outside the AES subnet",
    );
  }
  seen.claim(`${at}.wgIp`, wgIp.addr, `${at}.wgIp ("${p.name}")`);
  return wgIp;
}

/** `peers[i].aesIp`: only for role "peer", a host inside the AES subnet, unique; null when absent. */
function resolveAesIp(at: string, p: RawPeer, self: NodeIdentity, seen: Registry): Cidr | null {
  if (p.aesIp === undefined) return null;
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
  const aesIp = parseHostAddress(`${at}.aesIp`, p.aesIp);
  if (!inside(aesIp.addr, self.subnet)) {
    throw new FieldProblem(
      `${at}.aesIp`,
      `${formatIp(aesIp.addr)} is outside aes0.subnet ${
        formatCidr(self.subnet)
      }; pick an address inside the subnet`,
    );
  }
  seen.claim(`${at}.aesIp`, aesIp.addr, `${at}.aesIp ("${p.name}")`);
  return aesIp;
}

/** `peers[i].endpoint`: numeric `ip:port` or `[ipv6]:port`; null when absent. */
function resolveEndpoint(at: string, text: string | undefined): Endpoint | null {
  if (text === undefined) return null;
  const endpoint = parseEndpoint(text);
  if (endpoint === null || endpoint.port === 0) {
    throw new FieldProblem(
      `${at}.endpoint`,
      `${quote(text)} is not a numeric ip:port or [ipv6]:port with a port from 1 to 65535 ` +
        "(host names are not resolved)",
    );
  }
  return endpoint;
}

/** `peers[i].pskFile`: only for a manual AES peer; read when files are checked. */
function resolvePskFile(
  at: string,
  p: RawPeer,
  aesIp: Cidr | null,
  ctx: ParseNodeConfigOptions,
): { pskFile: string | null; psk: SecretKey | null } {
  if (p.pskFile === undefined) return { pskFile: null, psk: null };
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
  const pskFile = resolvePath(ctx.baseDir, p.pskFile);
  if (!ctx.checkFiles) return { pskFile, psk: null };
  try {
    return { pskFile, psk: new SecretKey(readPskFile(pskFile)) };
  } catch (e) {
    throw new FieldProblem(`${at}.pskFile`, (e as Error).message);
  }
}

/** `peers[i].wgPskFile`: required for the SKA broker; checked (and wiped) when files are checked. */
function resolveWgPskFile(at: string, p: RawPeer, ctx: ParseNodeConfigOptions): string | null {
  if (p.wgPskFile === undefined) {
    if (p.role === "broker") {
      throw new FieldProblem(
        `${at}.wgPskFile`,
        'missing: the SKA broker\'s wg0 link needs a pre-shared key; run "twofold broker enroll" and set wgPskFile',
      );
    }
    return null;
  }
  const wgPskFile = resolvePath(ctx.baseDir, p.wgPskFile);
  if (ctx.checkFiles) {
    try {
      readPskFile(wgPskFile).fill(0);
    } catch (e) {
      throw new FieldProblem(`${at}.wgPskFile`, (e as Error).message);
    }
  }
  return wgPskFile;
}

/** One peer entry, in the order its fields' messages appear. */
function resolvePeer(
  i: number,
  all: readonly RawPeer[],
  ctx: ParseNodeConfigOptions,
  self: NodeIdentity,
  seen: Registry,
): PeerConfig {
  const p = all[i];
  const at = `peers[${i}]`;
  seen.claimName(at, i, p.name);
  const publicKey = seen.claimKey(at, i, p.publicKey, all);
  const wgIp = resolveWgIp(at, p, self, seen);
  const aesIp = resolveAesIp(at, p, self, seen);
  const endpoint = resolveEndpoint(at, p.endpoint);
  const { pskFile, psk } = resolvePskFile(at, p, aesIp, ctx);
  let wgPskFile: string | null;
  try {
    wgPskFile = resolveWgPskFile(at, p, ctx);
  } catch (e) {
    psk?.wipe();
    throw e;
  }
  return {
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
  };
}

/** Every peer, in file order, then the peer count against {@link MAX_PEERS}; PSKs wiped on failure. */
export function resolve(
  raw: readonly RawPeer[],
  ctx: ParseNodeConfigOptions,
  self: NodeIdentity,
): PeerConfig[] {
  const seen = new Registry(self);
  const peers: PeerConfig[] = [];
  try {
    for (let i = 0; i < raw.length; i++) peers.push(resolvePeer(i, raw, ctx, self, seen));
    if (peers.length > MAX_PEERS) {
      throw new FieldProblem(
        "peers",
        `${peers.length} peers, but an interface holds at most ${MAX_PEERS}; split them over more nodes`,
      );
    }
  } catch (e) {
    for (const peer of peers) peer.psk?.wipe();
    throw e;
  }
  return peers;
}
