/**
 * The tables `deno task bench` prints: the side-by-side comparison per scenario (throughput, CPU
 * seconds per GB, UDP at the offered rate, latency, RSS; with a ratio to wireguard-go per column) and
 * the packet-filter on/off row.
 * @module
 */
import { median } from "../src/lab/measure.ts";
import {
  FILTER_BENCH_RULES,
  type FilterRun,
  IPERF_PORT,
  type Results,
  type ScenarioResult,
} from "./bench.ts";

/** The packet-filter row: throughput with the filter on and off, and on/off, per tunnel. */
export function formatFilterTable(on: FilterRun, off: FilterRun): string {
  const rows = [
    `-- packet filter (twofold up; on = wg0 lockdown + tcp/${IPERF_PORT}, ${FILTER_BENCH_RULES} policy rules on aes0) --`,
  ];
  const med = (v: number[]) => median(v.filter(Number.isFinite));
  for (const layer of ["wg0", "aes0"] as const) {
    const name = layer === "wg0" ? "wg0 (single tunnel)" : "aes0 inside wg0 (double tunnel)";
    for (
      const [label, get] of [["TCP 1 stream", (r: ScenarioResult) => med(r.tcp1)], [
        "TCP -P 4",
        (r: ScenarioResult) => med(r.tcp4),
      ]] as const
    ) {
      const a = get(on[layer]), b = get(off[layer]);
      rows.push(
        `${name.padEnd(32)} ${label.padEnd(13)} on ${fmt(a, 3)} Gbit/s  off ${fmt(b, 3)} Gbit/s  on/off ${
          fmt(a / b, 3)
        }`,
      );
    }
  }
  return rows.join("\n");
}

/** A figure with `digits` decimals, or "n/a". */
export function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : "n/a";
}

/** Bytes in a GB (decimal, as iperf3's rates). */
const BYTES_PER_GB = 1e9;
/** Bytes in a MB (decimal). */
const BYTES_PER_MB = 1e6;

/** Every run's figure of one column (under the table): the medians' inputs, CPU window, load. */
function runDetails(r: ScenarioResult): string {
  const parts = [
    `runs 1 stream [${r.tcp1.map((v) => fmt(v, 3)).join(", ")}], -P 4 [${
      r.tcp4.map((v) => fmt(v, 3)).join(", ")
    }]`,
    `CPU ${fmt(r.tcp1CpuSeconds, 2)} s for ${fmt(r.tcp1Bytes / BYTES_PER_MB, 0)} MB`,
  ];
  if (r.udp.length > 0) {
    parts.push(
      `UDP received Mbit/s [${r.udp.map((u) => fmt(u.receivedMbps, 1)).join(", ")}] loss % [${
        r.udp.map((u) => fmt(u.lossPercent, 2)).join(", ")
      }]`,
    );
  }
  parts.push(`RSS kB ${Object.entries(r.rssKb).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  parts.push(`load ${r.load.map((v) => fmt(v, 1)).join(" ")}`);
  return parts.join("; ");
}

/** CPU seconds of both sides' daemons per GB the 1-stream runs moved (NaN when nothing was measured). */
export function cpuSecondsPerGb(r: ScenarioResult): number {
  return r.tcp1Bytes > 0 ? r.tcp1CpuSeconds / (r.tcp1Bytes / BYTES_PER_GB) : NaN;
}

/**
 * Formats the side-by-side table, one block per scenario, with a twofold/wireguard-go ratio column;
 * `udpMbps` is the UDP row's offered rate (null: the UDP rows are left out).
 */
export function formatTable(results: Results, implNames: string[], udpMbps: number | null = null): string {
  const rows: string[] = [];
  const base = "wireguard-go";
  const compared = implNames.includes(base) ? implNames.filter((n) => n !== base) : [];
  const header = ["metric", ...implNames, ...compared.map((n) => `${n}/${base}`)];
  const metrics: [string, (r: ScenarioResult) => number, number][] = [
    ["TCP 1 stream, Gbit/s (median)", (r) => median(r.tcp1.filter(Number.isFinite)), 3],
    ["TCP -P 4, Gbit/s (median)", (r) => median(r.tcp4.filter(Number.isFinite)), 3],
    ["CPU s per GB, TCP 1 stream, both sides", cpuSecondsPerGb, 2],
    ...(udpMbps === null ? [] : [
      [`UDP ${udpMbps} Mbit/s offered: received, Mbit/s`, (r) => median(r.udp.map((u) => u.receivedMbps)), 1],
      [`UDP ${udpMbps} Mbit/s offered: loss, %`, (r) => median(r.udp.map((u) => u.lossPercent)), 2],
    ] as [string, (r: ScenarioResult) => number, number][]),
    ["ping RTT avg, ms", (r) => r.ping.rttAvgMs, 3],
    ["ping RTT p50, ms", (r) => r.ping.rttP50Ms, 3],
    ["ping RTT p99, ms", (r) => r.ping.rttP99Ms, 3],
    ["ping loss, %", (r) => 100 * (1 - r.ping.received / Math.max(1, r.ping.sent)), 1],
    ["RSS max per daemon, MB", (r) => Math.max(...Object.values(r.rssKb)) / 1024, 1],
    ["RSS all daemons, MB", (r) => Object.values(r.rssKb).reduce((x, y) => x + y, 0) / 1024, 1],
  ];
  for (const [scenario, byImpl] of results) {
    const table = [header];
    for (const [label, get, digits] of metrics) {
      const vals = implNames.map((n) => {
        const r = byImpl.get(n);
        return r ? get(r) : NaN;
      });
      const row = [label, ...vals.map((v) => fmt(v, digits))];
      for (const n of compared) row.push(fmt(vals[implNames.indexOf(n)] / vals[implNames.indexOf(base)], 2));
      table.push(row);
    }
    const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
    rows.push(`-- ${scenario} --`);
    for (const r of table) {
      rows.push(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
    }
    for (const n of implNames) {
      const r = byImpl.get(n);
      if (r) rows.push(`   ${n}: ${runDetails(r)}`);
    }
    rows.push("");
  }
  return rows.join("\n");
}
