/**
 * Route steering per peer class, and the answer to "where does traffic to this peer go?":
 * - an AES peer's AES IP → aes0 (a closed gate means such traffic goes nowhere: aes0 drops it, and it
 *   never falls back to wg0);
 * - every peer's wg0 IP (AES peers, AES-exempt peers, hubs, brokers) → wg0;
 * - a routed network this node accepts → the layer of the peer that advertises it (aes0 for an AES
 *   peer, never wg0; wg0 for an AES-exempt peer). An advertised network it does not accept is listed
 *   (so `twofold route get` can say so) but gets no route.
 * `peerRoutes` is pure; `startPeerRoutes` keeps one /32 device route per entry in the kernel's main
 * table (rtnetlink, ffi/netlink.ts) in step with the network map and removes them at stop. The
 * interfaces' own prefixes (wg0 /10, aes0's subnet) steer the same way; the per-peer routes make each
 * peer's route explicit and visible to `ip route get`.
 * @module
 */
import { isAesPeer, type PeerConfig } from "../config/node-config.ts";
import { encodeBase64, toHex } from "../encoding.ts";
import type { GateStatus } from "../keys/psk-gate.ts";
import { formatCidr } from "../wireguard/allowedips.ts";
import { addRoute, delRoute } from "../../ffi/netlink.ts";
import type { MapFollower, RunningMap } from "./netmap-part.ts";
import { peersFromView } from "./netmap-config.ts";
import type { PeerRoute } from "../admin/model.ts";

/** Why a destination goes where it goes, per peer class. */
const WHY = {
  aes: "AES peer: its AES IP is reached through aes0 (inside wg0)",
  aesWg: "AES peer's wg0 IP: wg0 (only the AES IP is carried by aes0)",
  exempt: "AES-exempt peer: wg0 only",
  hub: "DSKE hub: wg0 only (hubs carry no application traffic)",
  aesNetwork: "network routed by an AES peer: through aes0 (inside wg0), like its AES IP",
  exemptNetwork: "network routed by an AES-exempt peer: wg0 only",
} as const;

/** The note on an AES route whose gate is not open. */
export const CLOSED_GATE_NOTE =
  "gate closed: traffic to this AES IP goes nowhere (aes0 drops it) and never falls back to wg0";

/** The note on an accepted routed network behind an AES peer whose gate is not open. */
export const CLOSED_GATE_NETWORK_NOTE =
  "gate closed: traffic to this network goes nowhere (aes0 drops it) and never falls back to wg0";

/** The note on an advertised network this node does not accept. */
export const NOT_ACCEPTED_NOTE =
  "advertised but not accepted (routes.accept): no route is installed, the kernel's other routes decide";

/** The interface names a node uses. */
export interface InterfaceNames {
  wg0: string;
  aes0: string;
}

/**
 * Every peer route of `peers`, with each AES route's gate state from `gates` (hex key → status): each
 * peer's own addresses, then the networks it advertises (accepted or not, on the layer that carries
 * the peer's traffic, config/steering.ts).
 */
export function peerRoutes(
  peers: readonly PeerConfig[],
  names: InterfaceNames,
  gates: ReadonlyMap<string, GateStatus> = new Map(),
): PeerRoute[] {
  const out: PeerRoute[] = [];
  for (const p of peers) {
    const publicKey = encodeBase64(p.publicKey);
    const aes = isAesPeer(p);
    const peerClass = aes ? "aes" : p.role === "hub" ? "hub" : "exempt";
    const gate = aes ? gates.get(toHex(p.publicKey)) : undefined;
    const open = gate ? gate.state !== "closed" : false;
    const common = { peer: p.name, publicKey, peerClass } as const;
    if (aes) {
      out.push({
        destination: formatCidr(p.aesIp!),
        interface: names.aes0,
        layer: "aes0",
        ...common,
        why: WHY.aes,
        gateOpen: open,
        note: open ? null : CLOSED_GATE_NOTE,
        kind: "address",
        accepted: null,
      });
    }
    out.push({
      destination: formatCidr(p.wgIp),
      interface: names.wg0,
      layer: "wg0",
      ...common,
      why: aes ? WHY.aesWg : peerClass === "hub" ? WHY.hub : WHY.exempt,
      gateOpen: null,
      note: null,
      kind: "address",
      accepted: null,
    });
    const accepted = new Set((p.acceptedRoutes ?? []).map(formatCidr));
    for (const route of p.routes ?? []) {
      const destination = formatCidr(route);
      const isAccepted = accepted.has(destination);
      out.push({
        destination,
        interface: aes ? names.aes0 : names.wg0,
        layer: aes ? "aes0" : "wg0",
        ...common,
        why: aes ? WHY.aesNetwork : WHY.exemptNetwork,
        gateOpen: aes ? open : null,
        note: !isAccepted ? NOT_ACCEPTED_NOTE : aes && !open ? CLOSED_GATE_NETWORK_NOTE : null,
        kind: "network",
        accepted: isAccepted,
      });
    }
  }
  return out;
}

type RouteKey = string; // "dest dev"

/** The kernel routes of `peers`: one device route per peer address and per accepted network. */
function kernelSet(
  peers: readonly PeerConfig[],
  names: InterfaceNames,
  scope: "all" | "networks",
): Map<RouteKey, [string, string]> {
  const out = new Map<RouteKey, [string, string]>();
  for (const r of peerRoutes(peers, names)) {
    if (r.accepted === false || (scope === "networks" && r.kind !== "network")) continue;
    out.set(`${r.destination} ${r.interface}`, [r.destination, r.interface]);
  }
  return out;
}

/** Device routes in the kernel's main table, kept in step with a peer list. */
export interface KernelRoutes {
  /** Installs what `peers` needs and removes what it no longer does (all-or-nothing for the additions). */
  sync(peers: readonly PeerConfig[]): void;
  /** Removes every route it added. */
  close(): void;
}

/**
 * Kernel routes for `scope`: every peer route ("all", a map-driven node), or only the accepted routed
 * networks ("networks", a node with inline peers, whose peer addresses the interface prefixes cover).
 */
export function kernelRoutes(names: InterfaceNames, scope: "all" | "networks"): KernelRoutes {
  let installed = new Map<RouteKey, [string, string]>();
  return {
    sync: (peers) => {
      const want = kernelSet(peers, names, scope);
      const added: [string, string][] = [];
      try {
        for (const [k, [dst, dev]] of want) {
          if (installed.has(k)) continue;
          addRoute(dst, dev, { replace: true });
          added.push([dst, dev]);
        }
      } catch (e) {
        for (const [dst, dev] of added) {
          try {
            delRoute(dst, dev);
          } catch { /* already gone */ }
        }
        throw e;
      }
      for (const [k, [dst, dev]] of installed) {
        if (want.has(k)) continue;
        try {
          delRoute(dst, dev);
        } catch { /* gone with its peer's interface state */ }
      }
      installed = want;
    },
    close: () => {
      for (const [dst, dev] of installed.values()) {
        try {
          delRoute(dst, dev);
        } catch { /* the interface is gone already */ }
      }
      installed = new Map();
    },
  };
}

/** The kernel part of a map-driven node: every peer route, kept with the map. */
export interface KernelPeerRoutes {
  /** Follows map changes. */
  follower: MapFollower;
  /** Removes every route it added. */
  close(): void;
}

/**
 * Installs the routes of `initial` (throws the rtnetlink error when one cannot be added, after removing
 * those it added) and returns the follower that keeps them with the map.
 */
export function startPeerRoutes(
  initial: RunningMap,
  pskFiles: Record<string, string>,
  names: InterfaceNames,
): KernelPeerRoutes {
  const routes = kernelRoutes(names, "all");
  routes.sync(peersFromView(initial.view, pskFiles));
  return {
    follower: { name: "routes", apply: (next) => routes.sync(peersFromView(next.view, pskFiles)) },
    close: () => routes.close(),
  };
}

/**
 * A node with inline peers: a device route for each routed network it accepts (its peers' addresses
 * are covered by the interfaces' prefixes); null when it accepts none. Throws the rtnetlink error.
 */
export function startNetworkRoutes(
  peers: readonly PeerConfig[],
  names: InterfaceNames,
): { close(): void } | null {
  if (!peers.some((p) => (p.acceptedRoutes ?? []).length > 0)) return null;
  const routes = kernelRoutes(names, "networks");
  routes.sync(peers);
  return routes;
}
