/**
 * Native AEAD backend: OpenSSL libcrypto's ChaCha20-Poly1305 and AES-256-GCM through FFI.
 *
 * A keyed context holds one `EVP_CIPHER_CTX` per direction with the key set once; per packet only
 * the IV is set (4 FFI calls per seal or open, no JavaScript allocation). Buffers may be plain or
 * views on a SharedArrayBuffer, at any offset. `backend.ts`'s `getAead()` prefers it whenever the
 * library loads.
 * @module
 */
import {
  EVP_CTRL_AEAD_GET_TAG,
  EVP_CTRL_AEAD_SET_TAG,
  type Libcrypto,
  loadLibcrypto,
  pointerAt,
} from "../../ffi/libcrypto.ts";
import { type Aead, type AeadKey, type AeadName, TAG_LEN, writeNonce } from "./aead.ts";

const KEY_LEN = 32;
const NONCE_LEN = 12;

/** The parts of one loaded library that the AEAD code uses. */
interface Native {
  lib: Libcrypto;
  ciphers: Record<AeadName, Deno.PointerObject>;
  freeLater: FinalizationRegistry<Deno.PointerObject[]>;
}

let native: Native | null | undefined;

function getNative(): Native | null {
  if (native !== undefined) return native;
  native = null;
  const lib = loadLibcrypto();
  if (!lib) return null;
  const chacha = lib.EVP_chacha20_poly1305();
  const gcm = lib.EVP_aes_256_gcm();
  if (chacha === null || gcm === null) return null;
  const free = lib.EVP_CIPHER_CTX_free;
  native = {
    lib,
    ciphers: { "chacha20-poly1305": chacha, "aes-256-gcm": gcm },
    freeLater: new FinalizationRegistry((ctxs) => ctxs.forEach((c) => free(c))),
  };
  return native;
}

/** True when libcrypto loaded and provides both AEADs. */
export function libcryptoAvailable(): boolean {
  return getNative() !== null;
}

function requireNative(): Native {
  const n = getNative();
  if (!n) throw new Error("libcrypto.so.3 is not available");
  return n;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_LEN) throw new RangeError(`AEAD key must be ${KEY_LEN} bytes`);
}

function newContext(lib: Libcrypto): Deno.PointerObject {
  const ctx = lib.EVP_CIPHER_CTX_new();
  if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed");
  return ctx;
}

function mustSucceed(rc: number, what: string): void {
  if (rc !== 1) throw new Error(`libcrypto ${what} failed`);
}

/**
 * One-shot seal with an explicit 12-byte nonce (any layout) and associated data; returns
 * ciphertext ‖ tag. Used by the one-shot `seal` and by known-answer tests whose nonces are not
 * WireGuard-shaped. Throws when libcrypto is unavailable.
 */
export function libcryptoSealWithNonce(
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  const { lib, ciphers } = requireNative();
  checkKey(key);
  if (nonce.length !== NONCE_LEN) throw new RangeError(`nonce must be ${NONCE_LEN} bytes`);
  const out = new Uint8Array(plaintext.length + TAG_LEN);
  out.set(plaintext);
  const body = out.subarray(0, plaintext.length);
  const tag = out.subarray(plaintext.length);
  const outLen = new Int32Array(1);
  const ctx = newContext(lib);
  try {
    mustSucceed(lib.EVP_EncryptInit_ex(ctx, ciphers[name], null, key, nonce), "EncryptInit");
    if (ad.length > 0) mustSucceed(lib.EVP_EncryptUpdate(ctx, null, outLen, ad, ad.length), "AD update");
    if (body.length > 0) {
      mustSucceed(lib.EVP_EncryptUpdate(ctx, body, outLen, body, body.length), "EncryptUpdate");
    }
    mustSucceed(lib.EVP_EncryptFinal_ex(ctx, tag, outLen), "EncryptFinal");
    mustSucceed(lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag), "get tag");
    return out;
  } finally {
    lib.EVP_CIPHER_CTX_free(ctx);
  }
}

/**
 * One-shot open with an explicit 12-byte nonce; returns the plaintext, or null when
 * authentication fails. Throws when libcrypto is unavailable.
 */
export function libcryptoOpenWithNonce(
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  const { lib, ciphers } = requireNative();
  checkKey(key);
  if (nonce.length !== NONCE_LEN) throw new RangeError(`nonce must be ${NONCE_LEN} bytes`);
  if (ciphertext.length < TAG_LEN) return null;
  const bodyLen = ciphertext.length - TAG_LEN;
  const out = ciphertext.slice(0, bodyLen);
  const tag = ciphertext.slice(bodyLen);
  const outLen = new Int32Array(1);
  const sink = new Uint8Array(TAG_LEN);
  const ctx = newContext(lib);
  try {
    mustSucceed(lib.EVP_DecryptInit_ex(ctx, ciphers[name], null, key, nonce), "DecryptInit");
    if (ad.length > 0) mustSucceed(lib.EVP_DecryptUpdate(ctx, null, outLen, ad, ad.length), "AD update");
    if (bodyLen > 0) mustSucceed(lib.EVP_DecryptUpdate(ctx, out, outLen, out, bodyLen), "DecryptUpdate");
    mustSucceed(lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag), "set tag");
    if (lib.EVP_DecryptFinal_ex(ctx, sink, outLen) > 0) return out;
    out.fill(0);
    lib.ERR_clear_error();
    return null;
  } finally {
    lib.EVP_CIPHER_CTX_free(ctx);
  }
}

/** Per-packet context: key set once per direction, in-place seal/open without allocation. */
class LibcryptoKey implements AeadKey {
  #native: Native;
  #encrypt: Deno.PointerObject | null;
  #decrypt: Deno.PointerObject | null;
  // Scratch lives in one explicit ArrayBuffer (off the JS heap, so its address is stable):
  // [0,12) nonce, [16,20) int out-length, [32,48) tag, [48,64) sink for the (empty) Final output.
  #scratch = new ArrayBuffer(64);
  #nonce = new Uint8Array(this.#scratch, 0, NONCE_LEN);
  #tag = new Uint8Array(this.#scratch, 32, TAG_LEN);
  #noncePtr: Deno.PointerObject;
  #outLenPtr: Deno.PointerObject;
  #tagPtr: Deno.PointerObject;
  #sinkPtr: Deno.PointerObject;

  constructor(n: Native, name: AeadName, key: Uint8Array) {
    checkKey(key);
    this.#native = n;
    const { lib } = n;
    const enc = newContext(lib);
    const dec = newContext(lib);
    this.#encrypt = enc;
    this.#decrypt = dec;
    n.freeLater.register(this, [enc, dec], this);
    mustSucceed(lib.EVP_EncryptInit_ex(enc, n.ciphers[name], null, key, null), "EncryptInit(key)");
    mustSucceed(lib.EVP_DecryptInit_ex(dec, n.ciphers[name], null, key, null), "DecryptInit(key)");
    this.#noncePtr = pointerAt(this.#scratch, 0);
    this.#outLenPtr = pointerAt(this.#scratch, 16);
    this.#tagPtr = pointerAt(this.#scratch, 32);
    this.#sinkPtr = pointerAt(this.#scratch, 48);
  }

  sealInPlace(counter: number, buf: Uint8Array, off: number, len: number): void {
    const ctx = this.#encrypt;
    if (ctx === null) throw new Error("AEAD key used after free()");
    if (
      !Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 ||
      off + len + TAG_LEN > buf.length
    ) throw new RangeError("sealInPlace: range outside the buffer");
    writeNonce(this.#nonce, counter);
    const { lib } = this.#native;
    const data = pointerAt(buf.buffer, buf.byteOffset + off);
    if (
      lib.EVP_EncryptInit_ex_ptr(ctx, null, null, null, this.#noncePtr) !== 1 ||
      lib.EVP_EncryptUpdate_ptr(ctx, data, this.#outLenPtr, data, len) !== 1 ||
      lib.EVP_EncryptFinal_ex_ptr(ctx, this.#sinkPtr, this.#outLenPtr) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl_ptr(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, this.#tagPtr) !== 1
    ) throw new Error("libcrypto seal failed");
    buf.set(this.#tag, off + len);
  }

  openInPlace(counter: number, buf: Uint8Array, off: number, len: number): boolean {
    const ctx = this.#decrypt;
    if (ctx === null) throw new Error("AEAD key used after free()");
    if (len < TAG_LEN) return false;
    if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || off + len > buf.length) {
      throw new RangeError("openInPlace: range outside the buffer");
    }
    const bodyLen = len - TAG_LEN;
    const tag = this.#tag;
    for (let i = 0, p = off + bodyLen; i < TAG_LEN; i++) tag[i] = buf[p + i];
    writeNonce(this.#nonce, counter);
    const { lib } = this.#native;
    const data = pointerAt(buf.buffer, buf.byteOffset + off);
    if (
      lib.EVP_DecryptInit_ex_ptr(ctx, null, null, null, this.#noncePtr) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl_ptr(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, this.#tagPtr) !== 1 ||
      lib.EVP_DecryptUpdate_ptr(ctx, data, this.#outLenPtr, data, bodyLen) !== 1
    ) throw new Error("libcrypto open failed");
    if (lib.EVP_DecryptFinal_ex_ptr(ctx, this.#sinkPtr, this.#outLenPtr) > 0) return true;
    // Authentication failed: the decrypted bytes are unauthenticated; do not leave them behind.
    buf.fill(0, off, off + bodyLen);
    lib.ERR_clear_error();
    return false;
  }

  free(): void {
    const { lib, freeLater } = this.#native;
    freeLater.unregister(this);
    // EVP_CIPHER_CTX_free cleanses the key schedule before releasing it.
    if (this.#encrypt) lib.EVP_CIPHER_CTX_free(this.#encrypt);
    if (this.#decrypt) lib.EVP_CIPHER_CTX_free(this.#decrypt);
    this.#encrypt = this.#decrypt = null;
    new Uint8Array(this.#scratch).fill(0);
  }
}

const made = new Map<AeadName, Aead>();

/** The libcrypto implementation of `name`, or null when libcrypto cannot be loaded. */
export function libcryptoAead(name: AeadName): Aead | null {
  const hit = made.get(name);
  if (hit) return hit;
  const n = getNative();
  if (!n) return null;
  const aead: Aead = {
    name,
    backend: "libcrypto",
    seal(key, counter, plaintext, ad) {
      const nonce = new Uint8Array(NONCE_LEN);
      writeNonce(nonce, counter);
      return libcryptoSealWithNonce(name, key, nonce, plaintext, ad);
    },
    open(key, counter, ciphertext, ad) {
      const nonce = new Uint8Array(NONCE_LEN);
      writeNonce(nonce, counter);
      return libcryptoOpenWithNonce(name, key, nonce, ciphertext, ad);
    },
    keyed(key) {
      return new LibcryptoKey(n, name, key);
    },
  };
  made.set(name, aead);
  return aead;
}
