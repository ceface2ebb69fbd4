/**
 * Detached Ed25519 signatures over the exact bytes of a map file (`netmap.json` → `netmap.json.sig`),
 * so a node can take a map from an untrusted place (a web server) and believe only the signer. Plain
 * Ed25519 (RFC 8032) over the file's bytes, no canonicalization: a map is verified as served, so any
 * byte changed (comments and spacing included) needs a new signature. The signer key is a dedicated
 * key (`twofold netmap signer-keygen`), never a node's WireGuard key.
 *
 * File formats: the signer key file holds one base64 line, the 32-byte Ed25519 seed (mode 0600 or
 * narrower, never printed); the public key is base64 of 32 bytes; a signature file holds one base64
 * line of the 64-byte signature.
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { FileRuleError, KEY_FILE_MAX_BYTES, readSecretFile } from "../config/secret-file.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";

/** Suffix of the detached signature file next to a map. */
export const SIGNATURE_SUFFIX = ".sig";
/** Ed25519 seed (private key) length. */
export const SIGNER_SEED_BYTES = 32;
/** Ed25519 public key length. */
export const SIGNER_PUBLIC_KEY_BYTES = 32;
/** Ed25519 signature length. */
export const SIGNATURE_BYTES = 64;
/** Mode of the signer key file. */
export const SIGNER_KEY_MODE = 0o600;

/** A signing problem for the operator: one line naming the file and the fix (never key material). */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureError";
  }
}

/** A new signer seed (32 random bytes). */
export function generateSignerSeed(): Uint8Array {
  return ed25519.utils.randomSecretKey();
}

/** The public key of a signer seed. */
export function signerPublicKey(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

/** Signs `document` (a map file's bytes). */
export function signDocument(document: Uint8Array, seed: Uint8Array): Uint8Array {
  return ed25519.sign(document, seed);
}

/**
 * Whether a public key is one a signer can hold: a canonical encoding of a point that is not of small
 * order (a small-order key would let anyone forge signatures that verify).
 */
export function isUsableSignerKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== SIGNER_PUBLIC_KEY_BYTES) return false;
  try {
    return !ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}

/**
 * Whether `signature` is the signer's over `document` under strict RFC 8032 rules (canonical
 * encodings); false, never a throw, for malformed input or an unusable key.
 */
export function verifyDocument(document: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || !isUsableSignerKey(publicKey)) return false;
  try {
    return ed25519.verify(signature, document, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** The text of a signature file. */
export function formatSignature(signature: Uint8Array): string {
  return `${encodeBase64(signature)}\n`;
}

function base64Of(text: string, bytes: number): Uint8Array | null {
  const trimmed = text.trim();
  if (trimmed.length !== 4 * Math.ceil(bytes / 3)) return null;
  try {
    const out = decodeBase64(trimmed);
    return out.length === bytes ? out : null;
  } catch {
    return null;
  }
}

/** The signature in a signature file's text, or null when it is not one base64 64-byte signature. */
export function parseSignature(text: string): Uint8Array | null {
  return base64Of(text, SIGNATURE_BYTES);
}

/** Parses a signer public key (base64, 32 bytes); throws SignatureError naming `where`. */
export function parseSignerPublicKey(where: string, text: string): Uint8Array {
  const key = base64Of(text, SIGNER_PUBLIC_KEY_BYTES);
  if (key === null || !isUsableSignerKey(key)) {
    throw new SignatureError(
      `${where}: not a usable base64 Ed25519 public key (32 bytes, 44 characters); \`twofold netmap signer-keygen\` prints it`,
    );
  }
  return key;
}

/** Reads a signer key file (one base64 seed line, mode 0600 or narrower). Never echoes the contents. */
export function readSignerKeyFile(path: string): Uint8Array {
  const make = `create one with \`twofold netmap signer-keygen --out ${path}\``;
  let bytes: Uint8Array;
  try {
    bytes = readSecretFile(path, { label: "signer key", maxBytes: KEY_FILE_MAX_BYTES, createHint: make });
  } catch (e) {
    if (e instanceof FileRuleError) throw new SignatureError(e.message);
    throw e;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = "";
  } finally {
    bytes.fill(0);
  }
  const seed = base64Of(text, SIGNER_SEED_BYTES);
  if (seed === null) {
    throw new SignatureError(`signer key ${path} does not hold one base64 32-byte key: ${make}`);
  }
  return seed;
}

/**
 * Writes a new signer key file (mode 0600, created: an existing file is never overwritten) and returns
 * the public key.
 */
export function writeNewSignerKeyFile(path: string, seed: Uint8Array): Uint8Array {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, createNew: true, mode: SIGNER_KEY_MODE });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new SignatureError(
        `${path} already exists; a signer key is never overwritten, choose another --out`,
      );
    }
    throw new SignatureError(`${path} cannot be created (${(e as Error).name}); check the directory`);
  }
  try {
    Deno.chmodSync(path, SIGNER_KEY_MODE); // exactly 0600, whatever the umask
    const bytes = new TextEncoder().encode(`${encodeBase64(seed)}\n`);
    for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
    file.syncSync();
    bytes.fill(0);
  } finally {
    file.close();
  }
  return signerPublicKey(seed);
}
