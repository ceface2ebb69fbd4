/**
 * Whether handshakes under a peer's agreed key work: the PSK gate's per-peer record of handshake
 * trouble, and the pure rules that read it. The gate (`psk-gate.ts`) feeds it the handshake outcomes and
 * acts on what it returns (ending sessions, starting a handshake, reporting).
 *
 * A suspected PSK mismatch is detected on either side of a handshake, once the failures have lasted
 * longer than the install skew window (the two sides install a key moments apart; a failure just after
 * an install is retried quickly instead, with a doubling delay):
 * - as initiator: handshake responses that keep failing to authenticate. This proves the keys differ, so
 *   the peer's current sessions end (fail closed: traffic stops until a handshake under matching keys
 *   succeeds).
 * - as responder: responses we sent that the peer never confirmed (no authenticated packet under the new
 *   session, as WireGuard's key confirmation). The peer's key differs, or our responses do not reach it;
 *   since a one-way path looks the same, the sessions are left to the initiator's side to end.
 * A suspected mismatch clears when a session confirms. No key material is involved.
 * @module
 */

/** One peer's handshake trouble. Times are clock times (ms). */
export interface HandshakeWatch {
  /** Consecutive handshake responses that failed to authenticate (we initiated). */
  failures: number;
  /** Clock time of the first of the current run of failures; null when none. */
  failingSince: number | null;
  /** Consecutive responses of ours that the peer never confirmed (it initiated). */
  unconfirmed: number;
  /** Clock time of the first of the current run of unconfirmed responses; null when none. */
  unconfirmedSince: number | null;
  /** A PSK mismatch is suspected (reported; the gate's state does not change). */
  mismatchSuspected: boolean;
  /** The sessions were ended for the current suspected mismatch (initiator-side proof). */
  mismatchEndedSessions: boolean;
  /** When a skew retry is due (ms, clock time); 0 when none. */
  retryAt: number;
  /** Delay of the next skew retry (ms). */
  retryDelay: number;
}

/** The gate's settings the rules read (see `PskGateOptions`). */
export interface WatchPolicy {
  /** Failures (of one side) that make a mismatch suspected. */
  readonly mismatchThreshold: number;
  /** Install skew window (ms). */
  readonly skewWindowMs: number;
  /** First skew retry delay (ms). */
  readonly skewRetryMs: number;
}

/** What a failed response asks of the gate. */
export interface FailureVerdict {
  /** End the peer's sessions: the keys differ (proved as initiator). */
  endSessions: boolean;
  /** This failure made the mismatch suspected (it was not before): report it. */
  newlySuspected: boolean;
}

const NO_ACTION: FailureVerdict = { endSessions: false, newlySuspected: false };

/** A watch with no trouble and no retry pending. */
export function newHandshakeWatch(): HandshakeWatch {
  return {
    failures: 0,
    failingSince: null,
    unconfirmed: 0,
    unconfirmedSince: null,
    mismatchSuspected: false,
    mismatchEndedSessions: false,
    retryAt: 0,
    retryDelay: 0,
  };
}

/** Forgets every failure and a suspected mismatch (a pending retry stays). */
export function clearTrouble(w: HandshakeWatch): void {
  w.failures = 0;
  w.failingSince = null;
  w.unconfirmed = 0;
  w.unconfirmedSince = null;
  w.mismatchSuspected = false;
  w.mismatchEndedSessions = false;
}

/** No skew retry pending. */
export function cancelRetry(w: HandshakeWatch): void {
  w.retryAt = 0;
}

/** A new key: no skew retry pending, and the next one starts at the first delay again. */
export function restartRetries(w: HandshakeWatch): void {
  w.retryAt = 0;
  w.retryDelay = 0;
}

/** True when a skew retry is due at `now` (it is then no longer pending): start a handshake. */
export function takeDueRetry(w: HandshakeWatch, now: number): boolean {
  if (w.retryAt === 0 || now < w.retryAt) return false;
  w.retryAt = 0;
  return true;
}

/**
 * A session confirmed (both sides hold the same key): every failure is forgotten and no retry is
 * pending. True when this cleared a suspected mismatch.
 */
export function sessionConfirmed(w: HandshakeWatch): boolean {
  const wasSuspected = w.mismatchSuspected;
  clearTrouble(w);
  w.retryAt = 0;
  return wasSuspected;
}

/**
 * A handshake response that failed to authenticate (we initiated). `installedAt` is when the agreed
 * key was installed, null while the gate is closed (the failure is then only counted); `now` is read
 * only when it counts. Within the skew window a retry is scheduled; `mismatchThreshold` failures lasting
 * the skew window end the sessions, once per suspected mismatch.
 */
export function failedResponse(
  w: HandshakeWatch,
  installedAt: number | null,
  now: () => number,
  p: WatchPolicy,
): FailureVerdict {
  w.failures++;
  if (installedAt === null) return NO_ACTION;
  const t = now();
  w.failingSince ??= t;
  if (t - installedAt < p.skewWindowMs && w.retryAt === 0) {
    // The other side may not have installed the same key yet: try again shortly.
    w.retryDelay = w.retryDelay === 0 ? p.skewRetryMs : w.retryDelay * 2;
    w.retryAt = t + w.retryDelay;
  }
  if (w.mismatchEndedSessions || w.failures < p.mismatchThreshold || t - w.failingSince < p.skewWindowMs) {
    return NO_ACTION;
  }
  const newlySuspected = !w.mismatchSuspected;
  w.mismatchSuspected = true;
  w.mismatchEndedSessions = true;
  return { endSessions: true, newlySuspected };
}

/**
 * A response of ours that the peer never confirmed (it initiated). Arguments as for
 * {@link failedResponse}. True when this made a mismatch suspected (the sessions stay: a one-way path
 * looks the same).
 */
export function unconfirmedResponse(
  w: HandshakeWatch,
  installedAt: number | null,
  now: () => number,
  p: WatchPolicy,
): boolean {
  w.unconfirmed++;
  if (installedAt === null) return false;
  const t = now();
  w.unconfirmedSince ??= t;
  if (w.mismatchSuspected || w.unconfirmed < p.mismatchThreshold || t - w.unconfirmedSince < p.skewWindowMs) {
    return false;
  }
  w.mismatchSuspected = true;
  return true;
}
