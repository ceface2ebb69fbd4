/**
 * The Noise/WireGuard KDF: HKDF with HMAC-BLAKE2s.
 * `prk = HMAC(key, input)`, `t1 = HMAC(prk, 0x01)`, `t_i = HMAC(prk, t_{i-1} ‖ i)`.
 * @module
 */
import { hmac } from "./blake2s.ts";

/** Derives `n` (1..3) 32-byte outputs from chaining key `key` and `input`. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmac(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    prev = hmac(prk, prev, Uint8Array.of(i));
    out.push(prev);
  }
  prk.fill(0);
  return out;
}

/** KDF1: one output. */
export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0];
}

/** KDF2: two outputs. */
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [a, b] = kdf(2, key, input);
  return [a, b];
}

/** KDF3: three outputs. */
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const [a, b, c] = kdf(3, key, input);
  return [a, b, c];
}
