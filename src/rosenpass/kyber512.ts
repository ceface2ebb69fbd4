/**
 * Kyber-512 as in the NIST round-3 submission (the ephemeral KEM of Rosenpass), built on ML-KEM-512:
 * round 3 hashes the encapsulation coins with SHA3-256 before use and derives the shared key as
 * SHAKE256(K̄ ‖ SHA3-256(ct)), where ML-KEM returns K̄ directly. Key and ciphertext formats are the same.
 * Key generation uses FIPS 203's seed expansion (it differs from round 3 only in how the local seed is
 * expanded; the keys are valid round-3 keys and only the public key is sent). On a rejected ciphertext
 * the implicit-rejection key differs from round 3's; both are unpredictable and the handshake fails either way.
 */
import { ml_kem512 } from "@noble/post-quantum/ml-kem.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { randomBytes } from "@noble/hashes/utils.js";
import { concatBytes } from "../encoding.ts";
import { KEM_SHARED_LEN } from "./constants.ts";

/** A KEM key pair. */
export interface KemKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** The result of an encapsulation: ciphertext and shared secret. */
export interface KemEncapsulation {
  ciphertext: Uint8Array;
  sharedSecret: Uint8Array;
}

const COINS_LEN = 32;

function roundThreeKey(preKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return shake256(concatBytes([preKey, sha3_256(ciphertext)]), { dkLen: KEM_SHARED_LEN });
}

/** A fresh Kyber-512 key pair. */
export function kyberKeygen(): KemKeyPair {
  const { publicKey, secretKey } = ml_kem512.keygen();
  return { publicKey, secretKey };
}

/** Round-3 encapsulation to `publicKey`; `coins` (32 bytes) are the raw random input (tests pass the KAT's). */
export function kyberEncapsulate(
  publicKey: Uint8Array,
  coins: Uint8Array = randomBytes(COINS_LEN),
): KemEncapsulation {
  const { cipherText, sharedSecret } = ml_kem512.encapsulate(publicKey, sha3_256(coins));
  return { ciphertext: cipherText, sharedSecret: roundThreeKey(sharedSecret, cipherText) };
}

/** Round-3 decapsulation of `ciphertext` with `secretKey`. */
export function kyberDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return roundThreeKey(ml_kem512.decapsulate(ciphertext, secretKey.slice()), ciphertext);
}
