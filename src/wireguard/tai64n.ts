/**
 * TAI64N timestamps as WireGuard's handshake initiation carries them:
 * `BE64(2^62 + 10 + unix_seconds) ‖ BE32(nanoseconds)`, with the low 24 bits of the nanoseconds
 * cleared (wireguard-go's whitener, so the timestamp does not leak fine-grained clock state).
 * @module
 */

/** Size of a TAI64N timestamp. */
export const TAI64N_LEN = 12;

/** Bits of the nanosecond field that are cleared. */
const WHITENER_MASK = 0xffffff;

/** The TAI64N timestamp for `nowMs` milliseconds since the Unix epoch (fractional ms allowed). */
export function tai64n(nowMs: number): Uint8Array {
  const out = new Uint8Array(TAI64N_LEN);
  const seconds = Math.floor(nowMs / 1000);
  const nanos = Math.min(999_999_999, Math.floor((nowMs - seconds * 1000) * 1_000_000));
  // 2^62 + 10 + seconds, big-endian: the top word carries the 2^62 bit.
  const low = seconds + 10;
  const lowWord = low % 4294967296;
  const highWord = 0x40000000 + Math.floor(low / 4294967296);
  const view = new DataView(out.buffer);
  view.setUint32(0, highWord >>> 0);
  view.setUint32(4, lowWord >>> 0);
  view.setUint32(8, (nanos & ~WHITENER_MASK) >>> 0);
  return out;
}

/**
 * True when timestamp `a` is strictly greater than `b` (big-endian byte order). Examines all 12
 * bytes without an early exit. False for inputs of the wrong length.
 */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== TAI64N_LEN || b.length !== TAI64N_LEN) return false;
  let greater = 0;
  let equalSoFar = 1;
  for (let i = 0; i < TAI64N_LEN; i++) {
    const x = a[i];
    const y = b[i];
    greater |= equalSoFar & ((y - x) >>> 31);
    equalSoFar &= ((x ^ y) - 1) >>> 31;
  }
  return greater === 1;
}
