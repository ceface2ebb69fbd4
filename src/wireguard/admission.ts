/**
 * Admission of incoming handshake messages (initiations and responses), as wireguard-go's receive
 * path does it: mac1 first (invalid → drop), then, only while the device is under load, mac2 — a
 * message without a valid cookie gets a cookie reply instead of a (costly) Noise computation — and a
 * per-source rate limit. Pure: the clock and the queue depth are inputs.
 * @module
 */
import { CookieChecker } from "./cookie.ts";
import { RateLimiter } from "./ratelimiter.ts";
import { UNDER_LOAD_AFTER_TIME } from "./constants.ts";

/** Queued handshake messages above which the device is under load (wireguard-go: 4096 / 8). */
export const UNDER_LOAD_QUEUE = 512;

/** What to do with a handshake message. */
export type Admission =
  | { verdict: "process" }
  | { verdict: "drop"; reason: "invalid-mac1" | "rate-limited" }
  | { verdict: "cookie"; reply: Uint8Array };

/** Decides, per message, whether the Noise layer gets to see it. */
export class HandshakeAdmission {
  readonly #checker: CookieChecker;
  readonly #limiter: RateLimiter;
  readonly #clock: () => number;
  #lastUnderLoad = -Infinity;

  /** For the device whose static public key is `localPublic`. */
  constructor(localPublic: Uint8Array, clock: () => number) {
    this.#clock = clock;
    this.#checker = new CookieChecker(localPublic, clock);
    this.#limiter = new RateLimiter(clock);
  }

  /** True while under load: the queue is deep now, or was within the last second. */
  underLoad(queueDepth: number): boolean {
    const now = this.#clock();
    if (queueDepth >= UNDER_LOAD_QUEUE) this.#lastUnderLoad = now;
    return now - this.#lastUnderLoad < UNDER_LOAD_AFTER_TIME;
  }

  /**
   * Admits or refuses `msg` (type 1 or 2) from `src` (IP bytes ‖ big-endian port) given the current
   * handshake queue depth. `sourceKey` identifies the source IP for rate limiting.
   */
  admit(msg: Uint8Array, src: Uint8Array, sourceKey: string, queueDepth: number): Admission {
    if (!this.#checker.checkMac1(msg)) return { verdict: "drop", reason: "invalid-mac1" };
    if (!this.underLoad(queueDepth)) return { verdict: "process" };
    if (!this.#checker.checkMac2(msg, src)) {
      const sender = (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0;
      return { verdict: "cookie", reply: this.#checker.createReply(msg, sender, src) };
    }
    if (!this.#limiter.allow(sourceKey)) return { verdict: "drop", reason: "rate-limited" };
    return { verdict: "process" };
  }

  /** Drops idle rate-limiter entries. */
  gc(): void {
    this.#limiter.gc();
  }
}
