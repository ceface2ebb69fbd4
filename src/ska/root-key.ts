/**
 * The SKA broker's root key: an HMAC-SHA256 key that either stays inside a PKCS#11 token (sensitive,
 * non-extractable; the HMAC is computed by the token) or, for labs, is read from a 0600 file. The
 * broker only ever asks it for `HMAC(root, message)`.
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { Pkcs11Error, Pkcs11Module, type Pkcs11Session } from "../../ffi/pkcs11.ts";
import { FileRuleError, KEY_FILE_MAX_BYTES, readSecretFile } from "../config/secret-file.ts";
import { decodeBase64 } from "../encoding.ts";

/** Shortest root key accepted from a file: 32 bytes (the HMAC-SHA256 block output size). */
export const ROOT_KEY_MIN_BYTES = 32;

/** Something that computes HMAC-SHA256 under the root key. */
export interface RootKey {
  /** Where the key lives, for status and logs ("pkcs11" or "file"). */
  readonly kind: "pkcs11" | "file";
  /** HMAC-SHA256(root, data). */
  hmac(data: Uint8Array): Uint8Array;
  /** Releases the session / wipes the key. */
  close(): void;
}

/** Where a PKCS#11 root key is: module, token label, key label, PIN file. */
export interface Pkcs11RootKeySpec {
  /** Path of the PKCS#11 module (`libsofthsm2.so`, a vendor's library). */
  module: string;
  /** Label of the token holding the key. */
  tokenLabel: string;
  /** Label (`CKA_LABEL`) of the secret key. */
  keyLabel: string;
  /** File holding the user PIN (0600; trailing newline ignored). */
  pinFile: string;
}

/** A root key that cannot be opened; the message is one line and carries no secret. */
export class RootKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RootKeyError";
  }
}

/** Reads a PIN file (0600) and returns the PIN bytes without a trailing newline (caller wipes). */
export function readPinFile(path: string): Uint8Array {
  const raw = readSecretFile(path, { label: "PIN file", maxBytes: KEY_FILE_MAX_BYTES });
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
  const pin = raw.slice(0, end);
  raw.fill(0);
  if (pin.length === 0) {
    throw new RootKeyError(`PIN file ${path} is empty: write the token's user PIN into it`);
  }
  return pin;
}

/**
 * Opens the root key in a PKCS#11 token: loads the module, finds the token by label, logs in with the
 * PIN from the PIN file, finds the secret key by label and checks that it is sensitive and not
 * extractable. Throws {@link RootKeyError} (one line) on any failure.
 */
export function openPkcs11RootKey(spec: Pkcs11RootKeySpec): RootKey {
  let module: Pkcs11Module | null = null;
  let session: Pkcs11Session | null = null;
  let pin: Uint8Array | null = null;
  try {
    pin = readPinFile(spec.pinFile);
    module = Pkcs11Module.open(spec.module);
    session = module.openSession(module.findSlot(spec.tokenLabel));
    session.login(pin);
    const key = session.findSecretKey(spec.keyLabel);
    const protection = session.protection(key);
    if (!protection.sensitive || protection.extractable) {
      throw new RootKeyError(
        `root key "${spec.keyLabel}" on token "${spec.tokenLabel}" can leave the token ` +
          `(sensitive=${protection.sensitive}, extractable=${protection.extractable}): ` +
          "create it with CKA_SENSITIVE true and CKA_EXTRACTABLE false",
      );
    }
    const s = session;
    const m = module;
    return {
      kind: "pkcs11",
      hmac: (data) => s.hmacSha256(key, data),
      close: () => {
        s.close();
        m.close();
      },
    };
  } catch (e) {
    session?.close();
    module?.close();
    if (e instanceof RootKeyError) throw e;
    if (e instanceof Pkcs11Error || e instanceof FileRuleError) {
      throw new RootKeyError(`root key: ${e.message}`);
    }
    throw e;
  } finally {
    pin?.fill(0);
  }
}

/**
 * Opens a file-held root key (lab fallback): a 0600 file holding at least 32 bytes in base64 (one
 * line). Throws {@link RootKeyError} on a bad file.
 */
export function openFileRootKey(path: string): RootKey {
  let raw: Uint8Array;
  try {
    raw = readSecretFile(path, { label: "root key file", maxBytes: KEY_FILE_MAX_BYTES });
  } catch (e) {
    if (e instanceof FileRuleError) throw new RootKeyError(`root key: ${e.message}`);
    throw e;
  }
  const text = new TextDecoder().decode(raw).trim();
  raw.fill(0);
  let key: Uint8Array;
  try {
    key = decodeBase64(text);
  } catch {
    throw new RootKeyError(`root key file ${path} is not base64: write 32 random bytes, base64-encoded`);
  }
  if (key.length < ROOT_KEY_MIN_BYTES) {
    key.fill(0);
    throw new RootKeyError(`root key file ${path} holds ${key.length} bytes: it needs at least 32`);
  }
  return fileRootKey(key);
}

/** A root key held in memory (the file fallback, and tests); `close` wipes it. */
export function fileRootKey(key: Uint8Array): RootKey {
  const k = key.slice();
  return {
    kind: "file",
    hmac: (data) => hmac(sha256, k, data),
    close: () => k.fill(0),
  };
}
