/**
 * Pieces both data-plane paths share: a local mirror of the allowed-IPs table, and a per-keypair-slot
 * cache of keyed cipher contexts rebuilt when a slot's generation moves.
 * @module
 */
/// <reference lib="deno.worker" />
import type { Aead, AeadKey } from "../../crypto/aead.ts";
import { AllowedIps } from "../allowedips.ts";
import {
  DeviceWord,
  KeypairWord,
  MAX_KEYPAIRS,
  MAX_PEERS,
  PeerWord,
  type SharedState,
} from "./shared-state.ts";

/**
 * The worker's own longest-prefix table, rebuilt from shared memory when its version changes, with
 * the peer-slot generations it was published for. A lookup result is usable only while
 * {@link AllowedIpsMirror.routesTo} holds: a slot whose peer was removed or replaced since the table
 * was published has no routes.
 */
export class AllowedIpsMirror {
  /** The local table (lookups do not allocate). */
  readonly table: AllowedIps = new AllowedIps();
  #version = -1;
  #generations = new Int32Array(MAX_PEERS);
  #shared: SharedState;

  constructor(shared: SharedState) {
    this.#shared = shared;
  }

  /** Rebuilds the table if the control plane published a new one (cheap check otherwise). */
  sync(): void {
    const v = Atomics.load(this.#shared.header, DeviceWord.allowedIpsVersion);
    if (v === this.#version) return;
    const published = this.#shared.readAllowedIps();
    if (published === null) return; // being written: keep the current copy, retry at the next sync
    this.table.clear();
    for (const e of published.entries) {
      this.table.insert({ family: e.family, addr: e.addr, bits: e.bits }, e.peer);
    }
    this.#generations.set(published.generations);
    this.#version = published.version;
  }

  /** The slot generation the table's routes to `peer` were published for. */
  generationOf(peer: number): number {
    return this.#generations[peer];
  }

  /** True when the table's routes to `peer` still belong to the peer now in that slot. */
  routesTo(peer: number): boolean {
    return this.#shared.peerGet(peer, PeerWord.generation) === this.#generations[peer];
  }
}

/** Keyed cipher contexts per keypair slot, for one direction (send key or receive key). */
export class SlotCiphers {
  #keys: (AeadKey | null)[] = new Array(MAX_KEYPAIRS).fill(null);
  #gen = new Int32Array(MAX_KEYPAIRS).fill(-1);
  #shared: SharedState;
  #aead: Aead;
  #keyOffset: number;
  #onRekey?: (slot: number) => void;

  /** `direction` picks the send key (bytes 0..31 of the slot) or the receive key (32..63). */
  constructor(
    shared: SharedState,
    aead: Aead,
    direction: "send" | "receive",
    onRekey?: (slot: number) => void,
  ) {
    this.#shared = shared;
    this.#aead = aead;
    this.#keyOffset = direction === "send" ? 0 : 32;
    this.#onRekey = onRekey;
  }

  /** The context for `slot`, rebuilt (and `onRekey` called) when the slot got new keys. */
  get(slot: number): AeadKey {
    const gen = this.#shared.kpGet(slot, KeypairWord.generation);
    if (this.#gen[slot] !== gen) {
      this.#keys[slot]?.free();
      const o = slot * 64 + this.#keyOffset;
      this.#keys[slot] = this.#aead.keyed(this.#shared.kpKeys.subarray(o, o + 32));
      this.#gen[slot] = gen;
      this.#onRekey?.(slot);
    }
    return this.#keys[slot]!;
  }

  /** Frees every context (on worker exit). */
  freeAll(): void {
    for (const k of this.#keys) k?.free();
    this.#keys.fill(null);
  }
}
