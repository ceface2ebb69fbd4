/**
 * The Rosenpass part of the node configuration: the node's `"rosenpass"` section (its static key pair,
 * UDP port on the underlay, profile) and each peer's `"rosenpass"` entry (the peer's public key file, its
 * pinned fingerprint, the mode). Kept apart from node-config.ts, which only embeds these schemas and
 * calls {@link resolveRosenpass}.
 *
 * Modes: `strict` (the wg0 PSK is the Rosenpass output key; a stale key is replaced by random bytes, so
 * wg0 to that peer stops — fail closed), `permissive` (a stale key stays in use), `off` (wg0's PSK is not
 * managed). The default is `strict` when both this node and the peer have a Rosenpass key, `off`
 * otherwise. A peer key that does not match its fingerprint is refused at load (one line, exit 2).
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { fingerprintMatches, profileOfSecretKey, publicKeyProblem } from "../rosenpass/key-files.ts";
import { SKEM_PK_LEN } from "../rosenpass/constants.ts";
import { DEFAULT_PROFILE, PROFILE_NAMES, type ProfileName } from "../rosenpass/profile.ts";
import { FileRuleError, readSecretFile } from "./secret-file.ts";

/** Default Rosenpass UDP port (on the underlay, beside wg0's 51820; outside wg0, so the lockdown list does not apply). */
export const DEFAULT_ROSENPASS_PORT = 51821;
/** Largest Rosenpass secret key file accepted (the V03 key is 13 608 B). */
const SECRET_KEY_MAX_BYTES = 16_384;

/** How a peer's wg0 PSK is managed by Rosenpass. */
export type RosenpassMode = "off" | "permissive" | "strict";
/** Every mode, for schemas and messages. */
export const ROSENPASS_MODES: readonly RosenpassMode[] = ["off", "permissive", "strict"];

/** The node's resolved `"rosenpass"` section. */
export interface RosenpassNodeConfig {
  /** Absolute path of the secret key file (mode 0600). */
  secretKeyFile: string;
  /** Absolute path of the public key file. */
  publicKeyFile: string;
  /** UDP port on the underlay (all addresses). */
  listenPort: number;
  /** Protocol profile; both ends of every peer must use the same one. */
  profile: ProfileName;
  /** The secret key, when files were checked (wipe it once handed to the worker). */
  secretKey: Uint8Array | null;
  /** The public key, when files were checked. */
  publicKey: Uint8Array | null;
}

/** One peer's resolved Rosenpass settings. */
export interface RosenpassPeerSettings {
  /** The mode in force (default applied). */
  mode: RosenpassMode;
  /** Absolute path of the peer's public key file, or null. */
  publicKeyFile: string | null;
  /** The pinned fingerprint, or null. */
  fingerprint: string | null;
  /** The peer's public key, when files were checked and the mode is not off. */
  publicKey: Uint8Array | null;
}

/** Rosenpass for the whole node: its own section and every peer's settings by peer name. */
export interface RosenpassConfig {
  /** The node's section, or null when the node runs no Rosenpass. */
  node: RosenpassNodeConfig | null;
  /** Settings per peer name (every configured peer has an entry; `off` without Rosenpass). */
  peers: Map<string, RosenpassPeerSettings>;
}

/** Schema of the node's `"rosenpass"` section. */
export const nodeRosenpassSection = z.strictObject({
  secretKeyFile: z.string().min(1, { error: "must not be empty; give a file path" }),
  publicKeyFile: z.string().min(1, { error: "must not be empty; give a file path" }),
  listenPort: z.int()
    .min(1, { error: "must be a UDP port from 1 to 65535" })
    .max(65535, { error: "must be a UDP port from 1 to 65535" })
    .default(DEFAULT_ROSENPASS_PORT),
  profile: z.enum(PROFILE_NAMES as [ProfileName, ...ProfileName[]]).default(DEFAULT_PROFILE),
});

/** Schema of a peer's `"rosenpass"` entry. */
export const peerRosenpassEntry = z.strictObject({
  publicKeyFile: z.string().min(1, { error: "must not be empty; give a file path" }).optional(),
  fingerprint: z.string().optional(),
  mode: z.enum(ROSENPASS_MODES as [RosenpassMode, ...RosenpassMode[]]).optional(),
});

/** A problem with one Rosenpass field; node-config turns it into its one-line config error. */
export class RosenpassConfigProblem extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

/** What {@link resolveRosenpass} needs besides the raw sections. */
export interface RosenpassResolveOptions {
  /** Directory relative paths resolve against. */
  baseDir: string;
  /** Read and check the key files. */
  checkFiles: boolean;
  /** Ports already taken on this node (wg0, aes0), by field name. */
  takenPorts: Record<string, number>;
}

type RawNode = z.output<typeof nodeRosenpassSection>;
type RawPeer = z.output<typeof peerRosenpassEntry>;

/**
 * Resolves the node's section and every peer's entry (`peers` in config order, `at` naming each in
 * messages): defaults, paths, the mode rules, and with `checkFiles` the key files — the secret key
 * through the secret-file rules and matching the profile, each peer key its size and fingerprint.
 * Throws {@link RosenpassConfigProblem}.
 */
export function resolveRosenpass(
  raw: RawNode | undefined,
  peers: { at: string; name: string; rosenpass: RawPeer | undefined; hasWgPskFile?: boolean }[],
  opts: RosenpassResolveOptions,
): RosenpassConfig {
  const node = raw ? resolveNode(raw, opts) : null;
  const out = new Map<string, RosenpassPeerSettings>();
  try {
    for (const p of peers) {
      const settings = resolvePeer(p.at, p.rosenpass, node, opts);
      if (settings.mode !== "off" && p.hasWgPskFile) {
        throw new RosenpassConfigProblem(
          `${p.at}.rosenpass.mode`,
          `"${settings.mode}": this peer's wg0 PSK comes from its wgPskFile, so Rosenpass cannot manage it; ` +
            'set mode "off" or remove wgPskFile',
        );
      }
      out.set(p.name, settings);
    }
  } catch (e) {
    node?.secretKey?.fill(0);
    throw e;
  }
  return { node, peers: out };
}

function resolveNode(raw: RawNode, opts: RosenpassResolveOptions): RosenpassNodeConfig {
  for (const [field, port] of Object.entries(opts.takenPorts)) {
    if (port === raw.listenPort) {
      throw new RosenpassConfigProblem(
        "rosenpass.listenPort",
        `${raw.listenPort} equals ${field}; give Rosenpass its own UDP port (default ${DEFAULT_ROSENPASS_PORT})`,
      );
    }
  }
  const secretKeyFile = resolvePath(opts.baseDir, raw.secretKeyFile);
  const publicKeyFile = resolvePath(opts.baseDir, raw.publicKeyFile);
  let secretKey: Uint8Array | null = null;
  let publicKey: Uint8Array | null = null;
  if (opts.checkFiles) {
    const make = `create the pair with \`twofold rosenpass keygen --secret-key ${secretKeyFile} ` +
      `--public-key ${publicKeyFile}${raw.profile === DEFAULT_PROFILE ? "" : ` --profile ${raw.profile}`}\``;
    try {
      secretKey = readSecretFile(secretKeyFile, {
        label: "Rosenpass secret key file",
        maxBytes: SECRET_KEY_MAX_BYTES,
        createHint: make,
      });
    } catch (e) {
      if (!(e instanceof FileRuleError)) throw e;
      throw new RosenpassConfigProblem("rosenpass.secretKeyFile", `${secretKeyFile} ${e.problem}; ${e.fix}`);
    }
    const keyProfile = profileOfSecretKey(secretKey)?.name;
    if (keyProfile !== raw.profile) {
      const size = secretKey.length;
      secretKey.fill(0);
      throw new RosenpassConfigProblem(
        "rosenpass.secretKeyFile",
        keyProfile
          ? `${secretKeyFile} is a ${keyProfile} key, but rosenpass.profile is "${raw.profile}"; set the profile or ${make}`
          : `${secretKeyFile} is ${size} bytes, not a Rosenpass secret key; ${make}`,
      );
    }
    try {
      publicKey = readPublicKey("rosenpass.publicKeyFile", publicKeyFile);
    } catch (e) {
      secretKey.fill(0);
      throw e;
    }
  }
  return {
    secretKeyFile,
    publicKeyFile,
    listenPort: raw.listenPort,
    profile: raw.profile,
    secretKey,
    publicKey,
  };
}

function resolvePeer(
  at: string,
  raw: RawPeer | undefined,
  node: RosenpassNodeConfig | null,
  opts: RosenpassResolveOptions,
): RosenpassPeerSettings {
  const publicKeyFile = raw?.publicKeyFile !== undefined
    ? resolvePath(opts.baseDir, raw.publicKeyFile)
    : null;
  const fingerprint = raw?.fingerprint ?? null;
  const both = node !== null && publicKeyFile !== null;
  const mode: RosenpassMode = raw?.mode ?? (both ? "strict" : "off");
  if (mode !== "off") {
    if (node === null) {
      throw new RosenpassConfigProblem(
        `${at}.rosenpass.mode`,
        `"${mode}" needs this node's own Rosenpass key; add a top-level "rosenpass" section or set mode "off"`,
      );
    }
    if (publicKeyFile === null) {
      throw new RosenpassConfigProblem(
        `${at}.rosenpass.publicKeyFile`,
        `missing; mode "${mode}" needs the peer's Rosenpass public key file (or set mode "off")`,
      );
    }
  }
  if (publicKeyFile !== null && fingerprint === null) {
    throw new RosenpassConfigProblem(
      `${at}.rosenpass.fingerprint`,
      `missing; pin the key: print it on the peer with \`twofold rosenpass fingerprint FILE\``,
    );
  }
  let publicKey: Uint8Array | null = null;
  if (opts.checkFiles && mode !== "off" && publicKeyFile !== null) {
    publicKey = readPublicKey(`${at}.rosenpass.publicKeyFile`, publicKeyFile);
    if (!fingerprintMatches(publicKey, fingerprint!)) {
      throw new RosenpassConfigProblem(
        `${at}.rosenpass.fingerprint`,
        `${publicKeyFile} does not match the pinned fingerprint; the key file was swapped or the fingerprint ` +
          "is wrong: compare `twofold rosenpass fingerprint FILE` on both nodes",
      );
    }
  }
  return { mode, publicKeyFile, fingerprint, publicKey };
}

/** Reads a Rosenpass public key file (not secret: links are followed), checking its size first. */
function readPublicKey(field: string, path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) {
      throw new RosenpassConfigProblem(field, `${path} is not a regular file; check the path`);
    }
    if (info.size !== SKEM_PK_LEN) {
      throw new RosenpassConfigProblem(field, `${path} ${publicKeyProblem(new Uint8Array(info.size))}`);
    }
    bytes = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof RosenpassConfigProblem) throw e;
    const what = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be read (${(e as Error).name})`;
    throw new RosenpassConfigProblem(field, `${path} ${what}; check the path`);
  }
  const problem = publicKeyProblem(bytes);
  if (problem) throw new RosenpassConfigProblem(field, `${path} ${problem}`);
  return bytes;
}
