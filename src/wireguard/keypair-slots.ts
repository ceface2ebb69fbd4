/**
 * Allocation of keypair slots and local indices. A local index is `random << SLOT_BITS | slot`, so
 * the receive path finds a keypair by masking; the random upper bits make indices unpredictable.
 * A freed slot rests for a quarantine period before reuse, so a worker that read a slot number
 * just before it was freed can never seal under a key that is installed later in the same slot.
 * @module
 */
import {
  KeypairUsage,
  KeypairWord,
  MAX_KEYPAIRS,
  type SharedState,
  SLOT_BITS,
} from "./dataplane/shared-state.ts";
import type { SessionKeys } from "./noise-protocol.ts";

/** How long a freed slot rests before reuse (ms). */
export const SLOT_QUARANTINE_MS = 2000;

/** Slot states in shared memory. */
export const SlotState = { free: 0, valid: 1, reserved: 2 } as const;

/** Hands out keypair slots and installs keys into shared memory. */
export class KeypairSlots {
  #shared: SharedState;
  #freedAt = new Float64Array(MAX_KEYPAIRS).fill(-Infinity);
  #inUse = new Uint8Array(MAX_KEYPAIRS);
  #clock: () => number;
  #random: () => number;

  constructor(shared: SharedState, clock: () => number, random?: () => number) {
    this.#shared = shared;
    this.#clock = clock;
    this.#random = random ?? (() => crypto.getRandomValues(new Uint32Array(1))[0]);
  }

  /** Reserves a slot for a handshake in flight; returns its local index, or -1 when full. */
  reserve(peer: number): number {
    const now = this.#clock();
    for (let slot = 0; slot < MAX_KEYPAIRS; slot++) {
      if (this.#inUse[slot] || now - this.#freedAt[slot] < SLOT_QUARANTINE_MS) continue;
      this.#inUse[slot] = 1;
      const index = ((this.#random() << SLOT_BITS) | slot) >>> 0;
      const s = this.#shared;
      s.kpSet(slot, KeypairWord.state, SlotState.reserved);
      s.kpSet(slot, KeypairWord.peer, peer);
      s.kpSet(slot, KeypairWord.localIndex, index | 0);
      return index;
    }
    return -1;
  }

  /** Slot number of a local index. */
  static slotOf(index: number): number {
    return index & ((1 << SLOT_BITS) - 1);
  }

  /** True when `index` is the live local index of a reserved or valid slot. */
  owns(index: number): boolean {
    const slot = KeypairSlots.slotOf(index);
    return this.#inUse[slot] === 1 &&
      (this.#shared.kpGet(slot, KeypairWord.localIndex) >>> 0) === (index >>> 0);
  }

  /** Installs session keys into the slot reserved for `keys.localIndex` and makes it usable. */
  install(keys: SessionKeys, peer: number): number {
    const slot = KeypairSlots.slotOf(keys.localIndex);
    const s = this.#shared;
    s.kpKeys.set(keys.sendKey, slot * 64);
    s.kpKeys.set(keys.recvKey, slot * 64 + 32);
    s.kpSet(slot, KeypairWord.peer, peer);
    s.kpSet(slot, KeypairWord.remoteIndex, keys.remoteIndex | 0);
    s.kpSet(slot, KeypairWord.isInitiator, keys.isInitiator ? 1 : 0);
    s.kpSet(slot, KeypairWord.confirmPosted, 0);
    s.kpF64[s.kf(slot, KeypairUsage.created)] = this.#clock();
    s.kpF64[s.kf(slot, KeypairUsage.sendCounter)] = 0;
    s.kpBumpGeneration(slot);
    s.kpSet(slot, KeypairWord.state, SlotState.valid);
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
    return slot;
  }

  /** Frees a slot and wipes its keys. */
  free(slot: number): void {
    if (slot < 0 || !this.#inUse[slot]) return;
    const s = this.#shared;
    s.kpSet(slot, KeypairWord.state, SlotState.free);
    s.kpBumpGeneration(slot);
    s.kpKeys.fill(0, slot * 64, slot * 64 + 64);
    this.#inUse[slot] = 0;
    this.#freedAt[slot] = this.#clock();
  }

  /** Creation time (ms) of a valid slot. */
  created(slot: number): number {
    return this.#shared.kpF64[this.#shared.kf(slot, KeypairUsage.created)];
  }

  /** Number of slots in use (for status). */
  get inUse(): number {
    let n = 0;
    for (let i = 0; i < MAX_KEYPAIRS; i++) n += this.#inUse[i];
    return n;
  }
}
