/**
 * The aes0 PSK security gate: decides, per AES peer, which pre-shared key the aes0 device holds, and
 * therefore whether aes0 can carry traffic to that peer (design invariants 1 and 2).
 *
 * ## States (one per peer)
 * - `closed`: the device holds fresh random bytes as the peer's PSK. The other side holds different
 *   random bytes (or an agreed key we do not have), so every handshake fails and no application packet
 *   passes. A peer starts here when it is added, after a restart, when its key passes the maximum age,
 *   and when the device re-creates it.
 * - `open`: the device holds a key the key plane agreed for this peer (`install`). The key's age is
 *   below its stale age.
 * - `stale`: still the agreed key, but past its stale age. Traffic still flows; this is a warning that the
 *   key is due to be replaced. A fresh `install` makes the gate `open` again.
 *
 * ## Key age, per key source
 * Keys that a key plane rotates (`dske`, `ska`) go stale at `staleAfterMs` (default 2 × the rotation
 * interval: at least one expected rotation was missed) and expire at `maxAgeMs` (default 3 × the rotation
 * interval): the key plane is supposed to replace them, so an old one means it has stopped. A `manual`
 * key (a PSK file or a UAPI write) is rotated by nobody: it never expires unless `manualMaxAgeMs` is set
 * (the operator's own expiry), and then goes stale at two thirds of that age.
 *
 * Transitions: closed → open (first install; a handshake is started at once), open → stale (`tick`,
 * age ≥ staleAfterMs), open|stale → open (rotation: new PSK applies at the next natural handshake,
 * no forced handshake, the previous PSK stays acceptable to an initiator for `graceMs`), open|stale →
 * closed (`tick`, past the maximum age of its source: the PSK is replaced by random bytes, fail closed; or
 * `close`, when the key plane knows no new key can come, e.g. PSRD exhausted). Every transition
 * carries a human-readable reason, reported through `onEvent` and `status()`.
 *
 * Handshake outcomes fed back through `handshakeResult` record which key epoch each handshake used (a
 * `handshake` event) and feed the peer's {@link HandshakeWatch} (`handshake-watch.ts`), which detects a
 * suspected PSK mismatch on either side of a handshake and schedules retries in the install skew window.
 * A suspected mismatch does not change the state (the key is still the one agreed); it is reported in the
 * reason and as an event, clears when a session confirms (a handshake we initiated, or one the peer
 * initiated and confirmed), and every install while it lasts starts a handshake. Closing (maximum age or
 * `close`) ends the sessions too.
 *
 * Key hygiene: keys are copied in, never returned (the device receives them only through the
 * {@link GateTarget} calls); replaced keys are wiped with zeros; nothing is persisted; events, reasons,
 * status and refusal messages never contain key material. The module is pure: clock and randomness are
 * injected.
 * @module
 */
import { toHex } from "../encoding.ts";
import type { KeySource } from "../config/key-source.ts";
import type {
  GateEvent,
  GateState,
  GateStatus,
  GateTarget,
  HandshakeOutcome,
  InstallResult,
  PskGateOptions,
} from "./gate-types.ts";
import { type GateSettings, gateSettings } from "./gate-settings.ts";
import {
  cancelRetry,
  clearTrouble,
  failedResponse,
  type HandshakeWatch,
  newHandshakeWatch,
  restartRetries,
  sessionConfirmed,
  takeDueRetry,
  unconfirmedResponse,
} from "./handshake-watch.ts";

/** Re-exported for the gate's callers: the one declaration lives in `config/key-source.ts`. */
export type { KeySource } from "../config/key-source.ts";

/** Re-exported for the gate's callers. */
export type {
  GateEvent,
  GateState,
  GateStatus,
  GateTarget,
  HandshakeOutcome,
  InstallResult,
  PskGateOptions,
} from "./gate-types.ts";

const PSK_LEN = 32;

interface PeerGate {
  publicKey: Uint8Array;
  hex: string;
  source: KeySource;
  state: GateState;
  reason: string;
  /** The PSK the device holds: random while closed, the agreed key otherwise. */
  psk: Uint8Array;
  epoch: number | null;
  lastInstalledEpoch: number | null;
  installedAt: number | null;
  /** Where the key's age counts from: its install time, or earlier for a combined key (install's `keyAgeFrom`). */
  ageFrom: number;
  previous: Uint8Array | null;
  previousEpoch: number | null;
  graceUntil: number;
  lastHandshakeEpoch: number | null;
  /** Install time of the previous key while it is kept (grace): tells which key a late confirmation used. */
  previousInstalledAt: number | null;
  /** Handshake trouble under the agreed key: a suspected mismatch, skew retries. */
  watch: HandshakeWatch;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The PSK security gate of every AES peer of one aes0 device. See the module doc. */
export class PskGate implements GateSettings {
  /** Expected rotation interval (ms). */
  readonly rotationIntervalMs: number;
  /** Maximum age (ms) of a key a key plane rotates. */
  readonly maxAgeMs: number;
  /** Age at which an open gate with a rotated key turns stale (ms). */
  readonly staleAfterMs: number;
  /** Maximum age (ms) of a manual key; Infinity (the default) when manual keys do not expire. */
  readonly manualMaxAgeMs: number;
  /** Age at which an open gate with a manual key turns stale (ms): two thirds of `manualMaxAgeMs`. */
  readonly manualStaleAfterMs: number;
  /** Previous-key grace after a rotation (ms). */
  readonly graceMs: number;
  /** Failures that make a mismatch suspected. */
  readonly mismatchThreshold: number;
  /** Install skew window (ms). */
  readonly skewWindowMs: number;
  /** First skew retry delay (ms). */
  readonly skewRetryMs: number;
  readonly #target: GateTarget;
  readonly #clock: () => number;
  readonly #random: (n: number) => Uint8Array;
  readonly #onEvent: (e: GateEvent) => void;
  readonly #peers = new Map<string, PeerGate>();

  /** Creates a gate driving `target`. Throws on inconsistent options (see gate-settings.ts). */
  constructor(target: GateTarget, opts: PskGateOptions = {}) {
    this.#target = target;
    const s = gateSettings(opts);
    this.rotationIntervalMs = s.rotationIntervalMs;
    this.maxAgeMs = s.maxAgeMs;
    this.staleAfterMs = s.staleAfterMs;
    this.manualMaxAgeMs = s.manualMaxAgeMs;
    this.manualStaleAfterMs = s.manualStaleAfterMs;
    this.graceMs = s.graceMs;
    this.mismatchThreshold = s.mismatchThreshold;
    this.skewWindowMs = s.skewWindowMs;
    this.skewRetryMs = s.skewRetryMs;
    this.#clock = opts.clock ?? Date.now;
    this.#random = opts.random ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
    this.#onEvent = opts.onEvent ?? (() => {});
  }

  /**
   * Registers an AES peer with its key source; the gate starts closed with a fresh random PSK, which is
   * pushed to the target (if it already has the peer) and returned as a copy for a target that creates
   * the peer afterwards. Re-adding a registered peer starts it over (closed, new random PSK, epochs
   * forgotten).
   */
  addPeer(peer: Uint8Array, source: KeySource): Uint8Array {
    const hex = toHex(peer);
    const old = this.#peers.get(hex);
    const reason = `new peer (key source ${source}): random PSK until an agreed key is installed`;
    if (old) {
      this.#wipe(old);
      if (old.state !== "closed") this.#emit("gate-closed", old, null, `peer re-added: ${reason}`);
    }
    const g: PeerGate = {
      publicKey: peer.slice(),
      hex,
      source,
      state: "closed",
      reason,
      psk: this.#freshRandom(),
      epoch: null,
      lastInstalledEpoch: null,
      installedAt: null,
      ageFrom: 0,
      previous: null,
      previousEpoch: null,
      graceUntil: 0,
      lastHandshakeEpoch: null,
      previousInstalledAt: null,
      watch: newHandshakeWatch(),
    };
    this.#peers.set(hex, g);
    this.#target.setPresharedKey(g.publicKey, g.psk, []);
    return g.psk.slice();
  }

  /** True when the peer is registered. */
  has(peer: Uint8Array): boolean {
    return this.#peers.has(toHex(peer));
  }

  /**
   * Forgets a peer: its keys are wiped and, if the target still has the peer, it gets random bytes so no
   * agreed key outlives the gate's control.
   */
  removePeer(peer: Uint8Array): void {
    const g = this.#peers.get(toHex(peer));
    if (!g) return;
    const random = this.#freshRandom();
    this.#target.setPresharedKey(g.publicKey, random, []);
    random.fill(0);
    this.#wipe(g);
    this.#peers.delete(g.hex);
    if (g.state !== "closed") this.#emit("gate-closed", g, null, "peer removed");
  }

  /**
   * The key plane's one entry point: installs the agreed key `psk` (copied; the caller should wipe its
   * own copy) of `epoch` from `via`. Refused (with a reason and a `key-refused` event) for an unknown
   * peer, a key that is not 32 bytes or all zeros, a source other than the peer's configured one, or an
   * epoch that is not a non-negative integer newer than every epoch accepted before (replay).
   * First install (gate closed): sets the key and starts a handshake at once.
   * Rotation (open or stale): sets the key with the previous one as extra PSK for `graceMs`; no handshake.
   * `keyAgeFrom` (default now) is when the key's age starts: a combined key (`ska+dske`) is as old as
   * its older part, so it goes stale and expires by the same rules; one already past the maximum age is
   * refused.
   */
  install(
    peer: Uint8Array,
    psk: Uint8Array,
    epoch: number,
    via: KeySource,
    keyAgeFrom?: number,
  ): InstallResult {
    const hex = toHex(peer);
    const g = this.#peers.get(hex);
    const refuse = (reason: string): InstallResult => {
      this.#onEvent({
        type: "key-refused",
        peer: hex,
        epoch: Number.isFinite(epoch) ? epoch : null,
        reason,
        at: this.#clock(),
      });
      return { ok: false, reason };
    };
    if (!g) return refuse("unknown peer: not registered with the PSK gate");
    if (psk.length !== PSK_LEN) return refuse(`PSK must be ${PSK_LEN} bytes, got ${psk.length}`);
    if (psk.every((b) => b === 0)) return refuse("all-zero PSK refused (it means 'no PSK')");
    if (via !== g.source) {
      return refuse(`key source mismatch: peer is configured for ${g.source}, key came from ${via}`);
    }
    if (!Number.isSafeInteger(epoch) || epoch < 0) return refuse("epoch must be a non-negative integer");
    if (g.lastInstalledEpoch !== null && epoch <= g.lastInstalledEpoch) {
      return refuse(
        `epoch ${epoch} is not newer than the last installed epoch ${g.lastInstalledEpoch} (replay?)`,
      );
    }
    const now = this.#clock();
    const ageFrom = Math.min(keyAgeFrom ?? now, now);
    if (now - ageFrom >= this.#agePolicy(g).maxAgeMs) {
      return refuse(`key epoch ${epoch} is already ${seconds(now - ageFrom)} old: past the maximum key age`);
    }
    const key = psk.slice();
    const wasState = g.state;
    const wasMismatched = g.watch.mismatchSuspected;
    if (wasState === "closed") {
      if (!this.#target.setPresharedKey(g.publicKey, key, [])) {
        key.fill(0);
        return refuse("the device has no such peer");
      }
      g.psk.fill(0); // the random placeholder
      g.psk = key;
      this.#accept(g, epoch, now, ageFrom);
      clearTrouble(g.watch); // failures under the random key say nothing about this one
      g.reason = `key epoch ${epoch} installed via ${via}: gate open`;
      this.#emit("key-installed", g, epoch, `key epoch ${epoch} installed via ${via}`);
      this.#emit("gate-opened", g, epoch, g.reason);
      this.#target.initiateHandshake(g.publicKey);
      return { ok: true };
    }
    const extras = this.graceMs > 0 ? [g.psk] : [];
    if (!this.#target.setPresharedKey(g.publicKey, key, extras)) {
      key.fill(0);
      return refuse("the device has no such peer");
    }
    g.previous?.fill(0);
    if (this.graceMs > 0) {
      g.previous = g.psk;
      g.previousEpoch = g.epoch;
      g.previousInstalledAt = g.installedAt;
      g.graceUntil = now + this.graceMs;
    } else {
      g.psk.fill(0);
      this.#dropPrevious(g);
    }
    g.psk = key;
    this.#accept(g, epoch, now, ageFrom);
    const grace = this.graceMs > 0
      ? `; previous key accepted by an initiator for ${seconds(this.graceMs)}`
      : "";
    g.reason = `rotated to key epoch ${epoch} via ${via}; applies at the next handshake${grace}`;
    this.#emit("key-installed", g, epoch, g.reason);
    if (wasState === "stale") {
      this.#emit("gate-opened", g, epoch, `fresh key epoch ${epoch} via ${via} after the key went stale`);
    }
    // After a suspected mismatch the sessions were ended: do not wait for traffic to need a handshake.
    if (wasMismatched) this.#target.initiateHandshake(g.publicKey);
    return { ok: true };
  }

  /**
   * Closes the peer's gate at once (fail closed), for a reason the key plane knows before the maximum key
   * age: e.g. the PSRD it agrees keys with is used up. The device gets fresh random bytes, the previous
   * key's grace ends, the peer's sessions end, and a `gate-closed` event carries `reason`. A closed gate
   * keeps its `reason` updated (no event). The replay guard stays: reopening needs an {@link install} with
   * a newer epoch. Returns true when the gate was open or stale, false when it was already closed or the
   * peer is unknown. `reason` must not contain key material.
   */
  close(peer: Uint8Array, reason: string): boolean {
    const g = this.#peers.get(toHex(peer));
    if (!g) return false;
    if (g.state === "closed") {
      g.reason = reason;
      return false;
    }
    const epoch = g.epoch;
    this.#shut(g, reason);
    this.#emit("gate-closed", g, epoch, reason);
    return true;
  }

  /**
   * Policy for a UAPI `preshared_key` write (`wg set aes0 peer … preshared-key …`). Allowed only for a
   * peer whose source is `manual`: it is then an {@link install} with epoch = last + 1 (0 for the
   * first). Returns 0 when installed, -22 (EINVAL) for a key of the wrong length or all zeros, -1
   * (EPERM) otherwise; a refusal is reported as a `key-refused` event naming why.
   */
  uapiWrite(peer: Uint8Array, psk: Uint8Array): number {
    const refused = this.uapiWriteCheck(peer, psk, this.#peers.get(toHex(peer))?.source ?? null);
    if (refused !== 0) return refused;
    const g = this.#peers.get(toHex(peer))!;
    const epoch = g.lastInstalledEpoch === null ? 0 : g.lastInstalledEpoch + 1;
    return this.install(peer, psk, epoch, "manual").ok ? 0 : -1;
  }

  /**
   * Would {@link uapiWrite} accept this key for a peer whose key source will be `source` (null: not
   * registered)? 0, or the errno it would return, reported as a `key-refused` event; installs nothing.
   */
  uapiWriteCheck(peer: Uint8Array, psk: Uint8Array, source: KeySource | null): number {
    const hex = toHex(peer);
    const refuse = (errno: number, reason: string): number => {
      this.#onEvent({ type: "key-refused", peer: hex, epoch: null, reason, at: this.#clock() });
      return errno;
    };
    if (psk.length !== PSK_LEN) {
      return refuse(-22, `UAPI preshared-key refused: PSK must be ${PSK_LEN} bytes`);
    }
    if (psk.every((b) => b === 0)) {
      return refuse(-22, "UAPI preshared-key refused: an all-zero PSK would mean 'no PSK'");
    }
    if (source === null) {
      return refuse(-1, "UAPI preshared-key refused: peer is not registered with the PSK gate");
    }
    if (source !== "manual") {
      return refuse(
        -1,
        `UAPI preshared-key refused (EPERM): peer's key source is ${source}; only manual peers accept keys from UAPI`,
      );
    }
    return 0;
  }

  /** The key source of a registered peer, or null. */
  sourceOf(peer: Uint8Array): KeySource | null {
    return this.#peers.get(toHex(peer))?.source ?? null;
  }

  /**
   * Time passes: starts a due skew retry (see `skewWindowMs`), ends the previous-key grace (the device
   * keeps only the current PSK), turns an open gate stale at its source's stale age, and at its source's
   * maximum age (see the module doc) replaces the key by random bytes and closes the gate.
   * Call it periodically (every 100 ms or so: skew retries are only as prompt as the ticks).
   */
  tick(): void {
    const now = this.#clock();
    for (const g of this.#peers.values()) {
      if (g.state === "closed" || g.installedAt === null) continue;
      if (takeDueRetry(g.watch, now)) this.#target.initiateHandshake(g.publicKey);
      const age = now - g.ageFrom;
      const { maxAgeMs, staleAfterMs } = this.#agePolicy(g);
      if (age >= maxAgeMs) {
        this.#expire(g, age, maxAgeMs);
        continue;
      }
      if (g.previous && now >= g.graceUntil) {
        this.#target.setPresharedKey(g.publicKey, g.psk, []);
        this.#dropPrevious(g);
      }
      if (g.state === "open" && age >= staleAfterMs) {
        g.state = "stale";
        const closesIn = Number.isFinite(maxAgeMs) ? `; the gate closes at ${seconds(maxAgeMs)}` : "";
        g.reason = g.source === "manual"
          ? `manual key epoch ${g.epoch} is ${seconds(age)} old; it expires at ${
            seconds(maxAgeMs)
          } (the manual maximum age): replace the PSK on both sides`
          : `key epoch ${g.epoch} is ${seconds(age)} old: no rotation for ${
            seconds(staleAfterMs)
          } (expected every ${seconds(this.rotationIntervalMs)})${closesIn}`;
        this.#emit("gate-stale", g, g.epoch, g.reason);
      }
    }
  }

  /**
   * Records a handshake outcome for the peer (from the device's events). Success notes the epoch the
   * session was derived under, confirms the key and clears a suspected mismatch (both sides of a
   * confirmed session hold the same key). Failures (pass only failed responses, the ones a PSK mismatch
   * causes, and responses of ours that were never confirmed) are counted per side of the handshake;
   * `mismatchThreshold` consecutive ones of one side, lasting `skewWindowMs`, while open or stale make a
   * mismatch suspected (see the module doc). `peer` is the public key, raw or as hex (the form device
   * events carry).
   */
  handshakeResult(peer: Uint8Array | string, outcome: HandshakeOutcome): void {
    const g = this.#peers.get(typeof peer === "string" ? peer.toLowerCase() : toHex(peer));
    if (!g) return;
    if (outcome.ok) {
      const epoch = this.#epochUsed(g, outcome.pskIndex, outcome.derivedAt ?? this.#clock());
      g.lastHandshakeEpoch = g.state === "closed" ? null : epoch;
      const previousKey = g.lastHandshakeEpoch !== null && g.lastHandshakeEpoch === g.previousEpoch;
      this.#emit(
        "handshake",
        g,
        g.lastHandshakeEpoch,
        `handshake completed as ${outcome.initiator ? "initiator" : "responder"} under ${
          g.lastHandshakeEpoch === null ? "a random key (gate closed)" : `key epoch ${g.lastHandshakeEpoch}`
        }${previousKey ? " (the previous key, within the grace)" : ""}`,
      );
      if (sessionConfirmed(g.watch)) {
        g.reason = `a session under key epoch ${epoch} confirmed: mismatch resolved`;
        this.#emit("mismatch-cleared", g, epoch, g.reason);
      }
      return;
    }
    const installedAt = g.state === "closed" ? null : g.installedAt;
    if (outcome.unconfirmed) {
      if (unconfirmedResponse(g.watch, installedAt, this.#clock, this)) {
        g.reason =
          `PSK mismatch suspected: the peer never confirmed our last ${g.watch.unconfirmed} handshake ` +
          `responses under key epoch ${g.epoch} (its key differs, or our responses do not reach it); ` +
          "no aes0 session until both sides hold the same key";
        this.#emit("mismatch-suspected", g, g.epoch, g.reason);
      }
      return;
    }
    const verdict = failedResponse(g.watch, installedAt, this.#clock, this);
    if (!verdict.endSessions) return;
    g.reason = `PSK mismatch suspected: ${g.watch.failures} consecutive handshake responses failed to ` +
      `authenticate under key epoch ${g.epoch}; sessions ended until both sides hold the same key`;
    this.#target.dropSessions(g.publicKey);
    if (verdict.newlySuspected) this.#emit("mismatch-suspected", g, g.epoch, g.reason);
  }

  /**
   * Called when the target (device) creates its own copy of a peer, before it is usable: returns the
   * PSK to start it with, always fresh random bytes. A registered peer whose gate was open is closed
   * (the agreed key is not handed out again; fail closed). An unknown peer is registered with
   * `adoptAs` if given, otherwise left unmanaged (random PSK, UAPI writes refused).
   */
  peerCreatedInTarget(peer: Uint8Array, adoptAs: KeySource | null): Uint8Array {
    const g = this.#peers.get(toHex(peer));
    if (!g) {
      if (adoptAs) return this.addPeer(peer, adoptAs);
      return this.#freshRandom();
    }
    const wasOpen = g.state !== "closed";
    this.#wipe(g);
    g.psk = this.#freshRandom();
    if (wasOpen) {
      g.state = "closed";
      g.epoch = null;
      g.installedAt = null;
      g.reason =
        "the device re-created the peer: the agreed key is not re-issued (fail closed); install a new key";
      this.#emit("gate-closed", g, null, g.reason);
    }
    return g.psk.slice();
  }

  /** Gate status of one peer (or all when omitted). Never contains key material. */
  status(peer?: Uint8Array): GateStatus[] {
    const now = this.#clock();
    const list = peer
      ? [this.#peers.get(toHex(peer))].filter((g) => g !== undefined)
      : [...this.#peers.values()];
    return list.map((g) => ({
      peer: g.hex,
      source: g.source,
      state: g.state,
      reason: g.reason,
      epoch: g.state === "closed" ? null : g.epoch,
      lastInstalledEpoch: g.lastInstalledEpoch,
      keyAgeMs: g.state === "closed" || g.installedAt === null ? null : now - g.ageFrom,
      graceRemainingMs: g.previous ? Math.max(0, g.graceUntil - now) : 0,
      lastHandshakeEpoch: g.lastHandshakeEpoch,
      failures: g.watch.failures,
      unconfirmed: g.watch.unconfirmed,
      mismatchSuspected: g.watch.mismatchSuspected,
    }));
  }

  // ------------------------------------------------------------------ internals

  #accept(g: PeerGate, epoch: number, now: number, ageFrom: number): void {
    g.state = "open";
    g.epoch = epoch;
    g.lastInstalledEpoch = epoch;
    g.installedAt = now;
    g.ageFrom = ageFrom;
    restartRetries(g.watch);
  }

  /** The stale and maximum ages that apply to the peer's key (see the module doc). */
  #agePolicy(g: PeerGate): { maxAgeMs: number; staleAfterMs: number } {
    return g.source === "manual"
      ? { maxAgeMs: this.manualMaxAgeMs, staleAfterMs: this.manualStaleAfterMs }
      : { maxAgeMs: this.maxAgeMs, staleAfterMs: this.staleAfterMs };
  }

  /**
   * The epoch of the key a session derived at `derivedAt` used: extra PSK 1 is the previous key; the
   * current PSK at `derivedAt` is the previous key when the current one was installed after that.
   */
  #epochUsed(g: PeerGate, pskIndex: number, derivedAt: number): number | null {
    const beforeCurrent = g.installedAt !== null && derivedAt < g.installedAt;
    if (pskIndex === 0 && !beforeCurrent) return g.epoch;
    if (pskIndex === 0 || pskIndex === 1) {
      const previousHeld = g.previousInstalledAt === null || derivedAt >= g.previousInstalledAt;
      return pskIndex === 1 || previousHeld ? g.previousEpoch : null;
    }
    return null;
  }

  #expire(g: PeerGate, age: number, maxAgeMs: number): void {
    const epoch = g.epoch;
    const which = g.source === "manual" ? "the manual maximum age" : "the maximum age";
    this.#shut(
      g,
      `key epoch ${epoch} is ${seconds(age)} old, past ${which} of ${
        seconds(maxAgeMs)
      }: replaced by random bytes and sessions ended (fail closed); install a new key`,
    );
    this.#emit("gate-closed", g, epoch, g.reason);
  }

  /** Fail closed: random bytes on the device, sessions ended, agreed keys wiped. */
  #shut(g: PeerGate, reason: string): void {
    const random = this.#freshRandom();
    this.#target.setPresharedKey(g.publicKey, random, []);
    this.#target.dropSessions(g.publicKey);
    this.#wipe(g);
    g.psk = random;
    g.state = "closed";
    g.epoch = null;
    g.installedAt = null;
    cancelRetry(g.watch);
    clearTrouble(g.watch);
    g.reason = reason;
  }

  #dropPrevious(g: PeerGate): void {
    g.previous?.fill(0);
    g.previous = null;
    g.previousEpoch = null;
    g.previousInstalledAt = null;
    g.graceUntil = 0;
  }

  #wipe(g: PeerGate): void {
    g.psk.fill(0);
    this.#dropPrevious(g);
  }

  #freshRandom(): Uint8Array {
    const r = this.#random(PSK_LEN);
    if (r.length !== PSK_LEN) throw new Error("random source returned the wrong number of bytes");
    return r.slice();
  }

  #emit(type: GateEvent["type"], g: PeerGate, epoch: number | null, reason: string): void {
    this.#onEvent({ type, peer: g.hex, epoch, reason, at: this.#clock() });
  }
}

/** Re-exported for the gate's callers: the device adapters live in `gate-device.ts`. */
export { handshakeOutcomeOf, pskPolicy, type PskPolicyOptions } from "./gate-device.ts";
