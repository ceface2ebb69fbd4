/**
 * The PSK gate's adapters to the aes0 device: the device's PSK policy hooks backed by a gate, and the
 * mapping from device events to the handshake outcomes the gate counts (on the event's typed cause).
 * @module
 */
import type { DeviceEvent, PskPolicy } from "../wireguard/device.ts";
import type { KeySource } from "../config/key-source.ts";
import type { HandshakeOutcome } from "./gate-types.ts";
import type { PskGate } from "./psk-gate.ts";

/** Options of {@link pskPolicy}. */
export interface PskPolicyOptions {
  /**
   * Key source for a peer the device creates without the gate knowing it (e.g. `wg set aes0 peer NEW`).
   * Default `manual`; null leaves such peers unmanaged (random PSK, UAPI key writes refused).
   */
  adoptUnknownAs?: KeySource | null;
}

/**
 * Adapts a gate to the device's {@link PskPolicy} hooks: UAPI `preshared_key` writes go through
 * {@link PskGate.uapiWrite}; a peer the device creates starts with a random PSK
 * ({@link PskGate.peerCreatedInTarget}), never the all-zero default.
 */
export function pskPolicy(gate: PskGate, opts: PskPolicyOptions = {}): PskPolicy {
  const adoptAs = opts.adoptUnknownAs === undefined ? "manual" : opts.adoptUnknownAs;
  return {
    onUapiPsk: (peerPublicKey, psk) => gate.uapiWrite(peerPublicKey, psk),
    // A peer the same request creates is adopted first (onPeerCreated), so judge it by its source then.
    checkUapiPsk: (peerPublicKey, psk, created) =>
      gate.uapiWriteCheck(peerPublicKey, psk, gate.sourceOf(peerPublicKey) ?? (created ? adoptAs : null)),
    onPeerCreated: (peerPublicKey) => gate.peerCreatedInTarget(peerPublicKey, adoptAs),
  };
}

/**
 * Maps a device event to a handshake outcome for {@link PskGate.handshakeResult}, or null when the event
 * says nothing about the PSK (failures other than a response that did not authenticate or was never
 * confirmed).
 */
export function handshakeOutcomeOf(e: DeviceEvent): { peer: string; outcome: HandshakeOutcome } | null {
  if (e.type === "handshake-completed") {
    return {
      peer: e.peer,
      outcome: { ok: true, pskIndex: e.pskIndex, initiator: e.initiator, derivedAt: e.derivedAt },
    };
  }
  if (e.type === "response-unconfirmed") return { peer: e.peer, outcome: { ok: false, unconfirmed: true } };
  if (e.peer !== null && e.cause === "response-unauthenticated") {
    return { peer: e.peer, outcome: { ok: false } };
  }
  return null;
}
