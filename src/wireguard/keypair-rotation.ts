/**
 * Keypair rotation, pure: which keypair slot a peer sends and receives under (previous, current, next)
 * after a session is derived or confirmed, and which slots leave the rotation. The reshuffle is
 * wireguard-go's (`keypair.go`/`noise-protocol.go`): an initiator's new keypair is current at once; a
 * responder's waits in next until the initiator's first packet confirms it. Slots that leave the
 * rotation are not freed at once but retired for a grace period ({@link RetiredKeypairs}), so packets
 * still in flight under them after crossing handshakes decrypt. No I/O and no clock: callers pass `now`.
 * @module
 */

/** No keypair in a position. */
export const NO_KEYPAIR = -1;

/** The keypair slots of one peer (each a slot number or {@link NO_KEYPAIR}). */
export interface KeypairRing {
  /** The keypair before `current`, kept to decrypt packets sent before the last rotation. */
  readonly previous: number;
  /** The keypair we send under. */
  readonly current: number;
  /** A responder's keypair waiting for key confirmation. */
  readonly next: number;
}

/** A ring with no keypairs. */
export const EMPTY_RING: KeypairRing = { previous: NO_KEYPAIR, current: NO_KEYPAIR, next: NO_KEYPAIR };

/**
 * What moves a ring:
 * - `initiated`: we consumed the response to our initiation; `slot` holds the new keys.
 * - `responded`: we answered an initiation; `slot` holds the new keys, unconfirmed.
 * - `confirmed`: the first authenticated packet arrived under `slot` (a responder's next keypair).
 * - `expired`: every keypair goes (new private key, session dropped, peer removed, keys zeroed).
 */
export type RotationStep =
  | { kind: "initiated"; slot: number }
  | { kind: "responded"; slot: number }
  | { kind: "confirmed"; slot: number }
  | { kind: "expired" };

/** A rotated ring and the slots that left it (to retire or free; never {@link NO_KEYPAIR}). */
export interface Rotation {
  /** The ring after the step. */
  ring: KeypairRing;
  /** Slots that are no longer in the ring. */
  removed: number[];
}

/**
 * Applies one step to a ring. A `confirmed` step for a slot that is not the ring's next (already
 * confirmed, or superseded) returns null: nothing changes.
 */
export function rotateKeypairs(ring: KeypairRing, step: RotationStep): Rotation | null {
  const { previous, current, next } = ring;
  switch (step.kind) {
    case "initiated":
      // With an unconfirmed next, that keypair becomes previous (the peer may already send under it)
      // and the old current goes; otherwise current moves down to previous.
      return next !== NO_KEYPAIR
        ? rotation({ previous: next, current: step.slot, next: NO_KEYPAIR }, [previous, current])
        : rotation({ previous: current, current: step.slot, next: NO_KEYPAIR }, [previous]);
    case "responded":
      return rotation({ previous: NO_KEYPAIR, current, next: step.slot }, [next, previous]);
    case "confirmed":
      if (next === NO_KEYPAIR || next !== step.slot) return null;
      return rotation({ previous: current, current: next, next: NO_KEYPAIR }, [previous]);
    case "expired":
      return rotation(EMPTY_RING, [current, previous, next]);
  }
}

function rotation(ring: KeypairRing, removed: number[]): Rotation {
  return { ring, removed: removed.filter((slot) => slot !== NO_KEYPAIR) };
}

/** A keypair out of rotation that may still decrypt until `until` (ms). */
export interface RetiredKeypair {
  /** Keypair slot. */
  slot: number;
  /** Peer slot it belonged to. */
  peer: number;
  /** When its grace ends (ms). */
  until: number;
}

/**
 * Keypairs taken out of a rotation that keep decrypting for a grace period before their slots are
 * freed. Sending never uses one; REJECT_AFTER_TIME still applies to it in the data plane.
 */
export class RetiredKeypairs {
  #retired: RetiredKeypair[] = [];
  readonly #graceMs: number;

  /** `graceMs`: how long a retired keypair keeps decrypting. */
  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  /** Retires `slot` of `peer` at `now`; ignores {@link NO_KEYPAIR}. */
  retire(peer: number, slot: number, now: number): void {
    if (slot === NO_KEYPAIR) return;
    this.#retired.push({ slot, peer, until: now + this.#graceMs });
  }

  /** Removes and returns the slots whose grace ended at `now`. */
  takeDue(now: number): number[] {
    return this.#take((r) => r.until <= now);
  }

  /** Removes and returns every retired slot of `peer` (its sessions end). */
  takePeer(peer: number): number[] {
    return this.#take((r) => r.peer === peer);
  }

  /** Number of retired keypairs (for status and tests). */
  get size(): number {
    return this.#retired.length;
  }

  #take(match: (r: RetiredKeypair) => boolean): number[] {
    if (this.#retired.length === 0) return [];
    const taken: number[] = [];
    const keep: RetiredKeypair[] = [];
    for (const r of this.#retired) {
      if (match(r)) taken.push(r.slot);
      else keep.push(r);
    }
    this.#retired = keep;
    return taken;
  }
}
