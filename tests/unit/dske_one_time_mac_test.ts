import assert from "node:assert/strict";
import { fromHex } from "../../src/encoding.ts";
import { oneTimeTag, verifyOneTimeTag } from "../../src/dske/one-time-mac.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** Published Poly1305 vectors: key = r ‖ s (hex), message, tag. */
const VECTORS: { name: string; key: string; message: Uint8Array; tag: string }[] = [
  {
    name: "RFC 8439 §2.5.2",
    key: "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
    message: text("Cryptographic Forum Research Group"),
    tag: "a8061dc1305136c6c22b8baf0c0127a9",
  },
  {
    name: "RFC 8439 A.3 #1 (all-zero key and message)",
    key: "00".repeat(32),
    message: new Uint8Array(64),
    tag: "00".repeat(16),
  },
  {
    name: "RFC 8439 A.3 #5 (r = 2, s = 0, message 2^128 − 1)",
    key: "02" + "00".repeat(31),
    message: fromHex("ff".repeat(16)),
    tag: "03" + "00".repeat(15),
  },
  {
    name: "RFC 8439 A.3 #6 (s = 2^128 − 1, final carry dropped)",
    key: "02" + "00".repeat(15) + "ff".repeat(16),
    message: fromHex("02" + "00".repeat(15)),
    tag: "03" + "00".repeat(15),
  },
  {
    name: "RFC 8439 A.3 #9 (result just under 2^130 − 5)",
    key: "02" + "00".repeat(31),
    message: fromHex("fd" + "ff".repeat(15)),
    tag: "fa" + "ff".repeat(15),
  },
  {
    name: "Poly1305-AES paper, appendix B, 2-byte message",
    key: "851fc40c3467ac0be05cc20404f3f700" + "580b3b0f9447bb1e69d095b5928b6dbc",
    message: fromHex("f3f6"),
    tag: "f4c633c3044fc145f84f335cb81953de",
  },
  {
    name: "Poly1305-AES paper, appendix B, empty message (tag = s)",
    key: "a0f3080000f46400d0c7e9076c834403" + "dd3fab2251f11ac759f0887129cc2ee7",
    message: new Uint8Array(0),
    tag: "dd3fab2251f11ac759f0887129cc2ee7",
  },
];

Deno.test("one-time MAC (Poly1305, RFC 8439 key layout)", async (t) => {
  await t.step("published vectors", () => {
    for (const v of VECTORS) {
      assert.deepEqual(oneTimeTag(fromHex(v.key), v.message), fromHex(v.tag), v.name);
      assert.equal(verifyOneTimeTag(fromHex(v.key), v.message, fromHex(v.tag)), true, v.name);
    }
  });

  await t.step("verification rejects any flipped tag bit and any flipped message bit", () => {
    const v = VECTORS[0];
    const key = fromHex(v.key);
    const tag = fromHex(v.tag);
    for (let bit = 0; bit < 128; bit++) {
      const bad = tag.slice();
      bad[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(verifyOneTimeTag(key, v.message, bad), false, `tag bit ${bit}`);
    }
    for (let bit = 0; bit < v.message.length * 8; bit++) {
      const bad = v.message.slice();
      bad[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(verifyOneTimeTag(key, bad, tag), false, `message bit ${bit}`);
    }
  });

  await t.step("verification rejects a different key and tags of the wrong length", () => {
    const v = VECTORS[0];
    const otherKey = fromHex(v.key);
    otherKey[31] ^= 0x80;
    assert.equal(verifyOneTimeTag(otherKey, v.message, fromHex(v.tag)), false);
    assert.equal(verifyOneTimeTag(fromHex(v.key), v.message, fromHex(v.tag).subarray(0, 15)), false);
    assert.equal(verifyOneTimeTag(fromHex(v.key), v.message, new Uint8Array(0)), false);
  });

  await t.step("keys of the wrong length are refused without echoing them", () => {
    const key = new Uint8Array(31).fill(0xab);
    assert.throws(() => oneTimeTag(key, new Uint8Array(1)), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.ok(!e.message.toLowerCase().includes("abab"));
      return true;
    });
    assert.throws(
      () => verifyOneTimeTag(new Uint8Array(33), new Uint8Array(1), new Uint8Array(16)),
      RangeError,
    );
  });

  await t.step("the caller's key is left untouched", () => {
    const key = fromHex(VECTORS[0].key);
    oneTimeTag(key, VECTORS[0].message);
    assert.deepEqual(key, fromHex(VECTORS[0].key));
  });
});
