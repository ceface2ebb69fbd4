/**
 * The `ska+dske` key source: a peer whose aes0 PSK needs both key planes. Neither plane installs into
 * the gate for such a peer; each hands its agreed key to the combiner ({@link PskCombiner.offer}),
 * which installs
 *
 *   PSK = HMAC-SHA256(dske_key, "twofold-combined" ‖ ska_psk)        (combinePsk, src/ska/derive.ts)
 *
 * once it holds a key of each plane, and again whenever either plane agrees a newer one. Breaking one
 * plane alone gives an attacker nothing: the PSK is a PRF of both keys.
 *
 * Combined epoch = dske_epoch + ska_epoch. Each plane's epochs are agreed by both nodes and only go up,
 * so the sum goes up with every new key of either plane, and two nodes holding the same pair of keys
 * install the same PSK at the same epoch, whatever order their planes finished in.
 *
 * Age: a combined key is as old as its older part (the gate's `keyAgeFrom`), so the gate's stale and
 * maximum-age rules apply to each plane as if it ran alone. A part that is already past the stale age
 * is not combined into a new key (a failing plane gives no new combined key while the other rotates):
 * the gate goes stale and closes at the maximum key age, with its usual events. Pure: the clock is
 * injected; keys are copied in and wiped when replaced or at {@link PskCombiner.close}.
 * @module
 */
import { toHex } from "../encoding.ts";
import { combinePsk } from "../ska/derive.ts";
import type { KeyPlaneName } from "./keyplane-listener.ts";

/** The epoch a combined key is installed at: equal on both nodes once they hold the same pair. */
export function combinedEpoch(dskeEpoch: number, skaEpoch: number): number {
  return dskeEpoch + skaEpoch;
}

/** Something the combiner did; never holds key material. */
export interface CombinerEvent {
  /** `combined`: a combined key was installed; `part-too-old`: a new part came, but the other is stale. */
  type: "combined" | "install-refused" | "part-too-old";
  /** Peer public key, hex. */
  peer: string;
  /** Combined epoch (for `combined`, `install-refused`). */
  epoch?: number;
  /** Why, in words. */
  reason: string;
}

/** Options of {@link PskCombiner}. */
export interface PskCombinerOptions {
  /**
   * Installs a combined key through the gate (source `ska+dske`) with its age counted from
   * `keyAgeFrom`; returns whether it was installed.
   */
  install(peer: Uint8Array, psk: Uint8Array, epoch: number, keyAgeFrom: number): boolean;
  /** A part at least this old is not combined into a new key (the gate's stale age). */
  freshForMs: number;
  /** Unix time in ms. */
  now(): number;
  /** Event sink. */
  onEvent?(e: CombinerEvent): void;
}

interface Part {
  key: Uint8Array;
  epoch: number;
  at: number;
}

/** Per-peer state: the newest key of each plane. */
interface PeerParts {
  publicKey: Uint8Array;
  dske: Part | null;
  ska: Part | null;
}

/** Per-peer view (no key material). */
export interface CombinerPeerStatus {
  /** Epoch of the newest DSKE key held, or null. */
  dskeEpoch: number | null;
  /** Epoch of the newest SKA key held, or null. */
  skaEpoch: number | null;
  /** Epoch of the last combined key installed, or null. */
  combinedEpoch: number | null;
}

/** Combines the two planes' keys of `ska+dske` peers (see the module doc). */
export class PskCombiner {
  readonly #o: PskCombinerOptions;
  readonly #peers = new Map<string, PeerParts & { combined: number | null }>();

  /** A combiner installing through `opts.install`. */
  constructor(opts: PskCombinerOptions) {
    this.#o = opts;
  }

  /** Registers a `ska+dske` peer. */
  addPeer(peer: Uint8Array): void {
    this.#peers.set(toHex(peer), { publicKey: peer.slice(), dske: null, ska: null, combined: null });
  }

  /** Whether `peer` is a registered `ska+dske` peer. */
  has(peer: Uint8Array): boolean {
    return this.#peers.has(toHex(peer));
  }

  /**
   * `plane` agreed `key` (copied; the caller wipes its own) at `epoch` with `peer`. Returns false for an
   * unknown peer or an epoch not newer than the plane's last one (the plane treats it as not installed);
   * true when the key is held, whether or not a combined key could be installed yet.
   */
  offer(plane: KeyPlaneName, peer: Uint8Array, key: Uint8Array, epoch: number): boolean {
    const hex = toHex(peer);
    const p = this.#peers.get(hex);
    if (!p) return false;
    const held = p[plane];
    if (held && epoch <= held.epoch) return false;
    held?.key.fill(0);
    const now = this.#o.now();
    p[plane] = { key: key.slice(), epoch, at: now };
    const other = plane === "dske" ? p.ska : p.dske;
    if (!other) return true;
    const otherName = plane === "dske" ? "ska" : "dske";
    if (now - other.at >= this.#o.freshForMs) {
      this.#o.onEvent?.({
        type: "part-too-old",
        peer: hex,
        reason: `new ${plane} key epoch ${epoch}, but the last ${otherName} key (epoch ${other.epoch}) is ` +
          `${Math.round((now - other.at) / 1000)} s old: no new combined key until ${otherName} agrees one`,
      });
      return true;
    }
    this.#installCombined(p, hex);
    return true;
  }

  /** Per-peer epochs, by public key (hex). */
  status(): Map<string, CombinerPeerStatus> {
    return new Map(
      [...this.#peers].map(([hex, p]) => [hex, {
        dskeEpoch: p.dske?.epoch ?? null,
        skaEpoch: p.ska?.epoch ?? null,
        combinedEpoch: p.combined,
      }]),
    );
  }

  /** Wipes every key held. */
  close(): void {
    for (const p of this.#peers.values()) {
      p.dske?.key.fill(0);
      p.ska?.key.fill(0);
      p.dske = p.ska = null;
    }
  }

  #installCombined(p: PeerParts & { combined: number | null }, hex: string): void {
    const dske = p.dske!;
    const ska = p.ska!;
    const epoch = combinedEpoch(dske.epoch, ska.epoch);
    const psk = combinePsk(dske.key, ska.key);
    const ok = this.#o.install(p.publicKey, psk, epoch, Math.min(dske.at, ska.at));
    psk.fill(0);
    if (ok) p.combined = epoch;
    this.#o.onEvent?.({
      type: ok ? "combined" : "install-refused",
      peer: hex,
      epoch,
      reason: ok
        ? `dske epoch ${dske.epoch} + ska epoch ${ska.epoch} combined`
        : `the gate refused the combined key of dske epoch ${dske.epoch} + ska epoch ${ska.epoch}`,
    });
  }
}
