/**
 * DSKE key agreement between this node and each of its DSKE-managed AES peers (docs/design.md
 * §3.9–3.10, §4 invariants 11-13; wire format and rules:
 * docs/dske.md).
 *
 * Roles: for each pair, the peer with the lexicographically lower WireGuard public key generates, the
 * other recovers. The generator makes a fresh 32-byte secret, AMD-encodes it and splits it into one
 * Shamir share per common hub (x = 1-based index in the sorted hub ids), sends SHARE_PUT to every hub
 * in parallel, and once at least k hubs acknowledged sends KEY_OFFER (listing those hubs) to the
 * recoverer over TCP 51831 inside wg0. The recoverer fetches shares with SHARE_GET, reconstructs and
 * validates (trying k-subsets, naming hubs whose shares do not fit) and answers KEY_RESULT; keys are
 * confirmed both ways before anyone installs, and each side keeps its last few agreed keys in memory
 * to reconcile with KEY_SYNC. Epochs are `max(last + 1, unix seconds)`, persisted before use, so they
 * keep increasing across restarts. Failures abort the round (the previous key stays) and are retried
 * after a short delay; PSRD exhaustion closes the gate at once. Secrets are wiped after use and never
 * logged.
 *
 * This file is the I/O shell: it binds the pure core (agreement-core.ts, with the rounds in
 * generator-round.ts, recoverer-round.ts and peer-frames.ts) to TCP (the peer channel and hub
 * requests), real timers, the system random source and the epoch file in the state directory.
 * @module
 */
import { DSKE_PORT, type FrameServer, requestFrame, serveFrames } from "./frame-transport.ts";
import { hubRequest } from "./hub-client.ts";
import type { PsrdStore } from "./psrd-store.ts";
import { writeFileAtomic } from "./durable-file.ts";
import { AgreementCore } from "./agreement-core.ts";
import type { ConnectionSource } from "../keyplane/connection-source.ts";
import type {
  AgreementCoreOptions,
  AgreementPorts,
  DskeHubStatus,
  DskePeerStatus,
  EpochStore,
} from "./agreement-types.ts";

export { ABORT_PSRD_EXHAUSTED } from "./agreement-types.ts";
export type { DskeEvent, DskeHubStatus, DskePeer, DskePeerStatus } from "./agreement-types.ts";

/** Options of {@link DskeAgreement}: the core's, plus what the shell turns into ports. */
export interface DskeAgreementOptions extends AgreementCoreOptions {
  /** Our wg0 address: the peer channel listens on it. */
  listenHost: string;
  /** Peer-channel port (default 51831); peers are asked on the same port. */
  port?: number;
  /** Where the epoch counters are persisted. */
  stateDir: string;
  /** PSRD pools (client role). */
  store: PsrdStore;
  /** Where the peer channel takes its connections from; default: it listens on listenHost:port itself. */
  connections?: ConnectionSource;
}

/** Per-peer epoch counters, in the state directory. */
const EPOCH_FILE = "dske-epochs.json";

/** The epoch counters as a JSON file in `stateDir`, written atomically (crash-safe). */
export class EpochFile implements EpochStore {
  readonly #dir: string;

  /** Counters in `stateDir`/dske-epochs.json. */
  constructor(stateDir: string) {
    this.#dir = stateDir;
  }

  /** The stored counters; empty when the file is missing or unreadable. */
  load(): Record<string, number> {
    try {
      const parsed = JSON.parse(Deno.readTextFileSync(`${this.#dir}/${EPOCH_FILE}`));
      return typeof parsed === "object" && parsed !== null ? parsed : {};
    } catch {
      return {};
    }
  }

  /** Persists the counters (creating the state directory, 0700, when needed). */
  save(epochs: Record<string, number>): void {
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.#dir, EPOCH_FILE, JSON.stringify(epochs));
  }
}

/** The key agreement of one node: the {@link AgreementCore} behind TCP, timers and the epoch file. */
export class DskeAgreement {
  readonly #o: DskeAgreementOptions;
  readonly #core: AgreementCore;
  #server: FrameServer | null = null;

  /** Prepares the agreement; {@link start} begins it. */
  constructor(opts: DskeAgreementOptions) {
    this.#o = opts;
    const port = opts.port ?? DSKE_PORT;
    const ports: AgreementPorts = {
      clock: {
        now: Date.now,
        setTimer: (fn, ms) => setTimeout(fn, ms),
        clearTimer: (t) => clearTimeout(t as number),
      },
      random: (n) => crypto.getRandomValues(new Uint8Array(n)),
      hub: (hub, request, timeoutMs, expectReply) =>
        hubRequest(opts.store, hub, request, timeoutMs, expectReply),
      peer: (peer, frame, timeoutMs, expectReply) =>
        requestFrame(peer.wgIp, port, frame, timeoutMs, expectReply),
      epochs: new EpochFile(opts.stateDir),
      psrd: opts.store,
    };
    this.#core = new AgreementCore(opts, ports);
  }

  /** Starts the peer channel and the generator rounds. Throws when the port cannot be bound. */
  start(): void {
    this.#server = serveFrames(
      this.#o.listenHost,
      this.#o.port ?? DSKE_PORT,
      (f, remote) => this.#core.handleFrame(f, remote.hostname),
      (remote, why) => this.#core.reject(`from ${remote.hostname}: ${why}`),
      this.#o.connections,
    );
    this.#core.start();
  }

  /** Per-peer status. */
  status(): DskePeerStatus[] {
    return this.#core.status();
  }

  /** Node ↔ node frames dropped since start (wrong sender address, bad tag, malformed, stale, unexpected). */
  rejectedFrames(): number {
    return this.#core.rejectedFrames();
  }

  /**
   * Asks `peer` (public key) which agreed keys it holds and moves to the newest both hold (e.g. after
   * the gate suspected a mismatch). Best effort; never throws.
   */
  reconcile(peer: Uint8Array): void {
    this.#core.reconcile(peer);
  }

  /**
   * Per hub link: id, endpoint, block, whether the latest request got an authenticated answer (null
   * before any) and whether it was named misbehaving within the last few rotation intervals. No secrets.
   */
  hubStatus(): DskeHubStatus[] {
    return this.#core.hubStatus();
  }

  /** Stops everything and wipes the keys held in memory. */
  close(): void {
    this.#core.close();
    this.#server?.close();
  }
}
