/**
 * Rosenpass building blocks: the two keyed hashes (known answers from the reference implementation's
 * documentation), the AEAD wrappers (RFC 8439 §2.8.2 and draft-irtf-cfrg-xchacha §A.3.1), the
 * message sizes of both profiles, message encoding, biscuit numbers, sealing and key rotation.
 */
import assert from "node:assert/strict";
import { fromHex, toHex } from "../../src/encoding.ts";
import { incorrectHmacBlake2b, keyedShake256 } from "../../src/rosenpass/keyed-hash.ts";
import { aeadOpen, aeadSeal, xaeadOpenWithNonce, xaeadSealWithNonce } from "../../src/rosenpass/aead.ts";
import { PROFILE_V02, PROFILE_V03, profileByName } from "../../src/rosenpass/profile.ts";
import { decodeMessage, encodeMessage, type InitConf } from "../../src/rosenpass/messages.ts";
import {
  BiscuitKeys,
  biscuitSlot,
  decodeBiscuitNo,
  encodeBiscuitNo,
  openBiscuit,
  sealBiscuit,
} from "../../src/rosenpass/biscuit.ts";
import { BISCUIT_CT_LEN, BISCUIT_EPOCH, MessageType } from "../../src/rosenpass/constants.ts";

const hex = (s: string) => fromHex(s.replace(/\s+/g, ""));
const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, " +
    "sunscreen would be it.",
);
const RFC_KEY = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
const RFC_AD = hex("50515253c0c1c2c3c4c5c6c7");

Deno.test("keyed hashes: incorrect HMAC-BLAKE2b and SHAKE256 match the reference known answers", () => {
  const key = new Uint8Array(32);
  const data = new Uint8Array(32).fill(0xff);
  assert.deepEqual(
    [...incorrectHmacBlake2b(key, data)],
    [
      5,
      152,
      135,
      141,
      151,
      106,
      147,
      8,
      220,
      95,
      38,
      66,
      29,
      33,
      3,
      104,
      250,
      114,
      131,
      119,
      27,
      56,
      59,
      44,
      11,
      67,
      230,
      113,
      112,
      20,
      80,
      103,
    ],
  );
  assert.deepEqual(
    [...keyedShake256(key, data)],
    [
      174,
      4,
      47,
      188,
      1,
      228,
      179,
      246,
      67,
      43,
      255,
      94,
      155,
      11,
      187,
      161,
      38,
      110,
      217,
      23,
      4,
      62,
      172,
      30,
      218,
      187,
      249,
      80,
      171,
      21,
      145,
      238,
    ],
  );
  assert.throws(() => incorrectHmacBlake2b(new Uint8Array(16), data), /32 bytes/);
});

Deno.test("AEADs: ChaCha20-Poly1305 and XChaCha20-Poly1305 reproduce their RFC vectors and reject tampering", () => {
  const nonce = hex("070000004041424344454647");
  const sealed = aeadSeal(RFC_KEY, nonce, SUNSCREEN, RFC_AD);
  assert.equal(toHex(sealed.subarray(-16)), "1ae10b594f09e26a7e902ecbd0600691");
  assert.equal(toHex(sealed.subarray(0, 8)), "d31a8d34648e60db");
  assert.deepEqual(aeadOpen(RFC_KEY, nonce, sealed, RFC_AD), SUNSCREEN);
  sealed[5] ^= 1;
  assert.equal(aeadOpen(RFC_KEY, nonce, sealed, RFC_AD), null);

  const xnonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const xsealed = xaeadSealWithNonce(RFC_KEY, xnonce, SUNSCREEN, RFC_AD);
  assert.equal(toHex(xsealed.subarray(0, 24)), toHex(xnonce), "nonce in front");
  assert.equal(toHex(xsealed.subarray(-16)), "c0875924c1c7987947deafd8780acf49");
  assert.equal(toHex(xsealed.subarray(24, 32)), "bd6d179d3e83d43b");
  assert.deepEqual(xaeadOpenWithNonce(RFC_KEY, xsealed, RFC_AD), SUNSCREEN);
  assert.equal(xaeadOpenWithNonce(RFC_KEY, xsealed, new Uint8Array(0)), null, "wrong AD");
});

Deno.test("profiles: message sizes are those of released Rosenpass (V02) and upstream V03", () => {
  assert.deepEqual(PROFILE_V02.sizes, { initHello: 1092, respHello: 1132, initConf: 176, emptyData: 64 });
  assert.deepEqual(PROFILE_V03.sizes, { initHello: 1060, respHello: 1100, initConf: 176, emptyData: 64 });
  assert.equal(profileByName("v03"), PROFILE_V03);
  assert.equal(profileByName("v02"), PROFILE_V02);
});

Deno.test("messages: an InitConf encodes into the envelope layout and decodes back; wrong length or type is refused", () => {
  const ic: InitConf = {
    kind: "init-conf",
    sidi: hex("01020304"),
    sidr: hex("05060708"),
    biscuit: new Uint8Array(BISCUIT_CT_LEN).fill(7),
    auth: new Uint8Array(16).fill(9),
  };
  let covered: Uint8Array | undefined;
  const bytes = encodeMessage(PROFILE_V02, ic, (c) => {
    covered = c.slice();
    return new Uint8Array(16).fill(0xaa);
  });
  assert.equal(bytes.length, 176);
  assert.deepEqual([...bytes.subarray(0, 8)], [MessageType.InitConf, 0, 0, 0, 1, 2, 3, 4]);
  assert.equal(covered?.length, 176 - 32, "the MAC covers everything before it");
  assert.equal(toHex(bytes.subarray(144, 160)), "aa".repeat(16));
  assert.equal(toHex(bytes.subarray(160)), "00".repeat(16), "no cookie");
  const decoded = decodeMessage(PROFILE_V02, bytes);
  assert.ok(decoded);
  assert.deepEqual(decoded.payload, ic);
  assert.equal(decodeMessage(PROFILE_V02, bytes.subarray(0, 175)), null);
  const unknown = bytes.slice();
  unknown[0] = 0x42;
  assert.equal(decodeMessage(PROFILE_V02, unknown), null);
});

Deno.test("biscuits: numbers are 12-byte little endian; a sealed biscuit opens only with its key and AD", () => {
  assert.equal(toHex(encodeBiscuitNo(1n)), "01" + "00".repeat(11));
  assert.equal(decodeBiscuitNo(encodeBiscuitNo(0x0102030405060708090an)), 0x0102030405060708090an);
  const content = {
    pidi: new Uint8Array(32).fill(1),
    biscuitNo: 5n,
    chainingKey: new Uint8Array(32).fill(2),
  };
  const key = new Uint8Array(32).fill(3);
  const ad = new Uint8Array(32).fill(4);
  const sealed = sealBiscuit(content, key, 1, new Uint8Array(24), ad);
  assert.equal(sealed.length, BISCUIT_CT_LEN);
  assert.equal(biscuitSlot(sealed), 1);
  assert.deepEqual(openBiscuit(sealed, key, ad), content);
  assert.equal(openBiscuit(sealed, new Uint8Array(32), ad), null);
  assert.equal(openBiscuit(sealed, key, new Uint8Array(32)), null);
});

Deno.test("biscuit keys: one key seals for an epoch, opens for two; then the older slot is renewed", () => {
  const keys = new BiscuitKeys();
  let n = 0;
  const fresh = () => new Uint8Array(32).fill(++n);
  const first = keys.active(0, fresh);
  assert.equal(first, 1, "both slots empty: slot 1 first, as the reference implementation");
  assert.equal(keys.active(BISCUIT_EPOCH - 1, fresh), first, "still young");
  const second = keys.active(BISCUIT_EPOCH, fresh);
  assert.equal(second, 0);
  assert.ok(keys.openingKey(first, BISCUIT_EPOCH + 10), "the retired key still opens");
  assert.equal(keys.openingKey(first, 2 * BISCUIT_EPOCH), null, "and expires after two epochs");
  assert.equal(keys.active(2 * BISCUIT_EPOCH, fresh), 1, "the oldest slot is reused");
  assert.equal(keys.openingKey(5, 0), null);
});
