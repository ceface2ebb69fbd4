/**
 * Planning a UAPI `set` before any of it is applied, so a device changes all or nothing.
 *
 * The plan replays the request against a copy of the device's peers and allowed-IPs table, in
 * request order and with the device's rules (replace_peers first, a removed key goes, our own key is
 * ignored, update_only never creates, an inserted prefix moves from its previous owner), and checks
 * the device's capacity (peer slots, allowed-IP entries) and every value that could still be refused
 * (a PSK the key policy refuses, an endpoint that cannot be encoded). A refused request returns the
 * negated errno and a reason and leaves the device untouched; an accepted one carries the resulting
 * allowed-IPs table and the slot of every peer it creates, which the device then commits without any
 * step that can fail. Pure: no I/O, no clock.
 *
 * Errno for a capacity limit: -EINVAL, as wireguard-go answers a peer it cannot create ("failed to
 * create new peer", IpcErrorInvalid); the UAPI defines no other code for it.
 * @module
 */
import { publicKey as derivePublicKey } from "../crypto/x25519.ts";
import { toHex } from "../encoding.ts";
import { UapiErrno } from "../uapi/protocol.ts";
import type { UapiPeerChange, UapiSetRequest } from "../uapi/types.ts";
import { type AllowedIps, parseCidr } from "./allowedips.ts";

/** The device state a plan starts from. */
export interface PlanBase {
  /** Current peers: public-key hex → peer slot. */
  peers: ReadonlyMap<string, number>;
  /** Current allowed-IPs table (copied, never changed). */
  allowed: AllowedIps;
  /** Our current public key, or null without a private key. */
  ownPublicKey: Uint8Array | null;
}

/** Capacity of the device. */
export interface PlanLimits {
  /** Most peers (slots 0..maxPeers-1). */
  maxPeers: number;
  /** Most allowed-IP entries over all peers. */
  maxAllowedIps: number;
}

/** Checks for values only the device (or its key policy) can judge. */
export interface PlanChecks {
  /** 0 when a UAPI PSK write for the peer would be accepted; else a negated errno. Must not apply it. */
  psk?(publicKey: Uint8Array, psk: Uint8Array, created: boolean): number;
  /** Null when the endpoint can be used; else the problem. */
  endpoint(endpoint: { ip: string; port: number }): string | null;
}

/** An accepted request: what the commit needs. */
export interface SetPlan {
  ok: true;
  /** The allowed-IPs table after the request (a new table). */
  allowed: AllowedIps;
  /** For each change (by index in `req.peers`) that creates its peer: the slot it gets. */
  createdSlots: (number | undefined)[];
  /** Peers after the request. */
  peerCount: number;
}

/** A refused request: nothing may change. */
export interface SetRefusal {
  ok: false;
  /** Negated errno for the UAPI reply. */
  errno: number;
  /** One line for the log (never key material). */
  reason: string;
}

/** Plans `req` against `base`; see the module doc. */
export function planSet(
  base: PlanBase,
  req: UapiSetRequest,
  limits: PlanLimits,
  checks: PlanChecks,
): SetPlan | SetRefusal {
  const allowed = base.allowed.clone();
  const peers = new Map(base.peers);
  const used = new Set(peers.values());
  const createdSlots: (number | undefined)[] = [];
  const refuse = (errno: number, reason: string): SetRefusal => ({ ok: false, errno, reason });
  const drop = (hex: string) => {
    const slot = peers.get(hex);
    if (slot === undefined) return;
    allowed.removePeer(slot);
    used.delete(slot);
    peers.delete(hex);
  };

  let ownHex = base.ownPublicKey ? toHex(base.ownPublicKey) : null;
  if (req.privateKey !== undefined) {
    ownHex = req.privateKey.every((b) => b === 0) ? null : toHex(derivePublicKey(req.privateKey));
    if (ownHex !== null) drop(ownHex); // a peer with our own key goes, as in wireguard-go
  }
  if (req.replacePeers) { for (const hex of [...peers.keys()]) drop(hex); }

  for (let i = 0; i < req.peers.length; i++) {
    const change: UapiPeerChange = req.peers[i];
    const hex = toHex(change.publicKey);
    if (change.remove) {
      drop(hex);
      continue;
    }
    if (hex === ownHex) continue;
    let slot = peers.get(hex);
    let created = false;
    if (slot === undefined) {
      if (change.updateOnly) continue;
      slot = lowestFreeSlot(used, limits.maxPeers);
      if (slot < 0) {
        return refuse(
          UapiErrno.INVALID,
          `more than ${limits.maxPeers} peers (the device's limit); nothing was changed`,
        );
      }
      used.add(slot);
      peers.set(hex, slot);
      createdSlots[i] = slot;
      created = true;
    }
    if (change.presharedKey && checks.psk) {
      const verdict = checks.psk(change.publicKey, change.presharedKey, created);
      if (verdict !== 0) return refuse(verdict, `peer ${i + 1}: preshared key refused; nothing was changed`);
    }
    if (change.endpoint) {
      const problem = checks.endpoint(change.endpoint);
      if (problem !== null) {
        return refuse(UapiErrno.INVALID, `peer ${i + 1}: endpoint refused (${problem}); nothing was changed`);
      }
    }
    if (change.replaceAllowedIps) allowed.removePeer(slot);
    for (const text of change.allowedIps) {
      try {
        allowed.insert(parseCidr(text), slot);
      } catch {
        return refuse(UapiErrno.INVALID, `peer ${i + 1}: invalid allowed IP; nothing was changed`);
      }
    }
  }
  // The limit holds for the result: a request may move prefixes around on its way there.
  if (allowed.size > limits.maxAllowedIps) {
    return refuse(
      UapiErrno.INVALID,
      `${allowed.size} allowed IPs would exceed the device's limit of ${limits.maxAllowedIps}; nothing was changed`,
    );
  }
  return { ok: true, allowed, createdSlots, peerCount: peers.size };
}

function lowestFreeSlot(used: ReadonlySet<number>, maxPeers: number): number {
  for (let slot = 0; slot < maxPeers; slot++) if (!used.has(slot)) return slot;
  return -1;
}
