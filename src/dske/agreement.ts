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
  type PeerMessage,
} from "./frames.ts";
import { DSKE_PORT, type FrameServer, requestFrame, serveFrames, TransportError } from "./frame-transport.ts";
import { type HubLink, HubReplyError, hubRequest } from "./hub-client.ts";
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
      let ok = false;
      try {
        ok = await this.#generate(p);
      } catch (e) {
        this.#emit({ type: "rotation-failed", peer: p.name, reason: `unexpected: ${(e as Error).name}` });
      }
      const retry = this.#o.retryDelayMs ?? Math.min(5_000, this.#o.rotationIntervalMs);
      this.#schedule(p, ok ? this.#o.rotationIntervalMs : retry);
    }, delayMs);
    this.#timers.add(t);
  }

  /** One generator round for `p`; true when both sides installed the new key. */
  async #generate(p: DskePeer): Promise<boolean> {
    const st = this.#status.get(toHex(p.publicKey))!;
    const fail = (reason: string, epoch?: number) => {
      st.failed++;
      this.#emit({ type: "rotation-failed", peer: p.name, epoch, reason });
      return false;
    };
    const hubs = this.#o.hubs;
    if (hubs.length < this.#o.k) return fail(`only ${hubs.length} hub(s) with PSRD, k = ${this.#o.k}`);
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
          const reply = await hubRequest(this.#o.store, hub, {
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
          }, HUB_TIMEOUT_MS);
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
        this.#emit({
          type: "hub-misbehaved",
          peer: p.name,
          epoch,
          hub: bad,
          reason: "its share did not fit the others",
        });
      }
      if (result.status !== KeyResultStatus.OK) {
        return fail(`peer ${p.name} could not recover: status ${result.status}`, epoch);
      }
      if (!this.#o.install(p.publicKey, secret, epoch)) return fail("the gate refused the agreed key", epoch);
      st.agreed++;
      st.lastEpoch = epoch;
      this.#emit({
        type: "key-agreed",
        peer: p.name,
        epoch,
        reason: `as generator via ${acked.length} hubs`,
      });
      for (const a of acked) {
        const hub = hubs.find((h) => h.hubId === a.hubId)!;
        const block = this.#o.store.block(hub.blockId)!;
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
      return true;
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
    const links = msg.hubs
      .map((h) => ({ link: this.#o.hubs.find((l) => l.hubId === toHex(h.hubId)), x: h.x }))
      .filter((h): h is { link: HubLink; x: number } => h.link !== undefined);
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
            reply = await hubRequest(this.#o.store, link, {
              type: 0x03,
              clientId: fromHex(block.clientId),
              hubId: fromHex(link.hubId),
              keyId: msg.keyId,
              generatorPeer: msg.generatorPeer,
              recovererPeer: msg.recovererPeer,
            }, HUB_TIMEOUT_MS);
          } catch (e) {
            if (e instanceof PsrdExhausted) exhausted = true;
            throw e;
          }
          if (reply?.type !== 0x83) throw new HubReplyError("answered SHARE_GET with another message type");
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
        return answer(status, final?.inconsistent ?? []);
      }
      st.badHubs = final.inconsistent;
      for (const bad of final.inconsistent) {
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

/** A hub answered with a refusal status (not evidence of misbehaviour). */
class HubDeclined extends Error {}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
