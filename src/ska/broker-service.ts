/**
 * The SKA broker's request logic (pure apart from the root key): answers INTERMEDIATE_REQUEST frames
 * with the intermediate key of the pair and epoch asked for, after checking who asks. The requester
 * is the configured wg0 peer whose wg0 address the connection came from (wg0 delivers a packet from an
 * address only when it authenticated the peer owning that address); a request from any other address,
 * for a pair the requester is not part of, or naming an unknown peer is refused and reported — never
 * with key material.
 * @module
 */
import { toHex } from "../encoding.ts";
import { deriveIntermediate } from "./derive.ts";
import {
  decodeSkaFrame,
  encodeSkaFrame,
  SkaFrameError,
  type SkaMessage,
  SkaStatus,
  SkaType,
} from "./frames.ts";
import type { RootKey } from "./root-key.ts";

/** A configured endpoint the broker serves. */
export interface BrokerPeer {
  /** Config name. */
  name: string;
  /** WireGuard public key (its SKA id). */
  publicKey: Uint8Array;
  /** Its wg0 address (the only source address its requests may come from). */
  wgIp: string;
}

/** Something the broker did; never holds key material. */
export interface BrokerEvent {
  /** `served`: an intermediate key was handed out; `refused`: a request was turned down. */
  type: "served" | "refused";
  /** Requester name (or its source address when it is not a configured peer). */
  requester: string;
  /** The other peer of the pair, when it is configured. */
  peer?: string;
  /** Epoch asked for. */
  epoch?: number;
  /** Why, in words. */
  reason: string;
}

/** Per-peer status. */
export interface BrokerPeerStatus {
  /** Peer name. */
  peer: string;
  /** Last epoch an intermediate key was served to it for; null if never. */
  lastEpoch: number | null;
  /** Requests served / refused. */
  served: number;
  refused: number;
}

/** Options of {@link BrokerService}. */
export interface BrokerServiceOptions {
  /** The endpoints served. */
  peers: BrokerPeer[];
  /** The root key (token or file). */
  rootKey: RootKey;
  /** Event sink. */
  onEvent?: (e: BrokerEvent) => void;
}

/** The broker's request handler. */
export class BrokerService {
  readonly #byIp = new Map<string, BrokerPeer>();
  readonly #byKey = new Map<string, BrokerPeer>();
  readonly #status = new Map<string, BrokerPeerStatus>();
  readonly #root: RootKey;
  readonly #emit: (e: BrokerEvent) => void;

  constructor(opts: BrokerServiceOptions) {
    for (const p of opts.peers) {
      this.#byIp.set(p.wgIp, p);
      this.#byKey.set(toHex(p.publicKey), p);
      this.#status.set(p.name, { peer: p.name, lastEpoch: null, served: 0, refused: 0 });
    }
    this.#root = opts.rootKey;
    this.#emit = opts.onEvent ?? (() => {});
  }

  /**
   * Answers one frame that arrived from source address `from`. Returns the reply frame, or null to
   * close without an answer (not an SKA request at all).
   */
  handle(frame: Uint8Array, from: string): Uint8Array | null {
    let m: SkaMessage;
    try {
      m = decodeSkaFrame(frame);
    } catch (e) {
      if (e instanceof SkaFrameError) {
        this.#emit({ type: "refused", requester: this.#byIp.get(from)?.name ?? from, reason: e.message });
        return null;
      }
      throw e;
    }
    if (m.type !== SkaType.INTERMEDIATE_REQUEST) {
      this.#emit({
        type: "refused",
        requester: this.#byIp.get(from)?.name ?? from,
        reason: "not a key request",
      });
      return null;
    }
    const requester = this.#byIp.get(from);
    const refuse = (status: number, reason: string, peer?: BrokerPeer) => {
      if (requester) this.#status.get(requester.name)!.refused++;
      this.#emit({
        type: "refused",
        requester: requester?.name ?? from,
        peer: peer?.name,
        epoch: m.epoch,
        reason,
      });
      return encodeSkaFrame({
        type: SkaType.INTERMEDIATE_RESPONSE,
        status,
        epoch: m.epoch,
        intermediate: new Uint8Array(32),
      });
    };
    if (!requester) return refuse(SkaStatus.UNKNOWN_REQUESTER, `source ${from} is not a configured peer`);
    const a = this.#byKey.get(toHex(m.idA));
    const b = this.#byKey.get(toHex(m.idB));
    const selfHex = toHex(requester.publicKey);
    if (toHex(m.idA) !== selfHex && toHex(m.idB) !== selfHex) {
      return refuse(
        SkaStatus.PAIR_REFUSED,
        `asked for the pair ${a?.name ?? "unknown"}–${b?.name ?? "unknown"}, which it is not part of`,
      );
    }
    const other = toHex(m.idA) === selfHex ? b : a;
    if (!other || other === requester) {
      return refuse(SkaStatus.PAIR_REFUSED, "asked for a pair with a peer the broker does not serve");
    }
    let intermediate: Uint8Array;
    try {
      intermediate = deriveIntermediate(this.#root.hmac, m.idA, m.idB, m.epoch);
    } catch (e) {
      return refuse(SkaStatus.ROOT_KEY_FAILED, `root key failed: ${(e as Error).message}`, other);
    }
    const reply = encodeSkaFrame({
      type: SkaType.INTERMEDIATE_RESPONSE,
      status: SkaStatus.OK,
      epoch: m.epoch,
      intermediate,
    });
    intermediate.fill(0);
    const st = this.#status.get(requester.name)!;
    st.served++;
    st.lastEpoch = m.epoch;
    this.#emit({
      type: "served",
      requester: requester.name,
      peer: other.name,
      epoch: m.epoch,
      reason: "intermediate key sent",
    });
    return reply;
  }

  /** Per-peer counters and last epoch. */
  status(): BrokerPeerStatus[] {
    return [...this.#status.values()].map((s) => ({ ...s }));
  }
}
