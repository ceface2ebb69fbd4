/**
 * At most one log line per interval for a message that an attacker can trigger at will (refused
 * connections, failing accepts): the first occurrence is logged at once, later ones within the
 * interval are counted and the count rides on the next line that is let through.
 * @module
 */

/** Default interval between two lines of one throttled message, ms. */
export const LOG_THROTTLE_INTERVAL_MS = 1000;

/** Lets one line through per interval; see the module doc. Pure: the clock is an input. */
export class LogThrottle {
  readonly #intervalMs: number;
  #lastAt = -Infinity;
  #suppressed = 0;

  /** Creates a throttle letting through one line every `intervalMs`. */
  constructor(intervalMs = LOG_THROTTLE_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  /**
   * The line to log at time `now` (ms) for `message`, with the number of lines held back since the
   * previous one appended; null when a line was already let through within the interval.
   */
  admit(message: string, now: number): string | null {
    if (now - this.#lastAt < this.#intervalMs) {
      this.#suppressed++;
      return null;
    }
    this.#lastAt = now;
    const held = this.#suppressed;
    this.#suppressed = 0;
    return held > 0 ? `${message} (${held} more like it not logged)` : message;
  }
}
