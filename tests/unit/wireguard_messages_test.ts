/** Message classification, integer helpers and TAI64N. */
import assert from "node:assert/strict";
import {
  InitiationOffsetMac1,
  InitiationOffsetMac2,
  mac1Offset,
  mac2Offset,
  messageType,
  readU32LE,
  readU64LE,
  ResponseOffsetMac1,
  ResponseOffsetMac2,
  writeU32LE,
  writeU64LE,
} from "../../src/wireguard/messages.ts";
import { tai64n, tai64nAfter } from "../../src/wireguard/tai64n.ts";

function msg(type: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = type;
  return b;
}

Deno.test("messages", async (t) => {
  await t.step("messageType accepts exact sizes and rejects everything else", () => {
    assert.equal(messageType(msg(1, 148), 148), 1);
    assert.equal(messageType(msg(2, 92), 92), 2);
    assert.equal(messageType(msg(3, 64), 64), 3);
    assert.equal(messageType(msg(4, 32), 32), 4);
    assert.equal(messageType(msg(4, 1500), 1500), 4);
    assert.equal(messageType(msg(1, 149), 149), 0);
    assert.equal(messageType(msg(1, 147), 147), 0);
    assert.equal(messageType(msg(2, 148), 148), 0);
    assert.equal(messageType(msg(3, 65), 65), 0);
    assert.equal(messageType(msg(4, 31), 31), 0);
    assert.equal(messageType(msg(5, 148), 148), 0);
    assert.equal(messageType(msg(0, 148), 148), 0);
    assert.equal(messageType(new Uint8Array(3), 3), 0);
    for (const i of [1, 2, 3]) {
      const m = msg(1, 148);
      m[i] = 1;
      assert.equal(messageType(m, 148), 0, `reserved byte ${i}`);
    }
    const big = msg(1, 2000);
    assert.equal(messageType(big, 148), 1, "len, not buffer size, counts");
    assert.equal(messageType(msg(1, 100), 148), 0, "len beyond the buffer");
  });

  await t.step("mac offsets", () => {
    assert.equal(mac1Offset(148), InitiationOffsetMac1);
    assert.equal(mac2Offset(148), InitiationOffsetMac2);
    assert.equal(mac1Offset(92), ResponseOffsetMac1);
    assert.equal(mac2Offset(92), ResponseOffsetMac2);
  });

  await t.step("little-endian integers", () => {
    const b = new Uint8Array(12);
    writeU32LE(b, 1, 0xdeadbeef);
    assert.deepEqual([...b.subarray(1, 5)], [0xef, 0xbe, 0xad, 0xde]);
    assert.equal(readU32LE(b, 1), 0xdeadbeef);
    writeU64LE(b, 4, 2 ** 40 + 7);
    assert.deepEqual([...b.subarray(4, 12)], [7, 0, 0, 0, 0, 1, 0, 0]);
    assert.equal(readU64LE(b, 4), 2 ** 40 + 7);
    b.fill(0xff, 4, 12);
    assert.ok(readU64LE(b, 4) > Number.MAX_SAFE_INTEGER);
  });
});

Deno.test("tai64n", async (t) => {
  await t.step("layout: BE64(2^62 + 10 + seconds) ‖ BE32(whitened nanos)", () => {
    const ts = tai64n(1_700_000_000_999);
    const v = new DataView(ts.buffer);
    assert.equal(ts.length, 12);
    assert.equal(v.getBigUint64(0), 2n ** 62n + 10n + 1_700_000_000n);
    const nanos = v.getUint32(8);
    assert.equal(nanos & 0xffffff, 0, "low 24 bits masked");
    assert.equal(nanos, 999_000_000 & ~0xffffff);
    assert.equal(v.getUint32(8, false), new DataView(tai64n(1_700_000_000_999.9).buffer).getUint32(8));
  });

  await t.step("ordering", () => {
    const a = tai64n(1_700_000_000_000);
    const b = tai64n(1_700_000_000_500);
    const c = tai64n(1_700_000_001_000);
    assert.equal(tai64nAfter(b, a), true);
    assert.equal(tai64nAfter(a, b), false);
    assert.equal(tai64nAfter(a, a), false);
    assert.equal(tai64nAfter(c, b), true);
    assert.equal(tai64nAfter(tai64n(1_700_000_000_010), a), false, "within the whitener: equal");
    const hi = new Uint8Array(12);
    hi[0] = 1;
    const lo = new Uint8Array(12).fill(0xff);
    lo[0] = 0;
    assert.equal(tai64nAfter(hi, lo), true);
    assert.equal(tai64nAfter(lo, hi), false);
    assert.equal(tai64nAfter(new Uint8Array(11), a), false);
  });
});
