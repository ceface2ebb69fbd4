/**
 * wg0's PSKs under Rosenpass, as pure logic over a PSK target (the wg0 device): every managed peer
 * (mode `strict` or `permissive`) starts with a random PSK (fail closed until the first exchange); each
 * exchanged key is installed as the peer's PSK, the previous key kept as the initiator's fallback so a
 * handshake that crosses the rotation still completes (no forced handshake: the next wg0 rekey picks
 * the key up); a stale key (no exchange for 180 s) is replaced by random bytes in `strict` mode and
 * left in place in `permissive` mode, and strict mode also ends the peer's wg0 sessions so traffic
 * stops at once (like the aes0 gate closing). UAPI PSK writes for managed peers are refused (EPERM). The
 * clock and randomness are inputs; events name peers and epochs, never keys.
 * @module
 */
import type { RosenpassMode } from "../config/rosenpass-config.ts";
import type { PskPolicy } from "../wireguard/device.ts";
import { toHex } from "../encoding.ts";
import { UapiErrno } from "../uapi/protocol.ts";

/** Length of a wg0 PSK and of a Rosenpass output key. */
const PSK_LEN = 32;
/** Negative errno of a refused UAPI PSK write (EPERM), as aes0's managed peers return. */
const EPERM = -1;
/** Negative errno of a malformed UAPI PSK. */
const EINVAL = UapiErrno.INVALID;

/** Where PSKs go (the wg0 device). */
export interface Wg0PskTarget {
  /** Installs `psk` (and fallbacks the initiator also tries); false when the peer is unknown. */
  setPresharedKey(peer: Uint8Array, psk: Uint8Array, extraPsks: Uint8Array[]): boolean;
  /** Ends the peer's current sessions (fail closed now, not at the next rekey). */
  dropSessions(peer: Uint8Array): void;
}

/** A peer's post-quantum state: off (not managed), waiting (no exchange yet), exchanged, stale. */
export type PqState = "off" | "waiting" | "exchanged" | "stale";

/** A peer's post-quantum status (no key material). */
export interface PqPeerStatus {
  /** The configured mode. */
  mode: RosenpassMode;
  /** Current state. */
  state: PqState;
  /** Number of the installed exchanged key (1 for the first), or null before any. */
  epoch: number | null;
  /** When the installed key was exchanged (unix ms), or null. */
  exchangedAt: number | null;
  /** Exchanges completed since start. */
  exchanges: number;
  /** Whether the wg0 PSK is random (fail closed) right now. */
  closed: boolean;
}

/** What the manager reports. */
export interface PqEvent {
  type: "pq-key-exchanged" | "pq-key-stale" | "pq-handshake-failed";
  /** Peer name. */
  peer: string;
  /** Epoch of the key concerned (exchanged: the new one; stale: the stale one). */
  epoch: number | null;
  /** In words. */
  reason: string;
}

/** A managed (or unmanaged) peer as the manager knows it. */
export interface PqPeer {
  name: string;
  publicKey: Uint8Array;
  mode: RosenpassMode;
}

/** Options of {@link RosenpassPskManager}. */
export interface RosenpassPskOptions {
  /** Fills a fresh random key. */
  random: (n: number) => Uint8Array;
  /** Unix ms. */
  clock: () => number;
  /** Events (also for the bus). */
  onEvent: (e: PqEvent) => void;
}

interface PeerState extends PqPeer {
  hex: string;
  state: PqState;
  epoch: number | null;
  exchangedAt: number | null;
  exchanges: number;
  closed: boolean;
  /** The current exchanged key (kept to serve as the next rotation's fallback). */
  current: Uint8Array | null;
}

/** Governs wg0's PSKs for Rosenpass-managed peers. */
export class RosenpassPskManager {
  readonly #target: Wg0PskTarget;
  readonly #opts: RosenpassPskOptions;
  readonly #byName = new Map<string, PeerState>();
  readonly #byHex = new Map<string, PeerState>();

  constructor(target: Wg0PskTarget, peers: PqPeer[], opts: RosenpassPskOptions) {
    this.#target = target;
    this.#opts = opts;
    for (const p of peers) {
      const s: PeerState = {
        ...p,
        hex: toHex(p.publicKey),
        state: p.mode === "off" ? "off" : "waiting",
        epoch: null,
        exchangedAt: null,
        exchanges: 0,
        closed: p.mode !== "off",
        current: null,
      };
      this.#byName.set(p.name, s);
      this.#byHex.set(s.hex, s);
    }
  }

  /** Names of the managed peers (mode not off). */
  managedPeers(): string[] {
    return [...this.#byName.values()].filter((p) => p.mode !== "off").map((p) => p.name);
  }

  /** Whether wg0's PSK for `publicKey` is managed by Rosenpass. */
  isManaged(publicKey: Uint8Array): boolean {
    const s = this.#byHex.get(toHex(publicKey));
    return s !== undefined && s.mode !== "off";
  }

  /** Gives every managed peer a random PSK now (fail closed until its first exchange). */
  closeAll(): void {
    for (const s of this.#byName.values()) if (s.mode !== "off") this.#installRandom(s);
  }

  /** Installs an exchanged key for `name` (the caller wipes `key` afterwards). */
  keyExchanged(name: string, key: Uint8Array): void {
    const s = this.#byName.get(name);
    if (!s || s.mode === "off" || key.length !== PSK_LEN) return;
    const fallback = s.current && !s.closed ? [s.current] : [];
    if (!this.#target.setPresharedKey(s.publicKey, key, fallback)) return;
    s.current?.fill(0);
    s.current = key.slice();
    s.epoch = (s.epoch ?? 0) + 1;
    s.exchanges++;
    s.exchangedAt = this.#opts.clock();
    s.state = "exchanged";
    s.closed = false;
    this.#opts.onEvent({
      type: "pq-key-exchanged",
      peer: name,
      epoch: s.epoch,
      reason: `Rosenpass key ${s.epoch} installed as the wg0 PSK (used from the next wg0 handshake)`,
    });
  }

  /** No exchange for the stale time: strict mode closes wg0 to the peer, permissive mode keeps the key. */
  keyStale(name: string): void {
    const s = this.#byName.get(name);
    if (!s || s.mode === "off") return;
    s.state = "stale";
    if (s.mode === "strict") {
      this.#installRandom(s);
      s.current?.fill(0);
      s.current = null;
      this.#target.dropSessions(s.publicKey);
    }
    this.#opts.onEvent({
      type: "pq-key-stale",
      peer: name,
      epoch: s.epoch,
      reason: s.mode === "strict"
        ? "no Rosenpass exchange within the stale time: wg0 PSK replaced by random bytes (strict, fail closed)"
        : "no Rosenpass exchange within the stale time: the stale key stays in use (permissive)",
    });
  }

  /** A Rosenpass handshake with `name` failed (nothing changes on wg0). */
  handshakeFailed(name: string, reason: string): void {
    const s = this.#byName.get(name);
    if (!s || s.mode === "off") return;
    this.#opts.onEvent({ type: "pq-handshake-failed", peer: name, epoch: s.epoch, reason });
  }

  /** A peer's status, or undefined for an unknown name. */
  status(name: string): PqPeerStatus | undefined {
    const s = this.#byName.get(name);
    if (!s) return undefined;
    return {
      mode: s.mode,
      state: s.state,
      epoch: s.epoch,
      exchangedAt: s.exchangedAt,
      exchanges: s.exchanges,
      closed: s.closed,
    };
  }

  /**
   * wg0's PSK policy: a UAPI PSK write for a managed peer is refused (EPERM); others are applied as
   * wireguard-go would; a managed peer the device creates starts with a random PSK.
   */
  pskPolicy(): PskPolicy {
    const check = (peer: Uint8Array, psk: Uint8Array): number => {
      if (psk.length !== PSK_LEN) return EINVAL;
      return this.isManaged(peer) ? EPERM : 0;
    };
    return {
      onUapiPsk: (peer, psk) => {
        const verdict = check(peer, psk);
        if (verdict === 0) this.#target.setPresharedKey(peer, psk, []);
        return verdict;
      },
      checkUapiPsk: (peer, psk) => check(peer, psk),
      onPeerCreated: (peer) => this.isManaged(peer) ? this.#opts.random(PSK_LEN) : null,
    };
  }

  /** Wipes the held keys. */
  close(): void {
    for (const s of this.#byName.values()) {
      s.current?.fill(0);
      s.current = null;
    }
  }

  #installRandom(s: PeerState): void {
    const random = this.#opts.random(PSK_LEN);
    this.#target.setPresharedKey(s.publicKey, random, []);
    random.fill(0);
    s.closed = true;
  }
}
