/**
 * DSKE key agreement between this node and each of its DSKE-managed AES peers (protocols.md §1.5
 * "Rotation flow", "Reconstruction and validation"; §1.6 invariants 11-13).
 *
 * Roles: for each pair, the peer with the lexicographically lower WireGuard public key generates, the
 * other recovers. The generator makes a fresh 32-byte secret, AMD-encodes it and splits it into one
 * Shamir share per common hub (x = 1-based index in the sorted hub ids), sends SHARE_PUT to every hub
 * in parallel, and once at least k hubs acknowledged sends KEY_OFFER (listing those hubs) to the
 * recoverer over TCP 51831 inside wg0. The recoverer fetches shares with SHARE_GET, reconstructs and
 * validates (trying k-subsets, naming hubs whose shares do not fit), installs the key through the PSK
 * gate and answers KEY_RESULT; the generator installs the same key with the same epoch on KEY_RESULT
 * OK and deletes the shares from the hubs. Epochs are `max(last + 1, unix seconds)`, persisted before
 * use, so they keep increasing across restarts. Failures abort the round (the previous key stays)
 * and are retried after a short delay; the gate closes the peer when no round succeeds within the
 * maximum key age. Secrets are wiped after use and never logged.
 *
 * Node ↔ node frames are authenticated (peer-auth.ts): a frame is accepted only from the peer's wg0
 * address and with a valid tag under the pair's key; anything else is dropped, counted
 * ({@link DskeAgreement.rejectedFrames}) and reported at most once per second, never acted on. Keys are
 * confirmed both ways before anyone installs (key-confirm.ts): the recoverer accepts only a
 * reconstruction that matches the generator's confirmation in KEY_OFFER (else `key-confirmation-failed`,
 * naming the hubs whose shares made the wrong key; nobody is named a liar on the strength of it), and
 * holds it without installing; the generator installs only when the recoverer's confirmation in
 * KEY_RESULT matches, then tells the recoverer with KEY_SYNC, and the recoverer installs. So a gate never
 * opens for a key the peer does not hold. Each side keeps its last few agreed keys in memory (never on
 * disk); KEY_SYNC exchanges their epochs (after a round, when the recoverer did not hear the commit, at
 * start, and on a suspected mismatch) and both move to the newest epoch both hold; when they hold none
 * in common the open gate closes and the generator starts a round at once.
 *
 * PSRD exhaustion fails closed at once (§1.6 invariant 7). Before a round, each side counts the hubs
 * whose block still holds PSRD for a whole round in its role (generator: SHARE_PUT out, SHARE_PUT_ACK
 * in; recoverer: SHARE_GET out, SHARE_GET_RESP in; a hub that answered PSRD_LOW counts as used up), and
 * only uses those: no byte is spent on a round that cannot complete, and a used-up block is never
 * sent from again (the store never wraps). When fewer than k remain, the peer's gate is closed through
 * `closeGate` with a reason naming PSRD exhaustion and a `psrd-exhausted` event is emitted; a generator
 * then stops its rounds for that peer and tells the recoverer (KEY_ABORT, reason PSRD exhausted, for
 * the key in use), a recoverer answers KEY_RESULT PSRD_LOW and its generator closes its gate too.
 * @module
 */
import { fromHex, toHex } from "../encoding.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  FrameError,
  FrameType,
  type HubMessage,
  HubStatus,
  type KeyOffer,
  KeyResultStatus,
  MAC_KEY_LEN,
  MAX_SYNC_EPOCHS,
  type PeerMessage,
  SHARE_LEN,
} from "./frames.ts";
import { derivePeerAuthKeys, type PeerAuthKeys } from "./peer-auth.ts";
import { checkConfirmation, CONFIRM_TAG_LEN, confirmationTag, type ConfirmContext } from "./key-confirm.ts";
import { HeldKeys, reconcileTarget } from "./held-keys.ts";
import { DSKE_PORT, type FrameServer, requestFrame, serveFrames, TransportError } from "./frame-transport.ts";
import { hubLabel, type HubLink, HubReplyError, hubRequest } from "./hub-client.ts";
import { PsrdExhausted, type PsrdStore } from "./psrd-store.ts";
import { makeShares, recoverSecret } from "./recover.ts";
import { writeFileAtomic } from "./durable-file.ts";

/** A DSKE-managed AES peer. */
export interface DskePeer {
  /** Name (for events). */
  name: string;
  /** WireGuard public key. */
  publicKey: Uint8Array;
  /** wg0 address (its peer channel listens there). */
  wgIp: string;
}

/** Something the key plane did; never carries key material. */
export interface DskeEvent {
  /** What happened. */
  type:
    | "key-agreed"
    | "rotation-failed"
    | "hub-unreachable"
    | "hub-misbehaved"
    | "psrd-exhausted"
    | "key-confirmation-failed"
    | "shares-inconsistent"
    | "epochs-reconciled"
    | "peer-frame-rejected";
  /** Peer name, when the event concerns one. */
  peer?: string;
  /** Key epoch, when known. */
  epoch?: number;
  /** Hub id (hex), when the event concerns one. */
  hub?: string;
  /**
   * Hub ids (hex) the event concerns: for `key-confirmation-failed` the hubs whose shares made the
   * wrong key, for `shares-inconsistent` every hub whose share took part.
   */
  hubs?: string[];
  /** For `shares-inconsistent`: at least this many of those hubs gave a wrong share. */
  lyingAtLeast?: number;
  /** Why, in words. */
  reason: string;
}

/** Options of {@link DskeAgreement}. */
export interface DskeAgreementOptions {
  /** Our WireGuard public key. */
  selfPublicKey: Uint8Array;
  /**
   * Our WireGuard private key: with each peer's public key it gives the pair's node ↔ node frame keys
   * (peer-auth.ts), derived once at construction; the derived keys are wiped by
   * {@link DskeAgreement.close}.
   */
  selfPrivateKey: Uint8Array;
  /** Our wg0 address: the peer channel listens on it. */
  listenHost: string;
  /** Peer-channel port (default 51831). */
  port?: number;
  /** The DSKE-managed AES peers. */
  peers: DskePeer[];
  /** The hubs we hold PSRD with. */
  hubs: HubLink[];
  /** Threshold k (≥ 2). */
  k: number;
  /** Rotation interval (ms). */
  rotationIntervalMs: number;
  /** Where the epoch counters are persisted. */
  stateDir: string;
  /** PSRD pools (client role). */
  store: PsrdStore;
  /** Hands an agreed key to the gate; returns whether it was installed. */
  install(peer: Uint8Array, psk: Uint8Array, epoch: number): boolean;
  /**
   * Closes the peer's gate at once (fail closed) because no further key can be agreed: PSRD exhausted.
   * `reason` names the cause and holds no secret.
   */
  closeGate?(peer: Uint8Array, reason: string): void;
  /** Event sink. */
  onEvent?: (e: DskeEvent) => void;
  /** Delay before retrying a failed round (ms). Default min(5 000, rotation interval). */
  retryDelayMs?: number;
  /**
   * Test-only fault switch: as recoverer, answer every second KEY_RESULT with nothing (a lost
   * KEY_RESULT). `twofold up` sets it only with `TWOFOLD_TEST_FAULT=drop-key-result`.
   */
  dropKeyResults?: boolean;
  /**
   * The source address node ↔ node frames from `peer` must come from. Default: its wg0 address (the
   * kernel sends from it over wg0). Tests over loopback, where every connection comes from 127.0.0.1,
   * set it.
   */
  expectedSource?: (peer: DskePeer) => string;
}

const HUB_TIMEOUT_MS = 5_000;
/** Per-peer epoch counters, in the state directory. */
const EPOCH_FILE = "dske-epochs.json";
const PEER_TIMEOUT_MS = 15_000;
/** After the k-th good answer, how long to wait for the rest (to check every hub). */
const STRAGGLER_MS = 300;
/** KEY_ABORT reason: the sender's PSRD is exhausted; no further key can be agreed. */
export const ABORT_PSRD_EXHAUSTED = 4;
/** How long a recoverer waits for the generator's commit (KEY_SYNC) before it asks itself. */
const COMMIT_WAIT_MS = 1_500;
/** A KEY_SYNC whose clock differs from ours by more than this is stale (a replay) and ignored. */
const SYNC_MAX_SKEW_MS = 60_000;
/** Start-up KEY_SYNC: tries and the pause between them (the peer may not be reachable yet). */
const START_SYNC_TRIES = 5;
const START_SYNC_PAUSE_MS = 1_000;
/** Rejected node ↔ node frames are reported at most this often. */
const REJECT_REPORT_INTERVAL_MS = 1_000;
/** A hub named as misbehaving stays flagged for this many rotation intervals. */
const MISBEHAVING_ROUNDS = 3;
/** PSRD one round needs per hub, by role: [send region, receive region]. */
const ROUND_PSRD: Record<"generator" | "recoverer", [number, number]> = {
  generator: [MAC_KEY_LEN + SHARE_LEN, MAC_KEY_LEN], // SHARE_PUT out, SHARE_PUT_ACK in
  recoverer: [MAC_KEY_LEN, MAC_KEY_LEN + SHARE_LEN], // SHARE_GET out, SHARE_GET_RESP in
};

/** One hub link as the admin API shows it (PSRD figures: {@link PsrdStore.blocks}). */
export interface DskeHubStatus {
  /** Hub id, hex. */
  hubId: string;
  /** The hub's DSKE endpoint, "ip:port". */
  endpoint: string;
  /** The client PSRD block used with this hub, hex. */
  blockId: string;
  /** Whether the latest request to it got an authenticated answer; null before any request. */
  reachable: boolean | null;
  /** When (unix ms) it last gave an authenticated answer; null if never. */
  lastAnswerAt: number | null;
  /** True when it was named as misbehaving within the last few rounds. */
  misbehaving: boolean;
}

interface HubState {
  reachable: boolean | null;
  lastAnswerAt: number | null;
  misbehavingAt: number | null;
  /** The hub answered PSRD_LOW (authenticated): it cannot send us a share any more. */
  hubExhausted: boolean;
  /** Roles for which exhaustion of this hub was already reported. */
  reported: Set<string>;
}

/** Per-peer status for the admin API and tests. */
export interface DskePeerStatus {
  /** Peer name. */
  peer: string;
  /** "generator" or "recoverer". */
  role: "generator" | "recoverer";
  /** Last agreed epoch, or null. */
  lastEpoch: number | null;
  /** Rounds that succeeded / failed. */
  agreed: number;
  /** Rounds that failed. */
  failed: number;
  /** Hubs named as misbehaving (hex ids) in the latest round. */
  badHubs: string[];
  /**
   * What went wrong in the latest round when the shares cannot be trusted (a failed key confirmation,
   * inconsistent shares: how many hubs could be lying, which took part), in words; null once a round
   * succeeds.
   */
  problem: string | null;
  /** Epochs of the agreed keys held in memory for reconciliation (oldest first). */
  heldEpochs: number[];
}

/** Per peer: the pair's frame keys and the keys both sides agreed (memory only). */
interface PairState {
  auth: PeerAuthKeys | null;
  held: HeldKeys;
  /** Epoch of the key we installed in the gate, or null (none, or closed for a reconciliation). */
  installed: number | null;
  roundTimer: ReturnType<typeof setTimeout> | null;
  roundRunning: boolean;
  /** Test fault: count of KEY_RESULTs answered. */
  results: number;
}

/** The key agreement of one node. */
export class DskeAgreement {
  readonly #o: DskeAgreementOptions;
  readonly #selfHex: string;
  readonly #emit: (e: DskeEvent) => void;
  readonly #status = new Map<string, DskePeerStatus>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #hubState = new Map<string, HubState>();
  /** Peers (hex) whose gate was closed for PSRD exhaustion. */
  readonly #exhausted = new Set<string>();
  /** Per peer (hex): key id of the latest agreed key. */
  readonly #lastKeyId = new Map<string, Uint8Array>();
  readonly #pairs = new Map<string, PairState>();
  #server: FrameServer | null = null;
  #closed = false;
  #epochs: Record<string, number> = {};
  #rejected = 0;
  #rejectedReported = 0;
  #lastRejectReport = -Infinity;

  /** Prepares the agreement; {@link start} begins it. */
  constructor(opts: DskeAgreementOptions) {
    if (opts.k < 2) throw new RangeError("k must be at least 2");
    this.#o = opts;
    this.#selfHex = toHex(opts.selfPublicKey);
    this.#emit = opts.onEvent ?? (() => {});
    for (const p of opts.peers) {
      this.#status.set(toHex(p.publicKey), {
        peer: p.name,
        role: this.#isGenerator(p) ? "generator" : "recoverer",
        lastEpoch: null,
        agreed: 0,
        failed: 0,
        badHubs: [],
        problem: null,
        heldEpochs: [],
      });
      this.#pairs.set(toHex(p.publicKey), {
        auth: derivePeerAuthKeys(opts.selfPrivateKey, opts.selfPublicKey, p.publicKey),
        held: new HeldKeys(),
        installed: null,
        roundTimer: null,
        roundRunning: false,
        results: 0,
      });
    }
    for (const h of opts.hubs) {
      this.#hubState.set(h.hubId, {
        reachable: null,
        lastAnswerAt: null,
        misbehavingAt: null,
        hubExhausted: false,
        reported: new Set(),
      });
    }
    this.#epochs = this.#loadEpochs();
  }

  /** Starts the peer channel and the generator rounds. Throws when the port cannot be bound. */
  start(): void {
    this.#server = serveFrames(
      this.#o.listenHost,
      this.#o.port ?? DSKE_PORT,
      (f, remote) => this.#onPeerFrame(f, remote),
      (remote, why) => this.#reject(`from ${remote.hostname}: ${why}`),
    );
    for (const p of this.#o.peers) {
      if (this.#isGenerator(p)) this.#schedule(p, 0);
      void this.#startSync(p);
    }
  }

  /** Per-peer status. */
  status(): DskePeerStatus[] {
    return this.#o.peers.map((p) => {
      const s = this.#status.get(toHex(p.publicKey))!;
      const heldEpochs = this.#pairs.get(toHex(p.publicKey))!.held.epochs();
      return { ...s, badHubs: [...s.badHubs], heldEpochs };
    });
  }

  /** Node ↔ node frames dropped since start (wrong sender address, bad tag, malformed, stale, unexpected). */
  rejectedFrames(): number {
    return this.#rejected;
  }

  /**
   * Asks `peer` (public key) which agreed keys it holds and moves to the newest both hold (e.g. after
   * the gate suspected a mismatch). Best effort; never throws.
   */
  reconcile(peer: Uint8Array): void {
    const p = this.#o.peers.find((x) => toHex(x.publicKey) === toHex(peer));
    if (p) void this.#sync(p).catch(() => {});
  }

  /**
   * Per hub link: id, endpoint, block, whether the latest request got an authenticated answer (null
   * before any) and whether it was named misbehaving within the last few rotation intervals. No secrets.
   */
  hubStatus(): DskeHubStatus[] {
    const now = Date.now();
    const recent = MISBEHAVING_ROUNDS * this.#o.rotationIntervalMs;
    return this.#o.hubs.map((h) => {
      const s = this.#hubState.get(h.hubId)!;
      return {
        hubId: h.hubId,
        endpoint: `${h.host}:${h.port}`,
        blockId: h.blockId,
        reachable: s.reachable,
        lastAnswerAt: s.lastAnswerAt,
        misbehaving: s.misbehavingAt !== null && now - s.misbehavingAt < recent,
      };
    });
  }

  /** Stops everything. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#server?.close();
    for (const pair of this.#pairs.values()) {
      pair.held.clear();
      pair.auth?.send.fill(0);
      pair.auth?.receive.fill(0);
    }
  }

  #isGenerator(p: DskePeer): boolean {
    return compareBytes(this.#o.selfPublicKey, p.publicKey) < 0;
  }

  #schedule(p: DskePeer, delayMs: number): void {
    if (this.#closed) return;
    const pair = this.#pairs.get(toHex(p.publicKey))!;
    if (pair.roundTimer !== null) {
      clearTimeout(pair.roundTimer);
      this.#timers.delete(pair.roundTimer);
    }
    const t = setTimeout(async () => {
      this.#timers.delete(t);
      pair.roundTimer = null;
      pair.roundRunning = true;
      let outcome: RoundOutcome = "failed";
      try {
        outcome = await this.#generate(p);
      } catch (e) {
        this.#emit({ type: "rotation-failed", peer: p.name, reason: `unexpected: ${(e as Error).name}` });
      } finally {
        pair.roundRunning = false;
      }
      if (outcome === "exhausted") return; // our PSRD is used up: no further round can run
      const retry = this.#o.retryDelayMs ?? Math.min(5_000, this.#o.rotationIntervalMs);
      this.#schedule(p, outcome === "failed" ? retry : this.#o.rotationIntervalMs);
    }, delayMs);
    pair.roundTimer = t;
    this.#timers.add(t);
  }

  /** Generator: run a round now (unless one is running or our PSRD is used up). */
  #roundNow(p: DskePeer): void {
    const pair = this.#pairs.get(toHex(p.publicKey))!;
    if (!this.#isGenerator(p) || pair.roundRunning || pair.roundTimer === null) return;
    this.#schedule(p, 0);
  }

  /**
   * One generator round for `p`: "agreed" when both sides hold the new key and we installed it,
   * "peer-exhausted" when the recoverer has no PSRD left, "exhausted" when ours is used up (no further
   * round), else "failed".
   */
  async #generate(p: DskePeer): Promise<RoundOutcome> {
    const peerHex = toHex(p.publicKey);
    const st = this.#status.get(peerHex)!;
    const pair = this.#pairs.get(peerHex)!;
    const fail = (reason: string, epoch?: number): RoundOutcome => {
      st.failed++;
      this.#emit({ type: "rotation-failed", peer: p.name, epoch, reason });
      return "failed";
    };
    if (!pair.auth) return fail(`peer ${p.name} has a public key no node ↔ node key can be derived from`);
    if (this.#o.hubs.length < this.#o.k) {
      return fail(`only ${this.#o.hubs.length} hub(s) with PSRD, k = ${this.#o.k}`);
    }
    const hubs = this.#usableHubs(this.#o.hubs, "generator");
    if (hubs.length < this.#o.k) {
      this.#failClosed(p, "generator", hubs.length, this.#o.hubs.length);
      st.failed++;
      this.#abortForPsrd(p);
      return "exhausted";
    }
    const epoch = this.#nextEpoch(peerHex);
    const keyId = crypto.getRandomValues(new Uint8Array(16));
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const sortedIds = hubs.map((h) => h.hubId).sort();
    const shares = makeShares(secret, this.#o.k, sortedIds);
    const ttlS = Math.min(600, Math.max(10, Math.ceil((3 * this.#o.rotationIntervalMs) / 1000)));
    const ctx: ConfirmContext = {
      keyId,
      epoch,
      generatorPeer: this.#o.selfPublicKey,
      recovererPeer: p.publicKey,
    };
    try {
      const acked = await this.#firstK(
        hubs.map((hub) => async () => {
          const share = shares.find((s) => s.hubId === hub.hubId)!;
          const block = this.#o.store.block(hub.blockId)!;
          const reply = await this.#request(hub, {
            type: 0x02,
            clientId: fromHex(block.clientId),
            hubId: fromHex(hub.hubId),
            keyId,
            generatorPeer: this.#o.selfPublicKey,
            recovererPeer: p.publicKey,
            epoch,
            ttlS,
            x: share.x,
            k: this.#o.k,
            n: hubs.length,
            share: share.share,
          });
          if (reply?.type === 0x82 && reply.status !== HubStatus.OK) {
            throw new HubDeclined(`declined SHARE_PUT (status ${reply.status})`);
          }
          if (reply?.type !== 0x82) {
            throw new HubReplyError(
              `SHARE_PUT not accepted (status ${(reply as { status?: number })?.status})`,
            );
          }
          return { hubId: hub.hubId, x: share.x };
        }),
        hubs,
        (got) => got.length >= this.#o.k,
      );
      if (acked.length < this.#o.k) {
        return fail(`only ${acked.length} of ${hubs.length} hubs stored a share (k = ${this.#o.k})`, epoch);
      }
      const offer: KeyOffer = {
        type: FrameType.KEY_OFFER,
        keyId,
        epoch,
        generatorPeer: this.#o.selfPublicKey,
        recovererPeer: p.publicKey,
        k: this.#o.k,
        n: acked.length, // the frame's n is the length of the hub list: the hubs that stored a share
        expiresMs: Date.now() + PEER_TIMEOUT_MS,
        confirm: confirmationTag(secret, "generator", ctx),
        hubs: acked.map((a) => ({ hubId: fromHex(a.hubId), x: a.x })),
      };
      let result: PeerMessage;
      try {
        const raw = await requestFrame(
          p.wgIp,
          this.#o.port ?? DSKE_PORT,
          encodePeerFrame(offer, pair.auth.send),
          PEER_TIMEOUT_MS,
        );
        result = decodePeerFrame(raw!, pair.auth.receive);
      } catch (e) {
        if (e instanceof FrameError) this.#reject(`answer from ${p.name}: ${e.message}`);
        return fail(`peer ${p.name} did not complete the exchange: ${(e as Error).message}`, epoch);
      }
      if (
        result.type !== FrameType.KEY_RESULT || toHex(result.keyId) !== toHex(keyId) || result.epoch !== epoch
      ) {
        this.#reject(`answer from ${p.name} is not the KEY_RESULT of this round`);
        return fail(`peer ${p.name} answered something other than KEY_RESULT for this key`, epoch);
      }
      const usedHubs = acked.map((a) => a.hubId);
      if (result.status === KeyResultStatus.CONFIRMATION_FAILED) {
        const forged = result.badHubs.map(toHex);
        st.failed++;
        this.#confirmationFailed(
          p,
          epoch,
          forged.length > 0 ? forged : usedHubs,
          `peer ${p.name} reconstructed a key that does not match this one: shares forged by ` +
            `${forged.length > 0 ? forged.length : "k or more"} colluding hub(s)?`,
        );
        return "failed";
      }
      st.badHubs = result.badHubs.map(toHex);
      for (const bad of st.badHubs) {
        this.#markMisbehaving(bad);
        this.#emit({
          type: "hub-misbehaved",
          peer: p.name,
          epoch,
          hub: bad,
          reason: "its share did not fit the others",
        });
      }
      if (result.status === KeyResultStatus.PSRD_LOW) {
        st.failed++;
        this.#closeForPsrd(
          p,
          `PSRD exhausted: peer ${p.name} has too little PSRD left with its hubs to recover a ` +
            `key (KEY_RESULT PSRD_LOW): aes0 gate closed (fail closed); provision new PSRD`,
          epoch,
        );
        return "peer-exhausted";
      }
      if (result.status !== KeyResultStatus.OK) {
        if (result.status === KeyResultStatus.VALIDATION_FAILED) {
          st.problem = `peer ${p.name} found the shares of epoch ${epoch} inconsistent (hubs ${
            usedHubs.map((id) => this.#hubText(id)).join(", ")
          })`;
        }
        return fail(`peer ${p.name} could not recover: status ${result.status}`, epoch);
      }
      if (!checkConfirmation(secret, "recoverer", ctx, result.confirm)) {
        st.failed++;
        this.#confirmationFailed(
          p,
          epoch,
          usedHubs,
          `the confirmation from ${p.name} does not match this key: it holds another one`,
        );
        return "failed";
      }
      pair.held.add(epoch, keyId, secret);
      if (!this.#o.install(p.publicKey, secret, epoch)) return fail("the gate refused the agreed key", epoch);
      this.#installed(p, epoch, `as generator via ${acked.length} hubs`);
      this.#exhausted.delete(peerHex); // the peer has PSRD again (e.g. restarted with a new block)
      void this.#sync(p).catch(() => {}); // the commit: the recoverer installs what we installed
      for (const a of acked) {
        const hub = hubs.find((h) => h.hubId === a.hubId)!;
        const block = this.#o.store.block(hub.blockId)!;
        if (block.txRemaining < MAC_KEY_LEN) continue; // optional: the TTL clears shares anyway
        hubRequest(
          this.#o.store,
          hub,
          {
            type: 0x04,
            clientId: fromHex(block.clientId),
            hubId: fromHex(hub.hubId),
            keyId,
          },
          HUB_TIMEOUT_MS,
          false,
        ).catch(() => {}); // the TTL clears shares anyway
      }
      return "agreed";
    } finally {
      secret.fill(0);
      for (const s of shares) s.share.fill(0);
    }
  }

  /** Bookkeeping once a key of `epoch` is installed in the gate for `p`. */
  #installed(p: DskePeer, epoch: number, how: string): void {
    const hex = toHex(p.publicKey);
    const st = this.#status.get(hex)!;
    const pair = this.#pairs.get(hex)!;
    st.agreed++;
    st.lastEpoch = epoch;
    st.problem = null;
    pair.installed = epoch;
    const held = pair.held.get(epoch);
    if (held) this.#lastKeyId.set(hex, held.keyId.slice());
    this.#emit({ type: "key-agreed", peer: p.name, epoch, reason: how });
  }

  /** A key confirmation failed: nothing is installed; the hubs whose shares made the key are named. */
  #confirmationFailed(p: DskePeer, epoch: number, hubs: string[], reason: string): void {
    const st = this.#status.get(toHex(p.publicKey))!;
    st.problem = `key confirmation failed for epoch ${epoch}: ${reason}; nothing installed ` +
      `(shares from hubs ${hubs.map((id) => this.#hubText(id)).join(", ")})`;
    this.#emit({ type: "key-confirmation-failed", peer: p.name, epoch, hubs, reason: st.problem });
  }

  /** A hub as status lines name it: its config name and id prefix (the prefix alone when unnamed). */
  #hubText(hubId: string): string {
    const name = this.#o.hubs.find((h) => h.hubId === hubId)?.name;
    return name ? `${name} (${hubId.slice(0, 8)})` : hubId.slice(0, 8);
  }

  /** Counts a dropped node ↔ node frame and reports drops at most once per second. */
  #reject(why: string): void {
    this.#rejected++;
    const now = Date.now();
    if (now - this.#lastRejectReport < REJECT_REPORT_INTERVAL_MS) return;
    const since = this.#rejected - this.#rejectedReported;
    this.#lastRejectReport = now;
    this.#rejectedReported = this.#rejected;
    this.#emit({
      type: "peer-frame-rejected",
      reason: `dropped ${since} node-to-node frame(s) (${this.#rejected} in all), latest: ${why}`,
    });
  }

  /**
   * The peer channel: accepts a frame only from a peer's wg0 address with a valid tag under that pair's
   * key, then dispatches it. Everything else is dropped and counted.
   */
  async #onPeerFrame(frame: Uint8Array, remote: Deno.NetAddr): Promise<Uint8Array | "close"> {
    const source = this.#o.expectedSource ?? ((p: DskePeer) => p.wgIp);
    const peer = this.#o.peers.find((p) => source(p) === remote.hostname);
    const pair = peer ? this.#pairs.get(toHex(peer.publicKey))! : undefined;
    if (!peer || !pair?.auth) {
      this.#reject(`from ${remote.hostname}, not a DSKE peer's wg0 address`);
      return "close";
    }
    let msg: PeerMessage;
    try {
      msg = decodePeerFrame(frame, pair.auth.receive);
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      this.#reject(`from ${peer.name} (${remote.hostname}): ${e.message}`);
      return "close";
    }
    switch (msg.type) {
      case FrameType.KEY_ABORT:
        this.#onAbort(peer, msg.keyId, msg.epoch, msg.reason);
        return "close";
      case FrameType.KEY_SYNC:
        return this.#onSync(peer, msg.timeMs, msg.epochs);
      case FrameType.KEY_OFFER:
        return await this.#onOffer(peer, msg);
      default:
        this.#reject(`from ${peer.name}: unexpected frame type ${msg.type}`);
        return "close";
    }
  }

  /** Recoverer: a KEY_OFFER from the generator `peer`. */
  async #onOffer(peer: DskePeer, msg: KeyOffer): Promise<Uint8Array | "close"> {
    const peerHex = toHex(peer.publicKey);
    const pair = this.#pairs.get(peerHex)!;
    if (
      this.#isGenerator(peer) || toHex(msg.generatorPeer) !== peerHex ||
      toHex(msg.recovererPeer) !== this.#selfHex || msg.k !== this.#o.k || msg.expiresMs < Date.now()
    ) {
      this.#reject(`KEY_OFFER from ${peer.name} for another pair, another k, or expired`);
      return "close"; // not a pair we recover for, or stale: say nothing
    }
    const st = this.#status.get(peerHex)!;
    const newest = Math.max(st.lastEpoch ?? -1, pair.held.newest() ?? -1);
    if (msg.epoch <= newest) {
      this.#reject(`KEY_OFFER from ${peer.name} for epoch ${msg.epoch}, not newer than ${newest} (replay?)`);
      return "close";
    }
    const send = pair.auth!.send;
    const answer = (
      status: number,
      bad: string[] = [],
      confirm: Uint8Array = new Uint8Array(CONFIRM_TAG_LEN),
    ) => {
      if (this.#o.dropKeyResults && pair.results++ % 2 === 1) return "close" as const; // test fault
      return encodePeerFrame({
        type: FrameType.KEY_RESULT,
        keyId: msg.keyId,
        epoch: msg.epoch,
        status,
        confirm,
        badHubs: bad.map(fromHex),
      }, send);
    };
    const known = msg.hubs
      .map((h) => ({ link: this.#o.hubs.find((l) => l.hubId === toHex(h.hubId)), x: h.x }))
      .filter((h): h is { link: HubLink; x: number } => h.link !== undefined);
    const usable = new Set(this.#usableHubs(known.map((h) => h.link), "recoverer"));
    const links = known.filter((h) => usable.has(h.link));
    if (known.length >= this.#o.k && links.length < this.#o.k) {
      this.#failClosed(peer, "recoverer", links.length, known.length);
      st.failed++;
      return answer(KeyResultStatus.PSRD_LOW);
    }
    if (links.length < this.#o.k) {
      st.failed++;
      this.#emit({
        type: "rotation-failed",
        peer: peer.name,
        epoch: msg.epoch,
        reason: "too few known hubs offered",
      });
      return answer(KeyResultStatus.UNKNOWN_HUB);
    }
    const ctx: ConfirmContext = {
      keyId: msg.keyId,
      epoch: msg.epoch,
      generatorPeer: msg.generatorPeer,
      recovererPeer: msg.recovererPeer,
    };
    const confirm = (secret: Uint8Array) => checkConfirmation(secret, "generator", ctx, msg.confirm);
    const got: { hubId: string; x: number; share: Uint8Array }[] = [];
    let exhausted = false;
    try {
      await this.#firstK(
        links.map(({ link, x }) => async () => {
          const block = this.#o.store.block(link.blockId)!;
          let reply: HubMessage | null;
          try {
            reply = await this.#request(link, {
              type: 0x03,
              clientId: fromHex(block.clientId),
              hubId: fromHex(link.hubId),
              keyId: msg.keyId,
              generatorPeer: msg.generatorPeer,
              recovererPeer: msg.recovererPeer,
            });
          } catch (e) {
            if (e instanceof PsrdExhausted) exhausted = true;
            throw e;
          }
          if (reply?.type !== 0x83) throw new HubReplyError("answered SHARE_GET with another message type");
          if (reply.status === HubStatus.PSRD_LOW) {
            // Authenticated: the hub has too little PSRD left to send us a share. Not used again.
            this.#hubState.get(link.hubId)!.hubExhausted = true;
            exhausted = true;
            throw new PsrdExhausted(`hub ${hubLabel(link)} has too little PSRD left to send a share`);
          }
          if (reply.status !== HubStatus.OK || !reply.share) {
            // Not a lie: the share may be gone (deleted once the round succeeded, expired, hub restarted).
            throw new HubDeclined(`declined SHARE_GET (status ${reply.status})`);
          }
          if (
            reply.x !== x || reply.k !== msg.k || reply.epoch !== msg.epoch ||
            toHex(reply.generatorPeer) !== toHex(msg.generatorPeer)
          ) {
            throw new HubReplyError("SHARE_GET answer does not match the offer");
          }
          got.push({ hubId: link.hubId, x, share: reply.share });
          return link.hubId;
        }),
        links.map((l) => l.link),
        () => {
          if (got.length < this.#o.k) return false;
          const trial = recoverSecret(got, this.#o.k, { confirm });
          if (trial.ok) trial.secret.fill(0);
          return trial.ok;
        },
      );
      const final = got.length >= this.#o.k ? recoverSecret(got, this.#o.k, { confirm }) : null;
      if (!final || !final.ok) {
        st.failed++;
        if (final?.reason === "confirmation-failed") {
          this.#confirmationFailed(
            peer,
            msg.epoch,
            final.forged,
            `the key the shares of hubs ${
              final.forged.map((id) => this.#hubText(id)).join(", ")
            } make does not match ` +
              `the generator's confirmation: k or more hubs forged their shares, or gave another round's`,
          );
          return answer(KeyResultStatus.CONFIRMATION_FAILED, final.forged);
        }
        const status = exhausted
          ? KeyResultStatus.PSRD_LOW
          : !final || final.reason === "not-enough-shares"
          ? KeyResultStatus.NOT_ENOUGH_SHARES
          : KeyResultStatus.VALIDATION_FAILED;
        if (status === KeyResultStatus.VALIDATION_FAILED) {
          this.#sharesInconsistent(peer, msg.epoch, got.map((g) => g.hubId));
        } else {
          this.#emit({
            type: "rotation-failed",
            peer: peer.name,
            epoch: msg.epoch,
            reason: `recovery failed with ${got.length} share(s) (status ${status})`,
          });
        }
        for (const bad of final?.inconsistent ?? []) this.#markMisbehaving(bad);
        if (exhausted) {
          const left = this.#usableHubs(known.map((h) => h.link), "recoverer").length;
          if (left < this.#o.k) this.#failClosed(peer, "recoverer", left, known.length);
        }
        return answer(status, final?.inconsistent ?? []);
      }
      st.badHubs = final.inconsistent;
      for (const bad of final.inconsistent) {
        this.#markMisbehaving(bad);
        this.#emit({
          type: "hub-misbehaved",
          peer: peer.name,
          epoch: msg.epoch,
          hub: bad,
          reason: "its share did not fit the others",
        });
      }
      // Held, not installed: the generator installs once it checked our confirmation, then commits
      // (KEY_SYNC); if the commit does not come, we ask (below).
      pair.held.add(msg.epoch, msg.keyId, final.secret);
      const tag = confirmationTag(final.secret, "recoverer", ctx);
      final.secret.fill(0);
      st.problem = null;
      this.#exhausted.delete(peerHex);
      const waitMs = Math.min(COMMIT_WAIT_MS, this.#o.rotationIntervalMs / 2);
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if ((pair.installed ?? -1) < msg.epoch) void this.#sync(peer).catch(() => {});
      }, waitMs);
      this.#timers.add(t);
      return answer(KeyResultStatus.OK, final.inconsistent, tag);
    } finally {
      for (const g of got) g.share.fill(0);
    }
  }

  /** No k-subset of the shares validates: say so, with how many of the hubs that took part could be lying. */
  #sharesInconsistent(peer: DskePeer, epoch: number, hubs: string[]): void {
    const st = this.#status.get(toHex(peer.publicKey))!;
    // Every k-subset holds a wrong share, so at most k − 1 shares are right.
    const lyingAtLeast = hubs.length - this.#o.k + 1;
    st.problem = `shares inconsistent for epoch ${epoch}: no ${this.#o.k} of the ${hubs.length} shares ` +
      `(hubs ${
        hubs.map((id) => this.#hubText(id)).join(", ")
      }) make a valid key; at least ${lyingAtLeast} of these ` +
      `${hubs.length} hubs gave a wrong share (which ones cannot be told)`;
    this.#emit({
      type: "shares-inconsistent",
      peer: peer.name,
      epoch,
      hubs,
      lyingAtLeast,
      reason: st.problem,
    });
  }

  /** Sends our held epochs to `p` and reconciles with its answer. Throws TransportError / FrameError. */
  async #sync(p: DskePeer): Promise<void> {
    const pair = this.#pairs.get(toHex(p.publicKey))!;
    if (!pair.auth || this.#closed) return;
    const raw = await requestFrame(
      p.wgIp,
      this.#o.port ?? DSKE_PORT,
      encodePeerFrame(this.#syncFrame(pair), pair.auth.send),
      PEER_TIMEOUT_MS,
    );
    let reply: PeerMessage;
    try {
      reply = decodePeerFrame(raw!, pair.auth.receive);
    } catch (e) {
      if (e instanceof FrameError) this.#reject(`KEY_SYNC answer from ${p.name}: ${e.message}`);
      throw e;
    }
    if (reply.type !== FrameType.KEY_SYNC || !this.#fresh(reply.timeMs)) {
      this.#reject(`KEY_SYNC answer from ${p.name} is not a fresh KEY_SYNC`);
      return;
    }
    this.#reconcileWith(p, reply.epochs);
  }

  /** Start-up: tell each peer we hold no keys (it closes a gate open for a key we lost), a few tries. */
  async #startSync(p: DskePeer): Promise<void> {
    for (let i = 0; i < START_SYNC_TRIES && !this.#closed; i++) {
      try {
        await this.#sync(p);
        return;
      } catch {
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            this.#timers.delete(t);
            r();
          }, START_SYNC_PAUSE_MS);
          this.#timers.add(t);
        });
      }
    }
  }

  #syncFrame(pair: PairState): PeerMessage {
    return {
      type: FrameType.KEY_SYNC,
      timeMs: Date.now(),
      epochs: pair.held.epochs().slice(-MAX_SYNC_EPOCHS),
    };
  }

  #fresh(timeMs: number): boolean {
    return Math.abs(Date.now() - timeMs) <= SYNC_MAX_SKEW_MS;
  }

  /** A KEY_SYNC request from `peer`: reconcile with its epochs, answer with ours. */
  #onSync(peer: DskePeer, timeMs: number, epochs: number[]): Uint8Array | "close" {
    if (!this.#fresh(timeMs)) {
      this.#reject(`KEY_SYNC from ${peer.name} with a clock ${Date.now() - timeMs} ms off (replay?)`);
      return "close";
    }
    this.#reconcileWith(peer, epochs);
    const pair = this.#pairs.get(toHex(peer.publicKey))!;
    return encodePeerFrame(this.#syncFrame(pair), pair.auth!.send);
  }

  /** Moves to the newest epoch both hold (install it), or closes a gate open for a key the peer lacks. */
  #reconcileWith(p: DskePeer, theirs: number[]): void {
    const pair = this.#pairs.get(toHex(p.publicKey))!;
    const r = reconcileTarget(pair.held.epochs(), theirs, pair.installed);
    if (r.action === "install") {
      const key = pair.held.get(r.epoch)!;
      const from = pair.installed;
      if (!this.#o.install(p.publicKey, key.psk, r.epoch)) return;
      this.#installed(
        p,
        r.epoch,
        `as ${this.#isGenerator(p) ? "generator" : "recoverer"}, confirmed by the peer`,
      );
      if (from !== null) {
        this.#emit({
          type: "epochs-reconciled",
          peer: p.name,
          epoch: r.epoch,
          reason: `moved from epoch ${from} to ${r.epoch}, the newest both sides hold`,
        });
      }
      return;
    }
    if (r.action === "close") {
      const was = pair.installed;
      pair.installed = null;
      const reason = `the peer ${p.name} does not hold key epoch ${was} (it restarted or lost the ` +
        `round) and no newer common key exists: aes0 gate closed until a new key is agreed`;
      this.#emit({ type: "epochs-reconciled", peer: p.name, epoch: was ?? undefined, reason });
      this.#o.closeGate?.(p.publicKey, reason);
    }
    if (theirs.length === 0 || r.action === "close") this.#roundNow(p);
  }

  /**
   * Runs `tasks` (one per hub) in parallel and resolves with the successful results once `enough`
   * says so (then waits STRAGGLER_MS for the rest) or when all settled. Failures become events.
   */
  async #firstK<T>(
    tasks: (() => Promise<T>)[],
    hubs: HubLink[],
    enough: (got: T[]) => boolean,
  ): Promise<T[]> {
    const got: T[] = [];
    let settled = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    let straggler: ReturnType<typeof setTimeout> | undefined;
    tasks.forEach((task, i) => {
      task().then((v) => {
        got.push(v);
        if (straggler === undefined && enough(got)) straggler = setTimeout(done, STRAGGLER_MS);
      }).catch((e) => {
        const hub = hubs[i].hubId;
        if (e instanceof HubDeclined) return;
        if (e instanceof PsrdExhausted) {
          this.#emit({
            type: "psrd-exhausted",
            hub,
            reason: "PSRD with this hub is used up: failing closed",
          });
        } else if (e instanceof TransportError) {
          this.#emit({ type: "hub-unreachable", hub, reason: e.message });
        } else {
          this.#markMisbehaving(hub);
          this.#emit({ type: "hub-misbehaved", hub, reason: (e as Error).message });
        }
      }).finally(() => {
        if (++settled === tasks.length) done();
      });
    });
    await finished;
    clearTimeout(straggler);
    return [...got];
  }

  /** {@link hubRequest} with a timeout, recording whether the hub gave an authenticated answer. */
  async #request(hub: HubLink, request: HubMessage): Promise<HubMessage | null> {
    const s = this.#hubState.get(hub.hubId)!;
    try {
      const reply = await hubRequest(this.#o.store, hub, request, HUB_TIMEOUT_MS);
      s.reachable = true;
      s.lastAnswerAt = Date.now();
      return reply;
    } catch (e) {
      if (!(e instanceof PsrdExhausted)) s.reachable = false; // PsrdExhausted: nothing was sent
      throw e;
    }
  }

  #markMisbehaving(hubHex: string): void {
    const s = this.#hubState.get(hubHex);
    if (s) s.misbehavingAt = Date.now();
  }

  /**
   * The hubs of `links` with PSRD for one more round in `role` (both regions, and the hub has not said
   * PSRD_LOW). Reports each hub the first time it drops out for a role.
   */
  #usableHubs(links: HubLink[], role: "generator" | "recoverer"): HubLink[] {
    const [tx, rx] = ROUND_PSRD[role];
    return links.filter((h) => {
      const b = this.#o.store.block(h.blockId);
      const s = this.#hubState.get(h.hubId)!;
      const ok = b !== undefined && b.txRemaining >= tx && b.rxRemaining >= rx &&
        !(role === "recoverer" && s.hubExhausted);
      if (!ok && !s.reported.has(role)) {
        s.reported.add(role);
        this.#emit({
          type: "psrd-exhausted",
          hub: h.hubId,
          reason: s.hubExhausted && role === "recoverer"
            ? `the hub has too little PSRD left to send a share: no longer used`
            : `PSRD with this hub is used up for a ${role} round (${b?.txRemaining ?? 0} B left to send, ` +
              `${b?.rxRemaining ?? 0} B to receive; ${tx} and ${rx} needed): no longer used`,
        });
      }
      return ok;
    });
  }

  /** Fewer than k hubs have PSRD left for `peer`: close its gate now (once) and say why. */
  #failClosed(peer: DskePeer, role: "generator" | "recoverer", usable: number, total: number): void {
    this.#closeForPsrd(
      peer,
      `PSRD exhausted: only ${usable} of ${total} hub(s) have PSRD left for a ${role} round, ` +
        `k = ${this.#o.k}: aes0 gate closed (fail closed); provision new PSRD`,
    );
  }

  /**
   * No further key can be agreed with `peer` (our PSRD, the peer's, or the generator's is used up):
   * emits `psrd-exhausted` and closes its gate, once until a key is agreed with it again.
   */
  #closeForPsrd(peer: DskePeer, reason: string, epoch?: number): void {
    const hex = toHex(peer.publicKey);
    if (this.#exhausted.has(hex)) return;
    this.#exhausted.add(hex);
    this.#emit({ type: "psrd-exhausted", peer: peer.name, epoch, reason });
    this.#o.closeGate?.(peer.publicKey, reason);
  }

  /** Tells the recoverer (best effort) that no further key will come: it closes its gate too. */
  #abortForPsrd(p: DskePeer): void {
    const pair = this.#pairs.get(toHex(p.publicKey))!;
    const keyId = this.#lastKeyId.get(toHex(p.publicKey));
    // No agreed key with it in this run: its gate closes at the maximum age anyway.
    if (!keyId || !pair.auth || pair.installed === null) return;
    requestFrame(
      p.wgIp,
      this.#o.port ?? DSKE_PORT,
      encodePeerFrame(
        { type: FrameType.KEY_ABORT, keyId, epoch: pair.installed, reason: ABORT_PSRD_EXHAUSTED },
        pair.auth.send,
      ),
      PEER_TIMEOUT_MS,
      false,
    ).catch(() => {});
  }

  /** An authenticated KEY_ABORT from `peer`: acted on only from our generator, for the key agreed with it. */
  #onAbort(peer: DskePeer, keyId: Uint8Array, epoch: number, reason: number): void {
    const pair = this.#pairs.get(toHex(peer.publicKey))!;
    const last = this.#lastKeyId.get(toHex(peer.publicKey));
    if (
      reason !== ABORT_PSRD_EXHAUSTED || this.#isGenerator(peer) || !last || toHex(last) !== toHex(keyId) ||
      pair.installed !== epoch
    ) {
      this.#reject(`KEY_ABORT from ${peer.name} for a key or epoch not in use, or an unknown reason`);
      return;
    }
    this.#closeForPsrd(
      peer,
      `PSRD exhausted: the generator ${peer.name} has no PSRD left for another round ` +
        `(KEY_ABORT): aes0 gate closed (fail closed)`,
    );
  }

  #nextEpoch(peerHex: string): number {
    const epoch = Math.max((this.#epochs[peerHex] ?? 0) + 1, Math.floor(Date.now() / 1000));
    this.#epochs[peerHex] = epoch;
    this.#saveEpochs(); // persisted before the epoch is used on the wire
    return epoch;
  }

  #loadEpochs(): Record<string, number> {
    try {
      const parsed = JSON.parse(Deno.readTextFileSync(`${this.#o.stateDir}/${EPOCH_FILE}`));
      return typeof parsed === "object" && parsed !== null ? parsed : {};
    } catch {
      return {};
    }
  }

  #saveEpochs(): void {
    Deno.mkdirSync(this.#o.stateDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.#o.stateDir, EPOCH_FILE, JSON.stringify(this.#epochs));
  }
}

/** How a generator round ended. */
type RoundOutcome = "agreed" | "failed" | "peer-exhausted" | "exhausted";

/** A hub answered with a refusal status (not evidence of misbehaviour). */
class HubDeclined extends Error {}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
