/**
 * `deno task bench`: compares WireGuard implementations between two network namespaces on this host
 * (tfb-a ↔ tfb-b over a veth pair) in one run, single tunnel (wg0) and double tunnel (aes0 riding
 * inside wg0), and prints a side-by-side table with the ratio twofold / wireguard-go.
 *
 * Per implementation and scenario: iperf3 TCP with 1 stream and with `-P 4` (REPS runs of DUR s
 * each, medians), the CPU seconds the daemons of both sides used per GB moved during the 1-stream
 * runs, iperf3 UDP at a fixed offered rate (REPS runs: received rate and loss, medians), ICMP ping
 * (PING_N pings 10 ms apart: avg / p50 / p99 RTT, loss), and the RSS of the daemons (VmRSS, read
 * after the iperf3 runs). Then the AEAD micro-bench of `bench/aead.ts`, if that module exists and
 * exports `aeadMicroBench()`.
 *
 * Environment knobs:
 *   DUR=10 REPS=3 PING_N=200       iperf3 seconds per run, runs per figure, pings
 *   IMPLS=wireguard-go,twofold,twofold-nooffload,twofold-up,twofold-up-nooffload
 *                                  which implementations to run, in this order; `twofold-up` is the
 *                                  appliance itself (`twofold up`: wg0 and aes0 in one process per
 *                                  node, aes0 opened by an agreed PSK), double tunnel only; the
 *                                  `-nooffload` columns run the same with TWOFOLD_OFFLOADS=off;
 *                                  `twofold-up-nohandoff` (not run by default) with TWOFOLD_HANDOFF=off
 *   TWOFOLD_CMD='["deno","run",…]' JSON array replacing twofold's device command (IFNAME is appended)
 *   DOUBLE=0                       skip the double-tunnel scenario
 *   UDP_MBPS=500                   offered rate of the UDP row (iperf3 -u -b), Mbit/s
 *   UDP=0                          skip the UDP row
 *   FILTER=0                       skip the packet-filter row: `twofold up` with the filter on (wg0
 *                                  lockdown + tcp/5201, 50 access-policy rules on aes0) and off
 *                                  (TWOFOLD_BENCH_NO_FILTER=1), wg0 and double tunnel, same run,
 *   FILTER_ROUNDS=2                on and off alternating this many times each (medians over all)
 *   AEAD=0                         skip the AEAD micro-bench
 *
 * Needs root, iproute2, iputils-ping, iperf3, wireguard-tools (`wg`) and Debian's wireguard-go.
 * Everything it starts is stopped by PID and both namespaces are deleted, also on SIGINT/SIGTERM.
 * @module
 */
import { findBinary, requireBinary, requireRoot, requireTun } from "../src/lab/prereq.ts";
import { type Netns, type Proc, Topology, vethPair } from "../src/lab/netns.ts";
import { genKeyPair, genPresharedKey, startWgDevice, WIREGUARD_GO_COMMAND } from "../src/lab/wg-device.ts";
import {
  IPERF3_PORT,
  iperf3Run,
  type Iperf3UdpResult,
  iperf3UdpRun,
  ping,
  type PingResult,
  rssKb,
  waitForPing,
} from "../src/lab/measure.ts";
import { processCpuSeconds } from "../src/lab/proc-cpu.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../src/lab/twofold-node.ts";
import { formatFilterTable, formatTable } from "./bench-table.ts";
import { v8FlagsArgument } from "../src/v8-flags.ts";

/** A userspace WireGuard implementation with the `wireguard-go -f IFNAME` contract. */
export interface Implementation {
  /** Column name in the table. */
  name: string;
  /** Device command; the interface name is appended. */
  command: string[];
  /** Command for a layer that rides inside another (default: `command`). */
  innerCommand?: string[];
  /** How long to wait for the UAPI socket. */
  startTimeoutMs: number;
  /** Extra environment of the daemons (e.g. TWOFOLD_OFFLOADS=off). */
  env?: Record<string, string>;
  /** Why this implementation cannot run here, or null. */
  unavailable(): string | null;
}

/** The `twofold wg` column with the offloads knob off (TWOFOLD_OFFLOADS=off): the gain of the offloads. */
export const TWOFOLD_NO_OFFLOAD = "twofold-nooffload";

/** Root of the repository (the parent of bench/). */
const REPO_DIR = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** The implementations compared by default: Debian wireguard-go, then twofold (`main.ts wg -f`). */
export function defaultImplementations(): Implementation[] {
  const twofoldMain = `${REPO_DIR}/main.ts`;
  const twofoldCmd = Deno.env.get("TWOFOLD_CMD");
  const twofold: Implementation = {
    name: "twofold",
    command: twofoldCmd !== undefined
      ? JSON.parse(twofoldCmd)
      : [Deno.execPath(), "run", "--allow-all", v8FlagsArgument(), twofoldMain, "wg", "-f"],
    startTimeoutMs: 30_000,
    unavailable: () => {
      if (twofoldCmd !== undefined) return null;
      try {
        Deno.statSync(twofoldMain);
        return null;
      } catch {
        return `${twofoldMain} does not exist yet`;
      }
    },
  };
  return [
    {
      name: "wireguard-go",
      command: [...WIREGUARD_GO_COMMAND],
      startTimeoutMs: 10_000,
      unavailable: () => requireBinary("wireguard-go"),
    },
    twofold,
    { ...twofold, name: TWOFOLD_NO_OFFLOAD, env: { TWOFOLD_OFFLOADS: "off" } },
  ];
}

/** One tunnel layer between the two namespaces. */
export interface LayerSpec {
  /** Interface name on both sides. */
  ifname: string;
  /** UDP listen port on both sides. */
  port: number;
  /** Address of side A with prefix, e.g. "100.64.0.1/10". */
  cidrA: string;
  /** Address of side B with prefix. */
  cidrB: string;
  /** Interface MTU. */
  mtu: number;
  /** When set, endpoints are this lower layer's addresses (the layer's UDP rides inside it). */
  endpointViaLayerBelow?: LayerSpec;
}

/** Two namespaces joined by a veth pair. */
export interface BenchPair {
  /** Owns the namespaces and, through them, every daemon. */
  topo: Topology;
  /** Side A (iperf3 and ping client). */
  a: Netns;
  /** Side B (iperf3 server). */
  b: Netns;
  /** veth address of A (no prefix). */
  underlayA: string;
  /** veth address of B (no prefix). */
  underlayB: string;
}

/** A layer that is up on both sides. */
export interface LayerHandle {
  /** What was set up. */
  spec: LayerSpec;
  /** Implementation running it. */
  impl: Implementation;
  /** Tunnel address of A (no prefix). */
  ipA: string;
  /** Tunnel address of B (no prefix). */
  ipB: string;
  /** Daemon in A. */
  procA: Proc;
  /** Daemon in B. */
  procB: Proc;
}

/** The outer tunnel: wg0 over the veth. */
export const WG0: LayerSpec = {
  ifname: "wg0",
  port: 51820,
  cidrA: "100.64.0.1/10",
  cidrB: "100.64.0.2/10",
  mtu: 1420,
};

/** The inner tunnel: aes0 whose UDP goes to the peer's wg0 address (MTU = wg0 − 60). */
export const AES0: LayerSpec = {
  ifname: "aes0",
  port: 51830,
  cidrA: "100.127.0.1/16",
  cidrB: "100.127.0.2/16",
  mtu: WG0.mtu - 60,
  endpointViaLayerBelow: WG0,
};

function hostOf(cidr: string): string {
  return cidr.split("/")[0];
}

/** Creates tfb-a and tfb-b (replacing stale ones) joined by veth 10.202.0.1/24 ↔ 10.202.0.2/24. */
export async function setupPair(topo: Topology): Promise<BenchPair> {
  const a = await topo.netns("tfb-a", { replaceExisting: true });
  const b = await topo.netns("tfb-b", { replaceExisting: true });
  await vethPair(a, "tfb-va", "10.202.0.1/24", b, "tfb-vb", "10.202.0.2/24");
  if (!(await waitForPing(a, "10.202.0.2", 5000))) throw new Error("veth tfb-va ↔ tfb-vb passes no traffic");
  return { topo, a, b, underlayA: "10.202.0.1", underlayB: "10.202.0.2" };
}

/**
 * Starts `layer` with `impl` on both sides (fresh keys and a pre-shared key, each side knowing the
 * other's endpoint) and waits until a ping passes through it.
 */
export async function setupLayer(
  pair: BenchPair,
  impl: Implementation,
  layer: LayerSpec,
): Promise<LayerHandle> {
  const keysA = genKeyPair();
  const keysB = genKeyPair();
  const psk = genPresharedKey();
  const ipA = hostOf(layer.cidrA);
  const ipB = hostOf(layer.cidrB);
  const below = layer.endpointViaLayerBelow;
  const endpointA = below === undefined ? pair.underlayA : hostOf(below.cidrA);
  const endpointB = below === undefined ? pair.underlayB : hostOf(below.cidrB);
  const command = below !== undefined && impl.innerCommand !== undefined ? impl.innerCommand : impl.command;
  const opts = { command, startTimeoutMs: impl.startTimeoutMs, env: impl.env };
  const procA = await startWgDevice(pair.a, layer.ifname, {
    privateKey: keysA.privateKey,
    listenPort: layer.port,
    address: layer.cidrA,
    mtu: layer.mtu,
    peers: [{
      publicKey: keysB.publicKey,
      psk,
      endpoint: `${endpointB}:${layer.port}`,
      allowedIps: [`${ipB}/32`],
    }],
  }, opts);
  const procB = await startWgDevice(pair.b, layer.ifname, {
    privateKey: keysB.privateKey,
    listenPort: layer.port,
    address: layer.cidrB,
    mtu: layer.mtu,
    peers: [{
      publicKey: keysA.publicKey,
      psk,
      endpoint: `${endpointA}:${layer.port}`,
      allowedIps: [`${ipA}/32`],
    }],
  }, opts);
  if (!(await waitForPing(pair.a, ipB, 15_000))) {
    throw new Error(`${layer.ifname} (${impl.name}) is up but passes no traffic`);
  }
  return { spec: layer, impl, ipA, ipB, procA, procB };
}

/** Bench settings from the environment. */
interface Settings {
  dur: number;
  reps: number;
  pingN: number;
  /** Offered rate of the UDP row in Mbit/s, or null to skip it. */
  udpMbps: number | null;
}

/** Default offered rate of the UDP row (UDP_MBPS), Mbit/s. */
export const DEFAULT_UDP_MBPS = 500;

/** What one scenario measured for one implementation. */
export interface ScenarioResult {
  /** iperf3 1-stream Gbit/s per run. */
  tcp1: number[];
  /** iperf3 -P 4 Gbit/s per run. */
  tcp4: number[];
  /** CPU seconds (user + system) the daemons of both sides used during the 1-stream runs (NaN if a run failed). */
  tcp1CpuSeconds: number;
  /** Bytes the receiver got over all 1-stream runs. */
  tcp1Bytes: number;
  /** iperf3 UDP runs at the offered rate (empty when UDP=0). */
  udp: Iperf3UdpResult[];
  /** Ping over the innermost layer. */
  ping: PingResult;
  /** VmRSS in kB of every daemon of the pair, by label (e.g. "wg0-a"). */
  rssKb: Record<string, number>;
  /** The 1-minute load average after each iperf3 run (tcp1 runs, then tcp4 runs): the machine is shared. */
  load: number[];
}

/** The 1-minute load average (NaN where /proc/loadavg does not exist). */
export function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

function log(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

async function iperfSeries(
  pair: BenchPair,
  ip: string,
  parallel: number,
  s: Settings,
  label: string,
  load: number[],
): Promise<{ gbps: number[]; bytes: number }> {
  const out: number[] = [];
  let bytes = 0;
  for (let rep = 1; rep <= s.reps; rep++) {
    try {
      const r = await iperf3Run(pair.a, pair.b, ip, { seconds: s.dur, parallel });
      bytes += r.bytes;
      load.push(loadAverage());
      log(
        `${label} TCP -P ${parallel} run ${rep}: ${
          r.gbps.toFixed(3)
        } Gbit/s, ${r.retransmits} retransmits, ` +
          `load ${load.at(-1)}`,
      );
      out.push(r.gbps);
    } catch (e) {
      log(`${label} TCP -P ${parallel} run ${rep}: FAILED ${(e as Error).message}`);
      out.push(NaN);
      bytes = NaN;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { gbps: out, bytes };
}

/** REPS iperf3 UDP runs at the offered rate through `ip` (failed runs are logged and left out). */
async function udpSeries(
  pair: BenchPair,
  ip: string,
  offeredMbps: number,
  s: Settings,
  label: string,
): Promise<Iperf3UdpResult[]> {
  const out: Iperf3UdpResult[] = [];
  for (let rep = 1; rep <= s.reps; rep++) {
    try {
      const r = await iperf3UdpRun(pair.a, pair.b, ip, { offeredMbps, seconds: s.dur });
      log(
        `${label} UDP ${offeredMbps} Mbit/s run ${rep}: sent ${r.sentMbps.toFixed(1)}, received ${
          r.receivedMbps.toFixed(1)
        } Mbit/s, loss ${r.lossPercent.toFixed(2)} %, load ${loadAverage()}`,
      );
      out.push(r);
    } catch (e) {
      log(`${label} UDP run ${rep}: FAILED ${(e as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return out;
}

/** CPU seconds used so far by every daemon of `layers` on both sides (all threads of each process). */
function daemonCpuSeconds(layers: LayerHandle[]): number {
  return layers.reduce((sum, l) => sum + processCpuSeconds(l.procA.pid) + processCpuSeconds(l.procB.pid), 0);
}

/** Measures latency, throughput, then RSS through the innermost of `layers` (all already up). */
export async function measureScenario(
  pair: BenchPair,
  layers: LayerHandle[],
  s: Settings,
  label: string,
): Promise<ScenarioResult> {
  const top = layers[layers.length - 1];
  const p = await ping(pair.a, top.ipB, { count: s.pingN, interval: 0.01, timeoutS: 1 });
  log(
    `${label} ping: ${p.received}/${p.sent}, avg ${p.rttAvgMs.toFixed(3)} ms, p99 ${
      p.rttP99Ms.toFixed(3)
    } ms`,
  );
  const load: number[] = [];
  const cpuBefore = daemonCpuSeconds(layers);
  const tcp1 = await iperfSeries(pair, top.ipB, 1, s, label, load);
  const tcp1CpuSeconds = daemonCpuSeconds(layers) - cpuBefore;
  log(`${label} TCP 1 stream: ${tcp1CpuSeconds.toFixed(2)} CPU s (both sides) for ${tcp1.bytes} bytes`);
  const tcp4 = await iperfSeries(pair, top.ipB, 4, s, label, load);
  const udp = s.udpMbps === null ? [] : await udpSeries(pair, top.ipB, s.udpMbps, s, label);
  const rss: Record<string, number> = {};
  for (const l of layers) {
    rss[`${l.spec.ifname}-a`] = rssKb(l.procA.pid);
    rss[`${l.spec.ifname}-b`] = rssKb(l.procB.pid);
  }
  return {
    tcp1: tcp1.gbps,
    tcp4: tcp4.gbps,
    tcp1CpuSeconds,
    tcp1Bytes: tcp1.bytes,
    udp,
    ping: p,
    rssKb: rss,
    load,
  };
}

/** A scenario: the layers to stack, bottom first. */
interface Scenario {
  name: string;
  layers: LayerSpec[];
}

/** Results by scenario name, then implementation name (null = skipped, with a note). */
export type Results = Map<string, Map<string, ScenarioResult | null>>;

const activeTopologies = new Set<Topology>();

/** Runs every scenario for `impl` in one pair of namespaces; records results and skip notes. */
async function benchImplementation(
  impl: Implementation,
  scenarios: Scenario[],
  s: Settings,
  results: Results,
  notes: string[],
): Promise<void> {
  const skipAll = (why: string) => {
    notes.push(`${impl.name}: skipped (${why})`);
    for (const sc of scenarios) results.get(sc.name)!.set(impl.name, null);
  };
  const unavailable = impl.unavailable();
  if (unavailable !== null) return skipAll(unavailable);
  const topo = new Topology();
  activeTopologies.add(topo);
  try {
    const pair = await setupPair(topo);
    const up: LayerHandle[] = [];
    for (const sc of scenarios) {
      const label = `${impl.name} ${sc.name}`;
      try {
        for (const spec of sc.layers.slice(up.length)) {
          log(`${impl.name}: starting ${spec.ifname} in tfb-a and tfb-b`);
          up.push(await setupLayer(pair, impl, spec));
        }
      } catch (e) {
        const firstLine = (e as Error).message.split("\n")[0];
        notes.push(`${label}: skipped, the interface never came up: ${firstLine}`);
        log(`${label}: ${(e as Error).message}`);
        for (const rest of scenarios.slice(scenarios.indexOf(sc))) {
          results.get(rest.name)!.set(impl.name, null);
        }
        return;
      }
      results.get(sc.name)!.set(impl.name, await measureScenario(pair, up, s, label));
    }
  } finally {
    await topo.cleanup();
    activeTopologies.delete(topo);
  }
}

/** Name of the appliance column: `twofold up` nodes (wg0 + aes0 in one process per node). */
export const TWOFOLD_UP = "twofold-up";
/** The appliance column with TWOFOLD_OFFLOADS=off. */
export const TWOFOLD_UP_NO_OFFLOAD = "twofold-up-nooffload";
/** The appliance column with TWOFOLD_HANDOFF=off: aes0's datagrams cross the kernel to wg0. */
export const TWOFOLD_UP_NO_HANDOFF = "twofold-up-nohandoff";
/** The appliance columns and the environment of their nodes. */
const UP_VARIANTS: Record<string, Record<string, string>> = {
  [TWOFOLD_UP]: {},
  [TWOFOLD_UP_NO_OFFLOAD]: { TWOFOLD_OFFLOADS: "off" },
  [TWOFOLD_UP_NO_HANDOFF]: { TWOFOLD_HANDOFF: "off" },
};

/** The `twofold up` node of one bench side: fresh keys, the side's veth, wg0 and aes0 addresses. */
function labNode(side: "a" | "b", underlay: string): LabNode {
  return {
    name: `bench-${side}`,
    keys: genKeyPair(),
    underlay,
    wgIp: hostOf(side === "a" ? WG0.cidrA : WG0.cidrB),
    aesIp: hostOf(side === "a" ? AES0.cidrA : AES0.cidrB),
  };
}

/** Installs one fresh PSK for aes0 on both nodes (0600 file in `dir`) and waits until aes0 passes a ping. */
async function openAes0(pair: BenchPair, dir: string, A: LabNode, B: LabNode): Promise<void> {
  const pskFile = `${dir}/bench.psk`;
  await Deno.writeTextFile(pskFile, genPresharedKey() + "\n", { mode: 0o600 });
  await pair.a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", pskFile]);
  await pair.b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", pskFile]);
  if (!(await waitForPing(pair.a, B.aesIp, 15_000))) {
    throw new Error("aes0 passes no traffic after the PSK");
  }
}

/**
 * The double tunnel as the appliance runs it: a `twofold up` node in each namespace (wg0 over the
 * veth, aes0 inside it), the same PSK installed on both sides through the UAPI, measured through aes0.
 */
async function benchTwofoldUp(
  column: string,
  scenario: Scenario | undefined,
  s: Settings,
  results: Results,
  notes: string[],
) {
  const env = UP_VARIANTS[column];
  for (const [name, byImpl] of results) if (name !== scenario?.name) byImpl.set(column, null);
  if (!scenario) return;
  const topo = new Topology();
  activeTopologies.add(topo);
  const dir = await Deno.makeTempDir({ prefix: "tfb-up-" });
  try {
    const pair = await setupPair(topo);
    const A = labNode("a", pair.underlayA);
    const B = labNode("b", pair.underlayB);
    log(`${column}: starting a twofold up node in tfb-a and tfb-b`);
    const procA = await startTwofoldUp(pair.a, await writeNodeConfig(dir, A, [B]), { env });
    const procB = await startTwofoldUp(pair.b, await writeNodeConfig(dir, B, [A]), { env });
    await openAes0(pair, dir, A, B);
    const impl: Implementation = {
      name: column,
      command: [],
      startTimeoutMs: 20_000,
      unavailable: () => null,
    };
    const layer: LayerHandle = {
      spec: { ...AES0, ifname: "node" },
      impl,
      ipA: A.aesIp,
      ipB: B.aesIp,
      procA,
      procB,
    };
    results.get(scenario.name)!.set(
      column,
      await measureScenario(pair, [layer], s, `${column} ${scenario.name}`),
    );
  } catch (e) {
    notes.push(`${column}: skipped: ${(e as Error).message.split("\n")[0]}`);
    results.get(scenario.name)!.set(column, null);
  } finally {
    await topo.cleanup();
    activeTopologies.delete(topo);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Rules in the filter-on run's policy (the figure: lockdown + 50 rules). */
export const FILTER_BENCH_RULES = 50;
/** iperf3's port, opened by the lockdown list and by one of the policy rules. */
export const IPERF_PORT = IPERF3_PORT;

/** Gbit/s medians of one `twofold up` pair, through wg0 and through aes0. */
export interface FilterRun {
  wg0: ScenarioResult;
  aes0: ScenarioResult;
}

/** A `twofold up` pair measured through wg0 IPs and AES IPs, the packet filter on or off. */
async function benchTwofoldUpFilter(s: Settings, filterOn: boolean): Promise<FilterRun> {
  const topo = new Topology();
  activeTopologies.add(topo);
  const dir = await Deno.makeTempDir({ prefix: "tfb-flt-" });
  try {
    const pair = await setupPair(topo);
    const A = labNode("a", pair.underlayA);
    const B = labNode("b", pair.underlayB);
    const config = async (self: LabNode, peer: LabNode) => {
      const path = await writeNodeConfig(dir, self, [peer]);
      const raw = JSON.parse(await Deno.readTextFile(path));
      raw.lockdown = { extraPorts: [`tcp/${IPERF_PORT}`] };
      const filler = Array.from({ length: FILTER_BENCH_RULES - 2 }, (_, i) => ({
        from: peer.name,
        to: self.name,
        proto: i % 2 === 0 ? "tcp" : "udp",
        ports: [`${10000 + 10 * i}-${10005 + 10 * i}`],
      }));
      raw.policies = {
        groups: { edges: [A.name, B.name] },
        rules: [
          ...filler,
          { from: "edges", to: "edges", proto: "tcp", ports: [String(IPERF_PORT)] },
          { from: "edges", to: "edges", proto: "icmp" },
        ],
      };
      await Deno.writeTextFile(path, JSON.stringify(raw, null, 2));
      return path;
    };
    const env: Record<string, string> = filterOn ? {} : { TWOFOLD_BENCH_NO_FILTER: "1" };
    const procA = await startTwofoldUp(pair.a, await config(A, B), { env });
    const procB = await startTwofoldUp(pair.b, await config(B, A), { env });
    await openAes0(pair, dir, A, B);
    const impl: Implementation = {
      name: TWOFOLD_UP,
      command: [],
      startTimeoutMs: 20_000,
      unavailable: () => null,
    };
    const layer = (ipA: string, ipB: string): LayerHandle => ({
      spec: { ...AES0, ifname: "node" },
      impl,
      ipA,
      ipB,
      procA,
      procB,
    });
    const label = `${TWOFOLD_UP} filter ${filterOn ? "on" : "off"}`;
    const tcpOnly: Settings = { ...s, udpMbps: null }; // the filter row compares TCP only
    return {
      wg0: await measureScenario(pair, [layer(A.wgIp, B.wgIp)], tcpOnly, `${label} wg0`),
      aes0: await measureScenario(pair, [layer(A.aesIp, B.aesIp)], tcpOnly, `${label} aes0`),
    };
  } finally {
    await topo.cleanup();
    activeTopologies.delete(topo);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Several runs as one: every iperf3 figure of every run (the table takes medians). */
function pooled(runs: FilterRun[]): FilterRun {
  const pool = (layer: "wg0" | "aes0"): ScenarioResult => ({
    ...runs[0][layer],
    load: runs.flatMap((r) => r[layer].load),
    tcp1: runs.flatMap((r) => r[layer].tcp1),
    tcp4: runs.flatMap((r) => r[layer].tcp4),
    tcp1CpuSeconds: runs.reduce((sum, r) => sum + r[layer].tcp1CpuSeconds, 0),
    tcp1Bytes: runs.reduce((sum, r) => sum + r[layer].tcp1Bytes, 0),
  });
  return { wg0: pool("wg0"), aes0: pool("aes0") };
}

/** Runs `bench/aead.ts`'s `aeadMicroBench()` if present and returns printable lines. */
async function aeadLines(): Promise<string[]> {
  const url = new URL("./aead.ts", import.meta.url);
  try {
    Deno.statSync(url);
  } catch {
    return ["AEAD micro-bench: skipped (bench/aead.ts not present)"];
  }
  const mod = await import(url.href) as { aeadMicroBench?: () => unknown };
  if (typeof mod.aeadMicroBench !== "function") {
    return ["AEAD micro-bench: skipped (bench/aead.ts does not export aeadMicroBench())"];
  }
  const r = await mod.aeadMicroBench();
  if (typeof r === "string") return ["AEAD micro-bench:", r];
  if (Array.isArray(r)) {
    return [
      "AEAD micro-bench:",
      ...r.map((x) => `  ${typeof x === "string" ? x : JSON.stringify(x)}`),
    ];
  }
  if (r !== null && typeof r === "object") {
    return ["AEAD micro-bench:", ...Object.entries(r).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)];
  }
  return [`AEAD micro-bench: ${String(r)}`];
}

function envInt(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

function machineLine(s: Settings): string {
  let cpu = "?";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "?";
  } catch { /* not Linux */ }
  const udp = s.udpMbps === null ? "UDP=0" : `UDP_MBPS=${s.udpMbps}`;
  return `twofold bench: DUR=${s.dur}s REPS=${s.reps} PING_N=${s.pingN} ${udp}; ${navigator.hardwareConcurrency} cores (${cpu}); ` +
    `kernel ${Deno.osRelease()}; deno ${Deno.version.deno}`;
}

/** Entry point of `deno task bench`. Returns the process exit code. */
export async function main(): Promise<number> {
  const missing = [requireRoot(), requireTun(), ...["ip", "ping", "iperf3", "wg", "ss"].map(requireBinary)]
    .filter((m) => m !== null);
  if (missing.length > 0) {
    console.error(`bench cannot run: ${missing.join("; ")}`);
    return 2;
  }
  const s: Settings = {
    dur: envInt("DUR", 10),
    reps: envInt("REPS", 3),
    pingN: envInt("PING_N", 200),
    udpMbps: Deno.env.get("UDP") === "0" ? null : envInt("UDP_MBPS", DEFAULT_UDP_MBPS),
  };
  const defaultImpls = ["wireguard-go", "twofold", TWOFOLD_NO_OFFLOAD, TWOFOLD_UP, TWOFOLD_UP_NO_OFFLOAD];
  const wanted = (Deno.env.get("IMPLS") ?? defaultImpls.join(",")).split(",").map((x) => x.trim())
    .filter((x) => x);
  const all = defaultImplementations();
  const isUp = (w: string) => w in UP_VARIANTS;
  const unknown = wanted.filter((w) => !isUp(w) && !all.some((i) => i.name === w));
  if (unknown.length > 0) throw new Error(`unknown IMPLS entries: ${unknown.join(", ")}`);
  const impls = wanted.filter((w) => !isUp(w)).map((w) => all.find((i) => i.name === w)!);
  const upColumns = wanted.filter(isUp);
  const scenarios: Scenario[] = [{ name: "single tunnel: wg0", layers: [WG0] }];
  if (Deno.env.get("DOUBLE") !== "0") {
    scenarios.push({ name: "double tunnel: aes0 inside wg0", layers: [WG0, AES0] });
  }

  let interrupted = false;
  const onSignal = async () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping daemons and deleting namespaces");
    for (const t of activeTopologies) await t.cleanup().catch((e) => console.error(String(e)));
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    log(machineLine(s));
    log(`wireguard-go: ${findBinary("wireguard-go") ?? "not found"}`);
    const results: Results = new Map(scenarios.map((sc) => [sc.name, new Map()]));
    const notes: string[] = [];
    for (const impl of impls) {
      log(`== ${impl.name}: ${impl.command.join(" ")} IFNAME`);
      await benchImplementation(impl, scenarios, s, results, notes);
    }
    for (const column of upColumns) {
      log(`== ${column}: main.ts up --config NODE.json in each namespace`);
      await benchTwofoldUp(column, scenarios.find((sc) => sc.layers.length === 2), s, results, notes);
    }
    let filterTable = "";
    if (Deno.env.get("FILTER") !== "0") {
      try {
        log(`== ${TWOFOLD_UP}: packet filter on, then off`);
        // On and off alternate (FILTER_ROUNDS times each), so a load that drifts during the run weighs
        // on both; the figures are medians over every run.
        const runs: { on: FilterRun[]; off: FilterRun[] } = { on: [], off: [] };
        for (let round = 0; round < envInt("FILTER_ROUNDS", 2); round++) {
          runs.on.push(await benchTwofoldUpFilter(s, true));
          runs.off.push(await benchTwofoldUpFilter(s, false));
        }
        filterTable = formatFilterTable(pooled(runs.on), pooled(runs.off));
      } catch (e) {
        notes.push(`packet filter row: skipped: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    const lines = Deno.env.get("AEAD") === "0"
      ? []
      : await aeadLines().catch((e) => [`AEAD micro-bench: failed: ${(e as Error).message.split("\n")[0]}`]);
    console.log("");
    console.log(machineLine(s));
    console.log("");
    console.log(formatTable(results, [...impls.map((i) => i.name), ...upColumns], s.udpMbps));
    if (filterTable) console.log(filterTable + "\n");
    for (const n of notes) console.log(`note: ${n}`);
    for (const l of lines) console.log(l);
    return 0;
  } finally {
    for (const t of activeTopologies) await t.cleanup().catch((e) => console.error(String(e)));
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
