/** WireGuard handshake round trips for both suites, PSK handling and suite separation. */
import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { aesSuite, chachaSuite, type Suite, suiteForCipher } from "../../src/noise/suite.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type PeerKeys,
  precomputeStaticStatic,
  responseReceiverIndex,
  type StaticIdentity,
} from "../../src/wireguard/noise-protocol.ts";
import { MessageInitiationSize, MessageResponseSize, messageType } from "../../src/wireguard/messages.ts";
import { tai64n } from "../../src/wireguard/tai64n.ts";

function identity(): StaticIdentity {
  const privateKey = generatePrivateKey();
  return { privateKey, publicKey: publicKey(privateKey) };
}

function peerKeys(local: StaticIdentity, remote: StaticIdentity, psk: Uint8Array): PeerKeys {
  return {
    remoteStatic: remote.publicKey,
    presharedKey: psk,
    staticStatic: precomputeStaticStatic(local, remote.publicKey),
  };
}

function randomPsk(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

interface Pair {
  alice: StaticIdentity;
  bob: StaticIdentity;
  aliceSeesBob: PeerKeys;
  bobSeesAlice: PeerKeys;
}

function pair(pskAlice = randomPsk(), pskBob = pskAlice): Pair {
  const alice = identity();
  const bob = identity();
  return {
    alice,
    bob,
    aliceSeesBob: peerKeys(alice, bob, pskAlice),
    bobSeesAlice: peerKeys(bob, alice, pskBob),
  };
}

function transportRoundTrip(suite: Suite, sendKey: Uint8Array, recvKey: Uint8Array) {
  const payload = crypto.getRandomValues(new Uint8Array(64));
  const buf = new Uint8Array(payload.length + 16);
  buf.set(payload);
  const sealer = suite.aead.keyed(sendKey);
  const opener = suite.aead.keyed(recvKey);
  sealer.sealInPlace(3, buf, 0, payload.length);
  assert.notDeepEqual(buf.subarray(0, payload.length), payload);
  const tampered = buf.slice();
  tampered[5] ^= 1;
  assert.equal(opener.openInPlace(3, tampered, 0, tampered.length), false);
  assert.equal(opener.openInPlace(4, buf.slice(), 0, buf.length), false, "wrong counter must fail");
  assert.equal(opener.openInPlace(3, buf, 0, buf.length), true);
  assert.deepEqual(buf.subarray(0, payload.length), payload);
  sealer.free();
  opener.free();
}

for (const suite of [chachaSuite(), aesSuite()]) {
  Deno.test(`WireGuard handshake (${suite.name})`, async (t) => {
    await t.step("round trip: both sides derive matching keys and transport works both ways", () => {
      const p = pair();
      const ts = tai64n(Date.now());
      const { message: init, state } = createInitiation(suite, p.alice, p.aliceSeesBob, 0x11223344, ts);
      assert.equal(init.length, MessageInitiationSize);
      assert.equal(messageType(init, init.length), 1);
      assert.deepEqual(init.subarray(116), new Uint8Array(32), "macs are left zero");

      let lookedUp: Uint8Array | null = null;
      const consumed = consumeInitiation(suite, p.bob, init, (rs) => {
        lookedUp = rs;
        return p.bobSeesAlice;
      });
      assert.ok(consumed);
      assert.deepEqual(lookedUp, p.alice.publicKey);
      assert.deepEqual(consumed.remoteStatic, p.alice.publicKey);
      assert.equal(consumed.senderIndex, 0x11223344);
      assert.deepEqual(consumed.timestamp, ts);

      const { message: resp, keys: bobKeys } = createResponse(
        suite,
        p.bob,
        p.bobSeesAlice,
        consumed,
        0xaabbccdd,
      );
      assert.equal(resp.length, MessageResponseSize);
      assert.equal(messageType(resp, resp.length), 2);
      assert.equal(responseReceiverIndex(resp), 0x11223344);
      assert.deepEqual(consumed.chainKey, new Uint8Array(32), "consumed initiation is wiped after use");

      const done = consumeResponse(suite, p.alice, state, p.aliceSeesBob, resp);
      assert.ok(done);
      assert.equal(done.pskUsed, 0);
      const aliceKeys = done.keys;
      assert.deepEqual(aliceKeys.sendKey, bobKeys.recvKey);
      assert.deepEqual(aliceKeys.recvKey, bobKeys.sendKey);
      assert.notDeepEqual(aliceKeys.sendKey, aliceKeys.recvKey);
      assert.equal(aliceKeys.localIndex, 0x11223344);
      assert.equal(aliceKeys.remoteIndex, 0xaabbccdd);
      assert.equal(aliceKeys.isInitiator, true);
      assert.equal(bobKeys.localIndex, 0xaabbccdd);
      assert.equal(bobKeys.remoteIndex, 0x11223344);
      assert.equal(bobKeys.isInitiator, false);
      assert.deepEqual(state.ephemeralPrivate, new Uint8Array(32), "initiator state is wiped on success");

      transportRoundTrip(suite, aliceKeys.sendKey, bobKeys.recvKey);
      transportRoundTrip(suite, bobKeys.sendKey, aliceKeys.recvKey);
    });

    await t.step("two handshakes between the same keys give different session keys", () => {
      const p = pair();
      const run = () => {
        const { message, state } = createInitiation(suite, p.alice, p.aliceSeesBob, 1, tai64n(0));
        const c = consumeInitiation(suite, p.bob, message, () => p.bobSeesAlice)!;
        const r = createResponse(suite, p.bob, p.bobSeesAlice, c, 2);
        return consumeResponse(suite, p.alice, state, p.aliceSeesBob, r.message)!.keys.sendKey;
      };
      assert.notDeepEqual(run(), run());
    });

    await t.step(
      "wrong PSK: initiation still consumed (PSK enters only at the response), response rejected",
      () => {
        const p = pair(randomPsk(), randomPsk());
        const { message, state } = createInitiation(suite, p.alice, p.aliceSeesBob, 5, tai64n(1000));
        const consumed = consumeInitiation(suite, p.bob, message, () => p.bobSeesAlice);
        assert.ok(consumed, "IKpsk2: the first message does not depend on the PSK");
        const { message: resp } = createResponse(suite, p.bob, p.bobSeesAlice, consumed, 6);
        const before = structuredClone(state);
        assert.equal(consumeResponse(suite, p.alice, state, p.aliceSeesBob, resp), null);
        assert.deepEqual(state, before, "failed consume leaves the state untouched");
      },
    );

    await t.step("extraPsks: a response made with the previous PSK is accepted and reported", () => {
      const previous = randomPsk();
      const current = randomPsk();
      const p = pair(current, previous);
      const { message, state } = createInitiation(suite, p.alice, p.aliceSeesBob, 5, tai64n(1000));
      const consumed = consumeInitiation(suite, p.bob, message, () => p.bobSeesAlice)!;
      const { message: resp, keys: bobKeys } = createResponse(suite, p.bob, p.bobSeesAlice, consumed, 6);
      const before = structuredClone(state);
      assert.equal(consumeResponse(suite, p.alice, state, p.aliceSeesBob, resp, [randomPsk()]), null);
      assert.deepEqual(state, before);
      const done = consumeResponse(suite, p.alice, state, p.aliceSeesBob, resp, [randomPsk(), previous]);
      assert.ok(done);
      assert.equal(done.pskUsed, 2);
      assert.deepEqual(done.keys.sendKey, bobKeys.recvKey);
    });

    await t.step("a response for another local index is rejected", () => {
      const p = pair();
      const { message, state } = createInitiation(suite, p.alice, p.aliceSeesBob, 5, tai64n(1000));
      const consumed = consumeInitiation(suite, p.bob, message, () => p.bobSeesAlice)!;
      const { message: resp } = createResponse(suite, p.bob, p.bobSeesAlice, consumed, 6);
      const other = { ...state, localIndex: 99 };
      assert.equal(consumeResponse(suite, p.alice, other, p.aliceSeesBob, resp), null);
    });

    await t.step("unknown peer, wrong responder, low-order peer are rejected", () => {
      const p = pair();
      const { message } = createInitiation(suite, p.alice, p.aliceSeesBob, 5, tai64n(1000));
      assert.equal(consumeInitiation(suite, p.bob, message, () => null), null);
      const carol = identity();
      assert.equal(
        consumeInitiation(suite, carol, message, () => peerKeys(carol, p.alice, randomPsk())),
        null,
      );
      assert.equal(
        consumeInitiation(suite, p.bob, message, () => ({ ...p.bobSeesAlice, staticStatic: null })),
        null,
      );
      assert.equal(
        consumeInitiation(suite, p.bob, message, () => {
          throw new Error("lookup failure");
        }),
        null,
        "a throwing lookup is contained",
      );
      assert.throws(() =>
        createInitiation(suite, p.alice, { ...p.aliceSeesBob, staticStatic: null }, 1, tai64n(0))
      );
    });

    await t.step("injected ephemerals make messages deterministic", () => {
      const p = pair();
      const e = generatePrivateKey();
      const a = createInitiation(suite, p.alice, p.aliceSeesBob, 1, tai64n(5000), e);
      const b = createInitiation(suite, p.alice, p.aliceSeesBob, 1, tai64n(5000), e);
      assert.deepEqual(a.message, b.message);
      assert.notDeepEqual(e, new Uint8Array(32), "the caller's injected key is not wiped");
    });
  });
}

Deno.test("suites are cryptographically separate", async (t) => {
  await t.step("a chacha initiation is rejected by an aes responder and vice versa", () => {
    const p = pair();
    for (const [from, to] of [[chachaSuite(), aesSuite()], [aesSuite(), chachaSuite()]]) {
      const { message } = createInitiation(from, p.alice, p.aliceSeesBob, 1, tai64n(0));
      assert.equal(consumeInitiation(to, p.bob, message, () => p.bobSeesAlice), null);
      assert.ok(consumeInitiation(from, p.bob, message, () => p.bobSeesAlice));
    }
  });
  await t.step("an aes response is rejected by a chacha initiator", () => {
    const p = pair();
    const ts = tai64n(0);
    const e = generatePrivateKey();
    const wg = createInitiation(chachaSuite(), p.alice, p.aliceSeesBob, 1, ts, e);
    const aes = createInitiation(aesSuite(), p.alice, p.aliceSeesBob, 1, ts, e);
    const consumed = consumeInitiation(aesSuite(), p.bob, aes.message, () => p.bobSeesAlice)!;
    const resp = createResponse(aesSuite(), p.bob, p.bobSeesAlice, consumed, 2).message;
    assert.equal(consumeResponse(chachaSuite(), p.alice, wg.state, p.aliceSeesBob, resp), null);
  });
  await t.step("suiteForCipher picks the suite and rejects unknown names", () => {
    assert.equal(suiteForCipher("aes-256-gcm").name, "aes");
    assert.equal(suiteForCipher("chacha20-poly1305").name, "wg");
    assert.throws(() => suiteForCipher("rot13" as "aes-256-gcm"));
  });
});
