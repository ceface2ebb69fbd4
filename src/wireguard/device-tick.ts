/**
 * The device's timer tick (every {@link TICK_INTERVAL_MS}): feeds the packet times the data plane
 * recorded in shared memory into each peer's pure timers (timers.ts), in the order they happened, then
 * carries out what the timers ask for (retransmit an initiation, keepalive, zero keys, give up, report
 * an unconfirmed response) and sends initiations deferred by the REKEY_TIMEOUT rate limit. Retired
 * keypairs whose grace ended are freed. wireguard-go's `timers.go` expiry handlers are the model.
 * @module
 */
import { PeerTraffic } from "./dataplane/shared-state.ts";
import { REKEY_TIMEOUT, RESPONSE_CONFIRMATION_TIMEOUT } from "./constants.ts";
import type { DeviceState } from "./device-state.ts";
import { responseUnconfirmed, sendInitiation } from "./handshake-dispatch.ts";
import type { Peer } from "./peer.ts";
import type { TimerAction } from "./timers.ts";

/** How often the tick runs (ms). */
export const TICK_INTERVAL_MS = 100;

/** One tick over every peer at the state's clock. */
export function tick(state: DeviceState): void {
  const now = state.clock();
  state.freeRetired(now);
  for (const peer of state.peers.values()) {
    feedPacketTimes(state, peer);
    if (
      peer.initiationDeferred && !peer.handshake && state.identity &&
      now - peer.lastSentHandshake >= REKEY_TIMEOUT
    ) {
      peer.initiationDeferred = false;
      sendInitiation(state, peer, false);
    }
    if (peer.timers.nextDeadline() > now) continue;
    for (const action of peer.timers.poll(now)) act(state, peer, action);
  }
}

/** Feeds the packet times the data plane recorded since the last tick into the peer's timers, in order. */
function feedPacketTimes(state: DeviceState, peer: Peer): void {
  const s = state.dp.shared;
  const f = (field: number) => s.peerF64[s.pf(peer.id, field)];
  const events: [number, () => void][] = [];
  const seen = peer.seen;
  const ds = f(PeerTraffic.lastDataSent), dr = f(PeerTraffic.lastDataReceived);
  const as = f(PeerTraffic.lastAuthSent), ar = f(PeerTraffic.lastAuthReceived);
  if (as > seen.authSent) events.push([as, () => peer.timers.anyAuthenticatedPacketSent(as)]);
  if (ds > seen.dataSent) events.push([ds, () => peer.timers.dataSent(ds)]);
  if (ar > seen.authReceived) events.push([ar, () => peer.timers.anyAuthenticatedPacketReceived(ar)]);
  if (dr > seen.dataReceived) events.push([dr, () => peer.timers.dataReceived(dr)]);
  seen.authSent = as;
  seen.dataSent = ds;
  seen.authReceived = ar;
  seen.dataReceived = dr;
  events.sort((a, b) => a[0] - b[0]);
  for (const [, fire] of events) fire();
}

/** Carries out one timer action. */
function act(state: DeviceState, peer: Peer, action: TimerAction): void {
  switch (action) {
    case "send-initiation":
      sendInitiation(state, peer, true);
      break;
    case "send-keepalive":
      state.sendKeepalive(peer);
      break;
    case "zero-keys":
      state.expireKeypairs(peer);
      state.dropHandshake(peer);
      break;
    case "handshake-gave-up":
      state.dropHandshake(peer);
      state.handshakeSatisfied(peer);
      break;
    case "response-unconfirmed":
      responseUnconfirmed(
        state,
        peer,
        `no packet under its session within ${RESPONSE_CONFIRMATION_TIMEOUT / 1000} s`,
      );
      break;
  }
}
