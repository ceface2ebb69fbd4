/**
 * The generic Noise IKpsk2 core against the cacophony vectors (both twofold suites), and the
 * WireGuard message functions against the same core.
 */
import assert from "node:assert/strict";
import { gcm } from "@noble/ciphers/aes.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { getAead } from "../../src/crypto/backend.ts";
import { CipherState, IKpsk2Handshake } from "../../src/noise/handshake-state.ts";
import { aesSuite, chachaSuite, IDENTIFIER } from "../../src/noise/suite.ts";
import { publicKey } from "../../src/crypto/x25519.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  precomputeStaticStatic,
} from "../../src/wireguard/noise-protocol.ts";
import { tai64n } from "../../src/wireguard/tai64n.ts";

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_psks: string[];
  init_static: string;
  init_ephemeral: string;
  init_remote_static: string;
  resp_prologue: string;
  resp_psks: string[];
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const vectorFile = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/noise-ikpsk2.json", import.meta.url)),
) as { vectors: Vector[] };

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function aeadNameFor(protocol: string): "aes-256-gcm" | "chacha20-poly1305" {
  return protocol.includes("AESGCM") ? "aes-256-gcm" : "chacha20-poly1305";
}

/** Noise spec AESGCM transport encryption: nonce = 0^4 ‖ BE64(n) (what the vectors use). */
function sealNoiseSpecAesGcm(key: Uint8Array, n: number, plaintext: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(n), false);
  return gcm(key, nonce, new Uint8Array(0)).encrypt(plaintext);
}

function runVector(v: Vector) {
  const aead = getAead(aeadNameFor(v.protocol_name));
  const initiator = new IKpsk2Handshake({
    aead,
    protocolName: v.protocol_name,
    initiator: true,
    prologue: hex(v.init_prologue),
    staticPrivate: hex(v.init_static),
    remoteStatic: hex(v.init_remote_static),
    psk: hex(v.init_psks[0]),
    ephemeralPrivate: hex(v.init_ephemeral),
  });
  const responder = new IKpsk2Handshake({
    aead,
    protocolName: v.protocol_name,
    initiator: false,
    prologue: hex(v.resp_prologue),
    staticPrivate: hex(v.resp_static),
    psk: hex(v.resp_psks[0]),
    ephemeralPrivate: hex(v.resp_ephemeral),
  });
  const m = v.messages.map((x) => ({ payload: hex(x.payload), ciphertext: x.ciphertext }));
  const msg1 = initiator.writeMessage(m[0].payload);
  const got1 = responder.readMessage(msg1);
  const msg2 = responder.writeMessage(m[1].payload);
  const got2 = initiator.readMessage(msg2);
  return { initiator, responder, m, msg1, got1, msg2, got2 };
}

Deno.test("Noise IKpsk2 core reproduces the cacophony vectors", async (t) => {
  for (const v of vectorFile.vectors) {
    await t.step(`${v.protocol_name}: handshake messages 1, 2 and the handshake hash`, () => {
      const { initiator, responder, m, msg1, got1, msg2, got2 } = runVector(v);
      assert.equal(toHex(publicKey(hex(v.resp_static))), v.init_remote_static);
      assert.equal(toHex(msg1), m[0].ciphertext);
      assert.deepEqual(got1, m[0].payload);
      assert.equal(toHex(msg2), m[1].ciphertext);
      assert.deepEqual(got2, m[1].payload);
      assert.equal(toHex(initiator.handshakeHash), v.handshake_hash);
      assert.equal(toHex(responder.handshakeHash), v.handshake_hash);
      assert.deepEqual(responder.remoteStatic, publicKey(hex(v.init_static)));
    });

    await t.step(`${v.protocol_name}: transport messages 3 and 4 (counter 0)`, () => {
      const { initiator, responder, m } = runVector(v);
      const i = initiator.split();
      const r = responder.split();
      const ad = new Uint8Array(0);
      const c3 = i.send.encryptWithAd(ad, m[2].payload);
      assert.equal(toHex(c3), m[2].ciphertext);
      assert.deepEqual(r.receive.decryptWithAd(ad, c3), m[2].payload);
      const c4 = r.send.encryptWithAd(ad, m[3].payload);
      assert.equal(toHex(c4), m[3].ciphertext);
      assert.deepEqual(i.receive.decryptWithAd(ad, c4), m[3].payload);
    });

    await t.step(`${v.protocol_name}: transport messages 5 and 6 (counter 1)`, () => {
      const { initiator, responder, m } = runVector(v);
      const i = initiator.split();
      const r = responder.split();
      const ad = new Uint8Array(0);
      // advance both directions past counter 0
      r.receive.decryptWithAd(ad, i.send.encryptWithAd(ad, m[2].payload));
      i.receive.decryptWithAd(ad, r.send.encryptWithAd(ad, m[3].payload));
      const c5 = i.send.encryptWithAd(ad, m[4].payload);
      const c6 = r.send.encryptWithAd(ad, m[5].payload);
      // our own ends always agree
      assert.deepEqual(r.receive.decryptWithAd(ad, c5), m[4].payload);
      assert.deepEqual(i.receive.decryptWithAd(ad, c6), m[5].payload);
      if (aeadNameFor(v.protocol_name) === "chacha20-poly1305") {
        // Noise ChaChaPoly nonce is 0^4 ‖ LE64(n): identical to WireGuard's layout.
        assert.equal(toHex(c5), m[4].ciphertext);
        assert.equal(toHex(c6), m[5].ciphertext);
      } else {
        // aes0 keeps WireGuard's LE nonce; the Noise spec's AESGCM uses BE, so counter 1 differs...
        assert.notEqual(toHex(c5), m[4].ciphertext);
        assert.notEqual(toHex(c6), m[5].ciphertext);
        // ...and a big-endian nonce with the same keys reproduces the vector exactly.
        assert.equal(toHex(sealNoiseSpecAesGcm(i.send.key, 1, m[4].payload)), m[4].ciphertext);
        assert.equal(toHex(sealNoiseSpecAesGcm(r.send.key, 1, m[5].payload)), m[5].ciphertext);
      }
    });

    await t.step(`${v.protocol_name}: a tampered message 1 or 2 is rejected`, () => {
      const { m } = runVector(v);
      const aead = getAead(aeadNameFor(v.protocol_name));
      const responder = new IKpsk2Handshake({
        aead,
        protocolName: v.protocol_name,
        initiator: false,
        prologue: hex(v.resp_prologue),
        staticPrivate: hex(v.resp_static),
        psk: hex(v.resp_psks[0]),
        ephemeralPrivate: hex(v.resp_ephemeral),
      });
      const bad = hex(m[0].ciphertext);
      bad[50] ^= 1;
      assert.equal(responder.readMessage(bad), null);
      const wrongPrologue = new IKpsk2Handshake({
        aead,
        protocolName: v.protocol_name,
        initiator: false,
        prologue: new Uint8Array(0),
        staticPrivate: hex(v.resp_static),
        psk: hex(v.resp_psks[0]),
        ephemeralPrivate: hex(v.resp_ephemeral),
      });
      assert.equal(wrongPrologue.readMessage(hex(m[0].ciphertext)), null);
      const initiator = new IKpsk2Handshake({
        aead,
        protocolName: v.protocol_name,
        initiator: true,
        prologue: hex(v.init_prologue),
        staticPrivate: hex(v.init_static),
        remoteStatic: hex(v.init_remote_static),
        psk: hex(v.init_psks[0]),
        ephemeralPrivate: hex(v.init_ephemeral),
      });
      assert.equal(toHex(initiator.writeMessage(m[0].payload)), m[0].ciphertext);
      const bad2 = hex(m[1].ciphertext);
      bad2[bad2.length - 1] ^= 0x80;
      assert.equal(initiator.readMessage(bad2), null);
      assert.equal(initiator.complete, false);
    });
  }
});

Deno.test("suite initial values", async (t) => {
  await t.step("wg suite Ci/Hi match docs/design.md §2.1", () => {
    const s = chachaSuite();
    assert.equal(
      toHex(s.initialChainKey),
      "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36",
    );
    assert.equal(toHex(s.initialHash), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
    assert.equal(s.aead.name, "chacha20-poly1305");
    assert.equal(s.name, "wg");
  });
  await t.step("aes suite Ci matches docs/design.md §2.7 and Hi = HASH(Ci ‖ IDENTIFIER)", () => {
    const s = aesSuite();
    assert.equal(
      toHex(s.initialChainKey),
      "efcbbfa70d80ee23dcf7edf43fb988de6dea88fe25feac3851bb4b2b0d09d3b2",
    );
    const expectedHi = blake2s
      .create({ dkLen: 32 })
      .update(s.initialChainKey)
      .update(new TextEncoder().encode(IDENTIFIER))
      .digest();
    assert.deepEqual(s.initialHash, expectedHi);
    assert.equal(s.aead.name, "aes-256-gcm");
    assert.equal(s.name, "aes");
  });
});

Deno.test("WireGuard messages are the generic IKpsk2 core with prologue IDENTIFIER", async (t) => {
  for (const suite of [chachaSuite(), aesSuite()]) {
    await t.step(`${suite.name}: bytes and keys equal the generic handshake's`, () => {
      const v = vectorFile.vectors[0];
      const iPriv = hex(v.init_static);
      const rPriv = hex(v.resp_static);
      const local = { privateKey: iPriv, publicKey: publicKey(iPriv) };
      const remote = { privateKey: rPriv, publicKey: publicKey(rPriv) };
      const psk = hex(v.init_psks[0]);
      const ts = tai64n(1_700_000_000_123);
      const iEph = hex(v.init_ephemeral);
      const rEph = hex(v.resp_ephemeral);

      const generic = (initiator: boolean) =>
        new IKpsk2Handshake({
          aead: suite.aead,
          protocolName: suite.construction,
          initiator,
          prologue: new TextEncoder().encode(IDENTIFIER),
          staticPrivate: initiator ? iPriv : rPriv,
          remoteStatic: initiator ? remote.publicKey : undefined,
          psk,
          ephemeralPrivate: initiator ? iEph : rEph,
        });
      const gi = generic(true);
      const gr = generic(false);
      const g1 = gi.writeMessage(ts);
      assert.deepEqual(gr.readMessage(g1), ts);
      const g2 = gr.writeMessage(new Uint8Array(0));
      assert.deepEqual(gi.readMessage(g2), new Uint8Array(0));
      const gSplit = gi.split();

      const peerOfInitiator = {
        remoteStatic: remote.publicKey,
        presharedKey: psk,
        staticStatic: precomputeStaticStatic(local, remote.publicKey),
      };
      const peerOfResponder = {
        remoteStatic: local.publicKey,
        presharedKey: psk,
        staticStatic: precomputeStaticStatic(remote, local.publicKey),
      };
      const { message: w1, state } = createInitiation(suite, local, peerOfInitiator, 7, ts, iEph);
      assert.deepEqual(w1.subarray(8, 116), g1);
      const consumed = consumeInitiation(suite, remote, w1, () => peerOfResponder);
      assert.ok(consumed);
      const { message: w2, keys: rKeys } = createResponse(suite, remote, peerOfResponder, consumed, 9, rEph);
      assert.deepEqual(w2.subarray(12, 60), g2);
      const done = consumeResponse(suite, local, state, peerOfInitiator, w2);
      assert.ok(done);
      assert.deepEqual(done.keys.sendKey, gSplit.send.key);
      assert.deepEqual(done.keys.recvKey, gSplit.receive.key);
      assert.deepEqual(rKeys.recvKey, gSplit.send.key);
      // a CipherState over the WireGuard key interoperates with the generic one
      const c = new CipherState(suite.aead, done.keys.sendKey).encryptWithAd(new Uint8Array(0), ts);
      assert.deepEqual(gSplit.send.encryptWithAd(new Uint8Array(0), ts), c);
    });
  }
});
