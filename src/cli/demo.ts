/**
 * `twofold demo`: shows twofold's two layers and DSKE working on this machine without touching its
 * real network. It builds namespaces for two `twofold up` nodes and three `twofold hub`s on one
 * bridged underlay (k = 2, rotation every 5 s), provisions PSRD for every (node, hub) pair, shows the
 * aes0 gate closed, then opened by DSKE, pings through aes0, shows a rotation, stops a hub and shows
 * the next rotation, all while a ping runs without loss; then prints a summary. It removes everything
 * it made (processes by PID, namespaces, the temp dir) on success, on failure and on SIGINT/SIGTERM
 * (exit 130). Exit 0 only when every step shown held; 1 with a one-line reason otherwise; 2 when a
 * prerequisite is missing.
 * @module
 */
import { parseArgs } from "node:util";
import type { DskeLab } from "../lab/dske-lab.ts";
import { type Proc, sleep, Topology } from "../lab/netns.ts";
import { ping } from "../lab/measure.ts";
import { requireBinary, requireRoot, requireTun } from "../lab/prereq.ts";
import { logLevelFromEnvironment, setLogLevel } from "../log.ts";
import { uapiGet } from "../uapi/client.ts";
import { usageOf } from "./help.ts";
import { CliError, optionError } from "./errors.ts";
import type { NodeStatus } from "../admin/model.ts";

const USAGE = usageOf("demo");
const PREFIX = "tfdemo-";
const K = 2;
const ROTATION_S = 5;
const PING_INTERVAL_S = 0.02;
/** How long a rotation may take to show on both nodes: two intervals and a margin. */
const ROTATION_WAIT_MS = (2 * ROTATION_S + 10) * 1000;
/** The steps read the nodes' info lines, whatever TWOFOLD_LOG the operator set. */
const CHILD_ENV = { TWOFOLD_LOG: "info" };

/** The run was interrupted by a signal: stop at the next check. */
class Interrupted extends Error {}

/** A step the demo shows did not hold: the message is the one-line reason. */
class StepFailed extends Error {}

/** What the summary reports. */
interface Findings {
  openedAtS: number;
  epochs: number[];
  hubStopped: string;
  hubStoppedAtS: number;
  hubsInLastRound: number;
  pingSent: number;
  pingLost: number;
  pingFromS: number;
  pingToS: number;
  suites: string[];
}

/** src/lab/dske-lab.ts, imported once the prerequisites are known to hold. */
type LabModule = typeof import("../lab/dske-lab.ts");

/** State shared by the steps and the signal handler. */
interface Run {
  startedMs: number;
  signal: Deno.Signal | null;
  topo: Topology;
  dir: string | null;
  lab: DskeLab | null;
  labModule: LabModule;
  logDir?: string;
}

function elapsedS(run: Run): number {
  return (Date.now() - run.startedMs) / 1000;
}

function stamp(run: Run): string {
  return `[${elapsedS(run).toFixed(1).padStart(4)} s]`;
}

/** Throws {@link Interrupted} once a signal arrived. */
function check(run: Run): void {
  if (run.signal !== null) throw new Interrupted();
}

/** Prints one step line (nothing once interrupted: the clean-up message is the last word). */
function step(run: Run, msg: string): void {
  if (run.signal === null) console.log(`${stamp(run)} ${msg}`);
}

/** Polls `predicate` every 100 ms for up to `ms`; stops early (throwing) when interrupted. */
async function waitFor(run: Run, predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    check(run);
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, "log-dir": { type: "string" } },
    });
  } catch (e) {
    throw optionError("demo", e);
  }
  if (parsed.values.help) throw new CliError(USAGE, 0);
  for (const reason of [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping")]) {
    if (reason) throw new CliError(`demo: ${reason}`);
  }
  // The demo's own lines are the output; the lab's provisioning logs only what needs attention.
  if (!logLevelFromEnvironment()) setLogLevel("warn");
  // Loaded after the checks: the lab pulls in the crypto, and a missing prerequisite is one line, exit 2.
  const labModule = await import("../lab/dske-lab.ts");
  const logDir = parsed.values["log-dir"];
  if (logDir !== undefined) await Deno.mkdir(logDir, { recursive: true, mode: 0o700 });

  const run: Run = {
    startedMs: Date.now(),
    signal: null,
    topo: new Topology(),
    dir: null,
    lab: null,
    labModule,
    logDir,
  };
  let wake!: () => void;
  const signalled = new Promise<"signal">((resolve) => wake = () => resolve("signal"));
  const listeners = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const fn = () => {
      if (run.signal !== null) return; // a second Ctrl-C: the clean-up is already running
      run.signal = sig;
      wake();
    };
    Deno.addSignalListener(sig, fn);
    return [sig, fn] as const;
  });

  const flow = steps(run);
  const outcome = await Promise.race([
    flow.then((f) => ({ kind: "done" as const, f }), (e) => ({ kind: "error" as const, e })),
    signalled.then(() => ({ kind: "signal" as const })),
  ]);
  let code: number;
  if (outcome.kind === "signal" || (outcome.kind === "error" && outcome.e instanceof Interrupted)) {
    console.log(`\ninterrupted (${run.signal}): stopping the demo's processes and removing its namespaces …`);
    await cleanup(run);
    // The steps stop at their next check; a start still in flight may create one more thing: clean again.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([flow.catch(() => {}), new Promise((r) => timer = setTimeout(r, 25_000))]);
    clearTimeout(timer);
    code = 130;
  } else if (outcome.kind === "error") {
    const e = outcome.e;
    const reason = oneLine(e instanceof Error ? e.message : String(e));
    const hint = run.logDir === undefined ? " (rerun with --log-dir DIR to keep every process's log)" : "";
    console.log(`FAILED: ${e instanceof StepFailed ? "" : "unexpected error: "}${reason}${hint}`);
    code = 1;
  } else {
    printSummary(run, outcome.f);
    code = 0;
  }
  const cleaned = await cleanup(run);
  for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  if (run.signal !== null) code = 130;
  else if (!cleaned && code === 0) code = 1;
  console.log(
    `${
      cleaned ? "cleaned up: processes, namespaces and temp files removed" : "clean-up incomplete (see above)"
    }` +
      ` — ${elapsedS(run).toFixed(1)} s in all`,
  );
  return code;
}

/**
 * A message as one line: its first line, and for a multi-line one (a process that did not start,
 * followed by its output) also its last non-empty line, which names the cause.
 */
function oneLine(msg: string): string {
  const lines = msg.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.length > 1 ? `${lines[0]} ${lines.at(-1)}` : (lines[0] ?? "(no message)");
}

/** Removes everything the run made; true when nothing failed (failures are printed, one line each). */
async function cleanup(run: Run): Promise<boolean> {
  try {
    if (run.lab !== null) await run.lab.cleanup();
    else await run.labModule.removeLab(run.topo, [], run.dir);
    return true;
  } catch (e) {
    const errors = e instanceof AggregateError ? e.errors : [e];
    for (const x of errors) console.log(`clean-up: ${(x as Error)?.message?.split("\n")[0] ?? String(x)}`);
    return false;
  }
}

/** The steps, in order; resolves with what the summary reports or throws {@link StepFailed}. */
async function steps(run: Run): Promise<Findings> {
  const lab = await buildUnderlay(run);
  await checkProvisioning(run, lab);
  await startNodes(run, lab);
  await showGateClosed(run, lab);
  const opened = await openGateThroughDske(run, lab);
  await pingThroughAes0(run, lab);
  const rotated = await rotateUnderPing(run, lab, opened.epoch);
  const last = await rotateWithHubDown(run, lab, opened.generator, rotated);
  await showNodeStatus(run, lab, last.epoch);
  return {
    openedAtS: opened.atS,
    epochs: [opened.epoch, rotated.epoch, last.epoch],
    hubStopped: last.hubStopped,
    hubStoppedAtS: last.hubStoppedAtS,
    hubsInLastRound: last.via,
    pingSent: last.ping.sent,
    pingLost: last.ping.lost,
    pingFromS: rotated.pingFromS,
    pingToS: last.pingToS,
    suites: suitesOf(lab.nodeProcs[0]!.output()),
  };
}

/** Step 1: the lab's namespaces on one bridged underlay (its PSRD provisioned, nothing started). */
async function buildUnderlay(run: Run): Promise<DskeLab> {
  console.log(
    `twofold demo: two edge nodes and three DSKE security hubs in namespaces on this machine ` +
      `(k = ${K}, rotation every ${ROTATION_S} s)`,
  );
  const lab = await run.labModule.DskeLab.create(run.topo, {
    prefix: PREFIX,
    underlayNet: "10.235.0",
    wgNet: "100.64.3",
    aesNet: "100.127.3",
    k: K,
    rotationIntervalSeconds: ROTATION_S,
    logDir: run.logDir,
  }, (dir) => run.dir = dir);
  run.lab = lab;
  check(run);
  const [A, B] = lab.nodes;
  step(
    run,
    `1. underlay: bridge in ${lab.switchNs.name}; ${lab.nodeNs[0].name} (${A.name} ${A.underlay}), ` +
      `${lab.nodeNs[1].name} (${B.name} ${B.underlay}), ${PREFIX}hub1..3 (${lab.hubs[0].underlay}-13)`,
  );
  return lab;
}

/** Step 2: every (node, hub) pair has PSRD, and no key or PSRD file is readable by others. */
async function checkProvisioning(run: Run, lab: DskeLab): Promise<void> {
  const insecure = await looseFiles(lab.dir);
  if (insecure.length > 0) throw new StepFailed(`PSRD/key files readable by others: ${insecure.join(", ")}`);
  step(
    run,
    `2. PSRD provisioned for ${lab.nodes.length * lab.hubs.length} (node, hub) pairs, 256 KiB each way, ` +
      `files 0600 in ${lab.dir} (removed at the end)`,
  );
}

/** Step 3: both nodes run `twofold up`; no hub yet. */
async function startNodes(run: Run, lab: DskeLab): Promise<void> {
  const [A, B] = lab.nodes;
  await lab.startNodes(CHILD_ENV);
  check(run);
  step(
    run,
    `3. twofold up: ${A.name} (wg0 ${A.wgIp}, aes0 ${A.aesIp}) and ${B.name} (wg0 ${B.wgIp}, aes0 ${B.aesIp}) ` +
      `running; no hub started yet`,
  );
}

/** Step 4: without DSKE, aes0 carries nothing and has no handshake, while wg0 carries a ping. */
async function showGateClosed(run: Run, lab: DskeLab): Promise<void> {
  const [A, B] = lab.nodes;
  const [nsA] = lab.nodeNs;
  const closedPing = await ping(nsA, B.aesIp, { count: 3, interval: 0.2, timeoutS: 1 });
  const closedHs = await aesHandshakeAgeS(lab, 0);
  const openedEarly = lab.nodeProcs.some((p) => /aes0 gate gate-opened/.test(p!.output()));
  if (closedPing.received !== 0 || closedHs !== null || openedEarly) {
    throw new StepFailed(
      `aes0 was not closed before DSKE (${closedPing.received} replies, handshake ${closedHs ?? "none"})`,
    );
  }
  const wgPing = await ping(nsA, B.wgIp, { count: 3, interval: 0.2, timeoutS: 2 });
  if (wgPing.received === 0) throw new StepFailed(`wg0 ${A.name} -> ${B.name} carried no ping`);
  step(
    run,
    `4. gate CLOSED: ping ${A.name} -> ${B.name} aes0 ${B.aesIp}: ${closedPing.received}/${closedPing.sent} ` +
      `replies, aes0 latest handshake: none (wg0 ${B.wgIp}: ${wgPing.received}/${wgPing.sent}, the outer layer is up)`,
  );
}

/** The gates opened: when, under which epoch, and which node agreed it as generator. */
interface GateOpened {
  atS: number;
  epoch: number;
  generator: number;
}

/** Steps 5 and 6: the hubs start, and DSKE opens both gates with a common epoch. */
async function openGateThroughDske(run: Run, lab: DskeLab): Promise<GateOpened> {
  await lab.startHubs(CHILD_ENV);
  check(run);
  step(run, `5. twofold hub: ${lab.hubs.map((h) => `${h.name} (${h.wgIp})`).join(", ")} running`);

  const opened = await waitFor(
    run,
    () => lab.nodeProcs.every((p) => /aes0 gate gate-opened .*via dske/.test(p!.output())),
    30_000,
  );
  if (!opened) throw new StepFailed("the gates did not open through DSKE within 30 s of the hubs starting");
  const atS = elapsedS(run);
  // A gate can open on a key the nodes agreed by reconciling their epochs (logged as
  // epochs-reconciled, e.g. after a round failed under load): the next rotation then agrees one anew.
  const epoch = commonEpochs(lab)[0] ?? await nextCommonEpoch(run, lab, -1, ROTATION_WAIT_MS) ?? undefined;
  if (epoch === undefined) throw new StepFailed("the gates opened but no common DSKE epoch was logged");
  const generator = lab.nodeProcs.findIndex((p) => /as generator via/.test(p!.output()));
  if (generator < 0) throw new StepFailed("no node logged a key agreed as generator");
  step(
    run,
    `6. gate OPENED by DSKE: epoch ${epoch} agreed on both sides — ${lab.nodes[generator].name}: ` +
      `"${agreedLine(lab.nodeProcs[generator]!, epoch)}"`,
  );
  return { atS, epoch, generator };
}

/** Step 7: aes0 carries every ping, and its handshake is recent. */
async function pingThroughAes0(run: Run, lab: DskeLab): Promise<void> {
  const [A, B] = lab.nodes;
  const [nsA] = lab.nodeNs;
  const reachable = await waitFor(
    run,
    async () => (await ping(nsA, B.aesIp, { count: 1, timeoutS: 1 }).catch(() => null))?.received === 1,
    5000,
  );
  const aesPing = await ping(nsA, B.aesIp, { count: 5, interval: 0.2, timeoutS: 1 });
  const openHs = await aesHandshakeAgeS(lab, 0);
  if (!reachable || aesPing.received !== aesPing.sent || openHs === null) {
    throw new StepFailed(`aes0 did not carry the ping: ${aesPing.received}/${aesPing.sent} replies`);
  }
  step(
    run,
    `7. ping through aes0 ${A.name} -> ${B.aesIp}: ${aesPing.received}/${aesPing.sent} replies, avg ` +
      `${aesPing.rttAvgMs.toFixed(2)} ms; aes0 latest handshake ${openHs} s ago; a ping every ` +
      `${PING_INTERVAL_S * 1000} ms keeps running`,
  );
}

/** The first rotation under a running ping: its epoch, and the ping that keeps running. */
interface Rotated {
  epoch: number;
  pinger: Proc;
  pingFromS: number;
}

/** Step 8: a ping through aes0 starts and keeps running; the next epoch is agreed without a loss. */
async function rotateUnderPing(run: Run, lab: DskeLab, firstEpoch: number): Promise<Rotated> {
  const B = lab.nodes[1];
  const pingFromS = elapsedS(run);
  const pinger = lab.spawnInNode(0, ["ping", "-n", "-i", String(PING_INTERVAL_S), "-W", "1", B.aesIp]);
  const epoch = await nextCommonEpoch(run, lab, firstEpoch, ROTATION_WAIT_MS);
  if (epoch === null) throw new StepFailed(`no rotation after epoch ${firstEpoch} on both sides`);
  const soFar = pingTally(pinger.output());
  if (soFar.lost > 0) throw new StepFailed(`${soFar.lost} ping(s) lost around the rotation`);
  step(
    run,
    `8. ROTATION: epoch ${epoch} agreed on both sides (after ${firstEpoch}); ping: ${soFar.received} ` +
      `replies so far, 0 lost`,
  );
  return { epoch, pinger, pingFromS };
}

/** The rotation with a hub down, and the ping's final tally. */
interface RotatedWithHubDown {
  epoch: number;
  hubStopped: string;
  hubStoppedAtS: number;
  via: number;
  pingToS: number;
  ping: { sent: number; lost: number };
}

/** Steps 9 and 10: a hub stops; the next epoch comes through the others; the ping lost nothing. */
async function rotateWithHubDown(
  run: Run,
  lab: DskeLab,
  generator: number,
  rotated: Rotated,
): Promise<RotatedWithHubDown> {
  const stopped = 1;
  const hubStoppedAtS = elapsedS(run);
  await lab.stopHub(stopped);
  check(run);
  step(run, `9. ${lab.hubs[stopped].name} STOPPED (SIGTERM): ${lab.hubs.length - 1} hubs left, k = ${K}`);

  const third = await nextCommonEpoch(run, lab, rotated.epoch, ROTATION_WAIT_MS);
  if (third === null) throw new StepFailed(`no rotation after epoch ${rotated.epoch} with a hub down`);
  const via = Number(agreedLine(lab.nodeProcs[generator]!, third).match(/via (\d+) hubs/)?.[1] ?? NaN);
  if (via !== lab.hubs.length - 1) {
    throw new StepFailed(`the rotation with a hub down used ${via} hubs, not ${lab.hubs.length - 1}`);
  }
  await sleep(500); // a moment of traffic on the new key's session before the tally
  check(run);
  const pingToS = elapsedS(run);
  await rotated.pinger.kill("SIGINT");
  const tally = pingTally(rotated.pinger.output());
  if (tally.received < 100) throw new StepFailed(`the ping did not run (${tally.received} replies)`);
  if (tally.lost > 0) throw new StepFailed(`${tally.lost} of ${tally.sent} pings through aes0 lost`);
  step(
    run,
    `10. ROTATION with ${
      lab.hubs[stopped].name
    } down: epoch ${third} agreed on both sides via ${via} hubs; ` +
      `ping: ${tally.sent} sent, 0 lost`,
  );
  return { epoch: third, hubStopped: lab.hubs[stopped].name, hubStoppedAtS, via, pingToS, ping: tally };
}

/** Step 11: what an operator sees: node-a's admin API (the same table `twofold status` prints). */
async function showNodeStatus(run: Run, lab: DskeLab, epoch: number): Promise<void> {
  const { AdminClient } = await import("./admin-client.ts");
  const { renderStatusTable } = await import("./status.ts");
  const client = new AdminClient({ kind: "unix", path: lab.adminSocket(0) });
  let st: NodeStatus;
  try {
    st = await client.json<NodeStatus>("GET", "/v1/status");
  } catch (e) {
    throw new StepFailed(`node-a's admin API did not answer: ${(e as Error).message}`);
  } finally {
    client.close();
  }
  const peer = st.peers.find((p) => p.name === lab.nodes[1].name);
  if (peer?.aes0?.gate.state !== "open" || peer.aes0.keyEpoch !== epoch) {
    throw new StepFailed(`node-a's status does not show node-b's gate open at epoch ${epoch}`);
  }
  step(run, `11. twofold status on node-a (admin API, ${lab.adminSocket(0)}):`);
  for (const line of renderStatusTable(st).split("\n")) console.log(`      ${line}`);
}

function printSummary(run: Run, f: Findings): void {
  const rows: [string, string][] = [
    ["layers", f.suites.join("; ") || "(not logged)"],
    ["gate", `closed until DSKE; opened at ${f.openedAtS.toFixed(1)} s with epoch ${f.epochs[0]}`],
    ["rotations", `epochs ${f.epochs.join(" -> ")} (every ${ROTATION_S} s), the same on both nodes`],
    [
      "hub stopped",
      `${f.hubStopped} at ${f.hubStoppedAtS.toFixed(1)} s; the next key came through ${f.hubsInLastRound} ` +
      `hubs (k = ${K})`,
    ],
    [
      "ping via aes0",
      `${f.pingSent} sent, ${f.pingLost} lost, every ${PING_INTERVAL_S * 1000} ms from ` +
      `${f.pingFromS.toFixed(1)} s to ${f.pingToS.toFixed(1)} s`,
    ],
    ["elapsed", `${elapsedS(run).toFixed(1)} s before clean-up`],
  ];
  console.log("\nsummary: OK — aes0 opened only through DSKE, rotated twice and survived a hub stop");
  for (const [k, v] of rows) console.log(`  ${k.padEnd(14)} ${v}`);
}

/** Files under `dir` (keys, PSRD pools and state) whose mode lets group or others read them. */
async function looseFiles(dir: string): Promise<string[]> {
  const bad: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const path = `${d}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && (/\.key$/.test(e.name) || path.includes("/psrd/"))) {
        const mode = (await Deno.stat(path)).mode ?? 0;
        if ((mode & 0o077) !== 0) bad.push(path.slice(dir.length + 1));
      }
    }
  };
  await walk(dir);
  return bad;
}

/** Seconds since node `i`'s aes0 completed a handshake with its peer (UAPI), or null for none. */
async function aesHandshakeAgeS(lab: DskeLab, i: number): Promise<number | null> {
  const reply = await uapiGet(`${lab.nodeNs[i].runDir}/aes0.sock`);
  const sec = Number(reply.pairs.find(([k]) => k === "last_handshake_time_sec")?.[1] ?? 0);
  return sec > 0 ? Math.max(0, Math.round(Date.now() / 1000 - sec)) : null;
}

/** Epochs of a node log's `dske key-agreed … epoch N` lines, in order. */
function agreedEpochs(log: string): number[] {
  return [...log.matchAll(/dske key-agreed with \S+ epoch (\d+)/g)].map((m) => Number(m[1]));
}

/** Epochs agreed on both nodes, in order. */
function commonEpochs(lab: DskeLab): number[] {
  const [a, b] = lab.nodeProcs.map((p) => agreedEpochs(p!.output()));
  return a.filter((e) => b.includes(e));
}

/** Waits until both nodes agreed an epoch above `after`; returns it, or null after `ms`. */
async function nextCommonEpoch(run: Run, lab: DskeLab, after: number, ms: number): Promise<number | null> {
  let found: number | null = null;
  await waitFor(run, () => {
    found = commonEpochs(lab).find((e) => e > after) ?? null;
    return found !== null;
  }, ms);
  return found;
}

/** The `dske key-agreed … epoch N: reason` part of a node's log line for `epoch`. */
function agreedLine(proc: Proc, epoch: number): string {
  const m = proc.output().match(new RegExp(`dske key-agreed with \\S+ epoch ${epoch}: [^\\n]*`));
  return m?.[0] ?? `epoch ${epoch}`;
}

/** The suites of a node's `interface X up: <construction>, AEAD <name> (<backend>)` lines. */
function suitesOf(log: string): string[] {
  return [...log.matchAll(/interface (\S+) up: (\S+), AEAD (\S+) \((\S+)\)/g)]
    .map((m) => `${m[1]} ${m[2]} (${m[3]}, ${m[4]})`);
}

/**
 * Replies of a running or finished `ping -n`: `received`, `lost` (sequence numbers below the last
 * reply that never came back — the one in flight when stopped is not a loss) and `sent`.
 */
function pingTally(out: string): { sent: number; received: number; lost: number } {
  const seqs = new Set([...out.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1])));
  const last = seqs.size === 0 ? 0 : Math.max(...seqs);
  const summary = out.match(/(\d+) packets transmitted/);
  const sent = summary ? Math.max(Number(summary[1]), last) : last;
  return { sent, received: seqs.size, lost: last - seqs.size };
}
