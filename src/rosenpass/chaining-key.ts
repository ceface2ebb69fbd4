/**
 * The handshake state's chaining key and the operations that advance it: mix, encrypt/decrypt and
 * mix, KEM encapsulate/decapsulate and mix (public key, shared secret, ciphertext, in that order).
 * Every step can be reported to a trace (the test-vector replay checks each intermediate key).
 */
import { AEAD_NONCE_LEN } from "./constants.ts";
import { aeadOpen, aeadSeal } from "./aead.ts";
import type { HashDomains } from "./hash-domains.ts";
import type { KemEncapsulation } from "./kyber512.ts";

/** Receives the chaining key after each named protocol step (e.g. "IHI4"). */
export type StepTrace = (step: string, chainingKey: Uint8Array) => void;

const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LEN);
const EMPTY = new Uint8Array(0);

/** A chaining key under one profile's hash domains. */
export class ChainingKey {
  #ck: Uint8Array;
  readonly #domains: HashDomains;

  constructor(domains: HashDomains, initial: Uint8Array) {
    this.#domains = domains;
    this.#ck = initial.slice();
  }

  /** The current value (a copy). */
  get value(): Uint8Array {
    return this.#ck.slice();
  }

  /** An independent copy of this state. */
  clone(): ChainingKey {
    return new ChainingKey(this.#domains, this.#ck);
  }

  /** extract_key(label node): hash(ck, label). */
  extract(labelNode: Uint8Array): Uint8Array {
    return this.#domains.chain(this.#ck, labelNode);
  }

  /** Mixes each part into the chaining key in turn. */
  mix(...parts: Uint8Array[]): this {
    for (const part of parts) this.#ck = this.#domains.chain(this.#ck, this.#domains.extract.mix, part);
    return this;
  }

  /** Encrypts with the handshake key (nonce 0, no AD), mixes the ciphertext in, returns it. */
  encryptAndMix(plaintext: Uint8Array = EMPTY): Uint8Array {
    const ct = aeadSeal(
      this.extract(this.#domains.extract.handshakeEncryption),
      ZERO_NONCE,
      plaintext,
      EMPTY,
    );
    this.mix(ct);
    return ct;
  }

  /** Decrypts with the handshake key and mixes the ciphertext in; null (state unchanged) on a bad tag. */
  decryptAndMix(ciphertext: Uint8Array): Uint8Array | null {
    const key = this.extract(this.#domains.extract.handshakeEncryption);
    const pt = aeadOpen(key, ZERO_NONCE, ciphertext, EMPTY);
    if (pt === null) return null;
    this.mix(ciphertext);
    return pt;
  }

  /** Mixes an encapsulation to `publicKey`; returns the ciphertext. */
  mixEncapsulation(publicKey: Uint8Array, encapsulation: KemEncapsulation): Uint8Array {
    this.mix(publicKey, encapsulation.sharedSecret, encapsulation.ciphertext);
    return encapsulation.ciphertext;
  }

  /** Mixes a decapsulated shared secret: public key, shared secret, ciphertext. */
  mixDecapsulation(publicKey: Uint8Array, sharedSecret: Uint8Array, ciphertext: Uint8Array): this {
    return this.mix(publicKey, sharedSecret, ciphertext);
  }

  /** Overwrites the key material. */
  erase(): void {
    this.#ck.fill(0);
  }
}
