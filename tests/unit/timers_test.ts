import assert from "node:assert/strict";
import {
  keepKeyFreshReceiving,
  keepKeyFreshSending,
  PeerTimers,
  type TimerAction,
} from "../../src/wireguard/timers.ts";
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  RESPONSE_CONFIRMATION_TIMEOUT,
} from "../../src/wireguard/constants.ts";

/** A jitter source that replays `values` cyclically and records how often it was asked. */
function scriptedJitter(values: number[]) {
  let i = 0;
  const fn = () => values[i++ % values.length];
  return { fn, calls: () => i };
}

function timers(persistentKeepaliveMs = 0, jitter: () => number = () => 0): PeerTimers {
  return new PeerTimers({ persistentKeepaliveMs, jitter });
}

Deno.test("PeerTimers", async (t) => {
  await t.step("nothing is armed initially", () => {
    const p = timers();
    assert.equal(p.nextDeadline(), Infinity);
    assert.deepEqual(p.poll(1e12), []);
    assert.equal(p.handshakeAttempts, 0);
    assert.equal(p.lastHandshakeAt, null);
  });

  await t.step("handshake retransmit after REKEY_TIMEOUT + jitter", () => {
    const j = scriptedJitter([0, 333, 17]);
    const p = timers(0, j.fn);
    p.handshakeInitiated(1000);
    assert.equal(p.nextDeadline(), 1000 + REKEY_TIMEOUT);
    assert.deepEqual(p.poll(1000 + REKEY_TIMEOUT - 1), []);
    assert.deepEqual(p.poll(1000 + REKEY_TIMEOUT), ["send-initiation"]);
    assert.equal(p.handshakeAttempts, 1);
    // Not re-armed until the owner reports the retransmitted initiation.
    assert.equal(p.nextDeadline(), Infinity);
    p.handshakeInitiated(6000);
    assert.equal(p.nextDeadline(), 6000 + REKEY_TIMEOUT + 333);
    assert.deepEqual(p.poll(6000 + REKEY_TIMEOUT + 332), []);
    assert.deepEqual(p.poll(6000 + REKEY_TIMEOUT + 333), ["send-initiation"]);
    assert.equal(p.handshakeAttempts, 2);
    p.handshakeInitiated(20000);
    assert.equal(p.nextDeadline(), 20000 + REKEY_TIMEOUT + 17);
    assert.equal(j.calls(), 3);
  });

  await t.step("default jitter stays within 0..333 ms", () => {
    const p = new PeerTimers({ persistentKeepaliveMs: 0 });
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      p.handshakeInitiated(0);
      const jitter = p.nextDeadline() - REKEY_TIMEOUT;
      assert.ok(
        Number.isInteger(jitter) && jitter >= 0 && jitter < REKEY_TIMEOUT_JITTER_MAX,
        `jitter ${jitter}`,
      );
      seen.add(jitter);
    }
    assert.ok(seen.size > 100, "jitter actually varies");
  });

  await t.step("gives up after MAX_TIMER_HANDSHAKES + 2 initiations, then stays quiet", () => {
    const p = timers();
    let now = 0;
    let initiations = 1; // the first one, sent by the owner
    p.handshakeInitiated(now);
    let actions: TimerAction[] = [];
    for (;;) {
      now = p.nextDeadline();
      actions = p.poll(now);
      if (!actions.includes("send-initiation")) break;
      initiations++;
      p.handshakeInitiated(now);
    }
    assert.deepEqual(actions, ["handshake-gave-up"]);
    assert.equal(initiations, MAX_TIMER_HANDSHAKES + 2);
    assert.equal(p.handshakeAttempts, MAX_TIMER_HANDSHAKES + 1);
    assert.equal(now, (MAX_TIMER_HANDSHAKES + 2) * REKEY_TIMEOUT);
    // Only the zero-key timer is left, armed by the give-up.
    assert.equal(p.nextDeadline(), now + 3 * REJECT_AFTER_TIME);
    assert.deepEqual(p.poll(now + 3 * REJECT_AFTER_TIME), ["zero-keys"]);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("give-up keeps an already pending zero-key deadline and cancels the keepalive", () => {
    const p = timers();
    p.sessionDerived(0);
    p.handshakeAttempts = MAX_TIMER_HANDSHAKES + 1;
    p.handshakeInitiated(100_000);
    p.dataReceived(100_000);
    assert.deepEqual(p.poll(100_000 + REKEY_TIMEOUT), ["handshake-gave-up"]);
    assert.equal(p.nextDeadline(), 3 * REJECT_AFTER_TIME, "zero-key deadline unchanged");
  });

  await t.step("retries resume only after a fresh handshake request", () => {
    const p = timers();
    p.handshakeAttempts = MAX_TIMER_HANDSHAKES + 1;
    p.handshakeInitiated(0);
    assert.deepEqual(p.poll(REKEY_TIMEOUT), ["handshake-gave-up"]);
    // A retransmission without a fresh request gives up again at once.
    p.handshakeInitiated(10_000);
    assert.deepEqual(p.poll(10_000 + REKEY_TIMEOUT), ["handshake-gave-up"]);
    // New data: the owner requests a fresh handshake.
    p.handshakeRequested();
    assert.equal(p.handshakeAttempts, 0);
    p.handshakeInitiated(20_000);
    assert.deepEqual(p.poll(20_000 + REKEY_TIMEOUT), ["send-initiation"]);
    assert.equal(p.handshakeAttempts, 1);
  });

  await t.step("handshakeComplete cancels the retransmit and resets state", () => {
    const p = timers();
    p.handshakeInitiated(0);
    p.poll(REKEY_TIMEOUT);
    p.handshakeInitiated(REKEY_TIMEOUT);
    p.sentLastMinuteHandshake = true;
    p.handshakeComplete(7000);
    assert.equal(p.handshakeAttempts, 0);
    assert.equal(p.sentLastMinuteHandshake, false);
    assert.equal(p.lastHandshakeAt, 7000);
    assert.equal(p.nextDeadline(), Infinity);
    assert.deepEqual(p.poll(1e9), []);
  });

  await t.step("response confirmation: unconfirmed after the timeout, or when superseded", () => {
    const p = timers();
    assert.equal(p.responseSent(1000), false, "nothing was waiting");
    assert.equal(p.nextDeadline(), 1000 + RESPONSE_CONFIRMATION_TIMEOUT);
    assert.deepEqual(p.poll(1000 + RESPONSE_CONFIRMATION_TIMEOUT - 1), []);
    assert.deepEqual(p.poll(1000 + RESPONSE_CONFIRMATION_TIMEOUT), ["response-unconfirmed"]);
    assert.deepEqual(p.poll(1e9), [], "reported once");
    // A new initiation before the timeout: the waiting response is unconfirmed now, reported once.
    assert.equal(p.responseSent(20_000), false);
    assert.equal(p.responseSent(20_100), true, "superseded");
    assert.deepEqual(p.poll(20_100 + RESPONSE_CONFIRMATION_TIMEOUT), ["response-unconfirmed"], "the new one");
    // Confirmation (or any completed handshake) settles it.
    p.responseSent(40_000);
    p.handshakeComplete(40_050);
    assert.deepEqual(p.poll(1e9), []);
    assert.equal(p.responseSent(50_000), false, "a confirmed response is not superseded");
    // Keys dropped: nothing can confirm it any more, and nothing is reported.
    p.responseAbandoned();
    assert.equal(p.nextDeadline(), Infinity);
    assert.equal(p.responseSent(60_000), false);
    p.stop();
    assert.deepEqual(p.poll(1e9), []);
  });

  await t.step("new handshake when data was sent and nothing came back in 15 s + jitter", () => {
    const p = timers(0, () => 250);
    p.handshakeAttempts = 4;
    p.dataSent(1000);
    const due = 1000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 250;
    assert.equal(p.nextDeadline(), due);
    p.dataSent(9000); // already pending: deadline not pushed back
    assert.equal(p.nextDeadline(), due);
    assert.deepEqual(p.poll(due - 1), []);
    assert.deepEqual(p.poll(due), ["send-initiation"]);
    assert.equal(p.handshakeAttempts, 0, "a fresh handshake, not a retry");
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("any authenticated packet received cancels the new-handshake timer", () => {
    const p = timers();
    p.dataSent(0);
    p.anyAuthenticatedPacketReceived(14_000);
    assert.equal(p.nextDeadline(), Infinity);
    assert.deepEqual(p.poll(60_000), []);
    // Sending more data afterwards arms it again from that moment.
    p.dataSent(60_000);
    assert.equal(p.nextDeadline(), 60_000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
  });

  await t.step("keepalive when data was received and nothing sent for 10 s", () => {
    const p = timers();
    p.dataReceived(500);
    assert.equal(p.nextDeadline(), 500 + KEEPALIVE_TIMEOUT);
    assert.deepEqual(p.poll(500 + KEEPALIVE_TIMEOUT - 1), []);
    assert.deepEqual(p.poll(500 + KEEPALIVE_TIMEOUT), ["send-keepalive"]);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("any authenticated packet sent cancels the pending keepalive", () => {
    const p = timers();
    p.dataReceived(0);
    p.anyAuthenticatedPacketSent(3000);
    assert.deepEqual(p.poll(KEEPALIVE_TIMEOUT), []);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("data received while a keepalive is pending asks for another one", () => {
    const p = timers();
    p.dataReceived(0);
    p.dataReceived(4000); // does not move the deadline, sets need-another
    assert.equal(p.nextDeadline(), KEEPALIVE_TIMEOUT);
    assert.deepEqual(p.poll(KEEPALIVE_TIMEOUT), ["send-keepalive"]);
    assert.equal(p.nextDeadline(), 2 * KEEPALIVE_TIMEOUT, "re-armed once");
    assert.deepEqual(p.poll(2 * KEEPALIVE_TIMEOUT), ["send-keepalive"]);
    assert.equal(p.nextDeadline(), Infinity, "not re-armed without new data");
    // As in wireguard-go, sending the keepalive itself cancels the re-armed timer.
    p.dataReceived(100_000);
    p.dataReceived(100_001);
    assert.deepEqual(p.poll(100_000 + KEEPALIVE_TIMEOUT), ["send-keepalive"]);
    p.anyAuthenticatedPacketSent(100_000 + KEEPALIVE_TIMEOUT);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("persistent keepalive every N ms of no authenticated traffic", () => {
    const p = timers(25_000);
    assert.equal(p.nextDeadline(), Infinity, "not before start");
    p.start(0);
    assert.deepEqual(p.poll(0), ["send-keepalive"], "immediate keepalive on start");
    p.anyAuthenticatedPacketSent(10);
    assert.equal(p.nextDeadline(), 25_010);
    p.anyAuthenticatedPacketReceived(20_000); // received packets also push it back
    assert.deepEqual(p.poll(25_010), []);
    assert.deepEqual(p.poll(45_000), ["send-keepalive"]);
    assert.equal(p.nextDeadline(), Infinity, "re-armed only by the keepalive actually sent");
    p.anyAuthenticatedPacketSent(45_001);
    assert.equal(p.nextDeadline(), 70_001);
  });

  await t.step("setPersistentKeepalive: on -> immediate, off -> disarmed, change -> next re-arm", () => {
    const p = timers(0);
    p.anyAuthenticatedPacketSent(0);
    assert.equal(p.nextDeadline(), Infinity, "off: traversal arms nothing");
    p.setPersistentKeepalive(25_000, 1000);
    assert.equal(p.persistentKeepaliveMs, 25_000);
    assert.deepEqual(p.poll(1000), ["send-keepalive"]);
    p.anyAuthenticatedPacketSent(1000);
    assert.equal(p.nextDeadline(), 26_000);
    p.setPersistentKeepalive(5_000, 2000);
    assert.equal(p.nextDeadline(), 26_000, "pending deadline kept");
    p.anyAuthenticatedPacketSent(3000);
    assert.equal(p.nextDeadline(), 8000);
    p.setPersistentKeepalive(0, 4000);
    assert.equal(p.nextDeadline(), Infinity);
    assert.deepEqual(p.poll(1e9), []);
    assert.throws(() => p.setPersistentKeepalive(-1, 0), /invalid persistent keepalive/);
    assert.throws(() => new PeerTimers({ persistentKeepaliveMs: NaN }), /invalid persistent keepalive/);
  });

  await t.step("zero key material 3 x REJECT_AFTER_TIME after the last session", () => {
    const p = timers();
    p.sessionDerived(0);
    assert.equal(p.nextDeadline(), 540_000);
    p.sessionDerived(100_000); // a newer session pushes it back
    assert.deepEqual(p.poll(639_999), []);
    assert.deepEqual(p.poll(640_000), ["zero-keys"]);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("a late poll fires every due timer once, each action at most once", () => {
    const p = timers(1000);
    p.anyAuthenticatedPacketSent(0); // persistent keepalive at 1000
    p.dataReceived(0); // keepalive at 10 000
    p.dataSent(0); // new handshake at 15 000
    p.sessionDerived(0); // zero keys at 540 000
    const actions = p.poll(600_000);
    assert.deepEqual([...actions].sort(), ["send-initiation", "send-keepalive", "zero-keys"]);
    assert.equal(p.nextDeadline(), Infinity);
  });

  await t.step("nextDeadline is the earliest armed timer", () => {
    const p = timers(30_000);
    p.sessionDerived(0);
    p.dataSent(0);
    p.anyAuthenticatedPacketSent(0);
    p.dataReceived(1000);
    assert.equal(p.nextDeadline(), 11_000);
    p.handshakeInitiated(2000);
    assert.equal(p.nextDeadline(), 7000);
  });

  await t.step("stop disarms everything", () => {
    const p = timers(25_000);
    p.start(0);
    p.sessionDerived(0);
    p.dataSent(0);
    p.dataReceived(0);
    p.handshakeInitiated(0);
    p.stop();
    assert.equal(p.nextDeadline(), Infinity);
    assert.deepEqual(p.poll(1e9), []);
  });
});

Deno.test("keepKeyFresh rules", async (t) => {
  await t.step("sending: initiator rekeys after REKEY_AFTER_TIME, responder does not", () => {
    assert.equal(keepKeyFreshSending(true, 1000, 5, 1000 + 120_000), false);
    assert.equal(keepKeyFreshSending(true, 1000, 5, 1000 + 120_001), true);
    assert.equal(keepKeyFreshSending(false, 1000, 5, 1000 + 179_999), false);
  });

  await t.step("sending: either side rekeys after REKEY_AFTER_MESSAGES", () => {
    assert.equal(keepKeyFreshSending(false, 0, REKEY_AFTER_MESSAGES, 1), false);
    assert.equal(keepKeyFreshSending(false, 0, REKEY_AFTER_MESSAGES * 2, 1), true);
    assert.equal(keepKeyFreshSending(true, 0, REKEY_AFTER_MESSAGES * 2, 1), true);
  });

  await t.step("receiving: only the initiator, after 165 s", () => {
    assert.equal(keepKeyFreshReceiving(true, 0, 165_000), false);
    assert.equal(keepKeyFreshReceiving(true, 0, 165_001), true);
    assert.equal(keepKeyFreshReceiving(false, 0, 179_000), false);
  });
});
