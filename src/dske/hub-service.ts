/**
 * The security hub's protocol logic (docs/design.md §3.6, §4 invariants 3-6, 10):
 * one authenticated request frame in, at most one sealed response frame out. Pure apart from the
 * PSRD store it is given; the TCP side lives in `hub-server.ts`.
 *
 * Order of checks for every request: frame shape (peek) → the block exists and is one of ours →
 * `offset ≥ rx_next` and in range → the one-time tag (constant time) → persist `rx_next` → act. A
 * frame that fails any check changes nothing and closes the connection. Shares live in RAM only,
 * with a TTL of `min(ttl_s, 600)` seconds, and are released only to the client bound to the recoverer
 * the authenticated generator named.
 *
 * PSRD exhaustion fails closed (docs/design.md §4 invariant 7): a request whose answer the hub's send region can no
 * longer pay for is not acted on (no share stored or released) and the connection is closed; a
 * SHARE_GET whose share would need more pad than is left is answered PSRD_LOW (32 bytes) instead.
 * The store never wraps.
 * @module
 */
import { collusionShare } from "./test-faults.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { fromHex, toHex } from "../encoding.ts";
import {
  FrameError,
  FrameType,
  type HubMessage,
  HubStatus,
  MAC_KEY_LEN,
  openHubFrame,
  padLength,
  peekHubFrame,
  sealHubFrame,
  SHARE_LEN,
  type ShareDelete,
  type ShareGet,
  type SharePut,
} from "./frames.ts";
import { type BlockInfo, PsrdExhausted, type PsrdStore } from "./psrd-store.ts";

/** Longest a share is kept (s). */
export const MAX_SHARE_TTL_S = 600;

/** Something the hub did or refused; never carries share or pad bytes. */
export interface HubEvent {
  /** What happened. */
  type: "share-stored" | "share-released" | "share-deleted" | "share-expired" | "refused" | "frame-dropped";
  /** Hex client id, when known. */
  client?: string;
  /** Hex key id, when known. */
  keyId?: string;
  /** Key epoch, for share-stored. */
  epoch?: number;
  /** Why, in words. */
  reason: string;
}

/** Options of a {@link HubService}. */
export interface HubServiceOptions {
  /** This hub's 16-byte id (every hub-role PSRD block must carry it). */
  hubId: Uint8Array;
  /** The PSRD pools (hub role). */
  store: PsrdStore;
  /** Clock in ms. Default `Date.now`. */
  clock?: () => number;
  /** Event sink. */
  onEvent?: (e: HubEvent) => void;
  /**
   * Test-only fault switch: the hub flips bits of every share it releases (a lying hub). Never set in
   * production; `twofold hub` enables it only with `TWOFOLD_TEST_FAULT=alter-shares`.
   */
  alterShares?: boolean;
  /**
   * Test-only fault switch: the hub releases its point of a forged sharing derived from the key id
   * (test-faults.ts), so k hubs with it hand out a consistent forged key. `twofold hub` enables it only
   * with `TWOFOLD_TEST_FAULT=collude`.
   */
  colludeShares?: boolean;
}

interface StoredShare {
  clientHex: string;
  generatorHex: string;
  recovererHex: string;
  x: number;
  k: number;
  n: number;
  epoch: number;
  share: Uint8Array;
  expiresAt: number;
}

/** Counters for status. */
export interface HubCounters {
  /** Requests answered. */
  handled: number;
  /** Frames dropped (malformed, unknown block, replayed offset, bad tag). */
  dropped: number;
  /** Shares held now. */
  shares: number;
}

/** The hub's request handler. */
export class HubService {
  readonly #hubHex: string;
  readonly #store: PsrdStore;
  readonly #clock: () => number;
  readonly #onEvent: (e: HubEvent) => void;
  readonly #alter: boolean;
  readonly #collude: boolean;
  readonly #shares = new Map<string, StoredShare>();
  #handled = 0;
  #dropped = 0;

  /** Creates the handler. */
  constructor(opts: HubServiceOptions) {
    this.#hubHex = toHex(opts.hubId);
    this.#store = opts.store;
    this.#clock = opts.clock ?? Date.now;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#alter = opts.alterShares ?? false;
    this.#collude = opts.colludeShares ?? false;
  }

  /** Counters (no secrets). */
  get counters(): HubCounters {
    return { handled: this.#handled, dropped: this.#dropped, shares: this.#shares.size };
  }

  /**
   * Handles one request frame. Returns the sealed response, `null` for a valid request that needs no
   * answer (SHARE_DELETE), or `"close"` when the frame is refused (the caller closes the connection).
   */
  handle(frame: Uint8Array): Uint8Array | null | "close" {
    this.expire();
    const opened = this.#open(frame);
    if (opened === "close") return "close";
    const { msg, block, blockHex } = opened;
    const clientHex = toHex(msg.clientId);
    if (clientHex !== block.clientId || toHex(msg.hubId) !== this.#hubHex) {
      return this.#reply(
        blockHex,
        this.#statusReply(msg, HubStatus.NOT_AUTHORIZED),
        clientHex,
        "client or hub id does not match the PSRD block",
      );
    }
    this.#handled++;
    if (msg.type !== FrameType.SHARE_DELETE && block.txRemaining < MAC_KEY_LEN) {
      // Not even an authenticated refusal fits: do nothing for it (fail closed).
      this.#onEvent({
        type: "refused",
        client: clientHex,
        reason:
          `PSRD exhausted: ${block.txRemaining} B left to answer with; request not acted on (fail closed)`,
      });
      return "close";
    }
    switch (msg.type) {
      case FrameType.HELLO:
        return this.#reply(blockHex, {
          type: FrameType.HELLO_ACK,
          clientId: msg.clientId,
          hubId: msg.hubId,
          status: HubStatus.OK,
          c2hRxNext: block.rxNext,
          h2cTxNext: block.txNext,
          c2hRemaining: block.rxRemaining,
          h2cRemaining: block.txRemaining,
        }, clientHex);
      case FrameType.SHARE_PUT:
        return this.#reply(blockHex, this.#put(msg, block.peerId, clientHex), clientHex);
      case FrameType.SHARE_GET:
        return this.#get(msg, block, blockHex, clientHex);
      case FrameType.SHARE_DELETE:
        this.#delete(msg, block, clientHex);
        return null;
      default:
        return this.#drop("a response type sent to the hub");
    }
  }

  /**
   * A request frame of one of our hub-role blocks, authenticated and accepted (its offset persisted
   * before anything is acted on, so a replay after a crash is refused); "close" (dropped) otherwise.
   */
  #open(frame: Uint8Array): { msg: HubMessage; block: BlockInfo; blockHex: string } | "close" {
    let peek;
    try {
      peek = peekHubFrame(frame);
    } catch (e) {
      return this.#drop(e instanceof FrameError ? `malformed frame (${e.code})` : "malformed frame");
    }
    const blockHex = toHex(peek.blockId);
    const block = this.#store.block(blockHex);
    if (!block || block.role !== "hub" || block.hubId !== this.#hubHex) {
      return this.#drop("unknown PSRD block");
    }
    if (!this.#store.canAccept(blockHex, peek.offset, peek.used)) {
      return this.#drop("offset below rx_next or beyond the region (replay or forgery)");
    }
    const pad = this.#store.rxPad(blockHex, peek.offset, peek.used);
    let msg: HubMessage;
    try {
      msg = openHubFrame(frame, pad);
    } catch (e) {
      return this.#drop(e instanceof FrameError ? `frame refused (${e.code})` : "frame refused");
    } finally {
      pad.fill(0);
    }
    this.#store.acceptRx(blockHex, peek.offset, peek.used);
    return { msg, block, blockHex };
  }

  /** SHARE_GET: the share, only to the recoverer its generator named, and only with PSRD to send it. */
  #get(msg: ShareGet, block: BlockInfo, blockHex: string, clientHex: string): Uint8Array | null | "close" {
    const keyHex = toHex(msg.keyId);
    const stored = this.#shares.get(keyHex);
    const answer = (status: number, s?: StoredShare): HubMessage => ({
      type: FrameType.SHARE_GET_RESP,
      clientId: msg.clientId,
      hubId: msg.hubId,
      keyId: msg.keyId,
      status,
      x: s?.x ?? 0,
      k: s?.k ?? 0,
      n: s?.n ?? 0,
      epoch: s?.epoch ?? 0,
      generatorPeer: msg.generatorPeer,
      share: s ? this.#released(s, msg.keyId) : null,
    });
    if (!stored) return this.#reply(blockHex, answer(HubStatus.UNKNOWN_KEY), clientHex, "unknown key");
    if (block.txRemaining < MAC_KEY_LEN + SHARE_LEN) {
      return this.#reply(
        blockHex,
        answer(HubStatus.PSRD_LOW),
        clientHex,
        `PSRD exhausted: ${block.txRemaining} B left, too few to send a share (fail closed)`,
      );
    }
    if (
      stored.recovererHex !== block.peerId || toHex(msg.recovererPeer) !== stored.recovererHex ||
      toHex(msg.generatorPeer) !== stored.generatorHex
    ) {
      return this.#reply(
        blockHex,
        answer(HubStatus.NOT_AUTHORIZED),
        clientHex,
        "share requested by a client that is not the named recoverer",
      );
    }
    this.#onEvent({
      type: "share-released",
      client: clientHex,
      keyId: keyHex,
      reason: "to the named recoverer",
    });
    return this.#reply(blockHex, answer(HubStatus.OK, stored), clientHex);
  }

  /** SHARE_DELETE: forgets the share when its generator asks (no answer either way). */
  #delete(msg: ShareDelete, block: BlockInfo, clientHex: string): void {
    const keyHex = toHex(msg.keyId);
    const stored = this.#shares.get(keyHex);
    if (stored && stored.generatorHex === block.peerId) {
      this.#forget(keyHex, stored);
      this.#onEvent({
        type: "share-deleted",
        client: clientHex,
        keyId: keyHex,
        reason: "by its generator",
      });
    }
  }

  /** Drops shares past their TTL. */
  expire(): void {
    const now = this.#clock();
    for (const [keyHex, s] of this.#shares) {
      if (now >= s.expiresAt) {
        this.#forget(keyHex, s);
        this.#onEvent({ type: "share-expired", keyId: keyHex, reason: "TTL reached" });
      }
    }
  }

  /** Wipes every share (shutdown). */
  clear(): void {
    for (const [keyHex, s] of this.#shares) this.#forget(keyHex, s);
  }

  #put(msg: SharePut, boundPeerHex: string, clientHex: string): HubMessage {
    const ack = (status: number): HubMessage => ({
      type: FrameType.SHARE_PUT_ACK,
      clientId: msg.clientId,
      hubId: msg.hubId,
      keyId: msg.keyId,
      status,
    });
    const keyHex = toHex(msg.keyId);
    if (toHex(msg.generatorPeer) !== boundPeerHex) {
      this.#onEvent({
        type: "refused",
        client: clientHex,
        keyId: keyHex,
        reason: "generator is not the client's peer",
      });
      return ack(HubStatus.NOT_AUTHORIZED);
    }
    if (msg.k < 2 || msg.k > msg.n || msg.x === 0 || msg.share.length !== 64 || msg.ttlS === 0) {
      this.#onEvent({ type: "refused", client: clientHex, keyId: keyHex, reason: "bad parameters" });
      return ack(HubStatus.BAD_PARAMS);
    }
    const existing = this.#shares.get(keyHex);
    if (existing) {
      const same = existing.generatorHex === boundPeerHex && existing.x === msg.x && existing.k === msg.k &&
        existing.n === msg.n && existing.epoch === msg.epoch &&
        existing.recovererHex === toHex(msg.recovererPeer) &&
        constantTimeEqual(existing.share, msg.share);
      msg.share.fill(0);
      return ack(same ? HubStatus.OK : HubStatus.DUPLICATE);
    }
    this.#shares.set(keyHex, {
      clientHex,
      generatorHex: boundPeerHex,
      recovererHex: toHex(msg.recovererPeer),
      x: msg.x,
      k: msg.k,
      n: msg.n,
      epoch: msg.epoch,
      share: msg.share.slice(),
      expiresAt: this.#clock() + Math.min(msg.ttlS, MAX_SHARE_TTL_S) * 1000,
    });
    msg.share.fill(0);
    this.#onEvent({
      type: "share-stored",
      client: clientHex,
      keyId: keyHex,
      epoch: msg.epoch,
      reason: `epoch ${msg.epoch}`,
    });
    return ack(HubStatus.OK);
  }

  #released(stored: StoredShare, keyId: Uint8Array): Uint8Array {
    if (this.#collude) return collusionShare(keyId, stored.x, stored.k);
    const out = stored.share.slice();
    if (this.#alter) { for (let i = 0; i < out.length; i += 7) out[i] ^= 0x5a; }
    return out;
  }

  #statusReply(msg: HubMessage, status: number): HubMessage {
    const base = { clientId: msg.clientId, hubId: msg.hubId };
    if (msg.type === FrameType.SHARE_PUT || msg.type === FrameType.SHARE_DELETE) {
      return { type: FrameType.SHARE_PUT_ACK, ...base, keyId: msg.keyId, status };
    }
    if (msg.type === FrameType.SHARE_GET) {
      return {
        type: FrameType.SHARE_GET_RESP,
        ...base,
        keyId: msg.keyId,
        status,
        x: 0,
        k: 0,
        n: 0,
        epoch: 0,
        generatorPeer: msg.generatorPeer,
        share: null,
      };
    }
    return {
      type: FrameType.HELLO_ACK,
      ...base,
      status,
      c2hRxNext: 0,
      h2cTxNext: 0,
      c2hRemaining: 0,
      h2cRemaining: 0,
    };
  }

  #reply(blockHex: string, m: HubMessage, clientHex: string, refusal?: string): Uint8Array | "close" {
    if (refusal) this.#onEvent({ type: "refused", client: clientHex, reason: refusal });
    try {
      const { offset, pad } = this.#store.reserveTx(blockHex, padLength(m));
      try {
        return sealHubFrame(m, fromHex(blockHex), offset, pad);
      } finally {
        pad.fill(0);
        if ((m.type === FrameType.SHARE_GET_RESP) && m.share) m.share.fill(0);
      }
    } catch (e) {
      if (e instanceof PsrdExhausted) {
        this.#onEvent({ type: "refused", client: clientHex, reason: "PSRD exhausted: failing closed" });
        return "close";
      }
      throw e;
    }
  }

  #drop(reason: string): "close" {
    this.#dropped++;
    this.#onEvent({ type: "frame-dropped", reason });
    return "close";
  }

  #forget(keyHex: string, s: StoredShare): void {
    s.share.fill(0);
    this.#shares.delete(keyHex);
  }
}
