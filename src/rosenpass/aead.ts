/**
 * The two AEADs of Rosenpass: ChaCha20-Poly1305 (handshake encryption and the live session,
 * 12-byte nonce) and XChaCha20-Poly1305 (biscuits, random 24-byte nonce carried in front of the
 * ciphertext). Opening returns null on a bad tag rather than throwing: callers treat it as a reject.
 */
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { concatBytes } from "../encoding.ts";
import { XAEAD_NONCE_LEN } from "./constants.ts";

/** ChaCha20-Poly1305 seal: ciphertext ‖ tag. */
export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array) {
  return chacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

/** ChaCha20-Poly1305 open; null when the tag does not verify. */
export function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  try {
    return chacha20poly1305(key, nonce, ad).decrypt(ciphertext);
  } catch {
    return null;
  }
}

/** XChaCha20-Poly1305 seal with the nonce in front: nonce ‖ ciphertext ‖ tag. */
export function xaeadSealWithNonce(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  return concatBytes([nonce, xchacha20poly1305(key, nonce, ad).encrypt(plaintext)]);
}

/** Opens nonce ‖ ciphertext ‖ tag; null when the tag does not verify. */
export function xaeadOpenWithNonce(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (sealed.length < XAEAD_NONCE_LEN) return null;
  try {
    return xchacha20poly1305(key, sealed.subarray(0, XAEAD_NONCE_LEN), ad).decrypt(
      sealed.subarray(XAEAD_NONCE_LEN),
    );
  } catch {
    return null;
  }
}
