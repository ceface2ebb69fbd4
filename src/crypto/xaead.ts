/**
 * XChaCha20-Poly1305, used only for WireGuard cookie replies (outside the Noise core, so the
 * same on wg0 and aes0).
 * @module
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";

/** Seals `plaintext` with a 24-byte nonce and associated data. */
export function xseal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

/** Opens `ciphertext`; null when authentication fails. */
export function xopen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(ciphertext);
  } catch {
    return null;
  }
}
