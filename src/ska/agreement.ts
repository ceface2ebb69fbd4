/**
 * SKA key agreement between this node and each of its `ska` AES peers (docs/ska.md).
 *
 * Roles: for each pair the endpoint with the lower WireGuard public key initiates. Per epoch (the
 * rotation interval) the initiator picks `epoch = max(last + 1, unix seconds)`, fetches the pair's
 * intermediate key for that epoch from the broker, then sends the responder a fresh ephemeral X25519
 * public key (DH_OFFER) over TCP 51831 inside wg0. The responder — which takes the initiator's identity
 * from the wg0 address the connection came from — fetches its own copy of the intermediate key, makes
 * its own ephemeral key, derives the PSK from the intermediate key and the X25519 result, installs it
 * through the gate and answers with its ephemeral public key (DH_ANSWER); the initiator derives the
 * same PSK and installs it at the same epoch. The broker never sees the X25519 result, so it cannot
 * compute the PSK. Ephemeral keys, DH results and intermediate keys are wiped after use.
 *
 * Failures abort the round (the previous key stays) and are retried after a short delay; a broker that
 * does not answer is reported as `broker-unreachable`; the gate closes the peer when no round succeeds
 * within the maximum key age. I/O (requests, the server, the clock) is injected so tests can drive it.
 * @module
 */
import { toHex } from "../encoding.ts";
import { dh, generatePrivateKey, publicKey } from "../crypto/x25519.ts";
import { compareBytes, deriveSkaPsk } from "./derive.ts";
import {
  decodeSkaFrame,
  encodeSkaFrame,
  SkaFrameError,
  type SkaMessage,
  SkaStatus,
  SkaType,
  statusName,
} from "./frames.ts";
import { serveSka, SKA_PORT, skaRequest, type SkaServer } from "./transport.ts";
import type { ConnectionSource } from "../keyplane/connection-source.ts";

/** An SKA-managed AES peer. */
export interface SkaPeer {
  /** Name (for events). */
  name: string;
  /** WireGuard public key (its SKA id). */
  publicKey: Uint8Array;
  /** wg0 address: its SKA channel listens there, and its requests come from there. */
  wgIp: string;
}

/** Something the SKA key plane did; never carries key material. */
export interface SkaEvent {
  /** What happened. */
  type: "key-agreed" | "rotation-failed" | "broker-unreachable";
  /** Peer name, when the event concerns one. */
  peer?: string;
  /** Key epoch, when known. */
  epoch?: number;
  /** Why, in words. */
  reason: string;
}

/** Per-peer status. */
export interface SkaPeerStatus {
  /** Peer name. */
  peer: string;
  /** "initiator" or "responder". */
  role: "initiator" | "responder";
  /** Last agreed epoch, or null. */
  lastEpoch: number | null;
  /** Last epoch an intermediate key came from the broker, or null. */
  lastIntermediateEpoch: number | null;
  /** Rounds that succeeded / failed. */
  agreed: number;
  failed: number;
}

/** Sends one frame to host:port and returns the reply frame (throws on any failure). */
export type SkaRequestFn = (
  host: string,
  port: number,
  frame: Uint8Array,
  timeoutMs: number,
) => Promise<Uint8Array>;
/** Starts the SKA channel server. */
export type SkaServeFn = (
  host: string,
  port: number,
  handler: (frame: Uint8Array, from: string) => Promise<Uint8Array | null>,
  source?: ConnectionSource,
) => SkaServer;

/** Options of {@link SkaAgreement}. */
export interface SkaAgreementOptions {
  /** Our WireGuard public key. */
  selfPublicKey: Uint8Array;
  /** Our wg0 address: the SKA channel listens on it. */
  listenHost: string;
  /** Channel port on endpoints and the broker (default 51831). */
  port?: number;
  /** The SKA-managed AES peers. */
  peers: SkaPeer[];
  /** The broker's wg0 address. */
  brokerHost: string;
  /** Rotation interval (ms). */
  rotationIntervalMs: number;
  /** Hands an agreed key to the gate; returns whether it was installed. */
  install(peer: Uint8Array, psk: Uint8Array, epoch: number): boolean;
  /** Event sink. */
  onEvent?: (e: SkaEvent) => void;
  /** Delay before retrying a failed round (ms). Default min(2 000, rotation interval). */
  retryDelayMs?: number;
  /** Request timeout (ms). Default 5 000. */
  timeoutMs?: number;
  /** Where the channel server takes its connections from; default: it listens on listenHost:port itself. */
  connections?: ConnectionSource;
  /** Injected I/O (tests); default TCP. */
  request?: SkaRequestFn;
  serve?: SkaServeFn;
  /** Clock (ms). Default Date.now. */
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MS_PER_S = 1000;

/** The SKA key agreement of one node. */
export class SkaAgreement {
  readonly #o: SkaAgreementOptions;
  readonly #emit: (e: SkaEvent) => void;
  readonly #status = new Map<string, SkaPeerStatus>();
  readonly #byIp = new Map<string, SkaPeer>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #request: SkaRequestFn;
  readonly #now: () => number;
  /** Per peer (hex): the highest epoch used in a round (agreed or offered). */
  readonly #epochs = new Map<string, number>();
  #server: SkaServer | null = null;
  #closed = false;
  #brokerReachable: boolean | null = null;

  /** Prepares the agreement; {@link start} begins it. */
  constructor(opts: SkaAgreementOptions) {
    this.#o = opts;
    this.#emit = opts.onEvent ?? (() => {});
    this.#request = opts.request ?? skaRequest;
    this.#now = opts.now ?? Date.now;
    for (const p of opts.peers) {
      this.#byIp.set(p.wgIp, p);
      this.#status.set(toHex(p.publicKey), {
        peer: p.name,
        role: this.#isInitiator(p) ? "initiator" : "responder",
        lastEpoch: null,
        lastIntermediateEpoch: null,
        agreed: 0,
        failed: 0,
      });
    }
  }

  /** Starts the channel server and the initiator rounds. Throws when the port cannot be bound. */
  start(): void {
    const serve = this.#o.serve ?? serveSka;
    this.#server = serve(
      this.#o.listenHost,
      this.#port,
      (f, from) => this.handleOffer(f, from),
      this.#o.connections,
    );
    for (const p of this.#o.peers) if (this.#isInitiator(p)) this.#schedule(p, 0);
  }

  /** Per-peer status. */
  status(): SkaPeerStatus[] {
    return [...this.#status.values()].map((s) => ({ ...s }));
  }

  /** Whether the latest broker request got an answer; null before any. */
  get brokerReachable(): boolean | null {
    return this.#brokerReachable;
  }

  /** Stops everything. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#server?.close();
  }

  get #port(): number {
    return this.#o.port ?? SKA_PORT;
  }

  #isInitiator(p: SkaPeer): boolean {
    return compareBytes(this.#o.selfPublicKey, p.publicKey) < 0;
  }

  #schedule(p: SkaPeer, delayMs: number): void {
    if (this.#closed) return;
    const t = setTimeout(async () => {
      this.#timers.delete(t);
      let ok = false;
      try {
        ok = await this.runRound(p);
      } catch (e) {
        this.#emit({ type: "rotation-failed", peer: p.name, reason: `unexpected: ${(e as Error).name}` });
      }
      const retry = this.#o.retryDelayMs ?? Math.min(2_000, this.#o.rotationIntervalMs);
      this.#schedule(p, ok ? this.#o.rotationIntervalMs : retry);
    }, delayMs);
    this.#timers.add(t);
  }

  #nextEpoch(peerHex: string): number {
    const epoch = Math.max((this.#epochs.get(peerHex) ?? 0) + 1, Math.floor(this.#now() / MS_PER_S));
    this.#epochs.set(peerHex, epoch);
    return epoch;
  }

  /**
   * Fetches the intermediate key for (self, peer, epoch) from the broker; returns it or a failure
   * reason (events emitted here).
   */
  async #fetchIntermediate(p: SkaPeer, epoch: number): Promise<Uint8Array | string> {
    let reply: SkaMessage;
    try {
      const raw = await this.#request(
        this.#o.brokerHost,
        this.#port,
        encodeSkaFrame({
          type: SkaType.INTERMEDIATE_REQUEST,
          idA: this.#o.selfPublicKey,
          idB: p.publicKey,
          epoch,
        }),
        this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      );
      reply = decodeSkaFrame(raw);
    } catch (e) {
      this.#brokerReachable = false;
      const reason = `broker ${this.#o.brokerHost} did not answer: ${(e as Error).message}`;
      this.#emit({ type: "broker-unreachable", peer: p.name, epoch, reason });
      return reason;
    }
    this.#brokerReachable = true;
    if (reply.type !== SkaType.INTERMEDIATE_RESPONSE || reply.epoch !== epoch) {
      return "the broker answered something other than the intermediate key asked for";
    }
    if (reply.status === SkaStatus.ROOT_KEY_FAILED) {
      // The broker answers but its HSM does not: for the key plane that is the broker being unreachable.
      const reason = `broker ${this.#o.brokerHost} could not use its root key (HSM unreachable?)`;
      this.#emit({ type: "broker-unreachable", peer: p.name, epoch, reason });
      return reason;
    }
    if (reply.status !== SkaStatus.OK) return `the broker refused: ${statusName(reply.status)}`;
    this.#status.get(toHex(p.publicKey))!.lastIntermediateEpoch = epoch;
    return reply.intermediate;
  }

  /** One initiator round with `p`; true when both sides installed the new key. */
  async runRound(p: SkaPeer): Promise<boolean> {
    const st = this.#status.get(toHex(p.publicKey))!;
    const fail = (reason: string, epoch?: number): false => {
      st.failed++;
      this.#emit({ type: "rotation-failed", peer: p.name, epoch, reason });
      return false;
    };
    const epoch = this.#nextEpoch(toHex(p.publicKey));
    const intermediate = await this.#fetchIntermediate(p, epoch);
    if (typeof intermediate === "string") return fail(intermediate, epoch);
    const ephemeral = generatePrivateKey();
    try {
      let answer: SkaMessage;
      try {
        const raw = await this.#request(
          p.wgIp,
          this.#port,
          encodeSkaFrame({ type: SkaType.DH_OFFER, epoch, ephemeral: publicKey(ephemeral) }),
          this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        );
        answer = decodeSkaFrame(raw);
      } catch (e) {
        return fail(`peer ${p.name} did not complete the exchange: ${(e as Error).message}`, epoch);
      }
      if (answer.type !== SkaType.DH_ANSWER || answer.epoch !== epoch) {
        return fail(`peer ${p.name} answered something other than DH_ANSWER for this epoch`, epoch);
      }
      if (answer.status !== SkaStatus.OK) {
        return fail(`peer ${p.name} could not complete: ${statusName(answer.status)}`, epoch);
      }
      const shared = dh(ephemeral, answer.ephemeral);
      if (shared === null) return fail(`peer ${p.name} sent a low-order ephemeral key`, epoch);
      const psk = deriveSkaPsk(intermediate, shared, epoch, this.#o.selfPublicKey, p.publicKey);
      shared.fill(0);
      const installed = this.#o.install(p.publicKey, psk, epoch);
      psk.fill(0);
      if (!installed) return fail("the gate refused the agreed key", epoch);
      this.#agreed(p, epoch, "as initiator");
      return true;
    } finally {
      ephemeral.fill(0);
      intermediate.fill(0);
    }
  }

  /** Responder side: answers a DH_OFFER that arrived from wg0 address `from`. */
  async handleOffer(frame: Uint8Array, from: string): Promise<Uint8Array | null> {
    let m: SkaMessage;
    try {
      m = decodeSkaFrame(frame);
    } catch (e) {
      if (e instanceof SkaFrameError) return null;
      throw e;
    }
    if (m.type !== SkaType.DH_OFFER) return null;
    const answer = (status: number, ephemeral: Uint8Array = new Uint8Array(32)) =>
      encodeSkaFrame({ type: SkaType.DH_ANSWER, status, epoch: m.epoch, ephemeral });
    const p = this.#byIp.get(from);
    if (!p || this.#isInitiator(p)) return answer(SkaStatus.UNKNOWN_REQUESTER);
    const hex = toHex(p.publicKey);
    const st = this.#status.get(hex)!;
    if (m.epoch <= (this.#epochs.get(hex) ?? 0)) {
      st.failed++;
      this.#emit({
        type: "rotation-failed",
        peer: p.name,
        epoch: m.epoch,
        reason: "offer for an old epoch (replay?)",
      });
      return answer(SkaStatus.BAD_EPOCH);
    }
    const intermediate = await this.#fetchIntermediate(p, m.epoch);
    if (typeof intermediate === "string") {
      st.failed++;
      this.#emit({ type: "rotation-failed", peer: p.name, epoch: m.epoch, reason: intermediate });
      return answer(SkaStatus.BROKER_UNREACHABLE);
    }
    const ephemeral = generatePrivateKey();
    try {
      const shared = dh(ephemeral, m.ephemeral);
      if (shared === null) return answer(SkaStatus.BAD_EPOCH);
      const psk = deriveSkaPsk(intermediate, shared, m.epoch, this.#o.selfPublicKey, p.publicKey);
      shared.fill(0);
      const installed = this.#o.install(p.publicKey, psk, m.epoch);
      psk.fill(0);
      if (!installed) {
        st.failed++;
        this.#emit({
          type: "rotation-failed",
          peer: p.name,
          epoch: m.epoch,
          reason: "the gate refused the agreed key",
        });
        return answer(SkaStatus.BAD_EPOCH);
      }
      this.#epochs.set(hex, m.epoch);
      this.#agreed(p, m.epoch, "as responder");
      return answer(SkaStatus.OK, publicKey(ephemeral));
    } finally {
      ephemeral.fill(0);
      intermediate.fill(0);
    }
  }

  #agreed(p: SkaPeer, epoch: number, how: string): void {
    const st = this.#status.get(toHex(p.publicKey))!;
    st.agreed++;
    st.lastEpoch = epoch;
    this.#emit({ type: "key-agreed", peer: p.name, epoch, reason: `${how} via the broker` });
  }
}
