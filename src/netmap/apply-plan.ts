/**
 * What a node must do to go from one map to the next, as data: the UAPI `set` requests for wg0 and
 * aes0 (incremental, never replacing all peers, so untouched peers keep their sessions), the PSK gate's
 * changes, whether DNS answers change, and what only a restart can change. Rolling back is planning
 * the other way (`planApply(diffViews(next, current))`). Pure; the node applies the plan.
 *
 * Rules:
 * - wg0 holds every peer (allowed IP its wg0 IP /32, its first endpoint, its keepalive); aes0 holds the
 *   AES peers (allowed IP its AES IP /32, endpoint its wg0 IP at the aes0 port, same keepalive). The
 *   routed networks this node accepts from a peer go with its traffic (config/steering.ts): on aes0
 *   for an AES peer, on wg0 for an AES-exempt one.
 * - Within one request: removals first, then changes, then additions, so an address that moves from a
 *   leaving peer to a new one is never claimed twice.
 * - A new AES peer joins the gate closed (its key source then opens it); a leaving one is dropped from
 *   the gate (sessions ended, PSK and key-plane state forgotten); a changed key source resets the gate
 *   for that peer (closed until the new source delivers).
 * - A change to the node's own entry or to the aes subnet needs a restart (interface addresses); so
 *   does a change to the set of DSKE hubs (the key plane reads its hubs at start).
 * @module
 */
import type { KeySource } from "../config/node-config.ts";
import { encodeBase64 } from "../encoding.ts";
import type { UapiPeerChange, UapiSetRequest } from "../uapi/types.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import { aes0AllowedIps, wg0AllowedIps } from "../config/steering.ts";
import type { ViewDiff } from "./diff.ts";
import type { NetmapBroker, NetmapPeer } from "./view.ts";

type AnyPeer = NetmapPeer | NetmapBroker;

/** The PSK gate's part of a plan. */
export interface GatePlan {
  /** AES peers to add (closed until their key source delivers). */
  add: { publicKey: Uint8Array; keySource: KeySource }[];
  /** AES peers to drop (sessions ended, PSK and key-plane state forgotten). */
  remove: Uint8Array[];
  /** AES peers whose key source changed: closed again, then keyed by the new source. */
  reset: { publicKey: Uint8Array; keySource: KeySource }[];
}

/** Everything one map change asks of the node. */
export interface ApplyPlan {
  /** wg0's incremental UAPI set. */
  wg0: UapiSetRequest;
  /** aes0's incremental UAPI set. */
  aes0: UapiSetRequest;
  /** Gate changes. */
  gate: GatePlan;
  /** Whether the DNS zone must be rebuilt (names or addresses changed). */
  dnsChanged: boolean;
  /** Changes that need a restart (one line each); empty when everything applies live. */
  restartNeeded: string[];
}

/** Whether a view peer is an aes0 peer (its view gives it an AES IP). */
function onAes0(p: AnyPeer): boolean {
  return p.aesIp !== null && p.role === "peer";
}

function wg0Change(p: AnyPeer): UapiPeerChange {
  return {
    publicKey: p.publicKey,
    remove: false,
    updateOnly: false,
    endpoint: p.endpoint ?? undefined,
    persistentKeepalive: p.persistentKeepalive,
    replaceAllowedIps: true,
    allowedIps: wg0AllowedIps(p),
  };
}

function aes0Change(p: AnyPeer, aesPort: number): UapiPeerChange {
  return {
    publicKey: p.publicKey,
    remove: false,
    updateOnly: false,
    endpoint: { ip: formatIp(p.wgIp.addr), port: aesPort },
    persistentKeepalive: p.persistentKeepalive,
    replaceAllowedIps: true,
    allowedIps: aes0AllowedIps(p),
  };
}

function removal(p: AnyPeer): UapiPeerChange {
  return {
    publicKey: p.publicKey,
    remove: true,
    updateOnly: false,
    replaceAllowedIps: false,
    allowedIps: [],
  };
}

function isHub(p: AnyPeer): boolean {
  return p.role === "hub";
}

/** The plan for `diff` on a node whose aes0 listens on `aesPort`. */
export function planApply(diff: ViewDiff, opts: { aesPort: number }): ApplyPlan {
  const wg0 = {
    removals: [] as UapiPeerChange[],
    changes: [] as UapiPeerChange[],
    adds: [] as UapiPeerChange[],
  };
  const aes0 = {
    removals: [] as UapiPeerChange[],
    changes: [] as UapiPeerChange[],
    adds: [] as UapiPeerChange[],
  };
  const gate: GatePlan = { add: [], remove: [], reset: [] };
  const restartNeeded: string[] = [];
  let dnsChanged = diff.domainChanged || diff.added.length > 0 || diff.removed.length > 0;
  let hubsChanged = diff.added.some(isHub) || diff.removed.some(isHub);

  for (const p of diff.removed) {
    wg0.removals.push(removal(p));
    if (onAes0(p)) {
      aes0.removals.push(removal(p));
      gate.remove.push(p.publicKey);
    }
  }
  for (const { before, after, fields } of diff.changed) {
    const onWg0Changed = wg0AllowedIps(before).join() !== wg0AllowedIps(after).join();
    if (onWg0Changed || fields.some((f) => f === "endpoint" || f === "persistentKeepalive")) {
      wg0.changes.push(wg0Change(after));
    }
    if (fields.some((f) => f === "name" || f === "wgIp" || f === "aesIp")) dnsChanged = true;
    if (isHub(before) !== isHub(after)) hubsChanged = true;
    const was = onAes0(before);
    const is = onAes0(after);
    if (was && !is) {
      aes0.removals.push(removal(before));
      gate.remove.push(before.publicKey);
    } else if (!was && is) {
      aes0.adds.push(aes0Change(after, opts.aesPort));
      gate.add.push({ publicKey: after.publicKey, keySource: after.keySource });
    } else if (was && is) {
      if (
        fields.some((f) =>
          f === "wgIp" || f === "aesIp" || f === "persistentKeepalive" || f === "acceptedRoutes"
        )
      ) {
        aes0.changes.push(aes0Change(after, opts.aesPort));
      }
      if (fields.includes("keySource")) {
        gate.reset.push({ publicKey: after.publicKey, keySource: after.keySource });
      }
    }
  }
  for (const p of diff.added) {
    wg0.adds.push(wg0Change(p));
    if (onAes0(p)) {
      aes0.adds.push(aes0Change(p, opts.aesPort));
      gate.add.push({ publicKey: p.publicKey, keySource: p.keySource });
    }
  }

  // The node's own routes tell its peers what it advertises; its own forwarding follows its config
  // (node.advertise, which the map must agree with), so they need nothing here.
  const selfFields = diff.self.filter((f) => f !== "routes");
  if (selfFields.length) {
    restartNeeded.push(`this node's own entry changed (${selfFields.join(", ")}): restart to re-address it`);
  }
  if (diff.aesSubnetChanged) restartNeeded.push("the aes subnet changed: restart to re-address aes0");
  if (hubsChanged) restartNeeded.push("the DSKE hubs changed: restart for the key plane to use them");

  const request = (parts: typeof wg0): UapiSetRequest => ({
    replacePeers: false,
    peers: [...parts.removals, ...parts.changes, ...parts.adds],
  });
  return { wg0: request(wg0), aes0: request(aes0), gate, dnsChanged, restartNeeded };
}

/** A one-line summary of a plan for logs and the `netmap-applied` event (counts, never keys). */
export function summarizePlan(diff: ViewDiff, plan: ApplyPlan): string {
  const names = (ps: AnyPeer[]) => ps.map((p) => p.name).join(", ");
  const parts = [`serial ${diff.serial.from} → ${diff.serial.to}`];
  if (diff.added.length) parts.push(`added ${names(diff.added)}`);
  if (diff.removed.length) parts.push(`removed ${names(diff.removed)}`);
  if (diff.changed.length) {
    parts.push(`changed ${diff.changed.map((c) => `${c.after.name} (${c.fields.join(", ")})`).join("; ")}`);
  }
  if (plan.restartNeeded.length) parts.push(`needs a restart: ${plan.restartNeeded.length} change(s)`);
  return parts.join("; ");
}

/** Public keys in a plan's gate part as base64, for lookups by the node. */
export function gateKeys(plan: ApplyPlan): { add: string[]; remove: string[]; reset: string[] } {
  return {
    add: plan.gate.add.map((g) => encodeBase64(g.publicKey)),
    remove: plan.gate.remove.map(encodeBase64),
    reset: plan.gate.reset.map((g) => encodeBase64(g.publicKey)),
  };
}
