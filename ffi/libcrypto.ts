/**
 * Bindings to OpenSSL 3 `libcrypto.so.3` (the EVP AEAD calls only), loaded with `Deno.dlopen`.
 *
 * Two flavours of each data call exist:
 * - `…_addr` symbols take raw addresses as `usize` **BigInts** (see {@link addressOf}). Deno's
 *   fast-call path only accepts BigInts for 64-bit parameters (a plain number drops to the slow
 *   path, about 130 ns per call); V8 lowers `base + BigInt(x >>> 0)` to plain 64-bit arithmetic
 *   without allocating, so the per-packet path does not allocate.
 * - the plain-named symbols take whole typed arrays (`buffer`), for one-shot, non-hot calls.
 *
 * Loading never throws: {@link loadLibcrypto} returns null when the library is missing.
 * @module
 */

const P = "pointer" as const;
const U = "usize" as const;
const B = "buffer" as const;
const I = "i32" as const;

/** The symbol table bound by {@link loadLibcrypto}. */
export const LIBCRYPTO_SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: P },
  EVP_CIPHER_CTX_free: { parameters: [P], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: P },
  EVP_aes_256_gcm: { parameters: [], result: P },
  ERR_clear_error: { parameters: [], result: "void" },
  // Whole-buffer variants (setup and one-shot calls). `buffer` accepts null.
  EVP_EncryptInit_ex: { parameters: [P, P, P, B, B], result: I },
  EVP_DecryptInit_ex: { parameters: [P, P, P, B, B], result: I },
  EVP_EncryptUpdate: { parameters: [P, B, B, B, I], result: I },
  EVP_DecryptUpdate: { parameters: [P, B, B, B, I], result: I },
  EVP_EncryptFinal_ex: { parameters: [P, B, B], result: I },
  EVP_DecryptFinal_ex: { parameters: [P, B, B], result: I },
  EVP_CIPHER_CTX_ctrl: { parameters: [P, I, I, B], result: I },
  // Raw-address variants for the per-packet path (usize BigInt addresses).
  EVP_EncryptInit_ex_addr: { name: "EVP_EncryptInit_ex", parameters: [P, P, P, P, U], result: I },
  EVP_DecryptInit_ex_addr: { name: "EVP_DecryptInit_ex", parameters: [P, P, P, P, U], result: I },
  EVP_EncryptUpdate_addr: { name: "EVP_EncryptUpdate", parameters: [P, U, U, U, I], result: I },
  EVP_DecryptUpdate_addr: { name: "EVP_DecryptUpdate", parameters: [P, U, U, U, I], result: I },
  EVP_EncryptFinal_ex_addr: { name: "EVP_EncryptFinal_ex", parameters: [P, U, U], result: I },
  EVP_DecryptFinal_ex_addr: { name: "EVP_DecryptFinal_ex", parameters: [P, U, U], result: I },
  EVP_CIPHER_CTX_ctrl_addr: { name: "EVP_CIPHER_CTX_ctrl", parameters: [P, I, I, U], result: I },
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
