/**
 * A security hub's configuration (`twofold hub --config hub.json`), JSONC:
 *
 * ```jsonc
 * {
 *   "hub": { "name": "hub-1", "privateKeyFile": "hub-1.key", "stateDir": "/var/lib/twofold-hub" },
 *   "wg0": { "listenPort": 51820, "address": "100.64.0.101/10" },
 *   "peers": [ { "name": "node-a", "publicKey": "…", "wgIp": "100.64.0.1", "endpoint": "192.0.2.1:51820" } ]
 * }
 * ```
 *
 * Like a node, `hub.uapiSocketDir` (default /var/run/wireguard) and `wg0.name` (default wg0) let
 * several hubs and nodes share one host; `hub.stateDir` is locked while the hub runs.
 *
 * A hub is a wg0 peer of the edge nodes and nothing else: no aes0, no AES addresses. The sections
 * mean what they mean in the node config and are checked by the same rules (one clear line naming
 * the field, exit 2); a peer here must not have `aesIp`, `keySource` or `pskFile`. Peers default to
 * `persistentKeepalive: 25` (a restarted hub reaches every node at once).
 * @module
 */
import { CliError } from "../operator-error.ts";
import { parseJsonc } from "./jsonc.ts";
import { type NodeConfig, parseNodeConfig, readConfigFile } from "./node-config.ts";

/** The resolved hub configuration. */
export interface HubConfig {
  /** Identity and state directory (PSRD pools, hub role). */
  hub: NodeConfig["node"];
  /** The hub's wg0. */
  wg0: NodeConfig["wg0"];
  /** The edge nodes (wg0 peers). */
  peers: NodeConfig["peers"];
}

/**
 * An aes0 section that only satisfies the shared node rules (a hub runs no aes0): an address outside
 * every sane wg0 range and a name no operator would give wg0.
 */
const UNUSED_AES0 = { name: "hub-no-aes0", subnet: "198.18.0.0/15", address: "198.18.0.1/15" };

/** Parses and validates hub configuration text; throws a CliError (exit 2) naming the field. */
export function parseHubConfig(
  text: string,
  opts: { baseDir: string; checkFiles: boolean; sourceName?: string },
): HubConfig {
  const where = opts.sourceName ? `config ${opts.sourceName}` : "config";
  let data: unknown;
  try {
    data = parseJsonc(text);
  } catch (e) {
    throw new CliError(`${where}: ${(e as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new CliError(`${where}: (top level): expected an object { "hub": …, "wg0": …, "peers": … }`);
  }
  const raw = data as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!["hub", "wg0", "peers"].includes(key)) {
      throw new CliError(`${where}: ${key}: unknown key; remove it (allowed here: hub, wg0, peers)`);
    }
  }
  if (raw.hub === undefined) {
    throw new CliError(`${where}: hub: missing; add it (an object { "name", "privateKeyFile", "stateDir" })`);
  }
  const peers = Array.isArray(raw.peers) ? raw.peers : raw.peers;
  if (Array.isArray(peers)) {
    peers.forEach((p, i) => {
      if (typeof p !== "object" || p === null) return;
      for (const k of ["aesIp", "keySource", "pskFile", "role"]) {
        if (k in p) {
          throw new CliError(`${where}: peers[${i}].${k}: a hub's peers are wg0 peers only; remove ${k}`);
        }
      }
    });
  }
  // A restarted hub must be reachable at once: without a keepalive it would wait for each node to
  // notice the stale session (15 s or more), so hub peers default to a 25 s persistent keepalive,
  // which also makes the hub initiate a handshake with every node as soon as it starts.
  const withKeepalive = Array.isArray(raw.peers)
    ? raw.peers.map((p) =>
      typeof p === "object" && p !== null && !("persistentKeepalive" in p)
        ? { ...p, persistentKeepalive: 25 }
        : p
    )
    : raw.peers;
  const asNode = { node: raw.hub, wg0: raw.wg0, aes0: UNUSED_AES0, peers: withKeepalive };
  let cfg: NodeConfig;
  try {
    cfg = parseNodeConfig(JSON.stringify(asNode), opts);
  } catch (e) {
    if (e instanceof CliError) throw new CliError(e.message.replace(/: node\./, ": hub."), e.exitCode);
    throw e;
  }
  return { hub: cfg.node, wg0: cfg.wg0, peers: cfg.peers };
}

/** Reads and validates the hub configuration at `path`, including its key file. */
export async function loadHubConfig(path: string): Promise<HubConfig> {
  const { text, baseDir } = await readConfigFile(path, "hub");
  return parseHubConfig(text, { baseDir, checkFiles: true, sourceName: path });
}
