/**
 * The AEAD interface every cipher suite uses, and backend selection.
 *
 * Two algorithms (ChaCha20-Poly1305 for wg0, AES-256-GCM for aes0) sit behind one interface with two
 * backends: OpenSSL's libcrypto through FFI (fast; chosen when it loads) and `@noble/ciphers`
 * (portable fallback). The 12-byte nonce is WireGuard's layout `0^4 ‖ LE64(counter)` for both
 * algorithms. Counters are JavaScript numbers; values above 2^53 are never produced by the
 * engine (it rekeys long before) and are rejected on receive.
 * @module
 */

/** AEAD algorithm names. */
export type AeadName = "chacha20-poly1305" | "aes-256-gcm";
/** Backend names. */
export type AeadBackendName = "libcrypto" | "noble";

/** Tag length for both algorithms. */
export const TAG_LEN = 16;

/** An AEAD bound to one 32-byte key, for the per-packet path (no per-call allocation). */
export interface AeadKey {
  /**
   * Encrypts `buf[off, off+len)` in place and writes the 16-byte tag at `buf[off+len]`.
   * No associated data (WireGuard transport messages have none).
   */
  sealInPlace(counter: number, buf: Uint8Array, off: number, len: number): void;
  /**
   * Decrypts `buf[off, off+len)` in place, where the last 16 bytes are the tag.
   * Returns false (and leaves no usable plaintext) when authentication fails.
   */
  openInPlace(counter: number, buf: Uint8Array, off: number, len: number): boolean;
  /** Wipes the key material held by this object. */
  free(): void;
}

/** One AEAD algorithm from one backend. */
export interface Aead {
  /** Algorithm name. */
  readonly name: AeadName;
  /** Which backend implements it. */
  readonly backend: AeadBackendName;
  /** One-shot seal with associated data; returns ciphertext ‖ tag. */
  seal(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Uint8Array;
  /** One-shot open; returns the plaintext or null when authentication fails. */
  open(key: Uint8Array, counter: number, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | null;
  /** A keyed context for the data path. */
  keyed(key: Uint8Array): AeadKey;
}

/** Writes WireGuard's nonce `0^4 ‖ LE64(counter)` into `nonce` (12 bytes). */
export function writeNonce(nonce: Uint8Array, counter: number): void {
  nonce[0] =
    nonce[1] =
    nonce[2] =
    nonce[3] =
      0;
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 4294967296) >>> 0;
  nonce[4] = lo & 0xff;
  nonce[5] = (lo >>> 8) & 0xff;
  nonce[6] = (lo >>> 16) & 0xff;
  nonce[7] = lo >>> 24;
  nonce[8] = hi & 0xff;
  nonce[9] = (hi >>> 8) & 0xff;
  nonce[10] = (hi >>> 16) & 0xff;
  nonce[11] = hi >>> 24;
}
