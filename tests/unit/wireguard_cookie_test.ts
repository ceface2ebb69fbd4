/** mac1 / mac2 / cookie replies with a fake clock. */
import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { CookieChecker, CookieGenerator } from "../../src/wireguard/cookie.ts";
import { MessageCookieReplySize, messageType, readU32LE } from "../../src/wireguard/messages.ts";

function fakeClock(start = 1_000_000) {
  const c = { now: start, read: () => c.now };
  return c;
}

function initiationLike(): Uint8Array {
  const msg = crypto.getRandomValues(new Uint8Array(148));
  msg[0] = 1;
  msg[1] = msg[2] = msg[3] = 0;
  msg.fill(0, 116);
  return msg;
}

const SRC_A = new Uint8Array([192, 0, 2, 1, 0xca, 0x6c]);
const SRC_B = new Uint8Array([192, 0, 2, 2, 0xca, 0x6c]);

function setup() {
  const clock = fakeClock();
  const responderPub = publicKey(generatePrivateKey());
  const checker = new CookieChecker(responderPub, clock.read);
  const generator = new CookieGenerator(responderPub, clock.read);
  return { clock, responderPub, checker, generator };
}

Deno.test("cookie mechanism", async (t) => {
  await t.step("mac1: valid after addMacs, invalid when tampered or for another receiver", () => {
    const { checker, generator, clock } = setup();
    const msg = initiationLike();
    assert.equal(checker.checkMac1(msg), false, "zero mac1 is invalid");
    generator.addMacs(msg);
    assert.equal(checker.checkMac1(msg), true);
    assert.deepEqual(msg.subarray(132), new Uint8Array(16), "no cookie yet: mac2 stays zero");
    const flipped = msg.slice();
    flipped[20] ^= 4;
    assert.equal(checker.checkMac1(flipped), false);
    const badMac = msg.slice();
    badMac[120] ^= 1;
    assert.equal(checker.checkMac1(badMac), false);
    const other = new CookieChecker(publicKey(generatePrivateKey()), clock.read);
    assert.equal(other.checkMac1(msg), false);
    assert.equal(checker.checkMac1(new Uint8Array(10)), false);
  });

  await t.step("reply round trip, then mac2 valid for that source only", () => {
    const { checker, generator } = setup();
    const msg = initiationLike();
    generator.addMacs(msg);
    assert.equal(checker.checkMac2(msg, SRC_A), false, "no secret yet");
    const reply = checker.createReply(msg, 0x01020304, SRC_A);
    assert.equal(reply.length, MessageCookieReplySize);
    assert.equal(messageType(reply, reply.length), 3);
    assert.equal(readU32LE(reply, 4), 0x01020304);
    assert.equal(generator.consumeReply(reply), true);
    const next = initiationLike();
    generator.addMacs(next);
    assert.equal(checker.checkMac1(next), true);
    assert.equal(checker.checkMac2(next, SRC_A), true);
    assert.equal(checker.checkMac2(next, SRC_B), false);
    const tampered = next.slice();
    tampered[140] ^= 1;
    assert.equal(checker.checkMac2(tampered, SRC_A), false);
  });

  await t.step("reply is bound to the last mac1 sent and to the receiver's key", () => {
    const { checker, generator, responderPub, clock } = setup();
    const fresh = new CookieGenerator(responderPub, clock.read);
    const msg = initiationLike();
    generator.addMacs(msg);
    const reply = checker.createReply(msg, 1, SRC_A);
    assert.equal(fresh.consumeReply(reply), false, "no mac1 sent yet");
    generator.addMacs(initiationLike());
    assert.equal(generator.consumeReply(reply), false, "reply to an older message");
    const wrongKey = new CookieGenerator(publicKey(generatePrivateKey()), clock.read);
    wrongKey.addMacs(msg);
    const msg2 = initiationLike();
    generator.addMacs(msg2);
    const reply2 = checker.createReply(msg2, 1, SRC_A);
    const bad = reply2.slice();
    bad[40] ^= 1;
    assert.equal(generator.consumeReply(bad), false);
    assert.equal(generator.consumeReply(reply2), true);
  });

  await t.step("received cookie expires after 120 s", () => {
    const { checker, generator, clock } = setup();
    const msg = initiationLike();
    generator.addMacs(msg);
    assert.ok(generator.consumeReply(checker.createReply(msg, 1, SRC_A)));
    clock.now += 119_000;
    const stillFresh = initiationLike();
    generator.addMacs(stillFresh);
    assert.notDeepEqual(stillFresh.subarray(132), new Uint8Array(16));
    assert.equal(checker.checkMac2(stillFresh, SRC_A), true);
    clock.now += 2_000;
    const stale = initiationLike();
    generator.addMacs(stale);
    assert.deepEqual(stale.subarray(132), new Uint8Array(16), "expired cookie: mac2 zero");
    assert.equal(checker.checkMac1(stale), true);
    assert.equal(checker.checkMac2(stale, SRC_A), false);
  });

  await t.step("the checker's secret rotates after 120 s and old cookies stop working", () => {
    const { checker, generator, clock } = setup();
    const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
    let draws = 0;
    const counting = new CookieChecker(new Uint8Array(32).fill(9), clock.read, (n) => {
      draws++;
      return random(n);
    });
    const m = initiationLike();
    counting.createReply(m, 1, SRC_A);
    counting.createReply(m, 1, SRC_A);
    assert.equal(draws, 3, "one secret and two nonces within the refresh window");
    clock.now += 120_001;
    counting.createReply(m, 1, SRC_A);
    assert.equal(draws, 5, "a new secret after 120 s");

    const msg = initiationLike();
    generator.addMacs(msg);
    assert.ok(generator.consumeReply(checker.createReply(msg, 1, SRC_A)));
    clock.now += 100_000;
    const withOldCookie = initiationLike();
    generator.addMacs(withOldCookie);
    assert.equal(checker.checkMac2(withOldCookie, SRC_A), true);
    clock.now += 30_000; // secret now 130 s old: mac2 checks fail until it is replaced
    assert.equal(checker.checkMac2(withOldCookie, SRC_A), false);
    const again = initiationLike();
    generator.addMacs(again); // the local cookie is stale too: mac2 zero, mac1 valid
    const reply = checker.createReply(again, 1, SRC_A); // rotates the secret
    assert.equal(checker.checkMac2(withOldCookie, SRC_A), false, "old cookie invalid under the new secret");
    assert.ok(generator.consumeReply(reply));
    const fresh = initiationLike();
    generator.addMacs(fresh);
    assert.equal(checker.checkMac2(fresh, SRC_A), true);
  });
});
