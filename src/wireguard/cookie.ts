/**
 * mac1 / mac2 / cookie-reply handling (docs/design.md §2.4, wireguard-go cookie.go semantics).
 *
 * - `mac1 = MAC(HASH("mac1----" ‖ S_receiver^pub), msg[..mac1])`, checked first on every handshake
 *   message.
 * - `mac2 = MAC(cookie, msg[..mac2])` when the sender holds a cookie under 120 s old, else zeros.
 * - `cookie = MAC(R, source)` where `R` is a random secret replaced every 120 s.
 * - A cookie reply carries `XAEAD(HASH("cookie--" ‖ S_sender_of_reply^pub), nonce, cookie,
 *   ad = mac1 of the message answered)`.
 *
 * Both classes are pure state machines: the clock (milliseconds) and randomness are injected.
 * @module
 */
import { hash, mac } from "../crypto/blake2s.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { xopen, xseal } from "../crypto/xaead.ts";
import {
  CookieReplyOffsetCookie,
  CookieReplyOffsetNonce,
  CookieReplyOffsetReceiver,
  mac1Offset,
  mac2Offset,
  MAC_LEN,
  MessageCookieReplySize,
  MessageCookieReplyType,
  messageType,
  writeMessageHeader,
  writeU32LE,
} from "./messages.ts";

/** Lifetime of the checker's secret and of a received cookie (ms). */
export const COOKIE_REFRESH_TIME_MS = 120_000;

const LABEL_MAC1 = new TextEncoder().encode("mac1----");
const LABEL_COOKIE = new TextEncoder().encode("cookie--");
const NONCE_LEN = 24;
const COOKIE_LEN = 16;
/** Smallest message that has mac1 and mac2 slots and something before them. */
const MIN_MACED_LEN = 2 * MAC_LEN + 1;

/** `HASH("mac1----" ‖ publicKey)`: the key for mac1 on messages sent to `publicKey`'s owner. */
export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_MAC1, publicKey);
}

/** `HASH("cookie--" ‖ publicKey)`: the key for cookie replies sent by `publicKey`'s owner. */
export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_COOKIE, publicKey);
}

/** Constant-time equality of `a` and `b[offset, offset + a.length)`. */
function equalAt(a: Uint8Array, b: Uint8Array, offset: number): boolean {
  if (offset < 0 || offset + a.length > b.length) return false;
  return constantTimeEqual(a, b.subarray(offset, offset + a.length));
}

function defaultRandom(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** Receiver side: validates mac1/mac2 on incoming handshake messages and issues cookie replies. */
export class CookieChecker {
  readonly #mac1Key: Uint8Array;
  readonly #cookieKey: Uint8Array;
  readonly #clock: () => number;
  readonly #random: (n: number) => Uint8Array;
  #secret: Uint8Array = new Uint8Array(32);
  #secretSetAt = Number.NEGATIVE_INFINITY;
  /** The cookie of the last source under the current secret (a flood comes from few sources). */
  #lastSource: Uint8Array = new Uint8Array(0);
  #lastCookie: Uint8Array = new Uint8Array(COOKIE_LEN);

  /** A checker for messages addressed to the owner of `localPublic`. */
  constructor(
    localPublic: Uint8Array,
    clock: () => number,
    random: (n: number) => Uint8Array = defaultRandom,
  ) {
    this.#mac1Key = mac1Key(localPublic);
    this.#cookieKey = cookieKey(localPublic);
    this.#clock = clock;
    this.#random = random;
  }

  /** True when `msg` (an initiation or response) carries a valid mac1. Never throws. */
  checkMac1(msg: Uint8Array): boolean {
    if (!(msg instanceof Uint8Array) || msg.length < MIN_MACED_LEN) return false;
    const at = mac1Offset(msg.length);
    return equalAt(mac(this.#mac1Key, msg.subarray(0, at)), msg, at);
  }

  /**
   * True when `msg` carries a valid mac2 for source `src` (IP bytes ‖ port) under the current
   * secret; false when the secret is older than 120 s (no cookie we issued is still valid).
   */
  checkMac2(msg: Uint8Array, src: Uint8Array): boolean {
    if (!(msg instanceof Uint8Array) || msg.length < MIN_MACED_LEN) return false;
    if (this.#clock() - this.#secretSetAt > COOKIE_REFRESH_TIME_MS) return false;
    const at = mac2Offset(msg.length);
    // A sender without a cookie sends zeros (never a valid MAC in practice): no MAC to compute.
    let any = 0;
    for (let i = at; i < at + MAC_LEN; i++) any |= msg[i];
    if (any === 0) return false;
    return equalAt(mac(this.#cookieFor(src), msg.subarray(0, at)), msg, at);
  }

  /** `MAC(secret, src)`, computed once per source and secret. */
  #cookieFor(src: Uint8Array): Uint8Array {
    const last = this.#lastSource;
    let same = last.length === src.length;
    for (let i = 0; same && i < src.length; i++) same = last[i] === src[i];
    if (!same) {
      this.#lastCookie.fill(0);
      this.#lastCookie = mac(this.#secret, src);
      this.#lastSource = src.slice();
    }
    return this.#lastCookie;
  }

  /**
   * The 64-byte cookie reply to `msg` (whose mac1 must have been checked) for `src`, addressed to
   * `receiverIndex` (the sender index of `msg`). Rotates the secret first when it is stale.
   */
  createReply(msg: Uint8Array, receiverIndex: number, src: Uint8Array): Uint8Array {
    if (msg.length < MIN_MACED_LEN) throw new Error("message too short for a cookie reply");
    const now = this.#clock();
    if (now - this.#secretSetAt > COOKIE_REFRESH_TIME_MS) {
      this.#secret.fill(0);
      this.#secret = this.#random(32).slice();
      this.#secretSetAt = now;
      this.#lastSource = new Uint8Array(0);
    }
    const cookie = this.#cookieFor(src);
    const nonce = this.#random(NONCE_LEN);
    const at = mac1Offset(msg.length);
    const encrypted = xseal(this.#cookieKey, nonce, cookie, msg.subarray(at, at + MAC_LEN));
    const reply = new Uint8Array(MessageCookieReplySize);
    writeMessageHeader(reply, MessageCookieReplyType);
    writeU32LE(reply, CookieReplyOffsetReceiver, receiverIndex);
    reply.set(nonce.subarray(0, NONCE_LEN), CookieReplyOffsetNonce);
    reply.set(encrypted, CookieReplyOffsetCookie);
    return reply;
  }
}

/** Sender side: writes mac1/mac2 on outgoing handshake messages and accepts cookie replies. */
export class CookieGenerator {
  readonly #mac1Key: Uint8Array;
  readonly #cookieKey: Uint8Array;
  readonly #clock: () => number;
  #cookie: Uint8Array = new Uint8Array(COOKIE_LEN);
  #cookieSetAt = Number.NEGATIVE_INFINITY;
  #lastMac1: Uint8Array | null = null;

  /** A generator for messages sent to the owner of `remotePublic`. */
  constructor(remotePublic: Uint8Array, clock: () => number) {
    this.#mac1Key = mac1Key(remotePublic);
    this.#cookieKey = cookieKey(remotePublic);
    this.#clock = clock;
  }

  /**
   * Writes mac1, and mac2 when a cookie under 120 s old is held (zeros otherwise), into `msg` in
   * place; remembers mac1 to authenticate a cookie reply.
   */
  addMacs(msg: Uint8Array): void {
    if (msg.length < MIN_MACED_LEN) throw new Error("message too short for macs");
    const at1 = mac1Offset(msg.length);
    const at2 = mac2Offset(msg.length);
    const mac1 = mac(this.#mac1Key, msg.subarray(0, at1));
    msg.set(mac1, at1);
    this.#lastMac1 = mac1;
    if (this.#clock() - this.#cookieSetAt > COOKIE_REFRESH_TIME_MS) {
      msg.fill(0, at2, at2 + MAC_LEN);
      return;
    }
    msg.set(mac(this.#cookie, msg.subarray(0, at2)), at2);
  }

  /**
   * Accepts a 64-byte cookie reply answering the last message sent through {@link addMacs}; true
   * when it authenticates (the cookie is then stored). Never throws. The caller matches the
   * receiver index to this peer.
   */
  consumeReply(reply: Uint8Array): boolean {
    try {
      if (!this.#lastMac1) return false;
      if (!(reply instanceof Uint8Array) || messageType(reply, reply.length) !== MessageCookieReplyType) {
        return false;
      }
      const cookie = xopen(
        this.#cookieKey,
        reply.subarray(CookieReplyOffsetNonce, CookieReplyOffsetCookie),
        reply.subarray(CookieReplyOffsetCookie, MessageCookieReplySize),
        this.#lastMac1,
      );
      if (!cookie || cookie.length !== COOKIE_LEN) return false;
      this.#cookie.fill(0);
      this.#cookie = cookie;
      this.#cookieSetAt = this.#clock();
      return true;
    } catch {
      return false;
    }
  }
}
