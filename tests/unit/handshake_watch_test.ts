/** The PSK gate's handshake watch in memory: skew retries, mismatch suspicion on either side, clearing. */
import assert from "node:assert/strict";
import {
  failedResponse,
  newHandshakeWatch,
  sessionConfirmed,
  takeDueRetry,
  unconfirmedResponse,
} from "../../src/keys/handshake-watch.ts";

const POLICY = { mismatchThreshold: 2, skewWindowMs: 1_000, skewRetryMs: 100 };

Deno.test("a failure inside the skew window schedules a retry, doubling while failures go on", () => {
  const w = newHandshakeWatch();
  const installedAt = 10_000;
  failedResponse(w, installedAt, () => 10_050, POLICY);
  assert.equal(takeDueRetry(w, 10_149), false);
  assert.equal(takeDueRetry(w, 10_150), true);
  assert.equal(takeDueRetry(w, 10_150), false, "a retry is taken once");
  failedResponse(w, installedAt, () => 10_200, POLICY);
  assert.equal(w.retryAt, 10_400);
  failedResponse(w, installedAt, () => 12_000, POLICY);
  assert.equal(w.retryAt, 10_400, "outside the skew window no new retry is scheduled");
});

Deno.test("initiator failures lasting the skew window end the sessions once and make the mismatch suspected", () => {
  const w = newHandshakeWatch();
  const installedAt = 0;
  assert.deepEqual(failedResponse(w, installedAt, () => 5_000, POLICY), {
    endSessions: false,
    newlySuspected: false,
  });
  assert.deepEqual(failedResponse(w, installedAt, () => 5_500, POLICY), {
    endSessions: false,
    newlySuspected: false,
  }, "two failures, but only 500 ms apart");
  assert.deepEqual(failedResponse(w, installedAt, () => 6_000, POLICY), {
    endSessions: true,
    newlySuspected: true,
  });
  assert.deepEqual(failedResponse(w, installedAt, () => 7_000, POLICY), {
    endSessions: false,
    newlySuspected: false,
  });
  assert.equal(w.failures, 4);
});

Deno.test("while the gate is closed failures are only counted", () => {
  const w = newHandshakeWatch();
  let clockRead = false;
  for (let i = 0; i < 5; i++) {
    const verdict = failedResponse(w, null, () => {
      clockRead = true;
      return 0;
    }, POLICY);
    assert.equal(verdict.endSessions, false);
  }
  assert.equal(w.failures, 5);
  assert.equal(clockRead, false);
  assert.equal(w.mismatchSuspected, false);
});

Deno.test("unconfirmed responses make a mismatch suspected once; a confirmed session clears it", () => {
  const w = newHandshakeWatch();
  assert.equal(unconfirmedResponse(w, 0, () => 1_000, POLICY), false);
  assert.equal(unconfirmedResponse(w, 0, () => 2_000, POLICY), true);
  assert.equal(unconfirmedResponse(w, 0, () => 3_000, POLICY), false, "already suspected");
  assert.equal(sessionConfirmed(w), true);
  assert.equal(w.mismatchSuspected, false);
  assert.equal(w.unconfirmed, 0);
  assert.equal(sessionConfirmed(w), false);
});

Deno.test("a suspected mismatch from the responder side still lets initiator failures end the sessions", () => {
  const w = newHandshakeWatch();
  unconfirmedResponse(w, 0, () => 1_000, POLICY);
  unconfirmedResponse(w, 0, () => 2_000, POLICY);
  failedResponse(w, 0, () => 2_000, POLICY);
  assert.deepEqual(failedResponse(w, 0, () => 3_000, POLICY), { endSessions: true, newlySuspected: false });
});
