/**
 * The offload checksum and copy helpers (src/wireguard/offload/copy-sum.ts, checksum.ts) against
 * the tests' own RFC 1071 code, at every alignment and length around the word-sum threshold.
 */

import assert from "node:assert/strict";
import { copyBytes, sumBytes } from "../../src/wireguard/offload/copy-sum.ts";
import { checksumOf, foldSum } from "../../src/wireguard/offload/checksum.ts";
import { onesSum, payloadOf } from "./offload_packets.ts";

Deno.test("sumBytes matches RFC 1071 at every alignment and length", () => {
  const backing = new ArrayBuffer(4096);
  const data = payloadOf(4000, 21);
  data[100] = data[101] = 0xff; // carries
  for (const viewOffset of [0, 1, 2, 3]) {
    const buf = new Uint8Array(backing, viewOffset, 4000);
    buf.set(data.subarray(0, 4000 - viewOffset));
    for (const start of [0, 1, 2, 3, 5, 6]) {
      for (const len of [0, 1, 2, 3, 31, 32, 33, 34, 35, 63, 64, 65, 1400, 1401, 3000]) {
        const got = foldSum(sumBytes(buf, start, start + len, 0));
        const want = onesSum([buf.slice(start, start + len)]);
        // 0 and 0xffff are the same one's-complement value (an all-zero range folds to 0).
        assert.equal(got % 0xffff, want % 0xffff, `view +${viewOffset}, start ${start}, length ${len}`);
      }
    }
  }
  assert.equal(checksumOf(sumBytes(new Uint8Array([0x45, 0x00]), 0, 2, 0)), 0xbaff);
});

Deno.test("copyBytes within one backing behaves like memmove; across backings it copies", () => {
  const backing = new ArrayBuffer(256);
  const a = new Uint8Array(backing, 8, 100);
  const b = new Uint8Array(backing, 120, 100);
  a.set(payloadOf(100, 2));
  copyBytes(a, 10, 50, b, 5);
  assert.deepEqual(b.slice(5, 55), a.slice(10, 60));
  const before = a.slice();
  copyBytes(a, 0, 60, a, 20); // overlapping, forwards
  assert.deepEqual(a.slice(20, 80), before.slice(0, 60));
  const other = new Uint8Array(30);
  copyBytes(b, 5, 30, other, 0);
  assert.deepEqual(other, b.slice(5, 35));
});
