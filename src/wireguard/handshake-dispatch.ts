/**
 * Handshake dispatch: what a device does with the handshake messages its decrypt worker admitted
 * (mac1, and under load mac2, cookie replies and rate limits happen there: admission.ts), when it
 * sends an initiation, and key confirmation (a responder's new session counts at the initiator's first
 * packet under it). The Noise messages themselves are noise-protocol.ts; keypair positions are
 * keypair-rotation.ts. wireguard-go's `noise-protocol.go` consumers in `receive.go`/`send.go` are the model.
 * @module
 */
import { toHex } from "../encoding.ts";
import { HANDSHAKE_INITIATION_RATE, REKEY_TIMEOUT } from "./constants.ts";
import type { DeviceState } from "./device-state.ts";
import {
  CookieReplyOffsetReceiver,
  MessageCookieReplyType,
  MessageInitiationType,
  MessageResponseType,
  readU32LE,
  ResponseOffsetReceiver,
} from "./messages.ts";
import { consumeInitiation, consumeResponse, createInitiation, createResponse } from "./noise-protocol.ts";
import type { Peer } from "./peer.ts";
import { tai64n, tai64nAfter } from "./tai64n.ts";

/**
 * Sends an initiation to `peer`, at most one per REKEY_TIMEOUT unless `force`d. `isRetry`: a timer
 * retransmission (keeps the attempt count); otherwise a new handshake.
 */
export function sendInitiation(state: DeviceState, peer: Peer, isRetry: boolean, force = false): void {
  const now = state.clock();
  if (!state.identity || !peer.staticStatic) return;
  if (!isRetry) peer.timers.handshakeAttempts = 0;
  if (!force && now - peer.lastSentHandshake < REKEY_TIMEOUT) return;
  state.dropHandshake(peer);
  const localIndex = state.slots.reserve(peer.id);
  if (localIndex < 0) {
    state.log.warn("no free keypair slot for a handshake");
    return;
  }
  const { message, state: noise } = createInitiation(
    state.suite,
    state.identity,
    peer.keys(),
    localIndex,
    tai64n(now),
  );
  peer.cookies.addMacs(message);
  peer.handshake = { state: noise, localIndex, sentAt: now };
  peer.lastSentHandshake = now;
  peer.timers.handshakeInitiated(now);
  if (state.send(peer, message)) peer.timers.anyAuthenticatedPacketSent(now);
}

/**
 * The data plane wants a handshake (no usable keypair, or time to rekey). A handshake in flight
 * answers it (its completion or give-up clears the request); otherwise WireGuard sends at most one
 * initiation per REKEY_TIMEOUT, so a request inside that time is deferred to the tick, not dropped
 * (the workers ask only once until the request is cleared).
 */
export function handshakeNeeded(state: DeviceState, id: number): void {
  const peer = state.byId[id];
  if (!peer) return;
  const now = state.clock();
  if (peer.handshake && now - peer.handshake.sentAt < REKEY_TIMEOUT) return;
  if (!state.identity || now - peer.lastSentHandshake < REKEY_TIMEOUT) {
    peer.initiationDeferred = true;
    return;
  }
  sendInitiation(state, peer, false);
}

/** A handshake message the decrypt worker admitted, from the raw sockaddr `addr`. */
export function dispatchHandshakeMessage(state: DeviceState, msg: Uint8Array, addr: Uint8Array): void {
  if (state.closed || !state.identity) return;
  switch (msg[0]) {
    case MessageCookieReplyType:
      return consumeCookieReply(state, msg);
    case MessageInitiationType:
      return answerInitiation(state, msg, addr);
    case MessageResponseType:
      return completeInitiation(state, msg, addr);
  }
}

/** Responder: consumes an initiation and answers it; the new keypair waits for confirmation. */
function answerInitiation(state: DeviceState, msg: Uint8Array, addr: Uint8Array): void {
  const identity = state.identity!;
  const consumed = consumeInitiation(state.suite, identity, msg, (pub) => state.peer(pub)?.keys() ?? null);
  if (!consumed) {
    state.event({
      type: "handshake-failed",
      peer: null,
      cause: "initiation-unauthenticated",
      reason: "initiation did not authenticate",
    });
    return;
  }
  const peer = state.peers.get(toHex(consumed.remoteStatic));
  if (!peer) return;
  const now = state.clock();
  if (peer.lastTimestamp && !tai64nAfter(consumed.timestamp, peer.lastTimestamp)) {
    state.failed(peer, "initiation-replayed", "replayed initiation (timestamp not newer)");
    return;
  }
  if (now - peer.lastInitiationConsumed < HANDSHAKE_INITIATION_RATE) {
    state.failed(peer, "initiation-flood", "initiation flood guard");
    return;
  }
  peer.lastTimestamp = consumed.timestamp;
  peer.lastInitiationConsumed = now;
  state.roam(peer, addr);
  const localIndex = state.slots.reserve(peer.id);
  if (localIndex < 0) return;
  const { message, keys } = createResponse(state.suite, identity, peer.keys(), consumed, localIndex);
  const slot = state.slots.install(keys, peer.id);
  // The new keypair waits in "next" until the initiator's first packet confirms it (confirmKeypair);
  // only then does the handshake count (last handshake, event), as in WireGuard.
  state.rotate(peer, { kind: "responded", slot });
  peer.cookies.addMacs(message);
  peer.timers.anyAuthenticatedPacketReceived(now);
  peer.timers.sessionDerived(now);
  if (state.send(peer, message)) peer.timers.anyAuthenticatedPacketSent(now);
  if (peer.timers.responseSent(now)) responseUnconfirmed(state, peer, "superseded by a new initiation");
}

/** Initiator: consumes the response to our initiation; the new keypair is current at once. */
function completeInitiation(state: DeviceState, msg: Uint8Array, addr: Uint8Array): void {
  const peer = peerByHandshakeIndex(state, readU32LE(msg, ResponseOffsetReceiver));
  if (!peer || !peer.handshake) return;
  const result = consumeResponse(
    state.suite,
    state.identity!,
    peer.handshake.state,
    peer.keys(),
    msg,
    peer.extraPsks,
  );
  if (!result) {
    state.failed(
      peer,
      "response-unauthenticated",
      "response did not authenticate (PSK mismatch or corrupted)",
    );
    return;
  }
  const now = state.clock();
  peer.handshake.state.ephemeralPrivate.fill(0);
  peer.handshake = null;
  const slot = state.slots.install(result.keys, peer.id);
  state.rotate(peer, { kind: "initiated", slot });
  state.roam(peer, addr);
  peer.lastHandshakeMs = now;
  peer.handshakes++;
  state.handshakeSatisfied(peer);
  peer.timers.anyAuthenticatedPacketReceived(now);
  peer.timers.handshakeComplete(now);
  peer.timers.sessionDerived(now);
  state.sendKeepalive(peer); // confirms the session; staged packets go first
  state.event({
    type: "handshake-completed",
    peer: peer.publicKeyHex,
    initiator: true,
    pskIndex: result.pskUsed,
    derivedAt: now,
  });
}

function consumeCookieReply(state: DeviceState, msg: Uint8Array): void {
  const peer = peerByHandshakeIndex(state, readU32LE(msg, CookieReplyOffsetReceiver));
  if (peer) peer.cookies.consumeReply(msg);
}

/**
 * Key confirmation: the first authenticated packet arrived under a responder's "next" keypair. It
 * becomes current, and the handshake counts now (last handshake, timers, event), as wireguard-go's
 * ReceivedWithKeypair and the kernel do.
 */
export function confirmKeypair(state: DeviceState, id: number, slot: number): void {
  const peer = state.byId[id];
  if (!peer) return;
  const now = state.clock();
  const derivedAt = state.slots.created(slot);
  if (!state.rotate(peer, { kind: "confirmed", slot })) return;
  peer.lastHandshakeMs = now;
  peer.handshakes++;
  peer.timers.handshakeComplete(now);
  state.handshakeSatisfied(peer);
  state.dp.wake();
  state.event({
    type: "handshake-completed",
    peer: peer.publicKeyHex,
    initiator: false,
    pskIndex: 0,
    derivedAt,
  });
}

/** Reports that a response we sent will never be confirmed (`how`: why we know). */
export function responseUnconfirmed(state: DeviceState, peer: Peer, how: string): void {
  state.event({
    type: "response-unconfirmed",
    peer: peer.publicKeyHex,
    reason: `our handshake response was never confirmed (${how}): the peer's PSK differs, or our ` +
      "responses do not reach it",
  });
}

/** The peer whose handshake in flight has local index `index`. */
function peerByHandshakeIndex(state: DeviceState, index: number): Peer | undefined {
  if (!state.slots.owns(index)) return undefined;
  for (const p of state.peers.values()) if (p.handshake && p.handshake.localIndex === index) return p;
  return undefined;
}
