/**
 * What re-reading the node config can change on a running node. Pure: it compares the running config
 * with the freshly read one and says which parts apply live (a map-driven node's `pskFiles`, `routes`
 * and `node.advertise`) and which
 * need a restart (everything else that differs), one short label each. Key material is never compared
 * as text and never named.
 * @module
 */
import type { NodeConfig } from "../config/node-config.ts";
import { encodeBase64 } from "../encoding.ts";
import { formatCidr } from "../wireguard/allowedips.ts";

/** The outcome of comparing the running config with a fresh reading. */
export interface ConfigChanges {
  /** The fresh `pskFiles` differ and apply live (map-driven nodes). */
  pskFilesChanged: boolean;
  /** The fresh `routes.accept` or `node.advertise` differ and apply live (map-driven nodes). */
  routingChanged: boolean;
  /** Config parts that differ and need a restart, e.g. "wg0.listenPort", "peers". */
  restartNeeded: string[];
}

function peersText(cfg: NodeConfig): string {
  return JSON.stringify(cfg.peers.map((p) => ({
    n: p.name,
    k: encodeBase64(p.publicKey),
    w: formatCidr(p.wgIp),
    a: p.aesIp ? formatCidr(p.aesIp) : null,
    e: p.endpoint,
    r: p.role,
    s: p.keySource,
    f: p.pskFile,
    ka: p.persistentKeepalive,
    rt: (p.routes ?? []).map(formatCidr),
  })));
}

function routingText(cfg: NodeConfig): string {
  const accept = cfg.routes.accept;
  return JSON.stringify({
    advertise: cfg.node.advertise?.map(formatCidr) ?? null,
    accept: accept.kind === "networks" ? accept.networks.map(formatCidr) : accept,
  });
}

function netmapText(cfg: NodeConfig): string {
  const s = cfg.netmap;
  if (!s) return "null";
  return JSON.stringify({
    ...s,
    signerPublicKey: s.signerPublicKey ? encodeBase64(s.signerPublicKey) : null,
  });
}

/**
 * Compares `running` with `fresh`. For a map-driven node the addresses and peers come from the map, so
 * they are not compared here (the map's own changes go through the map part).
 */
export function compareConfigs(running: NodeConfig, fresh: NodeConfig): ConfigChanges {
  const mapped = running.netmap !== null && fresh.netmap !== null;
  const parts: [string, unknown, unknown][] = [
    ["node.name", running.node.name, fresh.node.name],
    ["node.privateKeyFile", running.node.privateKeyFile, fresh.node.privateKeyFile],
    ["node.stateDir", running.node.stateDir, fresh.node.stateDir],
    ["node.uapiSocketDir", running.node.uapiSocketDir, fresh.node.uapiSocketDir],
    [
      "node.privateKey",
      running.node.publicKey && encodeBase64(running.node.publicKey),
      fresh.node.publicKey && encodeBase64(fresh.node.publicKey),
    ],
    ["wg0.name", running.wg0.name, fresh.wg0.name],
    ["wg0.listenPort", running.wg0.listenPort, fresh.wg0.listenPort],
    ["wg0.mtu", running.wg0.mtu, fresh.wg0.mtu],
    ["aes0.name", running.aes0.name, fresh.aes0.name],
    ["aes0.listenPort", running.aes0.listenPort, fresh.aes0.listenPort],
    ["aes0.mtu", running.aes0.mtu, fresh.aes0.mtu],
    ["keys", JSON.stringify(running.keys), JSON.stringify(fresh.keys)],
    ["admin", JSON.stringify(running.admin), JSON.stringify(fresh.admin)],
    ["netmap", netmapText(running), netmapText(fresh)],
    ["dns", JSON.stringify(running.dns), JSON.stringify(fresh.dns)],
    ["site", JSON.stringify(running.site), JSON.stringify(fresh.site)],
  ];
  if (!mapped) {
    parts.push(
      ["wg0.address", running.wg0.address.text, fresh.wg0.address.text],
      ["aes0.address", running.aes0.address.text, fresh.aes0.address.text],
      ["peers", peersText(running), peersText(fresh)],
    );
  }
  const restartNeeded = parts.filter(([, a, b]) => a !== b).map(([label]) => label);
  const pskFilesChanged = JSON.stringify(running.pskFiles) !== JSON.stringify(fresh.pskFiles);
  if (pskFilesChanged && !mapped) restartNeeded.push("pskFiles");
  const routingChanged = routingText(running) !== routingText(fresh);
  if (routingChanged && !mapped) restartNeeded.push("routes");
  return {
    pskFilesChanged: pskFilesChanged && mapped,
    routingChanged: routingChanged && mapped,
    restartNeeded,
  };
}
