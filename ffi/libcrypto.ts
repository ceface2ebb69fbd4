/**
 * Bindings to OpenSSL 3 `libcrypto.so.3` (the EVP AEAD calls only), loaded with `Deno.dlopen`.
 *
 * Two flavours of the data calls exist:
 * - `…_ptr` symbols take only `pointer` and `i32` parameters, for the per-packet path. Pointers
 *   into packet buffers come from {@link pointerAt}, which caches one pointer object per
 *   (buffer, position), so a steady-state data path allocates nothing.
 * - the plain-named symbols take whole typed arrays (`buffer`), for one-shot, non-hot calls.
 *
 * Measured on Deno 2.9.6 (V8 15.0) while choosing this: a `usize` parameter given a plain number
 * leaves the fast-call path (about 130 ns per call instead of about 9 ns); given a BigInt it is
 * fast, but `base + BigInt(offset)` allocates unless the caller has reached Turbofan, which a
 * data path spending its time inside OpenSSL often never does. `buffer` parameters accept views
 * on SharedArrayBuffers but need a fresh `subarray` per packet offset (an allocation).
 *
 * Loading never throws: {@link loadLibcrypto} returns null when the library is missing.
 * @module
 */

const P = "pointer" as const;
const B = "buffer" as const;
const I = "i32" as const;

/** The symbol table bound by {@link loadLibcrypto}. */
export const LIBCRYPTO_SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: P },
  EVP_CIPHER_CTX_free: { parameters: [P], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: P },
  EVP_aes_256_gcm: { parameters: [], result: P },
  ERR_clear_error: { parameters: [], result: "void" },
  OpenSSL_version: { parameters: [I], result: P },
  // Whole-buffer variants (setup and one-shot calls). `buffer` accepts null.
  EVP_EncryptInit_ex: { parameters: [P, P, P, B, B], result: I },
  EVP_DecryptInit_ex: { parameters: [P, P, P, B, B], result: I },
  EVP_EncryptUpdate: { parameters: [P, B, B, B, I], result: I },
  EVP_DecryptUpdate: { parameters: [P, B, B, B, I], result: I },
  EVP_EncryptFinal_ex: { parameters: [P, B, B], result: I },
  EVP_DecryptFinal_ex: { parameters: [P, B, B], result: I },
  EVP_CIPHER_CTX_ctrl: { parameters: [P, I, I, B], result: I },
  // Pointer-only variants for the per-packet path (fast calls, no BigInt).
  EVP_EncryptInit_ex_ptr: { name: "EVP_EncryptInit_ex", parameters: [P, P, P, P, P], result: I },
  EVP_DecryptInit_ex_ptr: { name: "EVP_DecryptInit_ex", parameters: [P, P, P, P, P], result: I },
  EVP_EncryptUpdate_ptr: { name: "EVP_EncryptUpdate", parameters: [P, P, P, P, I], result: I },
  EVP_DecryptUpdate_ptr: { name: "EVP_DecryptUpdate", parameters: [P, P, P, P, I], result: I },
  EVP_EncryptFinal_ex_ptr: { name: "EVP_EncryptFinal_ex", parameters: [P, P, P], result: I },
  EVP_DecryptFinal_ex_ptr: { name: "EVP_DecryptFinal_ex", parameters: [P, P, P], result: I },
  EVP_CIPHER_CTX_ctrl_ptr: { name: "EVP_CIPHER_CTX_ctrl", parameters: [P, I, I, P], result: I },
} as const;

/** The bound functions of libcrypto. */
export type Libcrypto = Deno.DynamicLibrary<typeof LIBCRYPTO_SYMBOLS>["symbols"];

/** `EVP_CTRL_AEAD_SET_IVLEN`. */
export const EVP_CTRL_AEAD_SET_IVLEN = 0x9;
/** `EVP_CTRL_AEAD_GET_TAG`: copy the computed tag out after EncryptFinal. */
export const EVP_CTRL_AEAD_GET_TAG = 0x10;
/** `EVP_CTRL_AEAD_SET_TAG`: the expected tag, before DecryptFinal. */
export const EVP_CTRL_AEAD_SET_TAG = 0x11;

/** Names tried in order by {@link loadLibcrypto}. */
export const LIBCRYPTO_CANDIDATES: readonly string[] = [
  "libcrypto.so.3",
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
  "/usr/lib/libcrypto.so.3",
  "/usr/local/lib/libcrypto.so.3",
  "/usr/local/lib64/libcrypto.so.3",
];

let loaded: Libcrypto | null | undefined;

/**
 * Opens libcrypto once per isolate and returns its bound symbols, or null when it cannot be loaded
 * (no library, missing symbol, or no `--allow-ffi`). Never throws.
 */
export function loadLibcrypto(): Libcrypto | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  // Without --allow-ffi there is nothing to load; checking first also avoids a permission prompt.
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  for (const path of LIBCRYPTO_CANDIDATES) {
    try {
      loaded = Deno.dlopen(path, LIBCRYPTO_SYMBOLS).symbols;
      break;
    } catch {
      // try the next candidate
    }
  }
  return loaded;
}

/** `OPENSSL_VERSION`: the `OpenSSL_version()` selector for the full version text. */
export const OPENSSL_VERSION = 0;

/**
 * The loaded libcrypto's version text (e.g. "OpenSSL 3.0.15 3 Sep 2024"), or null when libcrypto is not
 * loaded. For diagnostics (the support bundle).
 */
export function libcryptoVersion(): string | null {
  const lib = loadLibcrypto();
  if (lib === null) return null;
  const p = lib.OpenSSL_version(OPENSSL_VERSION);
  return p === null ? null : Deno.UnsafePointerView.getCString(p);
}

/** Most cached pointers kept per buffer; the cache is emptied when it grows past this. */
export const POINTER_CACHE_LIMIT = 8192;

const pointerCaches = new WeakMap<ArrayBufferLike, Map<number, Deno.PointerObject>>();
let lastBuffer: ArrayBufferLike | null = null;
let lastCache: Map<number, Deno.PointerObject> | null = null;

/**
 * A pointer object for byte `position` of `buffer` (an ArrayBuffer or SharedArrayBuffer, whose
 * backing stores never move). Pointers are cached per buffer (weakly, so a cache dies with its
 * buffer), making repeated positions — ring-buffer slots — allocation-free. The caller must
 * bounds-check `position` and keep `buffer` alive while the pointer is in use.
 */
export function pointerAt(buffer: ArrayBufferLike, position: number): Deno.PointerObject {
  let cache = lastCache;
  if (buffer !== lastBuffer || cache === null) {
    cache = pointerCaches.get(buffer) ?? null;
    if (cache === null) {
      cache = new Map();
      pointerCaches.set(buffer, cache);
    }
    lastBuffer = buffer;
    lastCache = cache;
  }
  const hit = cache.get(position);
  if (hit !== undefined) return hit;
  if (cache.size >= POINTER_CACHE_LIMIT) cache.clear();
  const ptr = Deno.UnsafePointer.create(addressOf(buffer) + BigInt(position));
  if (ptr === null) throw new RangeError("null pointer");
  cache.set(position, ptr);
  return ptr;
}

/**
 * The address of the first byte of `buffer`'s backing store, as a BigInt for `usize` parameters.
 * ArrayBuffer and SharedArrayBuffer backing stores never move, so the value can be cached per
 * buffer object. Throws for a zero-length (or detached) buffer, which has no address.
 */
export function addressOf(buffer: ArrayBufferLike): bigint {
  const ptr = Deno.UnsafePointer.of(buffer as ArrayBuffer);
  if (ptr === null) throw new RangeError("buffer has no backing store");
  return BigInt(Deno.UnsafePointer.value(ptr));
}
