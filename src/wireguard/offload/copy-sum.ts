/**
 * Byte copies and Internet-checksum sums for the offload paths, fast and allocation-free:
 *
 * - copies between buffers that share one backing (ArrayBuffer or SharedArrayBuffer) use
 *   `copyWithin` on a cached whole-backing view (a native memmove); other copies fall back to a
 *   byte loop. Data-path callers keep their scratch and batch buffers in one backing to get the
 *   fast path;
 * - sums over 4-byte-aligned ranges read 32-bit little-endian words through a cached Uint32Array
 *   view and fix the byte order at the end (RFC 1071 §2(B): the one's-complement sum is byte-order
 *   independent up to a final swap).
 *
 * @module
 */

const byteViews = new WeakMap<ArrayBufferLike, Uint8Array>();
const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();
/** Ranges shorter than this are summed byte by byte (the view setup is not worth it). */
const WORD_SUM_MIN = 32;

function wholeBytes(u8: Uint8Array): Uint8Array {
  const backing = u8.buffer;
  let v = byteViews.get(backing);
  if (v === undefined) {
    v = new Uint8Array(backing);
    byteViews.set(backing, v);
  }
  return v;
}

function wholeWords(u8: Uint8Array): Uint32Array {
  const backing = u8.buffer;
  let v = wordViews.get(backing);
  if (v === undefined) {
    v = new Uint32Array(backing, 0, backing.byteLength >>> 2);
    wordViews.set(backing, v);
  }
  return v;
}

/** Copies `src[from, from+len)` to `dst[at, ...)`; overlapping ranges of one backing behave like memmove. */
export function copyBytes(src: Uint8Array, from: number, len: number, dst: Uint8Array, at: number): void {
  if (src.buffer === dst.buffer) {
    const start = src.byteOffset + from;
    wholeBytes(src).copyWithin(dst.byteOffset + at, start, start + len);
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i];
}

/**
 * Adds the 16-bit big-endian words of `buf[start, end)` to `initial` without folding; an odd
 * trailing byte counts as the high byte of a word padded with zero.
 */
export function sumBytes(buf: Uint8Array, start: number, end: number, initial: number): number {
  let sum = initial;
  let i = start;
  const absolute = buf.byteOffset + start;
  if (end - start >= WORD_SUM_MIN && (absolute & 1) === 0) {
    if ((absolute & 2) !== 0) {
      sum += (buf[i] << 8) | buf[i + 1];
      i += 2;
    }
    const words = (end - i) >>> 2;
    const view = wholeWords(buf);
    let w = (buf.byteOffset + i) >>> 2;
    const wEnd = w + words;
    let s = 0;
    for (; w < wEnd; w++) s += view[w];
    while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
    sum += ((s & 0xff) << 8) | (s >>> 8);
    i += words * 4;
  }
  const even = end - ((end - i) & 1);
  for (; i < even; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}
