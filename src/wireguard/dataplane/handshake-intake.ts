/**
 * The receive path's handling of handshake messages (types 1–3), as wireguard-go's handshake workers
 * do it before any Noise work: size and receiver-index checks, admission (admission.ts: mac1, and under
 * load mac2 with cookie replies sent from the worker, a per-source rate limit and a bounded queue),
 * then the few messages that deserve Noise work are posted to the control plane with their sockaddr.
 * A handshake flood thus never reaches the control plane's event loop. Every refusal is counted.
 * @module
 */
import { MsgBatch, sockaddrIpPort } from "../../../ffi/udp.ts";
import { HANDSHAKE_QUEUE_SIZE, HandshakeAdmission } from "../admission.ts";
import { SlotState } from "../keypair-slots.ts";
import {
  MessageCookieReplySize,
  MessageCookieReplyType,
  MessageInitiationSize,
  MessageInitiationType,
  MessageResponseSize,
  MessageResponseType,
} from "../messages.ts";
import { DeviceWord, KeypairWord, type SharedState, SLOT_MASK, StatIndex } from "./shared-state.ts";
import type { WorkerEvent } from "./worker-protocol.ts";

/** Bytes of a cookie source: IPv6 address and port. */
const SOURCE_BYTES = 18;
/** Where the receiver index sits in a response (8) and in a cookie reply (4). */
const RESPONSE_RECEIVER_AT = 8;
const COOKIE_RECEIVER_AT = 4;

/** One device's handshake intake: its admission (keyed by the device's identity) and its cookie replies. */
export class HandshakeIntake {
  readonly #shared: SharedState;
  readonly #post: (event: WorkerEvent) => void;
  readonly #replies: MsgBatch;
  #replyCount = 0;
  readonly #source = new Uint8Array(SOURCE_BYTES);
  #admission: HandshakeAdmission | null = null; // set by syncIdentity
  #identityVersion = 0;

  /** `maxReplies`: cookie replies one receive batch may make (its size). */
  constructor(shared: SharedState, post: (event: WorkerEvent) => void, maxReplies: number) {
    this.#shared = shared;
    this.#post = post;
    this.#replies = new MsgBatch(maxReplies, MessageCookieReplySize);
  }

  /** Follows the control plane's private key: a new key gets a new mac1 key and cookie secret. */
  syncIdentity(): void {
    const shared = this.#shared;
    const v = Atomics.load(shared.header, DeviceWord.identityVersion);
    if (v === this.#identityVersion) return;
    const id = shared.readLocalPublic();
    if (id) {
      this.#admission = new HandshakeAdmission(id.publicKey, Date.now);
      this.#identityVersion = id.version;
    } else if ((v & 1) === 0 && Atomics.load(shared.header, DeviceWord.hasIdentity) === 0) {
      this.#admission = null;
      this.#identityVersion = v;
    }
  }

  /** Forgets rate-limiter entries of sources gone quiet. */
  gc(): void {
    this.#admission?.gc();
  }

  /**
   * A handshake message of `type` (`buf[0…len)`) from the sockaddr `addr[0…addrLen)`: checked for size
   * and index, then admitted (posted), answered with a cookie (queued for {@link flushReplies}) or dropped.
   */
  handle(buf: Uint8Array, len: number, type: number, addr: Uint8Array, addrLen: number): void {
    const shared = this.#shared;
    const expected = type === MessageInitiationType
      ? MessageInitiationSize
      : type === MessageResponseType
      ? MessageResponseSize
      : MessageCookieReplySize;
    if (len !== expected) {
      shared.stats[StatIndex.rxMalformed]++;
      return;
    }
    if (
      type !== MessageInitiationType &&
      !this.#isHandshakeIndex(buf, type === MessageResponseType ? RESPONSE_RECEIVER_AT : COOKIE_RECEIVER_AT)
    ) {
      shared.stats[StatIndex.rxUnknownIndex]++;
      return;
    }
    const depth = Atomics.load(shared.header, DeviceWord.pendingHandshakes);
    if (type === MessageCookieReplyType) {
      if (depth >= HANDSHAKE_QUEUE_SIZE) shared.stats[StatIndex.rxHandshakeQueueFull]++;
      else this.#queue(buf, len, addr, addrLen);
      return;
    }
    const srcLen = sockaddrIpPort(addr, 0, this.#source);
    if (this.#admission === null || srcLen === 0) {
      shared.stats[StatIndex.rxHandshakeBadMac1]++;
      return;
    }
    const verdict = this.#admission.admit(buf.subarray(0, len), this.#source.subarray(0, srcLen), depth);
    switch (verdict.verdict) {
      case "queue":
        this.#queue(buf, len, addr, addrLen);
        return;
      case "cookie":
        this.#replies.bufs[this.#replyCount].set(verdict.reply);
        this.#replies.lens[this.#replyCount] = verdict.reply.length;
        this.#replies.setAddr(this.#replyCount, addr, 0, addrLen);
        this.#replyCount++;
        return;
      case "drop":
        if (verdict.reason === "invalid-mac1") shared.stats[StatIndex.rxHandshakeBadMac1]++;
        else if (verdict.reason === "rate-limited") shared.stats[StatIndex.rxHandshakeRateLimited]++;
        else shared.stats[StatIndex.rxHandshakeQueueFull]++;
        return;
    }
  }

  /** Sends the cookie replies made for one receive batch (one sendmmsg; a full socket drops them). */
  flushReplies(fd: number): void {
    if (this.#replyCount === 0) return;
    let sent = 0;
    while (sent < this.#replyCount) {
      const n = this.#replies.send(fd, this.#replyCount - sent, sent);
      if (n <= 0) break;
      sent += n;
    }
    this.#shared.stats[StatIndex.txCookieReplies] += sent;
    if (sent < this.#replyCount) this.#shared.stats[StatIndex.txSendErrors] += this.#replyCount - sent;
    this.#replyCount = 0;
  }

  /** True when `index` is the local index of a handshake we have in flight (responses, cookies). */
  #isHandshakeIndex(buf: Uint8Array, at: number): boolean {
    const index = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
    const slot = index & SLOT_MASK;
    return this.#shared.kpGet(slot, KeypairWord.state) === SlotState.reserved &&
      (this.#shared.kpGet(slot, KeypairWord.localIndex) >>> 0) === index;
  }

  /** Posts an admitted message to the control plane (it takes the count back when it handled it). */
  #queue(buf: Uint8Array, len: number, addr: Uint8Array, addrLen: number): void {
    Atomics.add(this.#shared.header, DeviceWord.pendingHandshakes, 1);
    this.#post({ t: "hs", data: buf.slice(0, len), addr: addr.slice(0, addrLen) });
  }
}
