/**
 * The DSKE key agreement as a state machine without I/O of its own: per peer the pair's frame keys,
 * the keys both sides agreed (held in memory), the installed epoch, the round schedule and the status;
 * per hub what the {@link HubPool} knows. Time, randomness, hub and peer requests and the epoch
 * counters come in through {@link AgreementPorts}, so the same core runs behind TCP and timers in
 * `DskeAgreement` (agreement.ts) and on fakes in the tests. The rounds live beside it: the generator's
 * (generator-round.ts), the recoverer's (recoverer-round.ts), and the node ↔ node frames with
 * reconciliation and PSRD aborts (peer-frames.ts). Protocol: docs/dske.md.
 * @module
 */
import { toHex } from "../encoding.ts";
import { HeldKeys } from "./held-keys.ts";
import { HubPool } from "./hub-pool.ts";
import { derivePeerAuthKeys, type PeerAuthKeys } from "./peer-auth.ts";
import {
  type AgreementCoreOptions,
  type AgreementPorts,
  type DskeEvent,
  type DskeHubStatus,
  type DskePeer,
  type DskePeerStatus,
  MAX_RETRY_DELAY_MS,
  REJECT_REPORT_INTERVAL_MS,
  type Role,
  type TimerHandle,
} from "./agreement-types.ts";
import { runGeneratorRound } from "./generator-round.ts";
import { handlePeerFrame, startSync, sync } from "./peer-frames.ts";

/** How a generator round ended. */
export type RoundOutcome = "agreed" | "failed" | "peer-exhausted" | "exhausted";

/** Per peer: the pair's frame keys and the keys both sides agreed (memory only). */
export interface PairState {
  /** The peer. */
  readonly peer: DskePeer;
  /** Our role towards it. */
  readonly role: Role;
  /** Node ↔ node frame keys (null when none can be derived from the peer's public key). */
  auth: PeerAuthKeys | null;
  /** Agreed keys held for reconciliation. */
  readonly held: HeldKeys;
  /** Epoch of the key we installed in the gate, or null (none, or closed for a reconciliation). */
  installed: number | null;
  /** Key id of the latest installed key. */
  lastKeyId: Uint8Array | null;
  /** The gate was closed for PSRD exhaustion (until a key is agreed again). */
  psrdClosed: boolean;
  /** The pending generator round, or null. */
  roundTimer: TimerHandle | null;
  /** A generator round is running. */
  roundRunning: boolean;
  /** Test fault: count of KEY_RESULTs answered. */
  results: number;
  /** What the admin API shows. */
  readonly status: DskePeerStatus;
}

/** The key agreement of one node, without I/O: see the module doc. */
export class AgreementCore {
  /** The options. */
  readonly o: AgreementCoreOptions;
  /** The ports. */
  readonly ports: AgreementPorts;
  /** Our public key, hex. */
  readonly selfHex: string;
  /** The hubs. */
  readonly hubs: HubPool;
  /** Per peer (public key hex). */
  readonly pairs = new Map<string, PairState>();
  readonly #emit: (e: DskeEvent) => void;
  readonly #timers = new Set<TimerHandle>();
  #closed = false;
  #epochs: Record<string, number>;
  #rejected = 0;
  #rejectedReported = 0;
  #lastRejectReport = -Infinity;

  /** Prepares the agreement (derives the frame keys, loads the epoch counters); {@link start} begins it. */
  constructor(opts: AgreementCoreOptions, ports: AgreementPorts) {
    if (opts.k < 2) throw new RangeError("k must be at least 2");
    this.o = opts;
    this.ports = ports;
    this.selfHex = toHex(opts.selfPublicKey);
    this.#emit = opts.onEvent ?? (() => {});
    this.hubs = new HubPool(opts.hubs, ports, this.#emit, opts.rotationIntervalMs);
    for (const p of opts.peers) {
      const role: Role = compareBytes(opts.selfPublicKey, p.publicKey) < 0 ? "generator" : "recoverer";
      this.pairs.set(toHex(p.publicKey), {
        peer: p,
        role,
        auth: derivePeerAuthKeys(opts.selfPrivateKey, opts.selfPublicKey, p.publicKey),
        held: new HeldKeys(),
        installed: null,
        lastKeyId: null,
        psrdClosed: false,
        roundTimer: null,
        roundRunning: false,
        results: 0,
        status: {
          peer: p.name,
          role,
          lastEpoch: null,
          agreed: 0,
          failed: 0,
          badHubs: [],
          problem: null,
          heldEpochs: [],
        },
      });
    }
    this.#epochs = ports.epochs.load();
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Begins the generator rounds and the start-up reconciliation with every peer. */
  start(): void {
    for (const pair of this.pairs.values()) {
      if (pair.role === "generator") this.schedule(pair, 0);
      void startSync(this, pair);
    }
  }

  /** Per-peer status. */
  status(): DskePeerStatus[] {
    return [...this.pairs.values()].map((pair) => ({
      ...pair.status,
      badHubs: [...pair.status.badHubs],
      heldEpochs: pair.held.epochs(),
    }));
  }

  /** Per-hub status. */
  hubStatus(): DskeHubStatus[] {
    return this.hubs.status();
  }

  /** Node ↔ node frames dropped since start. */
  rejectedFrames(): number {
    return this.#rejected;
  }

  /** Asks the peer (public key) which agreed keys it holds and moves to the newest both hold. Never throws. */
  reconcile(peer: Uint8Array): void {
    const pair = this.pairs.get(toHex(peer));
    if (pair) void sync(this, pair).catch(() => {});
  }

  /**
   * A node ↔ node frame that arrived from `sourceHost`: the reply frame, or "close" (drop the
   * connection). Only an authenticated frame from a peer's address is acted on.
   */
  handleFrame(frame: Uint8Array, sourceHost: string): Promise<Uint8Array | "close"> {
    return handlePeerFrame(this, frame, sourceHost);
  }

  /** Stops every timer and wipes the held keys and frame keys. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) this.ports.clock.clearTimer(t);
    this.#timers.clear();
    for (const pair of this.pairs.values()) {
      pair.held.clear();
      pair.auth?.send.fill(0);
      pair.auth?.receive.fill(0);
    }
  }

  /** Emits an event. */
  emit(e: DskeEvent): void {
    this.#emit(e);
  }

  /** Calls `fn` after `ms` unless the agreement is closed first. */
  after(ms: number, fn: () => void): TimerHandle {
    const t = this.ports.clock.setTimer(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Cancels a timer from {@link after}. */
  cancel(t: TimerHandle): void {
    this.ports.clock.clearTimer(t);
    this.#timers.delete(t);
  }

  /** Resolves after `ms` (never, if the agreement closes first). */
  pause(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }

  /** Schedules the generator round for `pair` in `delayMs` (replacing a pending one). */
  schedule(pair: PairState, delayMs: number): void {
    if (this.#closed) return;
    if (pair.roundTimer !== null) this.cancel(pair.roundTimer);
    pair.roundTimer = this.after(delayMs, async () => {
      pair.roundTimer = null;
      pair.roundRunning = true;
      let outcome: RoundOutcome = "failed";
      try {
        outcome = await runGeneratorRound(this, pair);
      } catch (e) {
        this.emit({
          type: "rotation-failed",
          peer: pair.peer.name,
          reason: `unexpected: ${(e as Error).name}`,
        });
      } finally {
        pair.roundRunning = false;
      }
      if (outcome === "exhausted") return; // our PSRD is used up: no further round can run
      const retry = this.o.retryDelayMs ?? Math.min(MAX_RETRY_DELAY_MS, this.o.rotationIntervalMs);
      this.schedule(pair, outcome === "failed" ? retry : this.o.rotationIntervalMs);
    });
  }

  /** Generator: run a round now (unless one is running or our PSRD is used up). */
  roundNow(pair: PairState): void {
    if (pair.role !== "generator" || pair.roundRunning || pair.roundTimer === null) return;
    this.schedule(pair, 0);
  }

  /** The next epoch for `pair`: `max(last + 1, unix seconds)`, persisted before it is used on the wire. */
  nextEpoch(pair: PairState): number {
    const hex = toHex(pair.peer.publicKey);
    const epoch = Math.max((this.#epochs[hex] ?? 0) + 1, Math.floor(this.ports.clock.now() / 1000));
    this.#epochs[hex] = epoch;
    this.ports.epochs.save(this.#epochs);
    return epoch;
  }

  /** Bookkeeping once a key of `epoch` is installed in the gate for `pair`. */
  installed(pair: PairState, epoch: number, how: string): void {
    const st = pair.status;
    st.agreed++;
    st.lastEpoch = epoch;
    st.problem = null;
    pair.installed = epoch;
    const held = pair.held.get(epoch);
    if (held) pair.lastKeyId = held.keyId.slice();
    this.emit({ type: "key-agreed", peer: pair.peer.name, epoch, reason: how });
  }

  /** Counts a failed round and says why. */
  roundFailed(pair: PairState, reason: string, epoch?: number): "failed" {
    pair.status.failed++;
    this.emit({ type: "rotation-failed", peer: pair.peer.name, epoch, reason });
    return "failed";
  }

  /** A key confirmation failed: nothing is installed; the hubs whose shares made the key are named. */
  confirmationFailed(pair: PairState, epoch: number, hubs: string[], reason: string): void {
    const st = pair.status;
    st.problem = `key confirmation failed for epoch ${epoch}: ${reason}; nothing installed ` +
      `(shares from hubs ${this.hubs.texts(hubs)})`;
    this.emit({ type: "key-confirmation-failed", peer: pair.peer.name, epoch, hubs, reason: st.problem });
  }

  /** No k-subset of the shares validates: say so, with how many of the hubs that took part could be lying. */
  sharesInconsistent(pair: PairState, epoch: number, hubs: string[]): void {
    const st = pair.status;
    const k = this.o.k;
    // Every k-subset holds a wrong share, so at most k − 1 shares are right.
    const lyingAtLeast = hubs.length - k + 1;
    st.problem = `shares inconsistent for epoch ${epoch}: no ${k} of the ${hubs.length} shares ` +
      `(hubs ${this.hubs.texts(hubs)}) make a valid key; at least ${lyingAtLeast} of these ` +
      `${hubs.length} hubs gave a wrong share (which ones cannot be told)`;
    this.emit({
      type: "shares-inconsistent",
      peer: pair.peer.name,
      epoch,
      hubs,
      lyingAtLeast,
      reason: st.problem,
    });
  }

  /** Names the hubs whose shares did not fit the others (misbehaving, one event each). */
  hubsMisbehaved(pair: PairState, epoch: number, bad: string[]): void {
    pair.status.badHubs = bad;
    for (const hub of bad) {
      this.hubs.markMisbehaving(hub);
      this.emit({
        type: "hub-misbehaved",
        peer: pair.peer.name,
        epoch,
        hub,
        reason: "its share did not fit the others",
      });
    }
  }

  /** Fewer than k hubs have PSRD left for `pair`: close its gate now (once) and say why. */
  failClosed(pair: PairState, usable: number, total: number): void {
    this.closeForPsrd(
      pair,
      `PSRD exhausted: only ${usable} of ${total} hub(s) have PSRD left for a ${pair.role} round, ` +
        `k = ${this.o.k}: aes0 gate closed (fail closed); provision new PSRD`,
    );
  }

  /**
   * No further key can be agreed with the peer (our PSRD, the peer's, or the generator's is used up):
   * emits `psrd-exhausted` and closes its gate, once until a key is agreed with it again.
   */
  closeForPsrd(pair: PairState, reason: string, epoch?: number): void {
    if (pair.psrdClosed) return;
    pair.psrdClosed = true;
    this.emit({ type: "psrd-exhausted", peer: pair.peer.name, epoch, reason });
    this.o.closeGate?.(pair.peer.publicKey, reason);
  }

  /** Counts a dropped node ↔ node frame and reports drops at most once per second. */
  reject(why: string): void {
    this.#rejected++;
    const now = this.ports.clock.now();
    if (now - this.#lastRejectReport < REJECT_REPORT_INTERVAL_MS) return;
    const since = this.#rejected - this.#rejectedReported;
    this.#lastRejectReport = now;
    this.#rejectedReported = this.#rejected;
    this.emit({
      type: "peer-frame-rejected",
      reason: `dropped ${since} node-to-node frame(s) (${this.#rejected} in all), latest: ${why}`,
    });
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
