/**
 * The PSK gate's vocabulary: its per-peer state, events, status, options, and the target it drives
 * (the aes0 device). The state machine itself is `psk-gate.ts`, which re-exports these types.
 * @module
 */
import type { KeySource } from "../config/key-source.ts";

/** The gate's state for one peer (see the module doc for the exact semantics). */
export type GateState = "closed" | "open" | "stale";

/** Something the gate did or refused, for logs, the admin API and tests. Never holds key material. */
export interface GateEvent {
  /** What happened. */
  type:
    | "gate-opened"
    | "gate-closed"
    | "gate-stale"
    | "key-installed"
    | "key-refused"
    | "mismatch-suspected"
    | "mismatch-cleared"
    | "handshake";
  /** The peer's public key, lowercase hex (public, not a secret). */
  peer: string;
  /** Key epoch concerned, or null when none applies. */
  epoch: number | null;
  /** Why, in words. */
  reason: string;
  /** Clock time (ms) of the event. */
  at: number;
}

/** What the gate drives: implemented by the aes0 {@link Device}. */
export interface GateTarget {
  /**
   * Sets the peer's PSK and the extra PSKs an initiator also accepts in a response (copied by the
   * target). Returns false when the target has no such peer.
   */
  setPresharedKey(peer: Uint8Array, psk: Uint8Array, extraPsks: Uint8Array[]): boolean;
  /** Starts a handshake with the peer now. */
  initiateHandshake(peer: Uint8Array): void;
  /** Ends the peer's sessions (its transport keys are wiped; the next packet needs a new handshake). */
  dropSessions(peer: Uint8Array): void;
}

/** Options of a {@link PskGate}. */
export interface PskGateOptions {
  /** Expected interval between key rotations (ms). Default 120 000. */
  rotationIntervalMs?: number;
  /**
   * Age (ms) at which a key a key plane rotates (`dske`, `ska`) is replaced by random bytes and the gate
   * closes. Default 3 × rotation; may be Infinity.
   */
  maxAgeMs?: number;
  /** Age (ms) at which an open gate with a rotated key becomes stale. Default min(2 × rotation, maxAgeMs). */
  staleAfterMs?: number;
  /**
   * Age (ms) at which a `manual` key expires (closes the gate); it goes stale at two thirds of it.
   * Default Infinity: manual keys never expire (nothing rotates them).
   */
  manualMaxAgeMs?: number;
  /** How long (ms) after a rotation an initiator also accepts the previous PSK; 0..30 000, default 30 000. */
  graceMs?: number;
  /**
   * Consecutive failed handshake responses, spanning at least `skewWindowMs`, that make a mismatch
   * suspected. Default 2.
   */
  mismatchThreshold?: number;
  /**
   * Install skew window (ms), default 5 000: the two sides of an agreement install the key moments
   * apart, so a handshake response that fails within this window after an install is retried after
   * `skewRetryMs` (doubling), from {@link PskGate.tick}, instead of waiting for WireGuard's 5 s rekey
   * timeout; and failures are a mismatch only once they have lasted this long.
   */
  skewWindowMs?: number;
  /** First retry delay (ms) inside the skew window. Default 100. */
  skewRetryMs?: number;
  /** Clock in ms. Default `Date.now`. */
  clock?: () => number;
  /** Random source returning n fresh bytes. Default `crypto.getRandomValues`. */
  random?: (n: number) => Uint8Array;
  /** Event sink. */
  onEvent?: (e: GateEvent) => void;
}

/** Result of {@link PskGate.install}. The reason never contains key material. */
export type InstallResult = { ok: true } | { ok: false; reason: string };

/**
 * A handshake outcome reported by the device. Success: a session both sides derived under the same PSK
 * (an initiator consumed the response; a responder received the first authenticated packet under the new
 * session, key confirmation). `pskIndex` is 0 for the PSK the device held when the session keys were
 * derived and i for the i-th extra PSK (the previous key during the grace period); `derivedAt` (clock
 * time, default now) tells which key was the current one then, since a responder's session is confirmed
 * later. Failure: a response we received (as initiator) did not authenticate, or, with `unconfirmed`, a
 * response we sent (as responder) was never confirmed.
 */
export type HandshakeOutcome =
  | { ok: true; pskIndex: number; initiator: boolean; derivedAt?: number }
  | { ok: false; unconfirmed?: boolean };

/** One peer's gate, as reported by {@link PskGate.status}. No key material. */
export interface GateStatus {
  /** Peer public key, hex. */
  peer: string;
  /** Configured key source. */
  source: KeySource;
  /** Gate state. */
  state: GateState;
  /** Reason for the current state (or the latest notable condition, e.g. a suspected mismatch). */
  reason: string;
  /** Epoch of the agreed key the device holds; null while closed. */
  epoch: number | null;
  /** Highest epoch ever accepted for this peer (the replay guard); null if none yet. */
  lastInstalledEpoch: number | null;
  /** Age of the agreed key (ms); null while closed. */
  keyAgeMs: number | null;
  /** Remaining grace for the previous key (ms); 0 when none. */
  graceRemainingMs: number;
  /** Epoch of the key the latest completed handshake used; null if none (or it ran under a random key). */
  lastHandshakeEpoch: number | null;
  /** Consecutive failed handshake responses since the gate opened or a session last confirmed. */
  failures: number;
  /** Consecutive responses we sent that were never confirmed, since the gate opened or a session confirmed. */
  unconfirmed: number;
  /** True while a PSK mismatch is suspected. */
  mismatchSuspected: boolean;
}
