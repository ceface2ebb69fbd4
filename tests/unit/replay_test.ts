import assert from "node:assert/strict";
import { ReplayFilter } from "../../src/wireguard/replay.ts";
import { COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES } from "../../src/wireguard/constants.ts";

/** Feeds counters to a filter and reports the first mismatch with its sequence number. */
function checker(filter: ReplayFilter, limit: number) {
  let n = 0;
  return (counter: number, expected: boolean) => {
    n++;
    const got = filter.validateCounter(counter, limit);
    assert.equal(got, expected, `check ${n}: counter ${counter} expected ${expected}`);
  };
}

const W = COUNTER_WINDOW_SIZE;
const LIM = W + 1;

Deno.test("ReplayFilter", async (t) => {
  await t.step("window is 8128 counters (128 blocks x 64 bits)", () => {
    assert.equal(W, 8128);
  });

  // Kernel selftest (drivers/net/wireguard/selftest/counter.c), checks 1-34, in one filter.
  // The kernel's REJECT_AFTER_MESSAGES (2^64 - 2^13 - 1) is not a JS number; twofold's limit is 2^53 - 1.
  const f = new ReplayFilter();
  const T = checker(f, REJECT_AFTER_MESSAGES);

  await t.step("selftest 1-7: first counters, duplicates, out of order", () => {
    T(0, true);
    T(1, true);
    T(1, false);
    T(9, true);
    T(8, true);
    T(7, true);
    T(7, false);
  });

  await t.step("selftest 8-24: window-bound", () => {
    T(LIM, true);
    T(LIM - 1, true);
    T(LIM - 1, false);
    T(LIM - 2, true);
    T(2, true);
    T(2, false);
    T(LIM + 16, true);
    T(3, false);
    T(LIM + 16, false);
    T(LIM * 4, true);
    T(LIM * 4 - (LIM - 1), true);
    T(10, false);
    T(LIM * 4 - LIM, false);
    T(LIM * 4 - (LIM + 1), false);
    T(LIM * 4 - (LIM - 2), true);
    T(LIM * 4 + 1 - LIM, false);
    T(0, false);
  });

  await t.step("selftest 25-34: reject-after-messages limit", () => {
    const R = REJECT_AFTER_MESSAGES;
    T(R, false);
    T(R - 1, true);
    T(R, false);
    T(R - 1, false);
    T(R - 2, true);
    T(R + 1, false);
    T(R + 2, false);
    T(R - 2, false);
    T(R - 3, true);
    T(0, false);
  });

  await t.step("bulk 1: 1..W ascending, then 0 once", () => {
    f.reset();
    const B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = 1; i <= W; i++) B(i, true);
    B(0, true);
    B(0, false);
  });

  await t.step("bulk 2: 2..W+1 ascending, then 1 accepted and 0 outside the window", () => {
    f.reset();
    const B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = 2; i <= W + 1; i++) B(i, true);
    B(1, true);
    B(0, false);
  });

  await t.step("bulk 3: W..0 descending (kernel) and W+1..1 (wireguard-go)", () => {
    f.reset();
    let B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = W; i >= 0; i--) B(i, true);
    f.reset();
    B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = W + 1; i >= 1; i--) B(i, true);
  });

  await t.step("bulk 4: W+1..1 descending, then 0 outside the window", () => {
    f.reset();
    const B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = W + 1; i >= 1; i--) B(i, true);
    B(0, false);
  });

  await t.step("bulk 5: W..1 descending, W+1, then 0 outside the window", () => {
    f.reset();
    const B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = W; i >= 1; i--) B(i, true);
    B(W + 1, true);
    B(0, false);
  });

  await t.step("bulk 6: W..1 descending, 0 while still in window, then W+1", () => {
    f.reset();
    const B = checker(f, REJECT_AFTER_MESSAGES);
    for (let i = W; i >= 1; i--) B(i, true);
    B(0, true);
    B(W + 1, true);
  });

  await t.step("caller's limit is enforced", () => {
    const g = new ReplayFilter();
    assert.equal(g.validateCounter(99, 100), true);
    assert.equal(g.validateCounter(100, 100), false);
    assert.equal(g.validateCounter(5, 0), false);
  });

  await t.step("invalid counters are rejected without touching state", () => {
    const g = new ReplayFilter();
    assert.equal(g.validateCounter(-1, REJECT_AFTER_MESSAGES), false);
    assert.equal(g.validateCounter(NaN, REJECT_AFTER_MESSAGES), false);
    assert.equal(g.validateCounter(2 ** 53, Infinity), false);
    assert.equal(g.validateCounter(0, REJECT_AFTER_MESSAGES), true);
  });

  await t.step("large jump clears the whole bitmap; counters near 2^52 use exact block arithmetic", () => {
    const g = new ReplayFilter();
    const base = 2 ** 52 + 12345;
    for (let i = 0; i < 200; i++) assert.equal(g.validateCounter(i * 37, REJECT_AFTER_MESSAGES), true);
    assert.equal(g.validateCounter(base, REJECT_AFTER_MESSAGES), true);
    // Everything in the window below `base` is fresh, despite stale bits from the small counters.
    for (let i = 1; i <= W; i += 97) assert.equal(g.validateCounter(base - i, REJECT_AFTER_MESSAGES), true);
    for (let i = 1; i <= W; i += 97) assert.equal(g.validateCounter(base - i, REJECT_AFTER_MESSAGES), false);
    assert.equal(g.validateCounter(base - W - 1, REJECT_AFTER_MESSAGES), false);
    assert.equal(g.validateCounter(base + 64, REJECT_AFTER_MESSAGES), true);
  });

  await t.step("randomized against a Set-based reference model", () => {
    let seed = 0x12345678;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 4294967296;
    };
    const g = new ReplayFilter();
    const seen = new Set<number>();
    let highest = 0;
    for (let i = 0; i < 50_000; i++) {
      // Mostly near the top, sometimes far behind, sometimes far ahead.
      const r = rand();
      let c = r < 0.9 ? highest - 9000 + Math.floor(rand() * 9100) : highest + Math.floor(rand() * 20000);
      if (c < 0) c = 0;
      const expected = !seen.has(c) && !(c < highest && highest - c > W);
      assert.equal(g.validateCounter(c, REJECT_AFTER_MESSAGES), expected, `step ${i}: counter ${c}`);
      if (expected) {
        seen.add(c);
        if (c > highest) highest = c;
      }
    }
  });
});
