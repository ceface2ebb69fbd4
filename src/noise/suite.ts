/**
 * Cipher suites: the only thing that differs between wg0 (standard WireGuard) and aes0.
 *
 * A suite is a Noise construction string plus the AEAD it names. Everything else (IDENTIFIER,
 * labels, BLAKE2s, X25519, message layouts, nonce layout `0^4 ‖ LE64(counter)`, timers) is shared.
 * The initial chaining key and hash are derived by the Noise core from the construction string and
 * the prologue IDENTIFIER, so a different construction makes every handshake cryptographically
 * separate.
 * @module
 */
import type { Aead } from "../crypto/aead.ts";
import { getAead } from "../crypto/backend.ts";
import { SymmetricState } from "./handshake-state.ts";

/** WireGuard's prologue: `"WireGuard v1 zx2c4 Jason@zx2c4.com"`. */
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/** Construction string of standard WireGuard (wg0). */
export const CHACHA_CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/** Construction string of the AES-256-GCM variant (aes0), as QuFabric names it. */
export const AES_CONSTRUCTION = "Noise_IKpsk2_25519_AESGCM_BLAKE2s";

/** A WireGuard cipher suite. */
export interface Suite {
  /** Short name: "wg" (ChaCha20-Poly1305) or "aes" (AES-256-GCM). */
  name: "wg" | "aes";
  /** Noise protocol name. */
  construction: string;
  /** The AEAD for handshake and transport messages. */
  aead: Aead;
  /** `Ci = HASH(construction)`. */
  initialChainKey: Uint8Array;
  /** `Hi = HASH(Ci ‖ IDENTIFIER)`. */
  initialHash: Uint8Array;
}

/** Builds a suite, deriving `Ci` and `Hi` from `construction` and {@link IDENTIFIER}. */
export function makeSuite(name: "wg" | "aes", construction: string, aead: Aead): Suite {
  const start = SymmetricState.initialize(aead, construction, new TextEncoder().encode(IDENTIFIER));
  return { name, construction, aead, initialChainKey: start.ck, initialHash: start.h };
}

/** The wg0 suite: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with ChaCha20-Poly1305. */
export function chachaSuite(): Suite {
  return makeSuite("wg", CHACHA_CONSTRUCTION, getAead("chacha20-poly1305"));
}

/** The aes0 suite: Noise_IKpsk2_25519_AESGCM_BLAKE2s with AES-256-GCM. */
export function aesSuite(): Suite {
  return makeSuite("aes", AES_CONSTRUCTION, getAead("aes-256-gcm"));
}

/** The suite for a configured transport cipher. */
export function suiteForCipher(cipher: "chacha20-poly1305" | "aes-256-gcm"): Suite {
  if (cipher === "aes-256-gcm") return aesSuite();
  if (cipher === "chacha20-poly1305") return chachaSuite();
  throw new Error(`unknown cipher ${JSON.stringify(cipher)}`);
}
