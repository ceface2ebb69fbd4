/**
 * Known-answer tests for the two KEMs of Rosenpass: Kyber-512 round 3 against the first 20 entries
 * of the submission's PQCkemKAT_1632.rsp (encapsulation with the coins the KAT's DRBG produced, and
 * decapsulation), and Classic McEliece 460896 rounds 2 and 4 against the NIST KAT entry 0
 * decapsulation vectors shipped with the mceliece-nist package's tests. Sources in tests/vectors/README.md.
 */
import assert from "node:assert/strict";
import { decodeBase64, fromHex, toHex } from "../../src/encoding.ts";
import { kyberDecapsulate, kyberEncapsulate, kyberKeygen } from "../../src/rosenpass/kyber512.ts";
import { mcEliece460896, type McElieceRound } from "../../src/rosenpass/mceliece.ts";
import { EKEM_CT_LEN, EKEM_PK_LEN, EKEM_SK_LEN } from "../../src/rosenpass/constants.ts";
import { NistKatDrbg } from "../helpers/nist_drbg.ts";

const DIR = new URL("../vectors/rosenpass/", import.meta.url);

interface KyberKat {
  count: number;
  seed: Uint8Array;
  pk: Uint8Array;
  sk: Uint8Array;
  ct: Uint8Array;
  ss: Uint8Array;
}

function readKyberKats(): KyberKat[] {
  const text = Deno.readTextFileSync(new URL("kyber512-round3-PQCkemKAT_1632-first20.rsp", DIR));
  const kats: KyberKat[] = [];
  for (const block of text.split("\n\n")) {
    const fields = Object.fromEntries(
      block.split("\n").map((line) => line.match(/^(\w+) = (\w+)$/)).filter((m) => m !== null).map((m) => [
        m[1],
        m[2],
      ]),
    );
    if (fields.count === undefined) continue;
    kats.push({
      count: Number(fields.count),
      seed: fromHex(fields.seed),
      pk: fromHex(fields.pk),
      sk: fromHex(fields.sk),
      ct: fromHex(fields.ct),
      ss: fromHex(fields.ss),
    });
  }
  return kats;
}

const KAT_COIN_LEN = 32;

Deno.test("kyber512 round 3: encapsulation and decapsulation match the first 20 KAT entries", () => {
  const kats = readKyberKats();
  assert.equal(kats.length, 20);
  for (const kat of kats) {
    const drbg = new NistKatDrbg(kat.seed);
    drbg.randomBytes(KAT_COIN_LEN); // key generation: d
    drbg.randomBytes(KAT_COIN_LEN); // key generation: z
    const coins = drbg.randomBytes(KAT_COIN_LEN);
    const { ciphertext, sharedSecret } = kyberEncapsulate(kat.pk, coins);
    assert.equal(toHex(ciphertext), toHex(kat.ct), `ct of KAT ${kat.count}`);
    assert.equal(toHex(sharedSecret), toHex(kat.ss), `ss of KAT ${kat.count}`);
    assert.equal(toHex(kyberDecapsulate(kat.ct, kat.sk)), toHex(kat.ss), `decapsulation of KAT ${kat.count}`);
  }
});

Deno.test("kyber512 round 3: fresh key pairs have the round-3 sizes and agree; a changed ciphertext does not", () => {
  const { publicKey, secretKey } = kyberKeygen();
  assert.equal(publicKey.length, EKEM_PK_LEN);
  assert.equal(secretKey.length, EKEM_SK_LEN);
  const { ciphertext, sharedSecret } = kyberEncapsulate(publicKey);
  assert.equal(ciphertext.length, EKEM_CT_LEN);
  assert.equal(toHex(kyberDecapsulate(ciphertext, secretKey)), toHex(sharedSecret));
  const tampered = ciphertext.slice();
  tampered[0] ^= 1;
  assert.notEqual(toHex(kyberDecapsulate(tampered, secretKey)), toHex(sharedSecret));
});

for (const [round, ciphertextLength, secretKeyLength] of [[2, 188, 13_568], [4, 156, 13_608]] as const) {
  Deno.test(`mceliece460896 round ${round}: decapsulation matches the NIST KAT entry 0`, () => {
    const kat = JSON.parse(Deno.readTextFileSync(new URL(`mceliece460896-round${round}-kat.json`, DIR)));
    const kem = mcEliece460896(round as McElieceRound);
    assert.equal(kem.ciphertextLength, ciphertextLength);
    assert.equal(kem.secretKeyLength, secretKeyLength);
    assert.equal(kem.publicKeyLength, 524_160);
    const key = kem.decapsulate(decodeBase64(kat.encryptedKey), decodeBase64(kat.privateKey));
    assert.equal(toHex(key), toHex(decodeBase64(kat.key)));
  });
}

Deno.test("mceliece460896: wrong-size inputs are refused with a one-line error", () => {
  const kem = mcEliece460896(2);
  assert.throws(() => kem.encapsulate(new Uint8Array(10)), /public key must be 524160 bytes/);
  assert.throws(
    () => kem.decapsulate(new Uint8Array(156), new Uint8Array(13_568)),
    /ciphertext must be 188 bytes/,
  );
});
