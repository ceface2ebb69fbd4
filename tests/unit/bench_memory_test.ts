/** bench/memory.ts's parsing of `--trace-gc` output: the last heap figure of every isolate. */
import assert from "node:assert/strict";
import { lastHeapPerIsolate } from "../../bench/memory.ts";

Deno.test("lastHeapPerIsolate: the last used/committed MB of each isolate, other lines ignored", () => {
  const output = [
    "[4242:0x55aa00001000]       52 ms: Scavenge 4.0 (5.0) -> 3.4 (5.5) MB, pooled: 0.0 MB, 1.2 / 0.0 ms",
    "2026-12-06T09:00:00.000Z INFO  node-a: node node-a up: wg0 100.64.0.1/10",
    "[4242:0x7f0000060000]       80 ms: Scavenge 6.1 (9.0) -> 5.9 (8.5) MB, pooled: 0.0 MB, 0.4 / 0.0 ms",
    "[4242:0x55aa00001000]      900 ms: Mark-Compact 19.0 (22.0) -> 18.4 (21.5) MB, pooled: 0 MB, 9.1 / 0.0 ms",
  ].join("\n");
  assert.deepEqual(lastHeapPerIsolate(output), [
    { isolate: "0x55aa00001000", usedMb: 18.4, committedMb: 21.5 },
    { isolate: "0x7f0000060000", usedMb: 5.9, committedMb: 8.5 },
  ]);
  assert.deepEqual(lastHeapPerIsolate("no trace here"), []);
});
