import assert from "node:assert/strict";
import { HANDSHAKE_QUEUE_SIZE, HandshakeAdmission, UNDER_LOAD_QUEUE } from "../../src/wireguard/admission.ts";
import { CookieGenerator } from "../../src/wireguard/cookie.ts";
import { createInitiation } from "../../src/wireguard/noise-protocol.ts";
import { chachaSuite } from "../../src/noise/suite.ts";
import { dh, generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { tai64n } from "../../src/wireguard/tai64n.ts";
import { RATE_LIMIT_BURST } from "../../src/wireguard/ratelimiter.ts";

function setup() {
  let now = 1_000_000;
  const clock = () => now;
  const responder = generatePrivateKey();
  const initiator = generatePrivateKey();
  const rPub = publicKey(responder);
  const admission = new HandshakeAdmission(rPub, clock);
  const cookies = new CookieGenerator(rPub, clock);
  const identity = { privateKey: initiator, publicKey: publicKey(initiator) };
  const peer = { remoteStatic: rPub, presharedKey: new Uint8Array(32), staticStatic: dh(initiator, rPub) };
  const initiation = () => {
    const { message } = createInitiation(chachaSuite(), identity, peer, 7, tai64n(now));
    cookies.addMacs(message);
    return message;
  };
  return { admission, cookies, initiation, advance: (ms: number) => now += ms };
}

const SRC = Uint8Array.of(10, 0, 0, 1, 0xca, 0x6c);

Deno.test("handshake admission: mac1 always, cookies, rate limits and queue room under load", async (t) => {
  await t.step("not under load: a valid mac1 is processed, a bad one dropped", () => {
    const { admission, initiation } = setup();
    assert.equal(admission.admit(initiation(), SRC, 0).verdict, "queue");
    const bad = initiation();
    bad[20] ^= 1; // body changed after mac1 was computed
    assert.deepEqual(admission.admit(bad, SRC, 0), { verdict: "drop", reason: "invalid-mac1" });
  });

  await t.step(
    "under load: no mac2 → cookie reply; the initiator's retry with the cookie is processed",
    () => {
      const { admission, cookies, initiation } = setup();
      const first = admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE);
      assert.equal(first.verdict, "cookie");
      if (first.verdict !== "cookie") return;
      assert.equal(first.reply.length, 64);
      assert.equal(first.reply[0], 3);
      assert.ok(cookies.consumeReply(first.reply), "initiator accepts the cookie reply");
      const retry = initiation(); // now carries mac2
      assert.equal(admission.admit(retry, SRC, UNDER_LOAD_QUEUE).verdict, "queue");
      // The cookie is bound to the source address: another source still gets a cookie reply.
      const other = Uint8Array.of(10, 0, 0, 2, 0xca, 0x6c);
      assert.equal(admission.admit(initiation(), other, UNDER_LOAD_QUEUE).verdict, "cookie");
    },
  );

  await t.step("under load persists for 1 s after the queue drains", () => {
    const { admission, advance } = setup();
    assert.equal(admission.underLoad(UNDER_LOAD_QUEUE), true);
    advance(500);
    assert.equal(admission.underLoad(0), true);
    advance(600);
    assert.equal(admission.underLoad(0), false);
  });

  await t.step("under load with valid cookies: per-source burst, then refused, then refilled", () => {
    const { admission, cookies, initiation, advance } = setup();
    const first = admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE);
    assert.equal(first.verdict, "cookie");
    if (first.verdict === "cookie") cookies.consumeReply(first.reply);
    const verdicts = [];
    for (let i = 0; i < RATE_LIMIT_BURST + 3; i++) {
      verdicts.push(admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE).verdict);
    }
    assert.equal(verdicts.filter((v) => v === "queue").length, RATE_LIMIT_BURST);
    assert.equal(verdicts.at(-1), "drop");
    advance(200); // 20 packets/s → 4 tokens back after 200 ms
    assert.equal(admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE).verdict, "queue");
  });

  await t.step("the same IP on another port shares the rate limit; another IP has its own", () => {
    const { admission, cookies, initiation } = setup();
    const otherPort = Uint8Array.of(10, 0, 0, 1, 0x13, 0x88);
    const otherIp = Uint8Array.of(10, 0, 0, 9, 0xca, 0x6c);
    const cookieFor = (src: Uint8Array) => {
      const r = admission.admit(initiation(), src, UNDER_LOAD_QUEUE);
      assert.equal(r.verdict, "cookie");
      if (r.verdict === "cookie") assert.ok(cookies.consumeReply(r.reply));
    };
    cookieFor(SRC);
    for (let i = 0; i < RATE_LIMIT_BURST; i++) {
      assert.equal(admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE).verdict, "queue");
    }
    cookieFor(otherPort); // the cookie is bound to IP and port …
    assert.deepEqual(admission.admit(initiation(), otherPort, UNDER_LOAD_QUEUE), {
      verdict: "drop",
      reason: "rate-limited", // … the rate limit to the IP only
    });
    cookieFor(otherIp);
    assert.equal(admission.admit(initiation(), otherIp, UNDER_LOAD_QUEUE).verdict, "queue");
  });

  await t.step("the room above the under-load mark is kept for messages with a valid mac2", () => {
    const { admission, cookies, initiation } = setup();
    // Below the mark (and not under load) anything with a valid mac1 is queued.
    assert.equal(admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE - 1).verdict, "queue");
    // From the mark on, a message without mac2 is answered, never queued, however much room is left.
    const r = admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE);
    assert.equal(r.verdict, "cookie");
    if (r.verdict === "cookie") cookies.consumeReply(r.reply);
    assert.equal(admission.admit(initiation(), SRC, UNDER_LOAD_QUEUE + 1).verdict, "queue");
    assert.equal(admission.admit(initiation(), SRC, HANDSHAKE_QUEUE_SIZE - 1).verdict, "queue");
    // A full queue drops even a message with a valid cookie (the queue is bounded).
    assert.deepEqual(admission.admit(initiation(), SRC, HANDSHAKE_QUEUE_SIZE), {
      verdict: "drop",
      reason: "queue-full",
    });
  });

  await t.step("a flood of 20 000 garbage messages under load never throws and never admits", () => {
    const { admission } = setup();
    for (let i = 0; i < 20_000; i++) {
      const msg = crypto.getRandomValues(new Uint8Array(i % 2 ? 148 : 92));
      msg[0] = i % 2 ? 1 : 2;
      msg[1] = msg[2] = msg[3] = 0;
      assert.equal(admission.admit(msg, SRC, UNDER_LOAD_QUEUE).verdict, "drop");
    }
  });
});
