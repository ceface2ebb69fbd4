/**
 * The Internet checksum (RFC 1071) over byte ranges, and the TCP/UDP pseudo-header sum, for the
 * offload code: segmentation fills in full checksums, coalescing verifies them and leaves a partial
 * (pseudo-header only) sum for the kernel to complete. Allocation-free.
 *
 * The word sums themselves live in copy-sum.ts (re-exported here). Sums are carried unfolded as plain numbers (a 64 KiB range adds at most 2^31, well inside the
 * 2^53 a double holds exactly) and folded to 16 bits at the end.
 *
 * @module
 */

import { sumBytes } from "./copy-sum.ts";

export { sumBytes };

/** IP protocol number of TCP (the pseudo-header's protocol field). */
export const PROTO_TCP = 6;
/** IP protocol number of UDP (the pseudo-header's protocol field). */
export const PROTO_UDP = 17;

/** Folds an unfolded sum to 16 bits (end-around carry), without complementing it. */
export function foldSum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value for an unfolded sum: the one's complement of its 16-bit fold. */
export function checksumOf(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/**
 * Unfolded sum of the TCP/UDP pseudo-header: source and destination addresses (`addrLen` bytes
 * each, 4 or 16, the destination directly after the source at `buf[srcAt]`), protocol, and the
 * transport length (`l4Len`, header plus payload).
 */
export function pseudoHeaderSum(
  buf: Uint8Array,
  srcAt: number,
  addrLen: number,
  protocol: number,
  l4Len: number,
): number {
  return sumBytes(buf, srcAt, srcAt + 2 * addrLen, protocol + l4Len);
}
