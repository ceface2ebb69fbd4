/**
 * Portable AEAD backend on `@noble/ciphers` (pure TypeScript). Used when libcrypto is not
 * available, and in tests to cross-check the native backend.
 * @module
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { type Aead, type AeadKey, type AeadName, TAG_LEN, writeNonce } from "./aead.ts";

type Cipher = (key: Uint8Array, nonce: Uint8Array, ad?: Uint8Array) => {
  encrypt(pt: Uint8Array): Uint8Array;
  decrypt(ct: Uint8Array): Uint8Array;
};

function cipherFor(name: AeadName): Cipher {
  return name === "aes-256-gcm" ? gcm : chacha20poly1305;
}

class NobleKey implements AeadKey {
  #key: Uint8Array;
  #nonce = new Uint8Array(12);
  #cipher: Cipher;
  constructor(cipher: Cipher, key: Uint8Array) {
    this.#cipher = cipher;
    this.#key = key.slice();
  }
  sealInPlace(counter: number, buf: Uint8Array, off: number, len: number): void {
    writeNonce(this.#nonce, counter);
    const out = this.#cipher(this.#key, this.#nonce).encrypt(buf.subarray(off, off + len));
    buf.set(out, off);
  }
  openInPlace(counter: number, buf: Uint8Array, off: number, len: number): boolean {
    if (len < TAG_LEN) return false;
    writeNonce(this.#nonce, counter);
    try {
      const pt = this.#cipher(this.#key, this.#nonce).decrypt(buf.subarray(off, off + len));
      buf.set(pt, off);
      return true;
    } catch {
      return false;
    }
  }
  free(): void {
    this.#key.fill(0);
  }
}

/** Creates the noble implementation of `name`. */
export function nobleAead(name: AeadName): Aead {
  const cipher = cipherFor(name);
  const nonce = new Uint8Array(12);
  return {
    name,
    backend: "noble",
    seal(key, counter, plaintext, ad) {
      writeNonce(nonce, counter);
      return cipher(key, nonce, ad).encrypt(plaintext);
    },
    open(key, counter, ciphertext, ad) {
      if (ciphertext.length < TAG_LEN) return null;
      writeNonce(nonce, counter);
      try {
        return cipher(key, nonce, ad).decrypt(ciphertext);
      } catch {
        return null;
      }
    },
    keyed(key) {
      return new NobleKey(cipher, key);
    },
  };
}
