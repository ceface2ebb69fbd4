/**
 * X25519 (RFC 7748) key agreement and WireGuard-style key generation.
 * @module
 */
import { x25519 } from "@noble/curves/ed25519.js";

/** Length of X25519 keys in bytes. */
export const KEY_LEN = 32;

/** Returns a fresh, clamped X25519 private key (as `wg genkey` produces). */
export function generatePrivateKey(): Uint8Array {
  const k = crypto.getRandomValues(new Uint8Array(KEY_LEN));
  clampPrivateKey(k);
  return k;
}

/** Clamps a private key in place as RFC 7748 §5 decodes scalars. */
export function clampPrivateKey(k: Uint8Array): void {
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
}

/** Public key for `privateKey`. */
export function publicKey(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/**
 * Shared secret DH(priv, pub). Returns null when the result is all zeros
 * (a low-order public key), which WireGuard rejects.
 */
export function dh(privateKey: Uint8Array, pub: Uint8Array): Uint8Array | null {
  let out: Uint8Array;
  try {
    out = x25519.getSharedSecret(privateKey, pub);
  } catch {
    return null;
  }
  let acc = 0;
  for (let i = 0; i < out.length; i++) acc |= out[i];
  return acc === 0 ? null : out;
}
