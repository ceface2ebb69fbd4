/**
 * Multiplication in GF(2^128) with the reduction polynomial x^128 + x^7 + x^2 + x + 1, in the encoding of
 * docs/design.md §3.8: a 16-byte string is read as a big-endian integer and bit i is the coefficient of x^i
 * (byte 0's top bit is x^127, byte 15's low bit is x^0). This is NOT GCM's bit-reflected convention.
 *
 * Table-free: a fixed 128-round Horner loop over 32-bit limbs with masks instead of branches, so timing
 * does not depend on operand values (as far as JavaScript allows).
 * @module
 */

/** Size of one field element in bytes. */
export const GF128_BYTES = 16;

function limbs(bytes: Uint8Array, name: string): Uint32Array {
  if (bytes.length !== GF128_BYTES) throw new RangeError(`${name} must be ${GF128_BYTES} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, GF128_BYTES);
  return Uint32Array.of(view.getUint32(0), view.getUint32(4), view.getUint32(8), view.getUint32(12));
}

/** Product a·b of two 16-byte big-endian field elements, as a new 16-byte array. */
export function gf128Mul(a: Uint8Array, b: Uint8Array): Uint8Array {
  const aw = limbs(a, "a");
  const bw = limbs(b, "b");
  let acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
  // Horner from the top coefficient of a: acc = acc·x + a_i·b.
  for (let w = 0; w < 4; w++) {
    const word = aw[w];
    for (let bit = 31; bit >= 0; bit--) {
      const overflow = -(acc0 >>> 31);
      acc0 = ((acc0 << 1) | (acc1 >>> 31)) >>> 0;
      acc1 = ((acc1 << 1) | (acc2 >>> 31)) >>> 0;
      acc2 = ((acc2 << 1) | (acc3 >>> 31)) >>> 0;
      acc3 = ((acc3 << 1) ^ (0x87 & overflow)) >>> 0; // x^128 = x^7 + x^2 + x + 1
      const take = -((word >>> bit) & 1);
      acc0 = (acc0 ^ (bw[0] & take)) >>> 0;
      acc1 = (acc1 ^ (bw[1] & take)) >>> 0;
      acc2 = (acc2 ^ (bw[2] & take)) >>> 0;
      acc3 = (acc3 ^ (bw[3] & take)) >>> 0;
    }
  }
  aw.fill(0);
  bw.fill(0);
  const out = new Uint8Array(GF128_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, acc0);
  view.setUint32(4, acc1);
  view.setUint32(8, acc2);
  view.setUint32(12, acc3);
  return out;
}

/** Sum a + b (bitwise XOR) of two 16-byte field elements, as a new array. */
export function gf128Add(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== GF128_BYTES || b.length !== GF128_BYTES) {
    throw new RangeError(`field elements must be ${GF128_BYTES} bytes`);
  }
  const out = new Uint8Array(GF128_BYTES);
  for (let i = 0; i < GF128_BYTES; i++) out[i] = a[i] ^ b[i];
  return out;
}
