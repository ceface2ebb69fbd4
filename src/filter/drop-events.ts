/**
 * Rate limit for the `packet-dropped` event: at most one event per (peer slot, drop reason) per
 * {@link DROP_EVENT_INTERVAL_MS}, carrying how many packets that pair dropped since its last event, so
 * an operator sees what is being blocked without a flood. Pure (time comes in as `now`), fixed memory,
 * no allocation: the decrypt worker asks it on every drop and posts a message only when it says so.
 * @module
 */
import { MAX_PEERS } from "../wireguard/dataplane/shared-state.ts";
import { DROP_REASONS } from "./verdict.ts";

/** Shortest time between two events of one (peer, reason), ms. */
export const DROP_EVENT_INTERVAL_MS = 1000;

/** Per (peer slot, reason): when the last event went out and how many drops it has not reported yet. */
export class DropEventLimiter {
  readonly #lastEvent: Float64Array;
  readonly #pending: Float64Array;
  readonly #slots: number;

  /** A limiter for `slots` peer slots (default MAX_PEERS). */
  constructor(slots: number = MAX_PEERS) {
    this.#slots = slots;
    this.#lastEvent = new Float64Array(slots * DROP_REASONS.length).fill(-Infinity);
    this.#pending = new Float64Array(slots * DROP_REASONS.length);
  }

  /**
   * Counts one drop of `reason` from `slot` at `now`. Returns 0 when no event is due, else the number of
   * drops the event reports (this one and those held back since the previous event).
   */
  note(slot: number, reason: number, now: number): number {
    if (slot < 0 || slot >= this.#slots || reason <= 0 || reason >= DROP_REASONS.length) return 0;
    const i = slot * DROP_REASONS.length + reason;
    this.#pending[i]++;
    if (now - this.#lastEvent[i] < DROP_EVENT_INTERVAL_MS) return 0;
    const n = this.#pending[i];
    this.#pending[i] = 0;
    this.#lastEvent[i] = now;
    return n;
  }

  /** Forgets a slot (its peer was removed), so the next peer in it starts fresh. */
  resetSlot(slot: number): void {
    if (slot < 0 || slot >= this.#slots) return;
    const at = slot * DROP_REASONS.length;
    this.#lastEvent.fill(-Infinity, at, at + DROP_REASONS.length);
    this.#pending.fill(0, at, at + DROP_REASONS.length);
  }
}
