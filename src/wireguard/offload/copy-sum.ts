/**
 * Byte copies for the offload paths that also return the Internet-checksum sum of what was copied,
 * so a segment's payload is summed in the same pass that moves it. Allocation-free (no subarray
 * views on the data path).
 *
 * @module
 */

/**
 * Copies `src[from, from+len)` to `dst[at, ...)` and returns the unfolded RFC 1071 sum of the
 * copied bytes (as 16-bit words starting at `from`; an odd last byte is the high byte of a word)
 * added to `initial`.
 */
export function copyAndSum(
  src: Uint8Array,
  from: number,
  len: number,
  dst: Uint8Array,
  at: number,
  initial: number,
): number {
  let sum = initial;
  let i = 0;
  const even = len & ~1;
  for (; i < even; i += 2) {
    const hi = src[from + i];
    const lo = src[from + i + 1];
    dst[at + i] = hi;
    dst[at + i + 1] = lo;
    sum += (hi << 8) | lo;
  }
  if (i < len) {
    const hi = src[from + i];
    dst[at + i] = hi;
    sum += hi << 8;
  }
  return sum;
}

/** Copies `src[from, from+len)` to `dst[at, ...)` (buffers may be the same only if the ranges do not overlap). */
export function copyBytes(src: Uint8Array, from: number, len: number, dst: Uint8Array, at: number): void {
  if (src === dst) {
    dst.copyWithin(at, from, from + len);
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i];
}
