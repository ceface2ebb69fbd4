/**
 * The agreed keys one node keeps per peer for epoch reconciliation (issue: lost KEY_RESULT or commit,
 * restarts, mismatches): the last few keys whose agreement this side confirmed, in memory only (never
 * on disk: after a restart a node holds none), and the rule both sides use to pick the key to run on —
 * the newest epoch both hold. Pure: no clock, no I/O.
 * @module
 */

/** How many agreed keys a node keeps per peer. */
export const HELD_KEYS = 4;

/** One agreed key. */
export interface HeldKey {
  /** Key epoch. */
  epoch: number;
  /** Key id of the round (16 bytes). */
  keyId: Uint8Array;
  /** The 32-byte key (a private copy; wiped when dropped). */
  psk: Uint8Array;
}

/** The last {@link HELD_KEYS} agreed keys with one peer, by epoch. */
export class HeldKeys {
  readonly #keys = new Map<number, HeldKey>();

  /** Keeps a copy of `psk` for `epoch` (replacing one of the same epoch); drops and wipes the oldest. */
  add(epoch: number, keyId: Uint8Array, psk: Uint8Array): void {
    this.#keys.get(epoch)?.psk.fill(0);
    this.#keys.set(epoch, { epoch, keyId: keyId.slice(), psk: psk.slice() });
    while (this.#keys.size > HELD_KEYS) {
      const oldest = Math.min(...this.#keys.keys());
      this.#keys.get(oldest)!.psk.fill(0);
      this.#keys.delete(oldest);
    }
  }

  /** The key of `epoch`, if held. */
  get(epoch: number): HeldKey | undefined {
    return this.#keys.get(epoch);
  }

  /** Held epochs, oldest first. */
  epochs(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /** The newest held epoch, or null. */
  newest(): number | null {
    const e = this.epochs();
    return e.length > 0 ? e[e.length - 1] : null;
  }

  /** Drops and wipes every key. */
  clear(): void {
    for (const k of this.#keys.values()) k.psk.fill(0);
    this.#keys.clear();
  }
}

/** What a node does after comparing its held epochs with the peer's. */
export type Reconciliation =
  /** Already running on the newest common epoch (or nothing installed and nothing in common). */
  | { action: "none" }
  /** Install the held key of `epoch` (newer than the installed one, and the peer holds it too). */
  | { action: "install"; epoch: number }
  /** The installed key is one the peer does not hold, and no newer common one exists: close the gate. */
  | { action: "close"; commonEpoch: number | null };

/**
 * The newest epoch both sides hold, and what to do about it given the epoch installed here (null when
 * none). Going back to an older key is never done (the gate refuses older epochs): the gate closes and
 * a fresh round brings a newer key.
 */
export function reconcileTarget(
  mine: readonly number[],
  theirs: readonly number[],
  installed: number | null,
): Reconciliation {
  const theirSet = new Set(theirs);
  const common = mine.filter((e) => theirSet.has(e));
  const target = common.length > 0 ? Math.max(...common) : null;
  if (target !== null && (installed === null || target > installed)) {
    return { action: "install", epoch: target };
  }
  if (installed !== null && target !== installed) return { action: "close", commonEpoch: target };
  return { action: "none" };
}
