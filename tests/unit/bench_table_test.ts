import assert from "node:assert/strict";
import { cpuSecondsPerGb, formatTable } from "../../bench/bench-table.ts";
import type { Results, ScenarioResult } from "../../bench/bench.ts";

/** A scenario result with the given CPU window and UDP runs; the other figures are placeholders. */
function result(tcp1CpuSeconds: number, tcp1Bytes: number, udp: [number, number][]): ScenarioResult {
  return {
    tcp1: [1],
    tcp4: [1],
    tcp1CpuSeconds,
    tcp1Bytes,
    udp: udp.map(([receivedMbps, lossPercent]) => ({
      sentMbps: 500,
      receivedMbps,
      lossPercent,
      packets: 1000,
      lostPackets: 0,
      jitterMs: 0,
    })),
    ping: { sent: 1, received: 1, rttAvgMs: 1, rttP50Ms: 1, rttP99Ms: 1, rttsMs: [1] },
    rssKb: { "wg0-a": 1024 },
    load: [1],
  };
}

Deno.test("cpuSecondsPerGb divides the CPU window by the GB the 1-stream runs moved", () => {
  assert.equal(cpuSecondsPerGb(result(3, 1.5e9, [])), 2);
  assert.ok(Number.isNaN(cpuSecondsPerGb(result(3, 0, []))));
  assert.ok(Number.isNaN(cpuSecondsPerGb(result(3, NaN, []))));
});

Deno.test("formatTable prints CPU per GB and the UDP rows (medians) with the ratio to wireguard-go", () => {
  const results: Results = new Map([[
    "single tunnel: wg0",
    new Map([
      ["wireguard-go", result(4, 1e9, [[400, 20], [300, 40], [450, 10]])],
      ["twofold", result(1, 1e9, [[490, 3], [495, 1]])],
    ]),
  ]]);
  const lines = formatTable(results, ["wireguard-go", "twofold"], 500).split("\n");
  const row = (label: string) => lines.find((l) => l.startsWith(label))!.trim().split(/\s{2,}/);
  assert.deepEqual(row("CPU s per GB"), ["CPU s per GB, TCP 1 stream, both sides", "4.00", "1.00", "0.25"]);
  assert.deepEqual(row("UDP 500 Mbit/s offered: received"), [
    "UDP 500 Mbit/s offered: received, Mbit/s",
    "400.0",
    "492.5",
    "1.23",
  ]);
  assert.deepEqual(row("UDP 500 Mbit/s offered: loss"), [
    "UDP 500 Mbit/s offered: loss, %",
    "20.00",
    "2.00",
    "0.10",
  ]);
  const withoutUdp = formatTable(results, ["wireguard-go", "twofold"], null).split("\n");
  assert.ok(!withoutUdp.some((l) => l.startsWith("UDP")));
  assert.ok(withoutUdp.some((l) => l.startsWith("CPU s per GB")));
});
