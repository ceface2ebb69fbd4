/**
 * A map-driven node's config: the node config's local part (ports, keys, admin, state) with the
 * addresses and peers of the node's view of the network map filled in, and the node config's
 * `pskFiles` given to the manual AES peers they name. The node then runs exactly as from inline peers.
 *
 * An AES-exempt node, a hub or a broker has no AES address; its aes0 still exists (the node is one
 * shape) with the aes subnet's network address, which the map never allocates, so no AES IP of a
 * peer is local to it. Pure.
 * @module
 */
import { isAesPeer, type NodeConfig, type PeerConfig } from "../config/node-config.ts";
import { NetmapError } from "../netmap/schema.ts";
import { unknownPolicyPeer } from "../config/policy-config.ts";
import type { NetmapView } from "../netmap/view.ts";
import { formatCidr } from "../wireguard/allowedips.ts";

/** The peers of `view` as the node runs them: manual AES peers get their `pskFiles` entry. */
export function peersFromView(view: NetmapView, pskFiles: Record<string, string>): PeerConfig[] {
  return view.peers.map((p) => {
    const file = pskFiles[p.name.toLowerCase()];
    const manualAes = isAesPeer(p) && p.keySource === "manual";
    return { ...p, pskFile: manualAes && file !== undefined ? file : null, psk: null };
  });
}

/**
 * `cfg` (a config with a `netmap` section) with its addresses and peers from `view`. Throws a
 * NetmapError when the view cannot run on this node (too few DSKE hubs for the threshold, a policy
 * naming a node the map does not have). A later map without a node the policies name is taken: their
 * rules naming it then match nothing.
 */
export function configFromView(cfg: NodeConfig, view: NetmapView): NodeConfig {
  const peers = peersFromView(view, cfg.pskFiles);
  const hubs = peers.filter((p) => p.role === "hub").length;
  if (peers.some((p) => isAesPeer(p) && p.keySource === "dske") && hubs < cfg.keys.dskeThreshold) {
    throw new NetmapError(
      "nodes",
      `k = ${cfg.keys.dskeThreshold} (keys.dskeThreshold) but the map has only ${hubs} hub(s) for this node; ` +
        "add hubs to the map or lower keys.dskeThreshold",
    );
  }
  const unknown = cfg.policies &&
    unknownPolicyPeer(cfg.policies, [
      view.self.name,
      ...view.peers.map((p) => p.name),
      ...view.brokers.map((b) => b.name),
    ]);
  if (unknown) throw new NetmapError(unknown.field, unknown.problem);
  const subnet = view.aesSubnet;
  const aesAddress = view.self.aesAddress ?? {
    family: 4 as const,
    ip: subnet.addr,
    prefixLength: subnet.bits,
    text: formatCidr(subnet),
  };
  return {
    ...cfg,
    wg0: { ...cfg.wg0, address: view.self.wgAddress },
    aes0: { ...cfg.aes0, subnet, address: aesAddress },
    peers,
  };
}
