/**
 * WireGuard devices inside test namespaces: key generation in `wg` format, starting a userspace
 * implementation (Debian `wireguard-go`, or any command with the same `-f IFNAME` contract such as
 * twofold) and configuring it with `wg setconf` and `ip`. The stock wireguard-go peer and the `wg show
 * dump` parser, which only tests use, live in tests/helpers/wg_device.ts.
 *
 * Keys reach `wg` only through a pipe (`wg setconf IF /dev/stdin`), never through files or argv.
 * @module
 */
import { type Netns, type Proc, waitUntil } from "./netns.ts";
import { generatePrivateKey, publicKey } from "../crypto/x25519.ts";

/** A WireGuard key pair as base64 strings (the format of `wg genkey` / `wg pubkey`). */
export interface KeyPair {
  /** Base64 private key (secret: never log it). */
  privateKey: string;
  /** Base64 public key. */
  publicKey: string;
}

/** Standard base64 of `bytes` (as `wg` prints keys). */
function encodeBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Generates an X25519 key pair in `wg` format. */
export function genKeyPair(): KeyPair {
  const priv = generatePrivateKey();
  return { privateKey: encodeBase64(priv), publicKey: encodeBase64(publicKey(priv)) };
}

/** Generates a random 32-byte pre-shared key in `wg genpsk` format. */
export function genPresharedKey(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** One `[Peer]` of a device configuration. */
export interface WgPeerConfig {
  /** Base64 public key of the peer. */
  publicKey: string;
  /** "host:port" of the peer, if known. */
  endpoint?: string;
  /** CIDRs routed to this peer, e.g. ["100.64.0.1/32"]. */
  allowedIps: string[];
  /** Base64 pre-shared key (secret). */
  psk?: string;
  /** Persistent keepalive interval in seconds (0 or absent = off). */
  persistentKeepalive?: number;
}

/** Configuration of one device: keys and peers for `wg setconf`, address and MTU for `ip`. */
export interface WgDeviceConfig {
  /** Base64 private key (secret). */
  privateKey: string;
  /** UDP listen port. */
  listenPort: number;
  /** Interface address with prefix, e.g. "100.64.0.2/10". */
  address: string;
  /** Interface MTU (default 1420). */
  mtu?: number;
  /** Peers. */
  peers: WgPeerConfig[];
}

/** Options for {@link startWgDevice}. */
export interface StartDeviceOptions {
  /** Command that runs the device in the foreground; the interface name is appended. */
  command?: string[];
  /** Extra environment for the daemon. */
  env?: Record<string, string>;
  /** How long to wait for the UAPI socket (default 10 s). */
  startTimeoutMs?: number;
  /** Also write the daemon's output to this file. */
  logFile?: string;
}

/** Default device command: Debian's wireguard-go in the foreground. */
export const WIREGUARD_GO_COMMAND: readonly string[] = ["wireguard-go", "-f"];

/** Renders a `wg setconf` configuration (contains secrets: only ever pipe it to `wg`). */
export function renderWgConfig(cfg: Pick<WgDeviceConfig, "privateKey" | "listenPort" | "peers">): string {
  const lines = ["[Interface]", `PrivateKey = ${cfg.privateKey}`, `ListenPort = ${cfg.listenPort}`];
  for (const p of cfg.peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`);
    if (p.psk !== undefined) lines.push(`PresharedKey = ${p.psk}`);
    if (p.allowedIps.length > 0) lines.push(`AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.endpoint !== undefined) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return lines.join("\n") + "\n";
}

/** Replaces the keys, port and peers of running device `ifname` (`wg setconf IF /dev/stdin`). */
export async function wgSetConf(
  ns: Netns,
  ifname: string,
  cfg: Pick<WgDeviceConfig, "privateKey" | "listenPort" | "peers">,
): Promise<void> {
  await ns.exec(["wg", "setconf", ifname, "/dev/stdin"], { stdin: renderWgConfig(cfg) });
}

/** True if the UAPI socket of `ifname` exists in the namespace's private run dir. */
export function uapiSocketExists(ns: Netns, ifname: string): boolean {
  try {
    return Deno.statSync(`${ns.runDir}/${ifname}.sock`).isSocket === true;
  } catch {
    return false;
  }
}

/**
 * Starts a userspace WireGuard device `ifname` in `ns` (`[...command, ifname]`, default
 * `wireguard-go -f`), waits for its UAPI socket, applies `cfg` with `wg setconf`, adds the address,
 * sets the MTU and brings the link up. On any failure the daemon is killed and the error carries the
 * tail of its output. Returns the daemon process (also tracked by `ns`, which kills it on delete).
 */
export async function startWgDevice(
  ns: Netns,
  ifname: string,
  cfg: WgDeviceConfig,
  opts: StartDeviceOptions = {},
): Promise<Proc> {
  const command = [...(opts.command ?? WIREGUARD_GO_COMMAND), ifname];
  const proc = ns.spawn(command, {
    env: { LOG_LEVEL: "error", WG_PROCESS_FOREGROUND: "1", ...opts.env },
    logFile: opts.logFile,
  });
  try {
    const up = await waitUntil(
      () => proc.exited || uapiSocketExists(ns, ifname),
      opts.startTimeoutMs ?? 10_000,
    );
    if (proc.exited) throw new Error(`exited with code ${proc.exitCode} before creating its UAPI socket`);
    if (!up) throw new Error(`no UAPI socket ${ifname}.sock after ${opts.startTimeoutMs ?? 10_000} ms`);
    await wgSetConf(ns, ifname, cfg);
    await ns.exec(["ip", "addr", "add", cfg.address, "dev", ifname]);
    await ns.exec(["ip", "link", "set", "dev", ifname, "mtu", String(cfg.mtu ?? 1420), "up"]);
  } catch (e) {
    await proc.kill();
    const tail = proc.output().trim().split("\n").slice(-15).join("\n");
    throw new Error(
      `${ifname} in ${ns.name} (${command.join(" ")}) did not come up: ${(e as Error).message}` +
        (tail === "" ? "" : `\n--- daemon output ---\n${tail}`),
    );
  }
  return proc;
}
