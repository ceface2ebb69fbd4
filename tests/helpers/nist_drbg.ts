/**
 * The AES-256 CTR DRBG of the NIST PQC known-answer-test generator (rng.c), so a test can derive the
 * random inputs a KAT entry's `seed` fed to key generation and encapsulation.
 */
import { ecb } from "@noble/ciphers/aes.js";

const BLOCK = 16;
const SEED_LEN = 48;

/** A NIST KAT DRBG instance seeded with a 48-byte entropy input. */
export class NistKatDrbg {
  #key = new Uint8Array(32);
  #v = new Uint8Array(BLOCK);

  constructor(seed: Uint8Array) {
    if (seed.length !== SEED_LEN) throw new RangeError("NIST KAT DRBG seed must be 48 bytes");
    this.#update(seed);
  }

  #incrementV(): void {
    for (let i = BLOCK - 1; i >= 0; i--) {
      this.#v[i] = (this.#v[i] + 1) & 0xff;
      if (this.#v[i] !== 0) break;
    }
  }

  #block(): Uint8Array {
    this.#incrementV();
    return ecb(this.#key, { disablePadding: true }).encrypt(this.#v);
  }

  #update(provided?: Uint8Array): void {
    const temp = new Uint8Array(SEED_LEN);
    for (let i = 0; i < SEED_LEN / BLOCK; i++) temp.set(this.#block(), i * BLOCK);
    if (provided) { for (let i = 0; i < SEED_LEN; i++) temp[i] ^= provided[i]; }
    this.#key = temp.slice(0, 32);
    this.#v = temp.slice(32);
  }

  /** One randombytes(length) call of the KAT generator. */
  randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += BLOCK) {
      out.set(this.#block().subarray(0, Math.min(BLOCK, length - offset)), offset);
    }
    this.#update();
    return out;
  }
}
