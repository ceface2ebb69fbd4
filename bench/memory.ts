/**
 * `deno run -A bench/memory.ts`: where the memory of a `twofold up` node goes. Starts a node pair in
 * two namespaces (tfm-a ↔ tfm-b over a veth, aes0 opened with a PSK), then per node: VmRSS at idle,
 * the highest VmRSS sampled during an iperf3 TCP run through aes0 (the issue's figure: the whole
 * process under load) and after it, the anonymous / file-backed split of the resident set, the thread
 * count and, with `TRACE_GC=1`, the V8 heap of every isolate (main thread and workers: the last
 * `--trace-gc` line of each, used and committed MB). Prints the throughput of the run and the load
 * average next to the figures, because 2 shared cores make both drift.
 *
 * Knobs: DUR=10 (iperf3 seconds), STREAMS=1, ROUNDS=1 (node pairs started one after another),
 * MAPPINGS=n (each node's n largest resident mappings from /proc/PID/smaps after the run),
 * V8_FLAGS="--max-semi-space-size=1 …" (passed to the nodes' Deno as `--v8-flags=`), TRACE_GC=1,
 * NODE_ENV="MALLOC_ARENA_MAX=2 …" (extra environment of the nodes), LAUNCHER='["/opt/twofold/bin/twofold"]'
 * (what runs twofold instead of this tree's main.ts under this Deno, e.g. an unpacked release; V8_FLAGS
 * do not apply to it).
 * Needs root, iproute2, iperf3 and /dev/net/tun; stops what it starts by PID and deletes both
 * namespaces, also when a step fails.
 * @module
 */
import { requireBinary, requireRoot, requireTun } from "../src/lab/prereq.ts";
import { type Netns, type Proc, sleep, Topology, vethPair } from "../src/lab/netns.ts";
import { genKeyPair, genPresharedKey } from "../src/lab/wg-device.ts";
import { iperf3Run, rssKb, waitForPing } from "../src/lab/measure.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../src/lab/twofold-node.ts";

/** MAPPINGS=n: print each node's n largest resident mappings after the run (where the RSS is). */
const MAPPINGS = Number(Deno.env.get("MAPPINGS") ?? 0);
/** How often VmRSS is sampled during the load. */
const SAMPLE_MS = 250;
/** Settling time after the PSK before the idle figure. */
const IDLE_SETTLE_MS = 2000;

/** The figures of one node in one round. */
export interface NodeMemory {
  /** VmRSS (kB) after start and PSK, before load. */
  idleKb: number;
  /** Highest VmRSS (kB) sampled during the iperf3 run. */
  peakKb: number;
  /** VmRSS (kB) after the run. */
  afterKb: number;
  /** RssAnon and RssFile (kB) after the run. */
  anonKb: number;
  fileKb: number;
  /** Threads of the process. */
  threads: number;
  /** Thread names with their count (e.g. "tokio-runtime-w×2"): which runtime threads a node runs. */
  threadNames: string;
  /** Last `--trace-gc` figure per isolate: used and committed heap MB (empty without TRACE_GC). */
  heaps: { isolate: string; usedMb: number; committedMb: number }[];
  /** With MAPPINGS=n: the n mappings holding the most resident memory (empty otherwise). */
  mappings: ResidentMapping[];
}

/** One mapping of /proc/PID/smaps and what of it is resident. */
export interface ResidentMapping {
  /** The mapped file, `[heap]`, `[stack]`, or "anonymous". */
  name: string;
  /** Size of the mapping (kB). */
  sizeKb: number;
  /** Resident part (kB). */
  rssKb: number;
}

/** The `top` mappings of an smaps text by resident size, largest first. */
export function largestMappings(smaps: string, top: number): ResidentMapping[] {
  const out: ResidentMapping[] = [];
  let current: ResidentMapping | null = null;
  for (const line of smaps.split("\n")) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/);
    if (head) {
      current = { name: head[1].trim() || "anonymous", sizeKb: 0, rssKb: 0 };
      out.push(current);
      continue;
    }
    const field = line.match(/^(Size|Rss):\s+(\d+) kB/);
    if (field && current) {
      if (field[1] === "Size") current.sizeKb = Number(field[2]);
      else current.rssKb = Number(field[2]);
    }
  }
  return out.sort((x, y) => y.rssKb - x.rssKb).slice(0, top);
}

/** One field of /proc/PID/status in kB, or NaN. */
function statusKb(pid: number, field: string): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(new RegExp(`^${field}:\\s+(\\d+)`, "m"));
    return m === null ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}

/**
 * The last `--trace-gc` line of every isolate in `output`: V8 prefixes each with `[pid:isolate]`
 * and reports "before (committed) -> after (committed) MB". Pure.
 */
export function lastHeapPerIsolate(output: string): NodeMemory["heaps"] {
  const last = new Map<string, { usedMb: number; committedMb: number }>();
  const line = /^\[\d+:(0x[0-9a-f]+)\]\s.*?->\s*([\d.]+)\s*\(([\d.]+)\)\s*MB/gm;
  for (const m of output.matchAll(line)) last.set(m[1], { usedMb: Number(m[2]), committedMb: Number(m[3]) });
  return [...last].map(([isolate, h]) => ({ isolate, ...h }));
}

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system, all threads) process `pid` has used so far, or NaN. The figure that
 * survives shared cores: throughput drifts with the other load, the CPU spent per byte much less.
 */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}

/** The process's thread names, counted ("name×n", most frequent first), or "" when unreadable. */
function threadNames(pid: number): string {
  const count = new Map<string, number>();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const name = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).trim();
      count.set(name, (count.get(name) ?? 0) + 1);
    }
  } catch {
    return "";
  }
  return [...count].sort((x, y) => y[1] - x[1]).map(([n, c]) => `${n}×${c}`).join(" ");
}

function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/** The command that runs a node: LAUNCHER, or this tree's main.ts under this Deno with `v8Flags`. */
function launcherFor(v8Flags: string): string[] {
  const given = Deno.env.get("LAUNCHER");
  if (given !== undefined) return JSON.parse(given);
  const launcher = [Deno.execPath(), "run", "--allow-all", "--quiet"];
  if (v8Flags.trim() !== "") launcher.push(`--v8-flags=${v8Flags.trim().split(/\s+/).join(",")}`);
  launcher.push(new URL("../main.ts", import.meta.url).pathname);
  return launcher;
}

/** Starts one node pair, loads it, returns the figures of both nodes and the throughput. */
async function round(v8Flags: string, env: Record<string, string>, dur: number, streams: number) {
  const topo = new Topology();
  const dir = await Deno.makeTempDir({ prefix: "tfm-" });
  try {
    const a = await topo.netns("tfm-a", { replaceExisting: true });
    const b = await topo.netns("tfm-b", { replaceExisting: true });
    await vethPair(a, "tfm-va", "10.204.0.1/24", b, "tfm-vb", "10.204.0.2/24");
    const mk = (side: string, n: number): LabNode => ({
      name: `mem-${side}`,
      keys: genKeyPair(),
      underlay: `10.204.0.${n}`,
      wgIp: `100.64.0.${n}`,
      aesIp: `100.127.0.${n}`,
    });
    const A = mk("a", 1);
    const B = mk("b", 2);
    const launcher = launcherFor(v8Flags);
    const procs: [Netns, Proc][] = [
      [a, await startTwofoldUp(a, await writeNodeConfig(dir, A, [B]), { launcher, env })],
      [b, await startTwofoldUp(b, await writeNodeConfig(dir, B, [A]), { launcher, env })],
    ];
    const pskFile = `${dir}/mem.psk`;
    await Deno.writeTextFile(pskFile, genPresharedKey() + "\n", { mode: 0o600 });
    await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", pskFile]);
    await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", pskFile]);
    if (!(await waitForPing(a, B.aesIp, 15_000))) throw new Error("aes0 passes no traffic after the PSK");
    await sleep(IDLE_SETTLE_MS);
    const idle = procs.map(([, p]) => rssKb(p.pid));
    const peak = procs.map(() => 0);
    let loading = true;
    const sampler = (async () => {
      while (loading) {
        procs.forEach(([, p], i) => peak[i] = Math.max(peak[i], rssKb(p.pid)));
        await sleep(SAMPLE_MS);
      }
    })();
    const loadBefore = loadAverage();
    const cpuBefore = procs.reduce((sum, [, p]) => sum + cpuSeconds(p.pid), 0);
    const run = await iperf3Run(a, b, B.aesIp, { seconds: dur, parallel: streams, port: 5231 });
    const cpu = procs.reduce((sum, [, p]) => sum + cpuSeconds(p.pid), 0) - cpuBefore;
    loading = false;
    await sampler;
    const nodes: NodeMemory[] = procs.map(([, p], i) => ({
      idleKb: idle[i],
      peakKb: peak[i],
      afterKb: rssKb(p.pid),
      anonKb: statusKb(p.pid, "RssAnon"),
      fileKb: statusKb(p.pid, "RssFile"),
      threads: statusKb(p.pid, "Threads"),
      threadNames: threadNames(p.pid),
      heaps: lastHeapPerIsolate(p.output()),
      mappings: MAPPINGS > 0 ? largestMappings(Deno.readTextFileSync(`/proc/${p.pid}/smaps`), MAPPINGS) : [],
    }));
    const gigabytes = run.gbps * dur / 8;
    return { nodes, gbps: run.gbps, cpuPerGb: cpu / gigabytes, load: `${loadBefore} → ${loadAverage()}` };
  } finally {
    await topo.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

if (import.meta.main) {
  const missing = requireRoot() ?? requireTun() ?? requireBinary("iperf3");
  if (missing !== null) {
    console.error(`bench/memory.ts: ${missing}`);
    Deno.exit(2);
  }
  const dur = Number(Deno.env.get("DUR") ?? 10);
  const streams = Number(Deno.env.get("STREAMS") ?? 1);
  const rounds = Number(Deno.env.get("ROUNDS") ?? 1);
  let v8Flags = Deno.env.get("V8_FLAGS") ?? "";
  if (Deno.env.get("TRACE_GC") === "1") v8Flags += " --trace-gc";
  const env = Object.fromEntries(
    (Deno.env.get("NODE_ENV") ?? "").split(/\s+/).filter((kv) => kv.includes("=")).map((kv) => {
      const at = kv.indexOf("=");
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
  console.log(
    `v8 flags: ${v8Flags.trim() || "(none)"}; env: ${
      Object.keys(env).length === 0 ? "(none)" : Deno.env.get("NODE_ENV")
    }; iperf3 ${dur} s × ${streams} stream(s)`,
  );
  for (let r = 0; r < rounds; r++) {
    const { nodes, gbps, cpuPerGb, load } = await round(v8Flags, env, dur, streams);
    console.log(
      `round ${r + 1}: ${gbps.toFixed(3)} Gbit/s through aes0, ${
        cpuPerGb.toFixed(1)
      } CPU s per GB (both nodes), load average ${load}`,
    );
    nodes.forEach((n, i) => {
      console.log(
        `  node ${"ab"[i]}: RSS idle ${mb(n.idleKb)} MB, peak under load ${mb(n.peakKb)} MB, after ${
          mb(n.afterKb)
        } MB (anon ${mb(n.anonKb)}, file ${mb(n.fileKb)}), ${n.threads} threads: ${n.threadNames}`,
      );
      for (const h of n.heaps) {
        console.log(`    isolate ${h.isolate}: heap ${h.usedMb} MB used, ${h.committedMb} MB committed`);
      }
      for (const m of n.mappings) {
        console.log(`    mapping ${m.name}: ${mb(m.rssKb)} MB resident of ${mb(m.sizeKb)} MB`);
      }
    });
  }
}
