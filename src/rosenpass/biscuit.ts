/**
 * Biscuits: the responder's handshake state (initiator peer id, biscuit number, chaining key),
 * sealed with XChaCha20-Poly1305 under a server-wide biscuit key so the responder keeps no state
 * between RespHello and InitConf. Two key slots: a key seals new biscuits for BISCUIT_EPOCH and
 * still opens them for another epoch; the nonce's top bit names the slot.
 */
import { BISCUIT_EPOCH, BISCUIT_NO_LEN, BISCUIT_PT_LEN, KEY_LEN, XAEAD_NONCE_LEN } from "./constants.ts";
import { xaeadOpenWithNonce, xaeadSealWithNonce } from "./aead.ts";
import { concatBytes } from "../encoding.ts";

/** The decrypted content of a biscuit. */
export interface BiscuitContent {
  pidi: Uint8Array;
  biscuitNo: bigint;
  chainingKey: Uint8Array;
}

const SLOT_BIT = 0x80;
const SLOTS = 2;

/** Encodes a biscuit number as 12 little-endian bytes. */
export function encodeBiscuitNo(n: bigint): Uint8Array {
  const out = new Uint8Array(BISCUIT_NO_LEN);
  for (let i = 0; i < BISCUIT_NO_LEN; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Decodes a 12-byte little-endian biscuit number. */
export function decodeBiscuitNo(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** The server's two biscuit key slots and their ages. */
export class BiscuitKeys {
  readonly #keys: Uint8Array[] = [new Uint8Array(KEY_LEN), new Uint8Array(KEY_LEN)];
  readonly #createdAt: number[] = [-Infinity, -Infinity];
  readonly #epoch: number;

  constructor(epoch = BISCUIT_EPOCH) {
    this.#epoch = epoch;
  }

  /**
   * The slot to seal with now: the younger key while it is younger than one epoch, otherwise the
   * older slot gets a fresh key from `fresh` (on a tie, slot 1, as the reference implementation).
   */
  active(now: number, fresh: () => Uint8Array): number {
    const [t, u] = this.#createdAt;
    const youngest = t >= u ? 0 : 1;
    if (now - this.#createdAt[youngest] < this.#epoch) return youngest;
    const oldest = t < u ? 0 : 1;
    this.#keys[oldest].fill(0);
    this.#keys[oldest] = fresh();
    this.#createdAt[oldest] = now;
    return oldest;
  }

  /** The key of `slot` if it may still open biscuits (younger than two epochs). */
  openingKey(slot: number, now: number): Uint8Array | null {
    if (slot < 0 || slot >= SLOTS) return null;
    return now - this.#createdAt[slot] < 2 * this.#epoch ? this.#keys[slot] : null;
  }

  /** The key of `slot` (for sealing right after `active`). */
  key(slot: number): Uint8Array {
    return this.#keys[slot];
  }
}

/** Seals a biscuit with the key in `slot`; `nonce` is 24 random bytes whose top bit is replaced by the slot. */
export function sealBiscuit(
  content: BiscuitContent,
  key: Uint8Array,
  slot: number,
  nonce: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  if (nonce.length !== XAEAD_NONCE_LEN) throw new RangeError("biscuit nonce must be 24 bytes");
  const n = nonce.slice();
  n[0] = (n[0] & ~SLOT_BIT) | ((slot & 1) << 7);
  const pt = concatBytes([content.pidi, encodeBiscuitNo(content.biscuitNo), content.chainingKey]);
  return xaeadSealWithNonce(key, n, pt, ad);
}

/** The slot a biscuit was sealed with (top bit of its nonce). */
export function biscuitSlot(biscuit: Uint8Array): number {
  return (biscuit[0] & SLOT_BIT) >> 7;
}

/** Opens a biscuit; null when it does not authenticate. */
export function openBiscuit(biscuit: Uint8Array, key: Uint8Array, ad: Uint8Array): BiscuitContent | null {
  const pt = xaeadOpenWithNonce(key, biscuit, ad);
  if (pt === null || pt.length !== BISCUIT_PT_LEN) return null;
  return {
    pidi: pt.slice(0, KEY_LEN),
    biscuitNo: decodeBiscuitNo(pt.subarray(KEY_LEN, KEY_LEN + BISCUIT_NO_LEN)),
    chainingKey: pt.slice(KEY_LEN + BISCUIT_NO_LEN),
  };
}
