/**
 * Sealing and opening one transport message (src/wireguard/transport-message.ts), the pure core of the
 * data plane's send and receive paths: sealed messages equal ones built independently here from the
 * whitepaper's layout with @noble/ciphers, for both suites' AEADs; padding, counters and tampering.
 */
import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { getAead } from "../../src/crypto/backend.ts";
import type { AeadName } from "../../src/crypto/aead.ts";
import {
  openTransport,
  paddedBodyLength,
  sealTransport,
  TRANSPORT_HEADER,
  TRANSPORT_TAG,
  transportCounter,
  transportReceiver,
} from "../../src/wireguard/transport-message.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const MTU = 1420;

/** The message the whitepaper describes: 4, 0, 0, 0 ‖ LE32 receiver ‖ LE64 counter ‖ AEAD(pad16(P)). */
function referenceMessage(name: AeadName, plain: Uint8Array, receiver: number, counter: bigint): Uint8Array {
  const paddedLen = Math.min(Math.ceil(plain.length / 16) * 16, MTU);
  const padded = new Uint8Array(Math.max(paddedLen, plain.length));
  padded.set(plain);
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, true);
  const sealed = name === "aes-256-gcm"
    ? gcm(KEY, nonce).encrypt(padded)
    : chacha20poly1305(KEY, nonce).encrypt(padded);
  const msg = new Uint8Array(16 + sealed.length);
  const view = new DataView(msg.buffer);
  msg[0] = 4;
  view.setUint32(4, receiver, true);
  view.setBigUint64(8, counter, true);
  msg.set(sealed, 16);
  return msg;
}

/** A batch-like buffer with the plaintext at TRANSPORT_HEADER and room for padding and the tag. */
function bufferWith(plain: Uint8Array): Uint8Array {
  const buf = new Uint8Array(TRANSPORT_HEADER + plain.length + 16 + TRANSPORT_TAG).fill(0xee);
  buf.set(plain, TRANSPORT_HEADER);
  return buf;
}

for (const name of ["chacha20-poly1305", "aes-256-gcm"] as const) {
  Deno.test(`transport message (${name})`, async (t) => {
    const key = getAead(name).keyed(KEY);
    try {
      await t.step(
        "sealed bytes equal the independently built message; open gives the plaintext back",
        () => {
          for (const len of [0, 1, 15, 16, 17, 100, 1404, MTU]) {
            const plain = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
            const buf = bufferWith(plain);
            const counter = 1000 + len;
            const total = sealTransport(key, buf, len, 0xdeadbeef, counter, MTU);
            const expected = referenceMessage(name, plain, 0xdeadbeef, BigInt(counter));
            assert.equal(total, expected.length, `length for ${len} bytes`);
            assert.deepEqual(buf.subarray(0, total), expected, `bytes for ${len} bytes`);
            assert.equal(transportReceiver(buf), 0xdeadbeef);
            assert.equal(transportCounter(buf), counter);
            assert.ok(openTransport(key, buf, total, counter));
            assert.deepEqual(buf.subarray(TRANSPORT_HEADER, TRANSPORT_HEADER + len), plain);
          }
        },
      );
      await t.step("a flipped bit, a wrong counter or a cut message does not open", () => {
        const plain = new TextEncoder().encode("one application packet");
        const seal = () => {
          const buf = bufferWith(plain);
          return { buf, total: sealTransport(key, buf, plain.length, 7, 42, MTU) };
        };
        let m = seal();
        m.buf[TRANSPORT_HEADER + 3] ^= 1;
        assert.equal(openTransport(key, m.buf, m.total, 42), false, "flipped body bit");
        m = seal();
        assert.equal(openTransport(key, m.buf, m.total, 43), false, "wrong counter");
        m = seal();
        assert.equal(openTransport(key, m.buf, m.total - 1, 42), false, "cut tag");
      });
    } finally {
      key.free();
    }
  });
}

Deno.test("transport message: padding and counters", async (t) => {
  await t.step("padding goes to a multiple of 16, never past the MTU; keepalives stay empty", () => {
    assert.equal(paddedBodyLength(0, MTU), 0);
    assert.equal(paddedBodyLength(1, MTU), 16);
    assert.equal(paddedBodyLength(16, MTU), 16);
    assert.equal(paddedBodyLength(17, MTU), 32);
    assert.equal(paddedBodyLength(1415, MTU), 1420, "capped at the MTU, not 1424");
    assert.equal(paddedBodyLength(1420, MTU), 1420);
    assert.equal(paddedBodyLength(17, 0), 32, "no MTU known: padding alone");
  });
  await t.step("counters are read little-endian; 2^53 and above are refused (-1)", () => {
    const buf = new Uint8Array(TRANSPORT_HEADER);
    const view = new DataView(buf.buffer);
    view.setBigUint64(8, 2n ** 53n - 1n, true);
    assert.equal(transportCounter(buf), Number.MAX_SAFE_INTEGER);
    view.setBigUint64(8, 2n ** 53n, true);
    assert.equal(transportCounter(buf), -1);
    view.setBigUint64(8, 0x0102030405n, true);
    assert.equal(transportCounter(buf), 0x0102030405);
  });
});
