/**
 * Preflight: every check a node or hub can make before it brings anything up, so that a bad admin token
 * file, a busy port or missing PSRD is one clear line (exit 2) with no interface created, instead of a
 * failure after wg0/aes0 are up and gates have opened. It creates nothing and leaves no socket bound
 * (ports are probed by binding and releasing at once), so it can run beside a live node — it is the core
 * of a future `twofold check`.
 *
 * What the config load already checks is not repeated here: the key and PSK files are read (through
 * the secret-file rules) when the config is loaded.
 * @module
 */
import { dirname } from "node:path";
import { openUdp, type UdpOptions } from "../../ffi/udp.ts";
import { closeQuietly, EADDRINUSE, SysError } from "../../ffi/libc.ts";
import { isAesPeer, type NodeConfig } from "../config/node-config.ts";
import type { HubConfig } from "../config/hub-config.ts";
import { type AdminListen, formatAdminListen, readTokenFile } from "../admin/server.ts";
import { probeSocketPath } from "../unix-socket.ts";
import { DEFAULT_UAPI_DIR } from "../uapi/server.ts";
import { InterfaceInUseError } from "../wireguard/interface.ts";
import { type BlockInfo, PsrdStore } from "../dske/psrd-store.ts";
import { hubLinksFor } from "../dske/hub-client.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import { encodeBase64, fromHex, toHex } from "../encoding.ts";
import { usesDske } from "../config/key-source.ts";
import { siteRouterProblem } from "../site-router/site-router.ts";

/** One problem preflight found: the config field it concerns and a one-line message naming the fix. */
export interface PreflightProblem {
  /** The config field (or area) at fault, e.g. "wg0.listenPort", "admin.tokenFile". */
  field: string;
  /** One line: what is wrong and how to fix it. */
  message: string;
}

/** Formats a problem as the one line the CLI prints. */
export function formatPreflightProblem(p: PreflightProblem): string {
  return `${p.field}: ${p.message}`;
}

/**
 * Runs every pre-bring-up check for the edge node `cfg` (its key files were read when it was loaded):
 * no live daemon on the wg0 or aes0 UAPI socket, the admin token file (when it exists; `up` creates a missing one), the admin listen address, the
 * wg0, aes0 and Rosenpass UDP ports, the map's DNS port (UDP, on the wg0 address), a router node's LAN interface and libnftables and, with DSKE peers, a PSRD block for every hub. Returns the problems found,
 * in that order (empty: nothing known stands in the way).
 */
export async function preflightNode(cfg: NodeConfig): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  for (const [ifname, field] of [[cfg.wg0.name, "wg0.name"], [cfg.aes0.name, "aes0.name"]]) {
    const uapi = await uapiSocketProblem(ifname, cfg.node.uapiSocketDir, field);
    if (uapi) problems.push({ field, message: uapi });
  }
  if (cfg.admin.enabled) {
    const token = await tokenFileProblem(cfg.admin.tokenFile);
    if (token) problems.push({ field: "admin.tokenFile", message: token });
    const listen = await adminListenProblem(cfg.admin.listen);
    if (listen) problems.push({ field: "admin.listen", message: listen });
  }
  const wg = udpPortProblem(cfg.wg0.listenPort, { family: "dual" });
  if (wg) problems.push({ field: "wg0.listenPort", message: wg });
  const wgAddress = formatIp(cfg.wg0.address.ip);
  // aes0 binds the wg0 address, which exists only once wg0 is up: probe it with IP_FREEBIND.
  const aes = udpPortProblem(cfg.aes0.listenPort, { family: 4, bindAddress: wgAddress, freeBind: true });
  if (aes) problems.push({ field: "aes0.listenPort", message: aes });
  // Rosenpass: its own UDP port on the underlay (its keys and fingerprints were checked at load).
  if (cfg.rosenpass.node) {
    const rp = udpPortProblem(cfg.rosenpass.node.listenPort, { family: "dual" });
    if (rp) problems.push({ field: "rosenpass.listenPort", message: rp });
  }
  // The map's DNS answers on the wg0 address too (UDP probed like aes0; TCP is checked when it starts).
  if (cfg.netmap !== null) {
    const dns = udpPortProblem(cfg.dns.port, { family: 4, bindAddress: wgAddress, freeBind: true });
    if (dns) problems.push({ field: "dns.port", message: `DNS: ${dns}` });
  }
  // A router node's LAN interface and libnftables (the tunnel interfaces do not exist yet).
  if (cfg.site !== null) {
    const site = await siteRouterProblem(cfg.site.lan);
    if (site) problems.push(site);
  }
  if (cfg.peers.some((p) => isAesPeer(p) && usesDske(p.keySource))) {
    const psrd = await psrdProblem(cfg);
    if (psrd) problems.push({ field: "node.stateDir", message: psrd });
  }
  return problems;
}

/**
 * Runs the pre-bring-up checks of the hub `cfg`: no live daemon on its wg0 UAPI socket, and its wg0 UDP
 * port (its PSRD is checked before wg0 comes up anyway).
 */
export async function preflightHub(cfg: HubConfig): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const uapi = await uapiSocketProblem(cfg.wg0.name, cfg.hub.uapiSocketDir, "wg0.name");
  if (uapi) problems.push({ field: "wg0.name", message: uapi });
  const wg = udpPortProblem(cfg.wg0.listenPort, { family: "dual" });
  if (wg) problems.push({ field: "wg0.listenPort", message: wg });
  return problems;
}

/**
 * Why interface `ifname` could not get its UAPI socket in `dir`: a daemon already answers there (from
 * any network namespace: the directory is shared; the fix names `nameField`, the config field that
 * sets the name), or the path is not a socket. Null when it is free or stale (a stale socket is
 * replaced at start).
 */
export async function uapiSocketProblem(
  ifname: string,
  dir = DEFAULT_UAPI_DIR,
  nameField?: string,
): Promise<string | null> {
  const path = `${dir}/${ifname}.sock`;
  let state;
  try {
    state = await probeSocketPath(path);
  } catch (e) {
    return `${path} cannot be checked (${(e as Error).name}); check the directory's permissions`;
  }
  if (state === "live") return new InterfaceInUseError(ifname, path, nameField).message;
  if (state === "not-socket") return `${path} exists and is not a socket; remove it`;
  return null;
}

/** The token file's problem, or null when it is good or absent (absent: `up` creates it). */
async function tokenFileProblem(path: string): Promise<string | null> {
  try {
    await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
  }
  try {
    await readTokenFile(path);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Why the admin API could not listen on `listen`, or null. Binds nothing that stays bound. */
export async function adminListenProblem(listen: AdminListen): Promise<string | null> {
  const shown = formatAdminListen(listen);
  if (listen.kind === "unix") {
    const blocker = nonDirectoryAncestor(dirname(listen.path));
    if (blocker) {
      return `${blocker} is not a directory, so ${shown} cannot be created; choose another admin.listen`;
    }
    let state;
    try {
      state = await probeSocketPath(listen.path);
    } catch (e) {
      return `${shown} cannot be checked (${(e as Error).name}); check the directory's permissions`;
    }
    if (state === "live") {
      return `another process already serves an admin API on ${shown} (another node?); stop it or choose another admin.listen`;
    }
    if (state === "not-socket") {
      return `${listen.path} exists and is not a socket; remove it or choose another admin.listen`;
    }
    return null;
  }
  if (listen.port === 0) return null;
  const hostname = listen.host.toLowerCase() === "localhost" ? "127.0.0.1" : listen.host;
  try {
    Deno.listen({ hostname, port: listen.port, transport: "tcp" }).close();
    return null;
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      return `TCP ${shown} is in use (another process, or another node's admin API); stop it or choose another admin.listen`;
    }
    return `cannot listen on TCP ${shown} (${(e as Error).name}); choose another admin.listen`;
  }
}

/** The nearest existing ancestor of `dir` (itself included) when it is not a directory, else null. */
function nonDirectoryAncestor(dir: string): string | null {
  for (let d = dir;; d = dirname(d)) {
    try {
      return Deno.statSync(d).isDirectory ? null : d;
    } catch (e) {
      const missing = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
      if (!missing || d === dirname(d)) return null;
    }
  }
}

/** Why a UDP socket could not bind `port` with `opts`, or null. Port 0 (any) always binds. */
export function udpPortProblem(port: number, opts: UdpOptions): string | null {
  if (port === 0) return null;
  const where = opts.bindAddress ? `${opts.bindAddress}:${port}` : `${port}`;
  try {
    closeQuietly(openUdp(port, opts).fd);
    return null;
  } catch (e) {
    if (e instanceof SysError && e.errno === EADDRINUSE) {
      return `UDP port ${where} is in use (another process, or another twofold/WireGuard instance, holds it); stop it or choose another port`;
    }
    return `cannot bind UDP ${where} (${(e as Error).message}); choose another port`;
  }
}

/** The PSRD problem of a node with DSKE peers, reading its pools without locking or changing them. */
async function psrdProblem(cfg: NodeConfig): Promise<string | null> {
  let store: PsrdStore;
  try {
    store = await PsrdStore.open(cfg.node.stateDir, { readOnly: true });
  } catch (e) {
    return (e as Error).message;
  }
  try {
    return psrdHubProblem(cfg, store.blocks());
  } finally {
    store.close();
  }
}

/**
 * Why the PSRD `blocks` do not serve every hub peer of `cfg` (no block for a hub, or only another
 * node's copy), as one line naming the provisioning commands; null when every hub has a block made for
 * this node's key.
 */
export function psrdHubProblem(cfg: NodeConfig, blocks: BlockInfo[]): string | null {
  const hubPeers = cfg.peers.filter((p) => p.role === "hub");
  const selfHex = toHex(cfg.node.publicKey!);
  const selfB64 = encodeBase64(cfg.node.publicKey!);
  const hubIps = hubPeers.map((h) => formatIp(h.wgIp.addr));
  const links = hubLinksFor(blocks.filter((b) => b.peerId === selfHex), hubIps);
  const foreign = hubLinksFor(blocks.filter((b) => b.peerId !== selfHex), hubIps);
  const missing = hubPeers.find((h) => !links.has(formatIp(h.wgIp.addr)));
  if (!missing) return null;
  const ip = formatIp(missing.wgIp.addr);
  const other = foreign.get(ip);
  if (other) {
    const peerId = encodeBase64(fromHex(blocks.find((b) => b.blockId === other.blockId)!.peerId));
    return `the PSRD block ${other.blockId} for hub ${missing.name} (${ip}) in ${cfg.node.stateDir} ` +
      `was made for another node (peer id ${peerId}), not this node's key ${selfB64}: provision a pair with ` +
      `"twofold psrd new --peer-id ${selfB64} …" and ingest this node's copy`;
  }
  return `hub ${missing.name} (${ip}) has no PSRD in ${cfg.node.stateDir}: create a pair with ` +
    `"twofold psrd new --hub-endpoint ${ip}:51831 …" and ingest this node's copy with ` +
    `"twofold psrd ingest --state-dir ${cfg.node.stateDir} FILE"`;
}
