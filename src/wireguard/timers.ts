/**
 * Per-peer timer state machine with wireguard-go's timers.go semantics, as pure state.
 *
 * The owner reports events (packet sent/received, handshake progress) with the current time in ms,
 * asks {@link PeerTimers.nextDeadline} when to come back, and calls {@link PeerTimers.poll} then; poll
 * returns the actions that became due. Nothing here reads a clock or schedules anything. The five
 * timers are: handshake retransmit, send-keepalive, new-handshake (nothing heard back), zero key
 * material, and persistent keepalive. A sixth, twofold's own, changes nothing on the wire: response
 * confirmation, which tells the owner that a handshake response it sent was never confirmed (see
 * {@link PeerTimers.responseSent}).
 * @module
 */

import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  NEW_HANDSHAKE_TIMEOUT,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_AFTER_TIME_RECEIVING,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  RESPONSE_CONFIRMATION_TIMEOUT,
  ZERO_KEY_MATERIAL_TIMEOUT,
} from "./constants.ts";

/**
 * What the owner must do when a timer fires:
 * - `send-initiation`: send a handshake initiation (then call `handshakeInitiated`).
 * - `send-keepalive`: send an empty transport message (queue it if there is no keypair).
 * - `zero-keys`: destroy all keypairs and handshake state and drop staged packets.
 * - `handshake-gave-up`: retries are exhausted; drop staged packets. No more retries until a new
 *   handshake is started (for example because new data is queued).
 * - `response-unconfirmed`: a handshake response we sent was not confirmed within
 *   RESPONSE_CONFIRMATION_TIMEOUT (report it; nothing to send).
 */
export type TimerAction =
  | "send-initiation"
  | "send-keepalive"
  | "zero-keys"
  | "handshake-gave-up"
  | "response-unconfirmed";

/** Options for {@link PeerTimers}. */
export interface PeerTimersOptions {
  /** Persistent keepalive interval in ms; 0 disables it. */
  persistentKeepaliveMs: number;
  /** Jitter source returning an integer in 0..333 ms; defaults to Math.random. */
  jitter?: () => number;
}

function defaultJitter(): number {
  return Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX);
}

function checkInterval(ms: number): void {
  if (!(Number.isFinite(ms) && ms >= 0)) throw new Error(`invalid persistent keepalive interval ${ms} ms`);
}

/** Timer state of one peer. All times are ms on the owner's clock; Infinity means "not armed". */
export class PeerTimers {
  /**
   * Retransmissions since the last fresh handshake attempt. Incremented by each retransmit from
   * `poll`; reset by `handshakeComplete`, `handshakeRequested` and the new-handshake timer.
   */
  handshakeAttempts = 0;
  /**
   * Set by the owner when `keepKeyFreshReceiving` made it start a handshake, so it does so only once
   * per session; cleared by `handshakeComplete`.
   */
  sentLastMinuteHandshake = false;
  /** Time of the last completed handshake, or null if none yet. */
  lastHandshakeAt: number | null = null;

  #persistentKeepaliveMs: number;
  readonly #jitter: () => number;
  #needAnotherKeepalive = false;
  #retransmitHandshakeAt = Infinity;
  #sendKeepaliveAt = Infinity;
  #newHandshakeAt = Infinity;
  #zeroKeyMaterialAt = Infinity;
  #persistentKeepaliveAt = Infinity;
  #responseUnconfirmedAt = Infinity;

  /** Creates a peer's timers with nothing armed; call `start` when the peer goes up. */
  constructor(opts: PeerTimersOptions) {
    checkInterval(opts.persistentKeepaliveMs);
    this.#persistentKeepaliveMs = opts.persistentKeepaliveMs;
    this.#jitter = opts.jitter ?? defaultJitter;
  }

  /** Current persistent keepalive interval in ms (0 = off). */
  get persistentKeepaliveMs(): number {
    return this.#persistentKeepaliveMs;
  }

  /** The peer went up: with persistent keepalive on, a keepalive is due immediately. */
  start(now: number): void {
    if (this.#persistentKeepaliveMs > 0) this.#persistentKeepaliveAt = now;
  }

  /** The peer went down: disarm every timer (counters and flags are kept). */
  stop(): void {
    this.#retransmitHandshakeAt = Infinity;
    this.#sendKeepaliveAt = Infinity;
    this.#newHandshakeAt = Infinity;
    this.#zeroKeyMaterialAt = Infinity;
    this.#persistentKeepaliveAt = Infinity;
    this.#responseUnconfirmedAt = Infinity;
    this.#needAnotherKeepalive = false;
  }

  /**
   * Changes the persistent keepalive interval. Turning it on from off makes a keepalive due at `now`;
   * turning it off disarms it; changing a non-zero value takes effect at the next re-arm.
   */
  setPersistentKeepalive(ms: number, now: number): void {
    checkInterval(ms);
    const old = this.#persistentKeepaliveMs;
    this.#persistentKeepaliveMs = ms;
    if (ms === 0) this.#persistentKeepaliveAt = Infinity;
    else if (old === 0) this.#persistentKeepaliveAt = now;
  }

  /** An authenticated data (non-keepalive) packet was sent: expect a reply within 15 s + jitter. */
  dataSent(now: number): void {
    if (this.#newHandshakeAt === Infinity) {
      this.#newHandshakeAt = now + NEW_HANDSHAKE_TIMEOUT + this.#jitter();
    }
  }

  /** An authenticated data (non-keepalive) packet was received: answer within 10 s if we send nothing. */
  dataReceived(now: number): void {
    if (this.#sendKeepaliveAt === Infinity) this.#sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
    else this.#needAnotherKeepalive = true;
  }

  /**
   * Any authenticated packet (data, keepalive or handshake) was sent: cancels the pending keepalive and
   * re-arms the persistent keepalive.
   */
  anyAuthenticatedPacketSent(now: number): void {
    this.#traversal(now);
    this.#sendKeepaliveAt = Infinity;
  }

  /**
   * Any authenticated packet (data, keepalive or handshake) was received: cancels the new-handshake
   * timer and re-arms the persistent keepalive.
   */
  anyAuthenticatedPacketReceived(now: number): void {
    this.#traversal(now);
    this.#newHandshakeAt = Infinity;
  }

  /** A handshake initiation was sent: retransmit after REKEY_TIMEOUT + jitter unless it completes. */
  handshakeInitiated(now: number): void {
    this.#retransmitHandshakeAt = now + REKEY_TIMEOUT + this.#jitter();
  }

  /**
   * A handshake is being started for a reason other than a `send-initiation` from `poll` (new data with
   * no keypair, `keepKeyFresh*`, configuration): resets the attempt count, like wireguard-go's
   * SendHandshakeInitiation(isRetry = false).
   */
  handshakeRequested(): void {
    this.handshakeAttempts = 0;
  }

  /**
   * We answered an initiation (our session waits in "next" for the initiator's first packet): unless a
   * handshake completes within RESPONSE_CONFIRMATION_TIMEOUT, `poll` reports `response-unconfirmed`.
   * Returns true when the previous response was still waiting: the new initiation superseded it, so it
   * counts as unconfirmed now (and is not reported again).
   */
  responseSent(now: number): boolean {
    const superseded = this.#responseUnconfirmedAt !== Infinity;
    this.#responseUnconfirmedAt = now + RESPONSE_CONFIRMATION_TIMEOUT;
    return superseded;
  }

  /** The response waiting for confirmation lost its session (keys dropped): nothing is reported for it. */
  responseAbandoned(): void {
    this.#responseUnconfirmedAt = Infinity;
  }

  /**
   * A handshake completed (response consumed, or first data message confirmed the responder's keys).
   * Either proves both sides hold the same keys, so a response waiting for confirmation is settled too.
   */
  handshakeComplete(now: number): void {
    this.#responseUnconfirmedAt = Infinity;
    this.#retransmitHandshakeAt = Infinity;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.lastHandshakeAt = now;
  }

  /** Session keys were derived: all key material is zeroed 540 s from now unless renewed. */
  sessionDerived(now: number): void {
    this.#zeroKeyMaterialAt = now + ZERO_KEY_MATERIAL_TIMEOUT;
  }

  /** The earliest armed deadline, or Infinity if no timer is armed. */
  nextDeadline(): number {
    let t = this.#retransmitHandshakeAt;
    if (this.#sendKeepaliveAt < t) t = this.#sendKeepaliveAt;
    if (this.#newHandshakeAt < t) t = this.#newHandshakeAt;
    if (this.#zeroKeyMaterialAt < t) t = this.#zeroKeyMaterialAt;
    if (this.#persistentKeepaliveAt < t) t = this.#persistentKeepaliveAt;
    if (this.#responseUnconfirmedAt < t) t = this.#responseUnconfirmedAt;
    return t;
  }

  /**
   * Fires every timer whose deadline is `<= now`, earliest first, and returns the resulting actions
   * (each at most once). Timers re-armed while firing are relative to `now`.
   */
  poll(now: number): TimerAction[] {
    const actions: TimerAction[] = [];
    const add = (a: TimerAction) => {
      if (!actions.includes(a)) actions.push(a);
    };
    for (;;) {
      const due = this.nextDeadline();
      if (!(due <= now)) break;
      if (this.#retransmitHandshakeAt === due) {
        this.#retransmitHandshakeAt = Infinity;
        this.#expiredRetransmitHandshake(now, add);
      } else if (this.#sendKeepaliveAt === due) {
        this.#sendKeepaliveAt = Infinity;
        add("send-keepalive");
        if (this.#needAnotherKeepalive) {
          this.#needAnotherKeepalive = false;
          this.#sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
        }
      } else if (this.#newHandshakeAt === due) {
        this.#newHandshakeAt = Infinity;
        this.handshakeAttempts = 0;
        add("send-initiation");
      } else if (this.#zeroKeyMaterialAt === due) {
        this.#zeroKeyMaterialAt = Infinity;
        add("zero-keys");
      } else if (this.#responseUnconfirmedAt === due) {
        this.#responseUnconfirmedAt = Infinity;
        add("response-unconfirmed");
      } else {
        this.#persistentKeepaliveAt = Infinity;
        if (this.#persistentKeepaliveMs > 0) add("send-keepalive");
      }
    }
    return actions;
  }

  #expiredRetransmitHandshake(now: number, add: (a: TimerAction) => void): void {
    if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      this.#sendKeepaliveAt = Infinity;
      if (this.#zeroKeyMaterialAt === Infinity) this.#zeroKeyMaterialAt = now + ZERO_KEY_MATERIAL_TIMEOUT;
      add("handshake-gave-up");
    } else {
      this.handshakeAttempts++;
      add("send-initiation");
    }
  }

  #traversal(now: number): void {
    if (this.#persistentKeepaliveMs > 0) this.#persistentKeepaliveAt = now + this.#persistentKeepaliveMs;
  }
}

/**
 * Whether sending on the current keypair should trigger a new handshake: after REKEY_AFTER_MESSAGES
 * messages, or, for the initiator, when the keypair is older than REKEY_AFTER_TIME.
 */
export function keepKeyFreshSending(
  isInitiator: boolean,
  keyCreated: number,
  sendCounter: number,
  now: number,
): boolean {
  return sendCounter > REKEY_AFTER_MESSAGES || (isInitiator && now - keyCreated > REKEY_AFTER_TIME);
}

/**
 * Whether receiving on the current keypair should trigger a new handshake: only the initiator, once
 * the keypair is older than 165 s (REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT − REKEY_TIMEOUT). The owner
 * also skips this while `PeerTimers.sentLastMinuteHandshake` is set, and sets it when it acts.
 */
export function keepKeyFreshReceiving(isInitiator: boolean, keyCreated: number, now: number): boolean {
  return isInitiator && now - keyCreated > REKEY_AFTER_TIME_RECEIVING;
}
