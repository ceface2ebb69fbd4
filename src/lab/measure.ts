/**
 * Measurements between test namespaces: ICMP ping (loss and RTT distribution), iperf3 TCP
 * throughput and iperf3 UDP at a fixed offered rate (received rate, loss), plus the small statistics
 * the benchmark reports (median, percentile).
 * @module
 */
import { type Netns, waitUntil } from "./netns.ts";

/** Median of `values` (NaN for an empty list). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile `p` (0..100) of `values` (NaN for an empty list). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** Outcome of a ping run. RTT fields are NaN when nothing came back. */
export interface PingResult {
  /** Echo requests sent. */
  sent: number;
  /** Echo replies received. */
  received: number;
  /** Mean round-trip time in milliseconds. */
  rttAvgMs: number;
  /** Median round-trip time in milliseconds. */
  rttP50Ms: number;
  /** 99th percentile round-trip time in milliseconds. */
  rttP99Ms: number;
  /** Every reply's round-trip time in milliseconds, in arrival order. */
  rttsMs: number[];
}

/** Parses the output of `ping -n` (per-reply lines and the summary line). */
export function parsePingOutput(text: string): PingResult {
  const summary = text.match(/(\d+) packets transmitted, (\d+) (?:packets )?received/);
  if (summary === null) throw new Error(`no ping summary in output: ${text.slice(-300)}`);
  const rttsMs = [...text.matchAll(/icmp_seq=\d+ .*?time[=<]([\d.]+) ms/g)].map((m) => Number(m[1]));
  const avg = rttsMs.length === 0 ? NaN : rttsMs.reduce((a, b) => a + b, 0) / rttsMs.length;
  return {
    sent: Number(summary[1]),
    received: Number(summary[2]),
    rttAvgMs: avg,
    rttP50Ms: percentile(rttsMs, 50),
    rttP99Ms: percentile(rttsMs, 99),
    rttsMs,
  };
}

/** Options for {@link ping}. */
export interface PingOptions {
  /** Number of echo requests (default 1). */
  count?: number;
  /** Seconds between requests (default 1; below 0.2 needs root). */
  interval?: number;
  /** Seconds to wait for each reply (default 1). */
  timeoutS?: number;
}

/** Pings `ip` from inside `ns`; never throws for loss (check `received`). */
export async function ping(ns: Netns, ip: string, opts: PingOptions = {}): Promise<PingResult> {
  const count = opts.count ?? 1;
  const interval = opts.interval ?? 1;
  const timeoutS = opts.timeoutS ?? 1;
  const deadline = Math.ceil(count * interval + timeoutS + 1);
  const r = await ns.exec(
    [
      "ping",
      "-n",
      "-c",
      String(count),
      "-i",
      String(interval),
      "-W",
      String(timeoutS),
      "-w",
      String(deadline),
      ip,
    ],
    { check: false },
  );
  if (r.code !== 0 && r.code !== 1) throw new Error(`ping ${ip} in ${ns.name} failed: ${r.stderr.trim()}`);
  return parsePingOutput(r.stdout);
}

/** Pings once per attempt until a reply arrives or `timeoutMs` passes; returns whether it got one. */
export async function waitForPing(ns: Netns, ip: string, timeoutMs = 10_000): Promise<boolean> {
  return await waitUntil(
    async () => {
      try {
        return (await ping(ns, ip, { count: 1, timeoutS: 1 })).received > 0;
      } catch {
        return false; // e.g. "network unreachable" while the interface is still coming up
      }
    },
    timeoutMs,
    100,
  );
}

/** Throughput figures of one iperf3 run. */
export interface Iperf3Result {
  /** Receiver-side throughput in Gbit/s. */
  gbps: number;
  /** TCP retransmissions counted by the sender. */
  retransmits: number;
  /** Bytes the receiver got (what the tunnel moved, for CPU seconds per GB). */
  bytes: number;
}

/** Parses `iperf3 -J` output; throws with iperf3's own message when the run failed. */
export function parseIperf3Json(text: string): Iperf3Result {
  let j: {
    error?: string;
    end?: {
      sum_received?: { bits_per_second?: number; bytes?: number };
      sum_sent?: { retransmits?: number };
    };
  };
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`iperf3 did not print JSON: ${text.slice(0, 300)}`);
  }
  const bps = j.end?.sum_received?.bits_per_second;
  if (j.error !== undefined || bps === undefined) throw new Error(`iperf3 failed: ${j.error ?? "no result"}`);
  return {
    gbps: bps / 1e9,
    retransmits: j.end?.sum_sent?.retransmits ?? 0,
    bytes: j.end?.sum_received?.bytes ?? NaN,
  };
}

/** Figures of one iperf3 UDP run at a fixed offered rate (`-u -b`). */
export interface Iperf3UdpResult {
  /** Rate the client sent at, in Mbit/s (the offered rate, unless the sender could not keep up). */
  sentMbps: number;
  /** Rate the server received, in Mbit/s. */
  receivedMbps: number;
  /** Datagrams the server counted as lost, in percent of those sent. */
  lossPercent: number;
  /** Datagrams sent. */
  packets: number;
  /** Datagrams lost. */
  lostPackets: number;
  /** Receiver-side jitter in milliseconds. */
  jitterMs: number;
}

/** One `end.sum_sent` / `end.sum_received` block of iperf3's UDP JSON. */
interface Iperf3UdpSum {
  bits_per_second?: number;
  lost_packets?: number;
  packets?: number;
  lost_percent?: number;
  jitter_ms?: number;
}

/** Parses `iperf3 -u -J` output (iperf3 ≥ 3.1 reports both ends); throws with iperf3's message on failure. */
export function parseIperf3UdpJson(text: string): Iperf3UdpResult {
  let j: { error?: string; end?: { sum_sent?: Iperf3UdpSum; sum_received?: Iperf3UdpSum } };
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`iperf3 did not print JSON: ${text.slice(0, 300)}`);
  }
  const received = j.end?.sum_received;
  if (j.error !== undefined || received?.bits_per_second === undefined) {
    throw new Error(`iperf3 failed: ${j.error ?? "no UDP result"}`);
  }
  return {
    sentMbps: (j.end?.sum_sent?.bits_per_second ?? NaN) / 1e6,
    receivedMbps: received.bits_per_second / 1e6,
    lossPercent: received.lost_percent ?? NaN,
    packets: received.packets ?? NaN,
    lostPackets: received.lost_packets ?? NaN,
    jitterMs: received.jitter_ms ?? NaN,
  };
}

/** iperf3's default port. */
export const IPERF3_PORT = 5201;

/** Options for {@link iperf3}. */
export interface Iperf3Options {
  /** Test duration in seconds (default 10). */
  seconds?: number;
  /** Parallel streams (`-P`, default 1). */
  parallel?: number;
  /** Server sends, client receives (`-R`). */
  reverse?: boolean;
  /** TCP port (default 5201). */
  port?: number;
}

/**
 * Runs `iperf3 -s -1` in `nsServer`, then `iperf3 -c serverIp -p PORT -J CLIENT_ARGS…` in `nsClient`;
 * returns the client's stdout (the JSON report).
 */
async function runIperf3Client(
  nsClient: Netns,
  nsServer: Netns,
  serverIp: string,
  port: number,
  clientArgs: string[],
): Promise<string> {
  const server = nsServer.spawn(["iperf3", "-s", "-1", "-p", String(port)]);
  try {
    const listening = await waitUntil(async () => {
      if (server.exited) return true;
      const r = await nsServer.exec(["ss", "-Hltn", `sport = :${port}`], { check: false });
      return r.stdout.trim() !== "";
    }, 5000);
    if (server.exited || !listening) {
      throw new Error(`iperf3 server did not start: ${server.output().trim()}`);
    }
    const args = [
      "iperf3",
      "-c",
      serverIp,
      "-p",
      String(port),
      ...clientArgs,
      "-J",
      "--connect-timeout",
      "5000",
    ];
    const client = await nsClient.exec(args, { check: false });
    await server.waitFor(5000);
    return client.stdout;
  } finally {
    await server.kill();
  }
}

/**
 * Runs one iperf3 TCP test: `iperf3 -s -1` in `nsServer`, `iperf3 -c serverIp -J` in `nsClient`.
 * Returns the details; {@link iperf3} returns only Gbit/s.
 */
export async function iperf3Run(
  nsClient: Netns,
  nsServer: Netns,
  serverIp: string,
  opts: Iperf3Options = {},
): Promise<Iperf3Result> {
  const args = ["-t", String(opts.seconds ?? 10), "-P", String(opts.parallel ?? 1)];
  if (opts.reverse) args.push("-R");
  return parseIperf3Json(await runIperf3Client(nsClient, nsServer, serverIp, opts.port ?? IPERF3_PORT, args));
}

/** Options for {@link iperf3UdpRun}. */
export interface Iperf3UdpOptions {
  /** Offered rate in Mbit/s (`-b`). */
  offeredMbps: number;
  /** Test duration in seconds (default 10). */
  seconds?: number;
  /** Control port (default 5201). */
  port?: number;
}

/**
 * Runs one iperf3 UDP test at a fixed offered rate (`-u -b`; iperf3 sizes the datagrams from the
 * control connection's TCP MSS, so they fit the tunnel MTU) and returns received rate and loss.
 */
export async function iperf3UdpRun(
  nsClient: Netns,
  nsServer: Netns,
  serverIp: string,
  opts: Iperf3UdpOptions,
): Promise<Iperf3UdpResult> {
  const args = ["-u", "-b", `${opts.offeredMbps}M`, "-t", String(opts.seconds ?? 10)];
  return parseIperf3UdpJson(
    await runIperf3Client(nsClient, nsServer, serverIp, opts.port ?? IPERF3_PORT, args),
  );
}

/** Runs one iperf3 TCP test (see {@link iperf3Run}) and returns the throughput in Gbit/s. */
export async function iperf3(
  nsClient: Netns,
  nsServer: Netns,
  serverIp: string,
  opts: Iperf3Options = {},
): Promise<number> {
  return (await iperf3Run(nsClient, nsServer, serverIp, opts)).gbps;
}

/** Resident set size in kB of process `pid` (VmRSS from /proc/PID/status), or NaN if unavailable. */
export function rssKb(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
    return m === null ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}
