/**
 * A Rosenpass server as a pure state machine: it owns the static key pair, the peers, the initiator
 * handshakes, the biscuit keys and the live sessions, and turns inputs (a received datagram, a timer
 * tick, a request to initiate) plus `now` (seconds) into actions (send a message, a key was
 * exchanged, a key went stale, a handshake failed). It does no I/O and reads no clock; randomness
 * and the KEMs come through `ProtocolCrypto`.
 */
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { toHex } from "../encoding.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { aeadOpen, aeadSeal } from "./aead.ts";
import { BiscuitKeys, biscuitSlot, openBiscuit, sealBiscuit } from "./biscuit.ts";
import { ChainingKey, type StepTrace } from "./chaining-key.ts";
import {
  AEAD_NONCE_LEN,
  BISCUIT_EPOCH,
  COOKIE_LEN,
  KEY_LEN,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME_INITIATOR,
  REKEY_AFTER_TIME_RESPONDER,
  RETRANSMIT_ABORT,
  RETRANSMIT_DELAY_BEGIN,
  RETRANSMIT_DELAY_END,
  RETRANSMIT_DELAY_GROWTH,
  RETRANSMIT_DELAY_JITTER,
  SESSION_ID_LEN,
  XAEAD_NONCE_LEN,
} from "./constants.ts";
import { type HashDomains, hashDomains } from "./hash-domains.ts";
import {
  decodeMessage,
  type EmptyData,
  encodeMessage,
  type InitConf,
  type InitHello,
  type Payload,
  type RespHello,
} from "./messages.ts";
import type { Profile } from "./profile.ts";
import { defaultProtocolCrypto, type ProtocolCrypto } from "./protocol-crypto.ts";

/** Which side of the exchange produced a session. */
export type HandshakeRole = "initiator" | "responder";

/** Timer values in seconds; the defaults are the reference implementation's (tests may shorten them). */
export interface RosenpassTimers {
  rekeyAfterResponder: number;
  rekeyAfterInitiator: number;
  rejectAfter: number;
  biscuitEpoch: number;
  retransmitBegin: number;
  retransmitEnd: number;
  retransmitGrowth: number;
  retransmitJitter: number;
  retransmitAbort: number;
}

/** The reference implementation's timers. */
export const DEFAULT_TIMERS: RosenpassTimers = {
  rekeyAfterResponder: REKEY_AFTER_TIME_RESPONDER,
  rekeyAfterInitiator: REKEY_AFTER_TIME_INITIATOR,
  rejectAfter: REJECT_AFTER_TIME,
  biscuitEpoch: BISCUIT_EPOCH,
  retransmitBegin: RETRANSMIT_DELAY_BEGIN,
  retransmitEnd: RETRANSMIT_DELAY_END,
  retransmitGrowth: RETRANSMIT_DELAY_GROWTH,
  retransmitJitter: RETRANSMIT_DELAY_JITTER,
  retransmitAbort: RETRANSMIT_ABORT,
};

/** What the shell must do after an input. */
export type RosenpassAction =
  | { kind: "send"; peer: string; message: Uint8Array }
  | { kind: "key-exchanged"; peer: string; key: Uint8Array; role: HandshakeRole; at: number }
  | { kind: "key-stale"; peer: string; at: number }
  | { kind: "handshake-failed"; peer: string; reason: string }
  | { kind: "rejected"; reason: string };

/** A peer as configured: an id chosen by the caller, its static public key, an optional PSK. */
export interface RosenpassPeerConfig {
  id: string;
  publicKey: Uint8Array;
  psk?: Uint8Array;
}

/** Per-peer key state for status output. */
export type RosenpassPeerStatus =
  | { state: "waiting" }
  | { state: "exchanged"; role: HandshakeRole; exchangedAt: number; exchanges: number }
  | { state: "stale"; since: number; exchanges: number };

/** Construction options of a server. */
export interface RosenpassServerOptions {
  profile: Profile;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  crypto?: ProtocolCrypto;
  timers?: Partial<RosenpassTimers>;
  /** Receives the chaining key after each protocol step (test-vector replay). */
  trace?: StepTrace;
}

interface Session {
  createdAt: number;
  role: HandshakeRole;
  sidm: Uint8Array;
  sidt: Uint8Array;
  txkm: Uint8Array;
  txkt: Uint8Array;
  txnm: bigint;
  txnt: bigint;
}

interface InitiatorHandshake {
  createdAt: number;
  /** Random per handshake; keys the envelope cookie field of the initiator's messages. */
  cookieValue: Uint8Array;
  sidi: Uint8Array;
  chainingKey: ChainingKey;
  eski: Uint8Array;
  epki: Uint8Array;
  awaiting: "resp-hello" | "resp-conf";
  message: Uint8Array;
  txCount: number;
  retryAt: number;
}

interface KnownInitConf {
  digest: Uint8Array;
  response: Uint8Array;
}

interface PeerState {
  id: string;
  spkt: Uint8Array;
  /** lhash("chaining key init", spkt): constant per peer, cached (it hashes the 524 KB key). */
  initialChainingKey: Uint8Array;
  /** lhash("mac", spkt): the key of the MACs we send to this peer, cached likewise. */
  macKey: Uint8Array;
  psk: Uint8Array;
  pidt: Uint8Array;
  biscuitUsed: bigint;
  session?: Session;
  handshake?: InitiatorHandshake;
  knownInitConf?: KnownInitConf;
  exchanges: number;
  staleSince?: number;
}

const EMPTY = new Uint8Array(0);
const CTR_LEN = 8;

function encodeCounter(n: bigint): Uint8Array {
  const out = new Uint8Array(CTR_LEN);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

function counterNonce(ctr: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(AEAD_NONCE_LEN);
  nonce.set(ctr);
  return nonce;
}

/** The Rosenpass protocol engine for one local static key pair. */
export class RosenpassServer {
  readonly profile: Profile;
  readonly #domains: HashDomains;
  readonly #sskm: Uint8Array;
  readonly #spkm: Uint8Array;
  readonly #pidm: Uint8Array;
  readonly #initialChainingKey: Uint8Array;
  /** Key of the MACs addressed to us: cached so an unauthenticated datagram costs one short hash. */
  readonly #macKey: Uint8Array;
  readonly #crypto: ProtocolCrypto;
  readonly #timers: RosenpassTimers;
  readonly #trace: StepTrace;
  readonly #peers = new Map<string, PeerState>();
  readonly #peersByPid = new Map<string, PeerState>();
  readonly #biscuitKeys: BiscuitKeys;
  #biscuitCounter = 1n;

  constructor(options: RosenpassServerOptions) {
    this.profile = options.profile;
    this.#domains = hashDomains(options.profile);
    this.#sskm = options.secretKey;
    this.#spkm = options.publicKey;
    this.#pidm = this.#domains.peerId(options.publicKey);
    this.#initialChainingKey = this.#domains.chainingKeyInit(options.publicKey);
    this.#macKey = this.#domains.macKey(options.publicKey);
    this.#crypto = options.crypto ?? defaultProtocolCrypto(options.profile);
    this.#timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.#trace = options.trace ?? (() => {});
    this.#biscuitKeys = new BiscuitKeys(this.#timers.biscuitEpoch);
  }

  /** Adds a peer; its id must be unique and its public key distinct from every other peer's. */
  addPeer(config: RosenpassPeerConfig): void {
    if (this.#peers.has(config.id)) throw new Error(`rosenpass peer ${config.id} already exists`);
    const pidt = this.#domains.peerId(config.publicKey);
    if (this.#peersByPid.has(toHex(pidt))) {
      throw new Error(`rosenpass peer ${config.id}: public key used twice`);
    }
    const psk = config.psk ?? new Uint8Array(KEY_LEN);
    if (psk.length !== KEY_LEN) {
      throw new RangeError(`rosenpass peer ${config.id}: psk must be ${KEY_LEN} bytes`);
    }
    const peer: PeerState = {
      id: config.id,
      spkt: config.publicKey,
      initialChainingKey: this.#domains.chainingKeyInit(config.publicKey),
      macKey: this.#domains.macKey(config.publicKey),
      psk,
      pidt,
      biscuitUsed: 0n,
      exchanges: 0,
    };
    this.#peers.set(config.id, peer);
    this.#peersByPid.set(toHex(pidt), peer);
  }

  /** The key state of a peer, for status output. */
  peerStatus(id: string): RosenpassPeerStatus | undefined {
    const peer = this.#peers.get(id);
    if (peer === undefined) return undefined;
    if (peer.session) {
      return {
        state: "exchanged",
        role: peer.session.role,
        exchangedAt: peer.session.createdAt,
        exchanges: peer.exchanges,
      };
    }
    if (peer.staleSince !== undefined) {
      return { state: "stale", since: peer.staleSince, exchanges: peer.exchanges };
    }
    return { state: "waiting" };
  }

  /** Starts a handshake with `peerId` as initiator now (replacing any ongoing one). */
  initiate(peerId: string, now: number): RosenpassAction[] {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) throw new Error(`rosenpass: no peer ${peerId}`);
    return [this.#startHandshake(peer, now)];
  }

  /** Timers: retransmissions, rekeying, giving up, stale keys. Call at `nextDeadline()` or later. */
  poll(now: number): RosenpassAction[] {
    const actions: RosenpassAction[] = [];
    const t = this.#timers;
    for (const peer of this.#peers.values()) {
      if (peer.session && now - peer.session.createdAt >= t.rejectAfter) {
        this.#eraseSession(peer);
        peer.knownInitConf = undefined;
        peer.staleSince = now;
        actions.push({ kind: "key-stale", peer: peer.id, at: now });
      }
      const hs = peer.handshake;
      if (hs && now - hs.createdAt >= t.retransmitAbort) {
        this.#dropHandshake(peer);
        actions.push({
          kind: "handshake-failed",
          peer: peer.id,
          reason: `no answer within ${t.retransmitAbort} s`,
        });
      } else if (hs && now >= hs.retryAt) {
        actions.push({ kind: "send", peer: peer.id, message: hs.message });
        this.#scheduleRetransmission(hs, now);
      }
      if (peer.handshake === undefined && this.#rekeyDue(peer, now)) {
        actions.push(this.#startHandshake(peer, now));
      }
    }
    return actions;
  }

  /** The earliest time at which `poll` has something to do (-Infinity: poll now; undefined: nothing scheduled). */
  nextDeadline(): number | undefined {
    let next = Infinity;
    const t = this.#timers;
    for (const peer of this.#peers.values()) {
      if (peer.session) {
        next = Math.min(next, peer.session.createdAt + t.rejectAfter);
        if (peer.handshake === undefined) {
          next = Math.min(next, peer.session.createdAt + this.#rekeyAfter(peer));
        }
      } else if (peer.handshake === undefined) {
        next = -Infinity; // a peer without key or handshake: initiate at the next poll
      }
      if (peer.handshake) {
        next = Math.min(next, peer.handshake.retryAt, peer.handshake.createdAt + t.retransmitAbort);
      }
    }
    return next === Infinity ? undefined : next;
  }

  /**
   * Handles one received datagram. `admitInitHello` is asked after an InitHello's MAC has been
   * verified and before any KEM work (the DoS admission); refusing it drops the message.
   */
  handleMessage(
    now: number,
    bytes: Uint8Array,
    admitInitHello: () => boolean = () => true,
  ): RosenpassAction[] {
    const decoded = decodeMessage(this.profile, bytes);
    if (decoded === null) return [{ kind: "rejected", reason: "not a handshake message of this profile" }];
    const expectedMac = this.#domains.macWithKey(this.#macKey, decoded.macCovered);
    if (!constantTimeEqual(expectedMac, decoded.mac)) return [{ kind: "rejected", reason: "bad MAC" }];
    const payload: Payload = decoded.payload;
    switch (payload.kind) {
      case "init-hello":
        if (!admitInitHello()) return [{ kind: "rejected", reason: "InitHello not admitted (load)" }];
        return this.#onInitHello(now, payload);
      case "resp-hello":
        return this.#onRespHello(now, payload);
      case "init-conf":
        return this.#onInitConf(now, payload, bytes);
      case "empty-data":
        return this.#onEmptyData(payload);
    }
  }

  #rekeyAfter(peer: PeerState): number {
    return peer.session?.role === "initiator"
      ? this.#timers.rekeyAfterInitiator
      : this.#timers.rekeyAfterResponder;
  }

  #rekeyDue(peer: PeerState, now: number): boolean {
    return peer.session === undefined || now - peer.session.createdAt >= this.#rekeyAfter(peer);
  }

  #seal(peer: PeerState, payload: Payload, cookieValue?: Uint8Array): Uint8Array {
    return encodeMessage(
      this.profile,
      payload,
      (covered) => this.#domains.macWithKey(peer.macKey, covered),
      cookieValue && ((covered) => this.#domains.cookie(cookieValue, covered)),
    );
  }

  #scheduleRetransmission(hs: InitiatorHandshake, now: number): void {
    const t = this.#timers;
    const maxSteps = Math.log(t.retransmitEnd / t.retransmitBegin) / Math.log(t.retransmitGrowth);
    const delay = t.retransmitBegin * t.retransmitGrowth ** Math.min(maxSteps, hs.txCount) *
      t.retransmitJitter * (this.#crypto.randomUnit() + 1);
    hs.retryAt = now + delay;
    hs.txCount++;
  }

  #startHandshake(peer: PeerState, now: number): RosenpassAction {
    this.#dropHandshake(peer);
    const cookieValue = this.#crypto.randomBytes(COOKIE_LEN);
    const ck = new ChainingKey(this.#domains, peer.initialChainingKey);
    const sidi = this.#crypto.randomBytes(SESSION_ID_LEN);
    const { secretKey: eski, publicKey: epki } = this.#crypto.ephemeralKeygen();
    ck.mix(sidi, epki);
    this.#trace("IHI4", ck.value);
    const sctr = ck.mixEncapsulation(peer.spkt, this.#crypto.staticEncapsulate(peer.spkt));
    this.#trace("IHI5", ck.value);
    const pidiCt = ck.encryptAndMix(this.#pidm);
    this.#trace("IHI6", ck.value);
    ck.mix(this.#spkm, peer.psk);
    this.#trace("IHI7", ck.value);
    const auth = ck.encryptAndMix();
    this.#trace("IHI8", ck.value);
    const message = this.#seal(peer, { kind: "init-hello", sidi, epki, sctr, pidiCt, auth }, cookieValue);
    const hs: InitiatorHandshake = {
      createdAt: now,
      cookieValue,
      sidi,
      chainingKey: ck,
      eski,
      epki,
      awaiting: "resp-hello",
      message,
      txCount: 0,
      retryAt: now,
    };
    this.#scheduleRetransmission(hs, now);
    peer.handshake = hs;
    return { kind: "send", peer: peer.id, message };
  }

  #onInitHello(now: number, ih: InitHello): RosenpassAction[] {
    const ck = new ChainingKey(this.#domains, this.#initialChainingKey);
    ck.mix(ih.sidi, ih.epki);
    this.#trace("IHR4", ck.value);
    const sptr = this.#crypto.staticDecapsulate(ih.sctr, this.#sskm);
    ck.mixDecapsulation(this.#spkm, sptr, ih.sctr);
    this.#trace("IHR5", ck.value);
    const pidi = ck.decryptAndMix(ih.pidiCt);
    if (pidi === null) return [{ kind: "rejected", reason: "InitHello: peer id does not decrypt" }];
    const peer = this.#peersByPid.get(toHex(pidi));
    if (peer === undefined) return [{ kind: "rejected", reason: "InitHello: unknown peer" }];
    this.#trace("IHR6", ck.value);
    ck.mix(peer.spkt, peer.psk);
    this.#trace("IHR7", ck.value);
    if (ck.decryptAndMix(ih.auth) === null) {
      return [{ kind: "handshake-failed", peer: peer.id, reason: "InitHello: authentication failed" }];
    }
    this.#trace("IHR8", ck.value);
    const sidr = this.#crypto.randomBytes(SESSION_ID_LEN);
    ck.mix(sidr, ih.sidi);
    this.#trace("RHR3", ck.value);
    const ecti = ck.mixEncapsulation(ih.epki, this.#crypto.ephemeralEncapsulate(ih.epki));
    this.#trace("RHR4", ck.value);
    const scti = ck.mixEncapsulation(peer.spkt, this.#crypto.staticEncapsulate(peer.spkt));
    this.#trace("RHR5", ck.value);
    const biscuit = this.#storeBiscuit(peer, ck, ih.sidi, sidr, now);
    this.#trace("RHR6", ck.value);
    const auth = ck.encryptAndMix();
    this.#trace("RHR7", ck.value);
    ck.erase();
    const message = this.#seal(peer, { kind: "resp-hello", sidr, sidi: ih.sidi, ecti, scti, auth, biscuit });
    return [{ kind: "send", peer: peer.id, message }];
  }

  #storeBiscuit(
    peer: PeerState,
    ck: ChainingKey,
    sidi: Uint8Array,
    sidr: Uint8Array,
    now: number,
  ): Uint8Array {
    const biscuitNo = this.#biscuitCounter;
    const ad = this.#domains.biscuitAd(this.#spkm, sidi, sidr);
    this.#biscuitCounter++;
    const slot = this.#biscuitKeys.active(now, () => this.#crypto.randomBytes(KEY_LEN));
    const nonce = this.#crypto.randomBytes(XAEAD_NONCE_LEN);
    const biscuit = sealBiscuit(
      { pidi: peer.pidt, biscuitNo, chainingKey: ck.value },
      this.#biscuitKeys.key(slot),
      slot,
      nonce,
      ad,
    );
    ck.mix(biscuit);
    return biscuit;
  }

  #onRespHello(now: number, rh: RespHello): RosenpassAction[] {
    const peer = this.#handshakeBySidi(rh.sidi, "resp-hello");
    if (peer === undefined) {
      return [{ kind: "rejected", reason: "RespHello: no handshake with this session id" }];
    }
    const hs = peer.handshake!;
    const ck = hs.chainingKey.clone();
    ck.mix(rh.sidr, rh.sidi);
    this.#trace("RHI3", ck.value);
    ck.mixDecapsulation(hs.epki, this.#crypto.ephemeralDecapsulate(rh.ecti, hs.eski), rh.ecti);
    this.#trace("RHI4", ck.value);
    ck.mixDecapsulation(this.#spkm, this.#crypto.staticDecapsulate(rh.scti, this.#sskm), rh.scti);
    this.#trace("RHI5", ck.value);
    ck.mix(rh.biscuit);
    this.#trace("RHI6", ck.value);
    if (ck.decryptAndMix(rh.auth) === null) {
      return [{ kind: "handshake-failed", peer: peer.id, reason: "RespHello: authentication failed" }];
    }
    this.#trace("RHI7", ck.value);
    ck.mix(rh.sidi, rh.sidr);
    this.#trace("ICI3", ck.value);
    const auth = ck.encryptAndMix();
    this.#trace("ICI4", ck.value);
    const key = this.#enterLive(peer, ck, "initiator", rh.sidi, rh.sidr, now);
    hs.chainingKey.erase();
    hs.eski.fill(0);
    hs.awaiting = "resp-conf";
    hs.message = this.#seal(
      peer,
      { kind: "init-conf", sidi: rh.sidi, sidr: rh.sidr, biscuit: rh.biscuit, auth },
      hs.cookieValue,
    );
    hs.txCount = 0;
    this.#scheduleRetransmission(hs, now);
    return [
      { kind: "send", peer: peer.id, message: hs.message },
      { kind: "key-exchanged", peer: peer.id, key, role: "initiator", at: now },
    ];
  }

  #onInitConf(now: number, ic: InitConf, bytes: Uint8Array): RosenpassAction[] {
    const digest = sha256(bytes);
    for (const peer of this.#peers.values()) {
      if (peer.knownInitConf && constantTimeEqual(peer.knownInitConf.digest, digest)) {
        return [{ kind: "send", peer: peer.id, message: peer.knownInitConf.response }];
      }
    }
    const key = this.#biscuitKeys.openingKey(biscuitSlot(ic.biscuit), now);
    if (key === null) return [{ kind: "rejected", reason: "InitConf: biscuit key expired" }];
    const content = openBiscuit(ic.biscuit, key, this.#domains.biscuitAd(this.#spkm, ic.sidi, ic.sidr));
    if (content === null) return [{ kind: "rejected", reason: "InitConf: biscuit does not decrypt" }];
    const peer = this.#peersByPid.get(toHex(content.pidi));
    if (peer === undefined) return [{ kind: "rejected", reason: "InitConf: unknown peer" }];
    const ck = new ChainingKey(this.#domains, content.chainingKey);
    ck.mix(ic.biscuit);
    this.#trace("ICR1", ck.value);
    ck.encryptAndMix();
    this.#trace("ICR2", ck.value);
    ck.mix(ic.sidi, ic.sidr);
    this.#trace("ICR3", ck.value);
    if (ck.decryptAndMix(ic.auth) === null) {
      return [{ kind: "handshake-failed", peer: peer.id, reason: "InitConf: authentication failed" }];
    }
    this.#trace("ICR4", ck.value);
    if (content.biscuitNo <= peer.biscuitUsed) {
      return [{ kind: "rejected", reason: "InitConf: biscuit already used" }];
    }
    peer.biscuitUsed = content.biscuitNo;
    const osk = this.#enterLive(peer, ck, "responder", ic.sidi, ic.sidr, now);
    this.#dropHandshake(peer);
    const session = peer.session!;
    const ctr = encodeCounter(session.txnm);
    session.txnm++;
    const auth = aeadSeal(session.txkm, counterNonce(ctr), EMPTY, EMPTY);
    const response = this.#seal(peer, { kind: "empty-data", sid: session.sidt, ctr, auth });
    peer.knownInitConf = { digest, response };
    return [
      { kind: "send", peer: peer.id, message: response },
      { kind: "key-exchanged", peer: peer.id, key: osk, role: "responder", at: now },
    ];
  }

  #onEmptyData(ed: EmptyData): RosenpassAction[] {
    const peer = this.#handshakeBySidi(ed.sid, "resp-conf");
    if (peer === undefined || peer.session === undefined) {
      return [{ kind: "rejected", reason: "EmptyData: no handshake awaiting confirmation" }];
    }
    const session = peer.session;
    const n = new DataView(ed.ctr.buffer, ed.ctr.byteOffset, CTR_LEN).getBigUint64(0, true);
    if (n < session.txnt) return [{ kind: "rejected", reason: "EmptyData: stale counter" }];
    if (aeadOpen(session.txkt, counterNonce(ed.ctr), ed.auth, EMPTY) === null) {
      return [{ kind: "handshake-failed", peer: peer.id, reason: "EmptyData: authentication failed" }];
    }
    session.txnt = n;
    this.#dropHandshake(peer);
    return [];
  }

  #handshakeBySidi(sidi: Uint8Array, awaiting: InitiatorHandshake["awaiting"]): PeerState | undefined {
    for (const peer of this.#peers.values()) {
      const hs = peer.handshake;
      if (hs && hs.awaiting === awaiting && constantTimeEqual(hs.sidi, sidi)) return peer;
    }
    return undefined;
  }

  #enterLive(
    peer: PeerState,
    ck: ChainingKey,
    role: HandshakeRole,
    sidi: Uint8Array,
    sidr: Uint8Array,
    now: number,
  ): Uint8Array {
    const tki = ck.extract(this.#domains.extract.initiatorEncryption);
    const tkr = ck.extract(this.#domains.extract.responderEncryption);
    const osk = ck.extract(this.#domains.extract.wireguardPsk);
    ck.erase();
    this.#eraseSession(peer);
    const initiator = role === "initiator";
    peer.session = {
      createdAt: now,
      role,
      sidm: initiator ? sidi : sidr,
      sidt: initiator ? sidr : sidi,
      txkm: initiator ? tki : tkr,
      txkt: initiator ? tkr : tki,
      txnm: 0n,
      txnt: 0n,
    };
    peer.exchanges++;
    peer.staleSince = undefined;
    return osk;
  }

  #eraseSession(peer: PeerState): void {
    if (peer.session === undefined) return;
    peer.session.txkm.fill(0);
    peer.session.txkt.fill(0);
    peer.session = undefined;
  }

  #dropHandshake(peer: PeerState): void {
    if (peer.handshake === undefined) return;
    peer.handshake.chainingKey.erase();
    peer.handshake.eski.fill(0);
    peer.handshake = undefined;
  }
}
