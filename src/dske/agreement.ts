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
  type HubMessage,
  HubStatus,
  type KeyOffer,
  KeyResultStatus,
  MAC_KEY_LEN,
  type PeerMessage,
  SHARE_LEN,
} from "./frames.ts";
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
  type: "key-agreed" | "rotation-failed" | "hub-unreachable" | "hub-misbehaved" | "psrd-exhausted";
  /** Peer name, when the event concerns one. */
  peer?: string;
  /** Key epoch, when known. */
  epoch?: number;
  /** Hub id (hex), when the event concerns one. */
  hub?: string;
  /** Why, in words. */
  reason: string;
}

/** Options of {@link DskeAgreement}. */
export interface DskeAgreementOptions {
  /** Our WireGuard public key. */
  selfPublicKey: Uint8Array;
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
}

const HUB_TIMEOUT_MS = 5_000;
/** Per-peer epoch counters, in the state directory. */
const EPOCH_FILE = "dske-epochs.json";
const PEER_TIMEOUT_MS = 15_000;
/** After the k-th good answer, how long to wait for the rest (to check every hub). */
const STRAGGLER_MS = 300;
/** KEY_ABORT reason: the sender's PSRD is exhausted; no further key can be agreed. */
export const ABORT_PSRD_EXHAUSTED = 4;
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
  #server: FrameServer | null = null;
  #closed = false;
  #epochs: Record<string, number> = {};

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
    this.#server = serveFrames(this.#o.listenHost, this.#o.port ?? DSKE_PORT, (f) => this.#onPeerFrame(f));
    for (const p of this.#o.peers) if (this.#isGenerator(p)) this.#schedule(p, 0);
  }

  /** Per-peer status. */
  status(): DskePeerStatus[] {
    return [...this.#status.values()].map((s) => ({ ...s, badHubs: [...s.badHubs] }));
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
  }

  #isGenerator(p: DskePeer): boolean {
    return compareBytes(this.#o.selfPublicKey, p.publicKey) < 0;
  }

  #schedule(p: DskePeer, delayMs: number): void {
    if (this.#closed) return;
    const t = setTimeout(async () => {
      this.#timers.delete(t);
      let outcome: RoundOutcome = "failed";
      try {
        outcome = await this.#generate(p);
      } catch (e) {
        this.#emit({ type: "rotation-failed", peer: p.name, reason: `unexpected: ${(e as Error).name}` });
      }
      if (outcome === "exhausted") return; // our PSRD is used up: no further round can run
      const retry = this.#o.retryDelayMs ?? Math.min(5_000, this.#o.rotationIntervalMs);
      this.#schedule(p, outcome === "failed" ? retry : this.#o.rotationIntervalMs);
    }, delayMs);
    this.#timers.add(t);
  }

  /**
   * One generator round for `p`: "agreed" when both sides installed the new key, "peer-exhausted" when
   * the recoverer has no PSRD left, "exhausted" when ours is used up (no further round), else "failed".
   */
  async #generate(p: DskePeer): Promise<RoundOutcome> {
    const st = this.#status.get(toHex(p.publicKey))!;
    const fail = (reason: string, epoch?: number): RoundOutcome => {
      st.failed++;
      this.#emit({ type: "rotation-failed", peer: p.name, epoch, reason });
      return "failed";
    };
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
    const peerHex = toHex(p.publicKey);
    const epoch = this.#nextEpoch(peerHex);
    const keyId = crypto.getRandomValues(new Uint8Array(16));
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const sortedIds = hubs.map((h) => h.hubId).sort();
    const shares = makeShares(secret, this.#o.k, sortedIds);
    const ttlS = Math.min(600, Math.max(10, Math.ceil((3 * this.#o.rotationIntervalMs) / 1000)));
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
        type: 0x10,
        keyId,
        epoch,
        generatorPeer: this.#o.selfPublicKey,
        recovererPeer: p.publicKey,
        k: this.#o.k,
        n: acked.length, // the frame's n is the length of the hub list: the hubs that stored a share
        expiresMs: Date.now() + PEER_TIMEOUT_MS,
        hubs: acked.map((a) => ({ hubId: fromHex(a.hubId), x: a.x })),
      };
      let result: PeerMessage;
      try {
        const raw = await requestFrame(
          p.wgIp,
          this.#o.port ?? DSKE_PORT,
          encodePeerFrame(offer),
          PEER_TIMEOUT_MS,
        );
        result = decodePeerFrame(raw!);
      } catch (e) {
        return fail(`peer ${p.name} did not complete the exchange: ${(e as Error).message}`, epoch);
      }
      if (result.type !== 0x11 || toHex(result.keyId) !== toHex(keyId)) {
        return fail(`peer ${p.name} answered something other than KEY_RESULT for this key`, epoch);
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
        return fail(`peer ${p.name} could not recover: status ${result.status}`, epoch);
      }
      if (!this.#o.install(p.publicKey, secret, epoch)) return fail("the gate refused the agreed key", epoch);
      st.agreed++;
      st.lastEpoch = epoch;
      this.#exhausted.delete(peerHex); // the peer has PSRD again (e.g. restarted with a new block)
      this.#lastKeyId.set(peerHex, keyId.slice());
      this.#emit({
        type: "key-agreed",
        peer: p.name,
        epoch,
        reason: `as generator via ${acked.length} hubs`,
      });
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

  /** Recoverer side of the peer channel. */
  async #onPeerFrame(frame: Uint8Array): Promise<Uint8Array | "close"> {
    let msg: PeerMessage;
    try {
      msg = decodePeerFrame(frame);
    } catch (e) {
      if (e instanceof FrameError) return "close";
      throw e;
    }
    if (msg.type === 0x12) {
      this.#onAbort(msg.keyId, msg.reason);
      return "close";
    }
    if (msg.type !== 0x10) return "close";
    const peer = this.#o.peers.find((p) => toHex(p.publicKey) === toHex(msg.generatorPeer));
    const answer = (status: number, bad: string[] = []) =>
      encodePeerFrame({ type: 0x11, keyId: msg.keyId, status, badHubs: bad.map(fromHex) });
    if (
      !peer || this.#isGenerator(peer) || toHex(msg.recovererPeer) !== this.#selfHex || msg.k !== this.#o.k ||
      msg.expiresMs < Date.now()
    ) {
      return "close"; // not a pair we recover for, or stale: say nothing
    }
    const st = this.#status.get(toHex(peer.publicKey))!;
    if (st.lastEpoch !== null && msg.epoch <= st.lastEpoch) return "close"; // replay
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
          const trial = recoverSecret(got, this.#o.k);
          if (trial.ok) trial.secret.fill(0);
          return trial.ok;
        },
      );
      const final = got.length >= this.#o.k ? recoverSecret(got, this.#o.k) : null;
      if (!final || !final.ok) {
        st.failed++;
        const status = exhausted
          ? KeyResultStatus.PSRD_LOW
          : !final || final.reason === "not-enough-shares"
          ? KeyResultStatus.NOT_ENOUGH_SHARES
          : KeyResultStatus.VALIDATION_FAILED;
        this.#emit({
          type: "rotation-failed",
          peer: peer.name,
          epoch: msg.epoch,
          reason: `recovery failed with ${got.length} share(s) (status ${status})`,
        });
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
      const installed = this.#o.install(peer.publicKey, final.secret, msg.epoch);
      final.secret.fill(0);
      if (!installed) {
        st.failed++;
        return answer(KeyResultStatus.VALIDATION_FAILED, final.inconsistent);
      }
      st.agreed++;
      st.lastEpoch = msg.epoch;
      this.#exhausted.delete(toHex(peer.publicKey));
      this.#lastKeyId.set(toHex(peer.publicKey), msg.keyId.slice());
      this.#emit({
        type: "key-agreed",
        peer: peer.name,
        epoch: msg.epoch,
        reason: `as recoverer from ${got.length} shares`,
      });
      return answer(KeyResultStatus.OK, final.inconsistent);
    } finally {
      for (const g of got) g.share.fill(0);
    }
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
    const keyId = this.#lastKeyId.get(toHex(p.publicKey));
    if (!keyId) return; // no agreed key with it in this run: its gate closes at the maximum age anyway
    requestFrame(
      p.wgIp,
      this.#o.port ?? DSKE_PORT,
      encodePeerFrame({ type: 0x12, keyId, reason: ABORT_PSRD_EXHAUSTED }),
      PEER_TIMEOUT_MS,
      false,
    ).catch(() => {});
  }

  /** KEY_ABORT from a generator: accepted only for the key currently agreed with it. */
  #onAbort(keyId: Uint8Array, reason: number): void {
    if (reason !== ABORT_PSRD_EXHAUSTED) return;
    const hex = toHex(keyId);
    const peer = this.#o.peers.find((p) =>
      !this.#isGenerator(p) && toHex(this.#lastKeyId.get(toHex(p.publicKey)) ?? new Uint8Array()) === hex
    );
    if (!peer) return;
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
