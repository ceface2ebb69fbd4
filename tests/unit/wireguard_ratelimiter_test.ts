/** Per-source token bucket: burst, refill and garbage collection with a fake clock. */
import assert from "node:assert/strict";
import { RateLimiter } from "../../src/wireguard/ratelimiter.ts";

function fakeClock() {
  const c = { now: 50_000, read: () => c.now };
  return c;
}

Deno.test("rate limiter", async (t) => {
  await t.step("burst of 5 at one instant, then refused", () => {
    const clock = fakeClock();
    const rl = new RateLimiter(clock.read);
    for (let i = 0; i < 5; i++) assert.equal(rl.allow("10.0.0.1"), true, `packet ${i}`);
    assert.equal(rl.allow("10.0.0.1"), false);
    assert.equal(rl.allow("10.0.0.2"), true, "sources are independent");
  });

  await t.step("refills at 20 packets per second and caps at the burst", () => {
    const clock = fakeClock();
    const rl = new RateLimiter(clock.read);
    for (let i = 0; i < 5; i++) rl.allow("a");
    assert.equal(rl.allow("a"), false);
    clock.now += 49;
    assert.equal(rl.allow("a"), false, "49 ms is less than one token");
    clock.now += 1;
    assert.equal(rl.allow("a"), true, "50 ms = one token");
    assert.equal(rl.allow("a"), false);
    let allowed = 0;
    for (let ms = 0; ms < 1000; ms += 10) {
      clock.now += 10;
      if (rl.allow("a")) allowed++;
    }
    assert.equal(allowed, 20, "sustained 20/s");
    clock.now += 900; // long idle: still only a burst of 5
    let burst = 0;
    while (rl.allow("a")) burst++;
    assert.equal(burst, 5);
  });

  await t.step("idle entries are garbage collected", () => {
    const clock = fakeClock();
    const rl = new RateLimiter(clock.read);
    for (let i = 0; i < 100; i++) rl.allow(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(rl.size, 100);
    clock.now += 500;
    rl.allow("keep");
    rl.gc();
    assert.equal(rl.size, 101, "nothing idle for > 1 s yet");
    clock.now += 600;
    rl.gc();
    assert.equal(rl.size, 1, "only the recently seen source remains");
    clock.now += 2000;
    rl.allow("new"); // triggers the periodic collection
    assert.equal(rl.size, 1);
  });

  await t.step("memory is bounded: a full table refuses new sources until entries go idle", () => {
    const clock = fakeClock();
    const rl = new RateLimiter(clock.read, 10);
    for (let i = 0; i < 10; i++) assert.equal(rl.allow(`s${i}`), true);
    assert.equal(rl.allow("s10"), false);
    assert.equal(rl.size, 10);
    assert.equal(rl.allow("s1"), true, "known sources keep their bucket");
    clock.now += 1001;
    assert.equal(rl.allow("s10"), true);
    assert.equal(rl.size, 1);
  });
});
