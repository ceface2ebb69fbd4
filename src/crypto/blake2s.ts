/**
 * BLAKE2s (RFC 7693) as WireGuard uses it: HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128,
 * and HMAC-BLAKE2s (RFC 2104 over BLAKE2s-256, block size 64).
 * @module
 */
import { blake2s } from "@noble/hashes/blake2.js";

/** BLAKE2s-256 of the concatenation of `parts`. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ dkLen: 32 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Keyed BLAKE2s-128 (WireGuard's MAC, used for mac1, mac2 and cookies). */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: 16 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Raw BLAKE2s with an explicit digest length and optional key (for known-answer tests). */
export function blake2sRaw(data: Uint8Array, dkLen = 32, key?: Uint8Array): Uint8Array {
  return blake2s(data, { dkLen, key });
}

const BLOCK = 64;

/** HMAC-BLAKE2s(key, parts...) with a 32-byte output. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  let k = key;
  if (k.length > BLOCK) k = hash(k);
  const ipad = new Uint8Array(BLOCK);
  const opad = new Uint8Array(BLOCK);
  ipad.set(k);
  opad.set(k);
  for (let i = 0; i < BLOCK; i++) {
    ipad[i] ^= 0x36;
    opad[i] ^= 0x5c;
  }
  const inner = hash(ipad, ...parts);
  const out = hash(opad, inner);
  ipad.fill(0);
  opad.fill(0);
  inner.fill(0);
  return out;
}
