/**
 * InitHello admission (pure, simulated time): a flooding source throttles itself to its rate; a flood
 * from many unknown sources is capped at the unknown budget and never takes the known peers' reserved
 * budget; the source table stays bounded and forgets idle sources.
 */
import assert from "node:assert/strict";
import { InitHelloAdmission } from "../../src/rosenpass/admission.ts";

Deno.test("admission: one flooding source gets its burst, then its sustained rate", () => {
  const adm = new InitHelloAdmission({ perSourcePerSecond: 2, perSourceBurst: 4, unknownPerSecond: 100 });
  let admitted = 0;
  for (let i = 0; i < 10_000; i++) if (adm.admit(i / 1000, "203.0.113.9:1", false) === "admitted") admitted++;
  // 10 s at 1000 msg/s: burst 4 + 2/s × 10 s
  assert.ok(admitted >= 23 && admitted <= 25, `admitted ${admitted}`);
});

Deno.test("admission: a flood from many unknown sources never takes the known peers' budget", () => {
  const adm = new InitHelloAdmission({ unknownPerSecond: 2, knownPerSecond: 4 });
  let flood = 0;
  let known = 0;
  let knownRefused = 0;
  for (let ms = 0; ms < 30_000; ms++) {
    const now = ms / 1000;
    // 1000 InitHellos per second, each from a fresh spoofed source
    if (adm.admit(now, `198.51.100.${ms % 250}:${ms}`, false) === "admitted") flood++;
    // a real peer retransmitting every 500 ms
    if (ms % 500 === 0) {
      if (adm.admit(now, "192.0.2.1:51821", true) === "admitted") known++;
      else knownRefused++;
    }
  }
  assert.ok(flood <= 2 * 30 + 2, `unknown sources capped at 2/s (got ${flood} in 30 s)`);
  assert.equal(knownRefused, 0, "the known peer is never refused");
  assert.equal(known, 60);
  assert.ok(adm.trackedSources <= 4096, "bounded source table");
});

Deno.test("admission: a full source table refuses new sources until idle ones can be forgotten", () => {
  const adm = new InitHelloAdmission({ maxSources: 3, unknownPerSecond: 100 });
  for (const s of ["a", "b", "c"]) assert.equal(adm.admit(0, s, false), "admitted");
  assert.equal(adm.admit(0.1, "d", false), "over-capacity");
  assert.equal(adm.admit(0.1, "peer", true), "admitted", "a known endpoint is tracked even then");
  assert.equal(adm.trackedSources, 4);
  assert.equal(
    adm.admit(5, "d", false),
    "admitted",
    "after their buckets refilled the old sources are forgotten",
  );
  assert.equal(adm.trackedSources, 1);
});

Deno.test("admission: a known endpoint falls back to the unknown pool when its reserve is spent", () => {
  const adm = new InitHelloAdmission({
    knownPerSecond: 1,
    unknownPerSecond: 1,
    perSourceBurst: 10,
    perSourcePerSecond: 10,
  });
  assert.equal(adm.admit(0, "k", true), "admitted");
  assert.equal(adm.admit(0, "k", true), "admitted", "from the unknown pool");
  assert.equal(adm.admit(0, "k", true), "over-capacity");
  assert.equal(adm.admit(1, "k", true), "admitted");
});
