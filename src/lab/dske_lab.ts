/**
 * A DSKE lab: two `twofold up` nodes and three `twofold hub`s in network namespaces on one bridged
 * underlay, with PSRD provisioned for every (node, hub) pair in a private temp dir. Used by
 * `twofold demo`; tests may use it too. {@link DskeLab.cleanup} kills every process it started (by
 * PID), deletes its namespaces and removes its temp dir; it is idempotent and safe to call while a
 * start is still in progress (call it again once that settled).
 * @module
 */
import { createPsrdPair } from "../dske/psrd-file.ts";
import { PsrdStore } from "../dske/psrd-store.ts";
import { decodeBase64 } from "../encoding.ts";
import { bridgeSegment, type Netns, type Proc, type Topology } from "./netns.ts";
import {
  hubPeerEntry,
  type LabHub,
  type LabNode,
  startTwofoldHub,
  startTwofoldUp,
  writeHubConfig,
  writeNodeConfig,
} from "./twofold_node.ts";
import { genKeyPair } from "./wg_device.ts";

/** Options for {@link DskeLab.create}. */
export interface DskeLabOptions {
  /** Prefix of the namespaces, interfaces and temp dir (at most 8 characters, e.g. "tfdemo-"). */
  prefix: string;
  /** Underlay /24 as its first three octets (nodes .1 and .2, hubs .11 to .13), e.g. "10.235.0". */
  underlayNet: string;
  /** wg0 addresses as three octets inside 100.64.0.0/10 (same host numbers), e.g. "100.64.3". */
  wgNet: string;
  /** aes0 addresses as three octets inside 100.127.0.0/16 (nodes .1 and .2), e.g. "100.127.3". */
  aesNet: string;
  /** DSKE threshold k (default 2). */
  k?: number;
  /** Key rotation interval in seconds (default 5). */
  rotationIntervalSeconds?: number;
  /** Bytes of PSRD per direction and pair (default 256 KiB). */
  psrdBytes?: number;
  /** Also write each process's output to `<logDir>/<name>.log`. */
  logDir?: string;
}

/** Two nodes and three hubs in namespaces; nothing runs until {@link startNodes} / {@link startHubs}. */
export class DskeLab {
  /** Temp dir (0700) with keys (0600), configs and state dirs (PSRD pools, 0600 files). */
  readonly dir: string;
  /** The two nodes ("node-a", "node-b"). */
  readonly nodes: LabNode[];
  /** The three hubs ("hub-1" … "hub-3"). */
  readonly hubs: LabHub[];
  /** The bridge namespace. */
  readonly switchNs: Netns;
  /** One namespace per node, in the order of {@link nodes}. */
  readonly nodeNs: Netns[];
  /** One namespace per hub, in the order of {@link hubs}. */
  readonly hubNs: Netns[];
  /** Running node processes (null until started). */
  readonly nodeProcs: (Proc | null)[];
  /** Running hub processes (null while stopped). */
  readonly hubProcs: (Proc | null)[];
  readonly #topo: Topology;
  readonly #nodeCfgs: string[];
  readonly #hubCfgs: string[];
  readonly #logDir: string | undefined;
  readonly #started: Proc[] = [];
  #removed = false;

  private constructor(init: {
    dir: string;
    topo: Topology;
    nodes: LabNode[];
    hubs: LabHub[];
    switchNs: Netns;
    nodeNs: Netns[];
    hubNs: Netns[];
    nodeCfgs: string[];
    hubCfgs: string[];
    logDir?: string;
  }) {
    this.dir = init.dir;
    this.#topo = init.topo;
    this.nodes = init.nodes;
    this.hubs = init.hubs;
    this.switchNs = init.switchNs;
    this.nodeNs = init.nodeNs;
    this.hubNs = init.hubNs;
    this.#nodeCfgs = init.nodeCfgs;
    this.#hubCfgs = init.hubCfgs;
    this.#logDir = init.logDir;
    this.nodeProcs = init.nodes.map(() => null);
    this.hubProcs = init.hubs.map(() => null);
  }

  /**
   * Builds the namespaces (`<prefix>sw` with the bridge, `<prefix>a`, `<prefix>b`, `<prefix>hub1..3`),
   * the temp dir with keys and configs, and the PSRD pools. `topo` tracks the namespaces; when this
   * throws, the caller's cleanup of `topo` and `onDir`'s directory removes what was made.
   */
  static async create(
    topo: Topology,
    opts: DskeLabOptions,
    onDir: (dir: string) => void = () => {},
  ): Promise<DskeLab> {
    if (!/^[a-z0-9-]{1,8}$/.test(opts.prefix)) {
      throw new Error(`lab prefix too long or invalid: ${opts.prefix}`);
    }
    const p = opts.prefix;
    const nodes: LabNode[] = ["a", "b"].map((s, i) => ({
      name: `node-${s}`,
      keys: genKeyPair(),
      underlay: `${opts.underlayNet}.${i + 1}`,
      wgIp: `${opts.wgNet}.${i + 1}`,
      aesIp: `${opts.aesNet}.${i + 1}`,
    }));
    const hubs: LabHub[] = [1, 2, 3].map((i) => ({
      name: `hub-${i}`,
      keys: genKeyPair(),
      underlay: `${opts.underlayNet}.${10 + i}`,
      wgIp: `${opts.wgNet}.${10 + i}`,
    }));
    const dir = await Deno.makeTempDir({ prefix: p });
    onDir(dir);
    await Deno.chmod(dir, 0o700);

    const switchNs = await topo.netns(`${p}sw`, { replaceExisting: true });
    const nodeNs: Netns[] = [];
    for (const s of ["a", "b"]) nodeNs.push(await topo.netns(`${p}${s}`, { replaceExisting: true }));
    const hubNs: Netns[] = [];
    for (const i of [1, 2, 3]) hubNs.push(await topo.netns(`${p}hub${i}`, { replaceExisting: true }));
    await bridgeSegment(switchNs, [
      ...nodes.map((n, i) => ({ ns: nodeNs[i], ifname: `${p}v${i}`, cidr: `${n.underlay}/24` })),
      ...hubs.map((h, i) => ({ ns: hubNs[i], ifname: `${p}h${i}`, cidr: `${h.underlay}/24` })),
    ]);

    // PSRD for every (node, hub) pair: the node's copy into its state dir, the hub's into the hub's.
    // Each hub's copies share one hub id. Pools are written 0600 by the store; no .psrd file is left.
    const bytes = opts.psrdBytes ?? 256 * 1024;
    const hubIds = hubs.map(() => crypto.getRandomValues(new Uint8Array(16)));
    for (const n of nodes) {
      const nodeStore = await PsrdStore.open(`${dir}/state-${n.name}`);
      try {
        for (const [i, h] of hubs.entries()) {
          const pair = createPsrdPair({
            hubId: hubIds[i],
            hubEndpoint: `${h.wgIp}:51831`,
            peerId: decodeBase64(n.keys.publicKey),
            c2hLen: bytes,
            h2cLen: bytes,
          });
          nodeStore.ingest(pair.client);
          const hubStore = await PsrdStore.open(`${dir}/state-${h.name}`);
          try {
            hubStore.ingest(pair.hub);
          } finally {
            hubStore.close();
          }
          pair.client.data.fill(0);
          pair.hub.data.fill(0);
        }
      } finally {
        nodeStore.close();
      }
    }

    const nodeOpts = {
      rotationIntervalSeconds: opts.rotationIntervalSeconds ?? 5,
      keySource: "dske" as const,
      dskeThreshold: opts.k ?? 2,
      extraPeers: hubs.map(hubPeerEntry),
    };
    const nodeCfgs: string[] = [];
    for (const n of nodes) {
      nodeCfgs.push(await writeNodeConfig(dir, n, nodes.filter((o) => o !== n), nodeOpts));
    }
    const hubCfgs: string[] = [];
    for (const h of hubs) hubCfgs.push(await writeHubConfig(dir, h, nodes));
    return new DskeLab({
      dir,
      topo,
      nodes,
      hubs,
      switchNs,
      nodeNs,
      hubNs,
      nodeCfgs,
      hubCfgs,
      logDir: opts.logDir,
    });
  }

  #logFile(name: string): string | undefined {
    return this.#logDir ? `${this.#logDir}/${name}.log` : undefined;
  }

  #check(): void {
    if (this.#removed) throw new Error("the lab was cleaned up");
  }

  /** Starts both nodes in parallel and waits until each says it is up. */
  async startNodes(env: Record<string, string> = {}): Promise<Proc[]> {
    this.#check();
    const procs = await Promise.all(this.nodes.map(async (n, i) => {
      const proc = await startTwofoldUp(this.nodeNs[i], this.#nodeCfgs[i], {
        env,
        logFile: this.#logFile(n.name),
      });
      this.#started.push(proc);
      this.nodeProcs[i] = proc;
      return proc;
    }));
    this.#check();
    return procs;
  }

  /** Starts hub `i` (0-based) and waits until it says it is up. */
  async startHub(i: number, env: Record<string, string> = {}): Promise<Proc> {
    this.#check();
    const proc = await startTwofoldHub(this.hubNs[i], this.#hubCfgs[i], {
      env,
      logFile: this.#logFile(`${this.hubs[i].name}-${Date.now()}`),
    });
    this.#started.push(proc);
    this.hubProcs[i] = proc;
    this.#check();
    return proc;
  }

  /** Starts every hub in parallel. */
  async startHubs(env: Record<string, string> = {}): Promise<Proc[]> {
    return await Promise.all(this.hubs.map((_, i) => this.startHub(i, env)));
  }

  /** Stops hub `i` with SIGTERM (SIGKILL after 3 s) and waits for it to exit. */
  async stopHub(i: number): Promise<void> {
    const proc = this.hubProcs[i];
    this.hubProcs[i] = null;
    await proc?.kill("SIGTERM");
  }

  /** Starts a long-running command (e.g. a ping) in node `i`'s namespace; cleanup stops it. */
  spawnInNode(i: number, cmd: string[]): Proc {
    this.#check();
    const proc = this.nodeNs[i].spawn(cmd);
    this.#started.push(proc);
    return proc;
  }

  /** PIDs of the processes the lab started that are still running. */
  get pids(): number[] {
    return this.#started.filter((p) => !p.exited).map((p) => p.pid);
  }

  /**
   * Kills every process the lab started (by PID, newest first), deletes the namespaces and removes the
   * temp dir. Idempotent; call it again after an interrupted start settles to catch a late process.
   */
  async cleanup(): Promise<void> {
    this.#removed = true;
    await removeLab(this.#topo, this.#started, this.dir);
  }
}

/**
 * Kills `procs` (newest first), cleans up `topo` and removes `dir` (when given). Collects every error
 * and throws them together at the end, so one failure never leaves the rest behind.
 */
export async function removeLab(topo: Topology, procs: Proc[], dir: string | null): Promise<void> {
  const errors: unknown[] = [];
  for (const p of [...procs].reverse()) await p.kill().catch((e) => errors.push(e));
  await topo.cleanup().catch((e) => errors.push(e));
  if (dir !== null) {
    await Deno.remove(dir, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) errors.push(e);
    });
  }
  if (errors.length > 0) throw new AggregateError(errors, "removing the lab failed");
}
