/**
 * Admission of incoming handshake messages (initiations and responses) before any Noise work, as
 * wireguard-go's handshake workers do it: mac1 first (invalid → drop); then, only while the device is
 * under load, mac2 — a message without a valid cookie gets a cookie reply instead of a (costly)
 * Noise computation — and a per-source rate limit; finally the bounded handshake queue. It runs in
 * the decrypt worker, so a flood never reaches the control plane's event loop.
 *
 * The queue prefers messages with a valid mac2: "under load" starts when the queue holds
 * {@link UNDER_LOAD_QUEUE} messages, and from then on only messages with a valid mac2 (within their
 * source's rate) are queued, so the room above that mark up to {@link HANDSHAKE_QUEUE_SIZE} is kept for
 * them. Pure: the clock, the randomness (through the cookie checker) and the queue depth are inputs.
 * @module
 */
import { CookieChecker } from "./cookie.ts";
import { RateLimiter } from "./ratelimiter.ts";
import { UNDER_LOAD_AFTER_TIME } from "./constants.ts";

/** Handshake messages waiting for the control plane before new ones are dropped (wireguard-go: 1024). */
export const HANDSHAKE_QUEUE_SIZE = 1024;
/**
 * Queued handshake messages at which the device is under load. wireguard-go uses 1/8 of its queue
 * (128), which its handshake workers on every core clear in a few milliseconds; twofold's one control
 * plane thread needs about 0.5–3 ms per initiation (X25519 in JavaScript), so the mark is set to a
 * backlog of similar duration: 16 messages (≈ 10–50 ms). A burst of more legitimate initiations than
 * that gets cookie replies and completes on the initiators' retry, as WireGuard intends.
 */
export const UNDER_LOAD_QUEUE = 16;

/** Why a handshake message was dropped before the Noise layer saw it. */
export type AdmissionDropReason = "invalid-mac1" | "rate-limited" | "queue-full";

/** What to do with a handshake message. */
export type Admission =
  /** Queue it for the control plane (Noise). */
  | { verdict: "queue" }
  /** Drop it. */
  | { verdict: "drop"; reason: AdmissionDropReason }
  /** Answer the sender with this 64-byte cookie reply instead. */
  | { verdict: "cookie"; reply: Uint8Array };

/** Rate-limiter key of a source: its IP bytes (the port is not part of it), as a string. */
function ipKey(src: Uint8Array): string {
  let key = "";
  for (let i = 0; i < src.length - 2; i++) key += String.fromCharCode(src[i]);
  return key;
}

/** Decides, per message, whether the Noise layer gets to see it. */
export class HandshakeAdmission {
  readonly #checker: CookieChecker;
  readonly #limiter: RateLimiter;
  readonly #clock: () => number;
  #lastUnderLoad = -Infinity;

  /**
   * For the device whose static public key is `localPublic`. `random` feeds the cookie secret (which
   * never leaves this object) and the reply nonces.
   */
  constructor(localPublic: Uint8Array, clock: () => number, random?: (n: number) => Uint8Array) {
    this.#clock = clock;
    this.#checker = new CookieChecker(localPublic, clock, random);
    this.#limiter = new RateLimiter(clock);
  }

  /** True while under load: the queue is at the mark now, or was within the last second. */
  underLoad(queueDepth: number): boolean {
    const now = this.#clock();
    if (queueDepth >= UNDER_LOAD_QUEUE) this.#lastUnderLoad = now;
    return now - this.#lastUnderLoad < UNDER_LOAD_AFTER_TIME;
  }

  /**
   * Admits or refuses `msg` (type 1 or 2, exactly its length) from `src` (IP bytes ‖ big-endian port)
   * given the number of handshake messages already queued. Never throws on hostile input.
   */
  admit(msg: Uint8Array, src: Uint8Array, queueDepth: number): Admission {
    if (!this.#checker.checkMac1(msg)) return { verdict: "drop", reason: "invalid-mac1" };
    if (!this.underLoad(queueDepth)) return { verdict: "queue" };
    if (!this.#checker.checkMac2(msg, src)) {
      const sender = (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0;
      return { verdict: "cookie", reply: this.#checker.createReply(msg, sender, src) };
    }
    if (!this.#limiter.allow(ipKey(src))) return { verdict: "drop", reason: "rate-limited" };
    if (queueDepth >= HANDSHAKE_QUEUE_SIZE) return { verdict: "drop", reason: "queue-full" };
    return { verdict: "queue" };
  }

  /** Drops idle rate-limiter entries. */
  gc(): void {
    this.#limiter.gc();
  }
}
