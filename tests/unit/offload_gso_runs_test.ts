/** UDP GSO run planning (src/wireguard/offload/gso-runs.ts): the kernel's UDP_SEGMENT rules. */

import assert from "node:assert/strict";
import { planGsoRuns, UDP_GSO_MAX_SEGMENTS } from "../../src/wireguard/offload/gso-runs.ts";

function plan(lens: number[], keys: number[], maxBytes?: number): [number, number][] {
  const starts = new Int32Array(lens.length);
  const counts = new Int32Array(lens.length);
  const n = planGsoRuns(
    Int32Array.from(lens),
    Int32Array.from(keys),
    lens.length,
    starts,
    counts,
    undefined,
    maxBytes,
  );
  return Array.from({ length: n }, (_, r) => [starts[r], counts[r]]);
}

Deno.test("UDP GSO runs", async (t) => {
  await t.step("equal sizes to one endpoint form one run; a shorter last one joins it and ends it", () => {
    assert.deepEqual(plan([1452, 1452, 1452, 600, 1452], [1, 1, 1, 1, 1]), [[0, 4], [4, 1]]);
  });
  await t.step("a larger datagram or another endpoint starts a new run", () => {
    assert.deepEqual(plan([600, 1452, 1452], [1, 1, 1]), [[0, 1], [1, 2]]);
    assert.deepEqual(plan([1452, 1452, 1452, 1452], [1, 1, 2, 2]), [[0, 2], [2, 2]]);
  });
  await t.step("at most 64 datagrams and 65 507 bytes per run", () => {
    const many = new Array(130).fill(100);
    assert.deepEqual(plan(many, new Array(130).fill(7)), [[0, UDP_GSO_MAX_SEGMENTS], [64, 64], [128, 2]]);
    const big = new Array(50).fill(1452); // 45 × 1452 = 65 340 fits, 46 would not
    assert.deepEqual(plan(big, new Array(50).fill(1)), [[0, 45], [45, 5]]);
    assert.deepEqual(plan([1000, 1000, 1000], [1, 1, 1], 2500), [[0, 2], [2, 1]]);
  });
  await t.step("single messages and an empty batch", () => {
    assert.deepEqual(plan([32], [3]), [[0, 1]]);
    assert.deepEqual(plan([], []), []);
  });
});
