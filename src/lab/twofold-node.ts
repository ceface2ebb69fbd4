/**
 * Lab helpers for `twofold up` nodes in namespaces: write a node config for a set of peers and start
 * the node, waiting until it reports that it is up. Used by the integration tests and the bench.
 * @module
 */
import type { Netns, Proc } from "./netns.ts";
import { waitUntil } from "./netns.ts";
import { twofoldCommand } from "../self-command.ts";
import { genKeyPair, type KeyPair } from "./wg-device.ts";

/** One lab node: its keys, underlay address and the two overlay addresses. */
export interface LabNode {
  /** Node name (also the config and key file names). */
  name: string;
  /** Its static key pair (wg0 and aes0 share it). */
  keys: KeyPair;
  /** Underlay IPv4 address (on the veth). */
  underlay: string;
  /** wg0 address in 100.64.0.0/10. */
  wgIp: string;
  /** aes0 address in the AES subnet. */
  aesIp: string;
}

/** Underlay subnet of the two-node lab pairs (a veth between two namespaces), host part appended. */
export const LAB_UNDERLAY_PREFIX = "10.233.0.";

/**
 * A lab node with fresh keys whose three addresses share one host number: underlay `10.233.0.N`, wg0
 * `100.64.0.N`, aes0 `100.127.0.N` — the layout most namespace tests use for a pair of nodes.
 */
export function labNodeAt(name: string, host: number): LabNode {
  return {
    name,
    keys: genKeyPair(),
    underlay: `${LAB_UNDERLAY_PREFIX}${host}`,
    wgIp: `100.64.0.${host}`,
    aesIp: `100.127.0.${host}`,
  };
}

/** Options for {@link writeNodeConfig}. */
export interface NodeConfigOptions {
  /** `keys.rotationIntervalSeconds` (default: the config's default). */
  rotationIntervalSeconds?: number;
  /** `keys.maxKeyAgeSeconds` (default: 3 × rotation). */
  maxKeyAgeSeconds?: number;
  /** `keys.manualMaxAgeSeconds` (default: none, manual keys never expire). */
  manualMaxAgeSeconds?: number;
  /** Extra raw peer entries (AES-exempt peers, hubs, managed peers). */
  extraPeers?: unknown[];
  /** AES subnet (default 100.127.0.0/16). */
  aesSubnet?: string;
  /** Key source of the AES peers (default "manual"). */
  keySource?: "manual" | "dske";
  /** `keys.dskeThreshold` (k). */
  dskeThreshold?: number;
  /** `wg0.name` and `aes0.name` (default: left out, so wg0 and aes0). */
  interfaceNames?: { wg0: string; aes0: string };
  /** `pskFile` of every AES peer (manual key source); default none. */
  pskFile?: string;
}

/**
 * Writes `<dir>/<name>.key` (0600) and `<dir>/<name>.json`: `self` with every node in `peers` as a
 * manual-key AES peer reached at its underlay address. Returns the config path.
 */
export async function writeNodeConfig(
  dir: string,
  self: LabNode,
  peers: LabNode[],
  opts: NodeConfigOptions = {},
): Promise<string> {
  const keyFile = `${dir}/${self.name}.key`;
  await Deno.writeTextFile(keyFile, self.keys.privateKey + "\n", { mode: 0o600 });
  await Deno.chmod(keyFile, 0o600);
  const subnet = opts.aesSubnet ?? "100.127.0.0/16";
  const prefix = subnet.split("/")[1];
  const keys: Record<string, number> = {};
  if (opts.rotationIntervalSeconds !== undefined) keys.rotationIntervalSeconds = opts.rotationIntervalSeconds;
  if (opts.maxKeyAgeSeconds !== undefined) keys.maxKeyAgeSeconds = opts.maxKeyAgeSeconds;
  if (opts.manualMaxAgeSeconds !== undefined) keys.manualMaxAgeSeconds = opts.manualMaxAgeSeconds;
  if (opts.dskeThreshold !== undefined) keys.dskeThreshold = opts.dskeThreshold;
  const cfg = {
    node: { name: self.name, privateKeyFile: keyFile, stateDir: `${dir}/state-${self.name}` },
    wg0: { listenPort: 51820, address: `${self.wgIp}/10`, ...nameOf(opts.interfaceNames?.wg0) },
    aes0: { subnet, address: `${self.aesIp}/${prefix}`, ...nameOf(opts.interfaceNames?.aes0) },
    keys,
    // Every lab node gets its own admin socket: the default /run/twofold/admin.sock is shared by all
    // namespaces of one machine.
    admin: { listen: `unix:${dir}/${self.name}.admin.sock` },
    peers: [
      ...peers.map((p) => ({
        name: p.name,
        publicKey: p.keys.publicKey,
        wgIp: p.wgIp,
        aesIp: p.aesIp,
        endpoint: `${p.underlay}:51820`,
        keySource: opts.keySource ?? "manual",
        ...(opts.pskFile === undefined ? {} : { pskFile: opts.pskFile }),
      })),
      ...(opts.extraPeers ?? []),
    ],
  };
  const path = `${dir}/${self.name}.json`;
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

/** `{ name }` when a name is given, else nothing (the config's default). */
function nameOf(name: string | undefined): { name?: string } {
  return name === undefined ? {} : { name };
}

/** A DSKE security hub in the lab. */
export interface LabHub {
  /** Hub name. */
  name: string;
  /** Its static key pair (wg0). */
  keys: KeyPair;
  /** Underlay IPv4 address. */
  underlay: string;
  /** wg0 address. */
  wgIp: string;
}

/**
 * Writes `<dir>/<name>.key` and `<dir>/<name>.json` for a hub whose wg0 peers are `nodes`; `wg0Name`
 * sets `wg0.name` (default: left out, so wg0).
 */
export async function writeHubConfig(
  dir: string,
  hub: LabHub,
  nodes: LabNode[],
  wg0Name?: string,
): Promise<string> {
  const keyFile = `${dir}/${hub.name}.key`;
  await Deno.writeTextFile(keyFile, hub.keys.privateKey + "\n", { mode: 0o600 });
  await Deno.chmod(keyFile, 0o600);
  const cfg = {
    hub: { name: hub.name, privateKeyFile: keyFile, stateDir: `${dir}/state-${hub.name}` },
    wg0: { listenPort: 51820, address: `${hub.wgIp}/10`, ...nameOf(wg0Name) },
    peers: nodes.map((n) => ({
      name: n.name,
      publicKey: n.keys.publicKey,
      wgIp: n.wgIp,
      endpoint: `${n.underlay}:51820`,
    })),
  };
  const path = `${dir}/${hub.name}.json`;
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

/** The raw peer entry that makes `hub` a DSKE hub of a node. */
export function hubPeerEntry(hub: LabHub): Record<string, unknown> {
  return {
    name: hub.name,
    publicKey: hub.keys.publicKey,
    wgIp: hub.wgIp,
    endpoint: `${hub.underlay}:51820`,
    role: "hub",
  };
}

/** Options for {@link startTwofoldUp} and {@link startTwofoldHub}. */
export interface StartOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Also write the process output to this file. */
  logFile?: string;
  /**
   * The command that runs twofold, before its arguments (default: this twofold again — the source
   * tree's main.ts, the release bundle or the compiled binary). The release test passes the unpacked
   * tarball's `bin/twofold`.
   */
  launcher?: string[];
}

/**
 * Starts `twofold <command> --config <config>` inside `ns` and waits (up to 20 s) until its output
 * matches `ready`; throws with the output if it exits or never gets there. The namespace stops it on
 * cleanup. Ready means "it says so": a socket file alone may be a stale one from a previous run.
 */
async function startTwofold(
  ns: Netns,
  command: "up" | "hub",
  config: string,
  ready: RegExp,
  opts: StartOptions,
): Promise<Proc> {
  const launcher = opts.launcher ?? twofoldCommand();
  const cmd = [...launcher, command, "--config", config];
  const proc = ns.spawn(cmd, { env: opts.env, logFile: opts.logFile || undefined });
  const up = await waitUntil(() => proc.exited || ready.test(proc.output()), 20_000);
  if (!up || proc.exited) {
    await proc.kill();
    throw new Error(`twofold ${command} did not start in ${ns.name}:\n${proc.output()}`);
  }
  return proc;
}

/** Starts `twofold hub --config <config>` inside `ns` and waits until it logs that it is up. */
export function startTwofoldHub(ns: Netns, config: string, opts: StartOptions = {}): Promise<Proc> {
  return startTwofold(ns, "hub", config, / up: id /, opts);
}

/** Starts `twofold up --config <config>` inside `ns` and waits until the node logs that it is up. */
export function startTwofoldUp(ns: Netns, config: string, opts: StartOptions = {}): Promise<Proc> {
  return startTwofold(ns, "up", config, / up: wg0 /, opts);
}
