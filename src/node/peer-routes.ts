/**
 * Route steering per peer class, and the answer to "where does traffic to this peer go?":
 * - an AES peer's AES IP → aes0 (a closed gate means such traffic goes nowhere: aes0 drops it, and it
 *   never falls back to wg0);
 * - every peer's wg0 IP (AES peers, AES-exempt peers, hubs, brokers) → wg0.
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
} as const;

/** The note on an AES route whose gate is not open. */
export const CLOSED_GATE_NOTE =
  "gate closed: traffic to this AES IP goes nowhere (aes0 drops it) and never falls back to wg0";

/** The interface names a node uses. */
export interface InterfaceNames {
  wg0: string;
  aes0: string;
}

/** Every peer route of `peers`, with each AES route's gate state from `gates` (hex key → status). */
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
    if (aes) {
      const gate = gates.get(toHex(p.publicKey));
      const open = gate ? gate.state !== "closed" : false;
      out.push({
        destination: formatCidr(p.aesIp!),
        interface: names.aes0,
        layer: "aes0",
        peer: p.name,
        publicKey,
        peerClass,
        why: WHY.aes,
        gateOpen: open,
        note: open ? null : CLOSED_GATE_NOTE,
      });
    }
    out.push({
      destination: formatCidr(p.wgIp),
      interface: names.wg0,
      layer: "wg0",
      peer: p.name,
      publicKey,
      peerClass,
      why: aes ? WHY.aesWg : peerClass === "hub" ? WHY.hub : WHY.exempt,
      gateOpen: null,
      note: null,
    });
  }
  return out;
}

/** The kernel part: one /32 route per entry, kept with the map. */
export interface KernelPeerRoutes {
  /** Follows map changes. */
  follower: MapFollower;
  /** Removes every route it added. */
  close(): void;
}

type RouteKey = string; // "dest dev"

function kernelSet(peers: readonly PeerConfig[], names: InterfaceNames): Map<RouteKey, [string, string]> {
  const out = new Map<RouteKey, [string, string]>();
  for (const r of peerRoutes(peers, names)) {
    out.set(`${r.destination} ${r.interface}`, [r.destination, r.interface]);
  }
  return out;
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
  let installed = new Map<RouteKey, [string, string]>();
  const sync = (peers: readonly PeerConfig[]) => {
    const want = kernelSet(peers, names);
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
  };
  sync(peersFromView(initial.view, pskFiles));
  return {
    follower: { name: "routes", apply: (next) => sync(peersFromView(next.view, pskFiles)) },
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
