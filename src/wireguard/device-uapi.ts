/**
 * UAPI mapping: a device's state as `wg show` reports it, and a parsed `wg set` applied to it all or
 * nothing (planned by set-plan.ts, then committed by steps that cannot fail). wireguard-go's `uapi.go`
 * is the model; the wire format is src/uapi/.
 * @module
 */
import { MAX_ALLOWED_IPS, MAX_PEERS, PeerTraffic, PeerWord } from "./dataplane/shared-state.ts";
import { toHex } from "../encoding.ts";
import { EADDRINUSE } from "../../ffi/errno.ts";
import { SysError } from "../../ffi/libc.ts";
import type { UapiDeviceSnapshot, UapiSetRequest } from "../uapi/types.ts";
import { UapiErrno } from "../uapi/protocol.ts";
import { formatCidr } from "./allowedips.ts";
import type { DeviceState } from "./device-state.ts";
import { planSet, type SetPlan } from "./set-plan.ts";
import { endpointProblem } from "./transport.ts";

/** Milliseconds per second (UAPI keepalive intervals are seconds). */
const MS_PER_SECOND = 1000;

/** Current configuration and counters, as `wg show` reports them. */
export function snapshotDevice(state: DeviceState): UapiDeviceSnapshot {
  const s = state.dp.shared;
  const peers = [...state.peers.values()].map((p) => {
    const ep = state.endpointOf(p);
    return {
      publicKey: p.publicKey,
      presharedKey: p.presharedKey,
      endpoint: ep ? (ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`) : null,
      lastHandshakeMs: p.lastHandshakeMs,
      txBytes: s.peerF64[s.pf(p.id, PeerTraffic.txBytes)],
      rxBytes: s.peerF64[s.pf(p.id, PeerTraffic.rxBytes)],
      persistentKeepalive: p.persistentKeepalive,
      allowedIps: state.allowed.entriesFor(p.id).map(formatCidr),
    };
  });
  return {
    privateKey: state.identity?.privateKey ?? null,
    listenPort: state.listenPort,
    fwmark: state.fwmark,
    peers,
  };
}

/**
 * Applies a parsed UAPI set request all or nothing; returns 0 or a negative errno. The request is
 * planned first against a copy of the peers and routes (capacity: {@link MAX_PEERS} peers and
 * {@link MAX_ALLOWED_IPS} allowed IPs; PSK policy; endpoints), then the UDP port is bound, and only
 * then is anything changed, by steps that cannot fail. The data plane's routes are republished from
 * the control plane's table in one step at the end, so the two never disagree; a refusal is logged
 * and leaves both as they were.
 */
export function applySet(state: DeviceState, req: UapiSetRequest): number {
  const plan = planSet(
    {
      peers: new Map([...state.peers.values()].map((p) => [p.publicKeyHex, p.id])),
      allowed: state.allowed,
      ownPublicKey: state.identity?.publicKey ?? null,
    },
    req,
    { maxPeers: MAX_PEERS, maxAllowedIps: MAX_ALLOWED_IPS },
    {
      psk: state.pskPolicy?.checkUapiPsk?.bind(state.pskPolicy),
      endpoint: (ep) => endpointProblem(state.transport, ep.ip, ep.port),
    },
  );
  if (!plan.ok) {
    state.log.warn(`UAPI set refused (errno ${-plan.errno}): ${plan.reason}`);
    return plan.errno;
  }
  if (req.listenPort !== undefined && (req.listenPort !== state.listenPort || state.udpFd < 0)) {
    try {
      state.bind(req.listenPort);
    } catch (e) {
      state.log.warn(`cannot bind UDP port ${req.listenPort}: ${(e as Error).message}; nothing was changed`);
      return e instanceof SysError && e.errno === EADDRINUSE ? UapiErrno.PORT_IN_USE : UapiErrno.IO;
    }
  }
  try {
    commitSet(state, req, plan);
  } finally {
    // Even if a step threw (a bug), the data plane routes exactly what the control plane holds.
    state.publishAllowedIps();
  }
  return 0;
}

/** Applies a planned request; nothing here may fail (the plan checked it all). */
function commitSet(state: DeviceState, req: UapiSetRequest, plan: SetPlan): void {
  if (req.fwmark !== undefined) state.fwmark = req.fwmark;
  if (req.privateKey !== undefined) state.setPrivateKey(req.privateKey);
  if (req.replacePeers) { for (const p of [...state.peers.values()]) state.removePeer(p); }
  for (let i = 0; i < req.peers.length; i++) {
    const change = req.peers[i];
    const hex = toHex(change.publicKey);
    let peer = state.peers.get(hex);
    if (change.remove) {
      if (peer) state.removePeer(peer);
      continue;
    }
    if (state.identity && hex === toHex(state.identity.publicKey)) continue; // our own key: ignored
    const slot = plan.createdSlots[i];
    if (!peer) {
      if (slot === undefined) continue; // update_only
      peer = state.createPeer(change.publicKey, slot);
    }
    if (change.presharedKey) {
      // With a PSK policy (the aes0 gate), the policy applies the key itself (keeping its rotation
      // grace); without one, the write is applied here as in wireguard-go.
      const policy = state.pskPolicy;
      if (policy) {
        const verdict = policy.onUapiPsk(peer.publicKey, change.presharedKey);
        if (verdict !== 0) {
          state.log.warn(`UAPI preshared key not applied (errno ${-verdict}) after planning`);
        }
      } else {
        state.setPresharedKey(peer, change.presharedKey, []);
      }
    }
    if (change.endpoint) state.setEndpoint(peer, change.endpoint);
    if (change.persistentKeepalive !== undefined) {
      const was = peer.persistentKeepalive;
      peer.persistentKeepalive = change.persistentKeepalive;
      peer.timers.setPersistentKeepalive(change.persistentKeepalive * MS_PER_SECOND, state.clock());
      if (was === 0 && change.persistentKeepalive > 0) state.sendKeepalive(peer);
    }
  }
  state.allowed = plan.allowed;
}

/**
 * The routes the data plane uses, read back from shared memory: every published allowed-IP entry
 * whose peer slot still holds the peer it was published for, with that peer's public key.
 */
export function dataPlaneRoutes(state: DeviceState): { publicKey: Uint8Array; allowedIp: string }[] {
  const s = state.dp.shared;
  const published = s.readAllowedIps();
  if (published === null) return [];
  const out = [];
  for (const e of published.entries) {
    const peer = state.byId[e.peer];
    if (!peer || s.peerGet(e.peer, PeerWord.generation) !== published.generations[e.peer]) continue;
    out.push({ publicKey: peer.publicKey, allowedIp: formatCidr(e) });
  }
  return out;
}
