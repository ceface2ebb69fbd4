/**
 * Rosenpass static keys as files: raw bytes, as the reference implementation writes them (public key
 * 524 160 B; secret key 13 568 B for profile V02, 13 608 B for V03 — the McEliece rounds differ in the
 * secret key format only). Pure checks and the fingerprint (SHA-256 of the public key, base64) that a
 * peer entry pins; the file I/O lives in the CLI and the node shell.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { SKEM_PK_LEN } from "./constants.ts";
import { type Profile, PROFILE_V02, PROFILE_V03 } from "./profile.ts";

/** Secret key length per profile (McEliece 460896 round 2 / round 4). */
export const SECRET_KEY_LEN: Readonly<Record<Profile["name"], number>> = { v02: 13_568, v03: 13_608 };

/** Length of a base64 SHA-256 fingerprint. */
const FINGERPRINT_B64_LEN = 44;

/** SHA-256 of a public key, base64: what a peer entry's `fingerprint` holds. */
export function publicKeyFingerprint(publicKey: Uint8Array): string {
  return encodeBase64(sha256(publicKey));
}

/** Whether `publicKey` matches the configured `fingerprint` (constant time; false for malformed input). */
export function fingerprintMatches(publicKey: Uint8Array, fingerprint: string): boolean {
  if (fingerprint.length !== FINGERPRINT_B64_LEN) return false;
  let expected: Uint8Array;
  try {
    expected = decodeBase64(fingerprint);
  } catch {
    return false;
  }
  return constantTimeEqual(sha256(publicKey), expected);
}

/** Why `bytes` is not a Rosenpass public key, or undefined when it is one. */
export function publicKeyProblem(bytes: Uint8Array): string | undefined {
  return bytes.length === SKEM_PK_LEN
    ? undefined
    : `is ${bytes.length} bytes, a Rosenpass public key is ${SKEM_PK_LEN} bytes (raw Classic McEliece 460896)`;
}

/** The profile a secret key file was generated for (by its length), or undefined. */
export function profileOfSecretKey(bytes: Uint8Array): Profile | undefined {
  if (bytes.length === SECRET_KEY_LEN.v02) return PROFILE_V02;
  if (bytes.length === SECRET_KEY_LEN.v03) return PROFILE_V03;
  return undefined;
}

/**
 * A fresh static key pair for `profile` (seconds of work, on a worker thread). McEliece (two WebAssembly
 * modules and Node's CommonJS loader) is imported here, not at the top: the node's config checks use
 * this module and a node without Rosenpass never needs the KEM.
 */
export async function generateStaticKeyPair(profile: Profile) {
  const { mcEliece460896 } = await import("./mceliece.ts");
  return await mcEliece460896(profile.mcElieceRound).keygenAsync();
}
