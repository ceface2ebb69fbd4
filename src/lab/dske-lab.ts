/**
 * A DSKE lab: two `twofold up` nodes and three `twofold hub`s in network namespaces on one bridged
 * underlay, with PSRD provisioned for every (node, hub) pair in a private temp dir. Used by
 * `twofold demo` and the DSKE integration tests. {@link DskeLab.cleanup} kills every process it
 * started (by PID), deletes its namespaces and removes its temp dir; it is idempotent and safe to
 * call while a start is still in progress (call it again once that settled). {@link DskeLab.run}
 * wraps create, use and cleanup for a test.
 * @module
 */
import { createPsrdPair, type PsrdFile } from "../dske/psrd-file.ts";
import { PsrdStore } from "../dske/psrd-store.ts";
import { decodeBase64 } from "../encoding.ts";
import { bridgeSegment, type Netns, type Proc, Topology } from "./netns.ts";
import {
  hubPeerEntry,
  type LabHub,
  type LabNode,
  startTwofoldHub,
  startTwofoldUp,
  writeHubConfig,
  writeNodeConfig,
} from "./twofold-node.ts";
import { genKeyPair } from "./wg-device.ts";

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
  /** Maximum key age in seconds before the gate closes (default: the node's, 3 × rotation). */
  maxKeyAgeSeconds?: number;
  /**
   * `persistentKeepalive` (seconds) on every peer of the node configs (nodes and hubs), so that a
   * restarted node handshakes on wg0 at once (default: none).
   */
  persistentKeepalive?: number;
  /** Bytes of PSRD per direction and pair (default 256 KiB). */
  psrdBytes?: number;
  /** Also write each process's output to `<logDir>/<name>.log` (`<name>-<n>.log` for its n-th restart). */
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
  /** Running node processes (null until started and while stopped). */
  readonly nodeProcs: (Proc | null)[];
  /** Running hub processes (null while stopped). */
  readonly hubProcs: (Proc | null)[];
  /** Config file of each node, in the order of {@link nodes}. */
  readonly nodeConfigs: readonly string[];
  /** Config file of each hub, in the order of {@link hubs}. */
  readonly hubConfigs: readonly string[];
  readonly #topo: Topology;
  readonly #hubIds: Uint8Array[];
  readonly #psrdBytes: number;
  readonly #logDir: string | undefined;
  readonly #starts = new Map<string, number>();
  readonly #started: Proc[] = [];
  #removed = false;

  private constructor(init: {
    dir: string;
    topo: Topology;
    nodes: LabNode[];
    hubs: LabHub[];
    hubIds: Uint8Array[];
    psrdBytes: number;
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
    this.#hubIds = init.hubIds;
    this.#psrdBytes = init.psrdBytes;
    this.switchNs = init.switchNs;
    this.nodeNs = init.nodeNs;
    this.hubNs = init.hubNs;
    this.#logDir = init.logDir;
    this.nodeProcs = init.nodes.map(() => null);
    this.hubProcs = init.hubs.map(() => null);
    this.nodeConfigs = init.nodeCfgs;
    this.hubConfigs = init.hubCfgs;
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

    const nodeOpts = {
      rotationIntervalSeconds: opts.rotationIntervalSeconds ?? 5,
      maxKeyAgeSeconds: opts.maxKeyAgeSeconds,
      keySource: "dske" as const,
      dskeThreshold: opts.k ?? 2,
      extraPeers: hubs.map(hubPeerEntry),
    };
    const nodeCfgs: string[] = [];
    for (const n of nodes) {
      const path = await writeNodeConfig(dir, n, nodes.filter((o) => o !== n), nodeOpts);
      if (opts.persistentKeepalive !== undefined) {
        const cfg = JSON.parse(await Deno.readTextFile(path));
        for (const peer of cfg.peers) peer.persistentKeepalive ??= opts.persistentKeepalive;
        await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
      }
      nodeCfgs.push(path);
    }
    const hubCfgs: string[] = [];
    for (const h of hubs) hubCfgs.push(await writeHubConfig(dir, h, nodes));

    const lab = new DskeLab({
      dir,
      topo,
      nodes,
      hubs,
      // Each hub's copies share one hub id.
      hubIds: hubs.map(() => crypto.getRandomValues(new Uint8Array(16))),
      psrdBytes: opts.psrdBytes ?? 256 * 1024,
      switchNs,
      nodeNs,
      hubNs,
      nodeCfgs,
      hubCfgs,
      logDir: opts.logDir,
    });
    // PSRD for every (node, hub) pair: the node's copy into its state dir (the one its config names),
    // the hub's into the hub's. Pools are written 0600 by the store; no .psrd file is left.
    for (const n of nodes) {
      const nodeStore = await PsrdStore.open(lab.stateDir(n));
      try {
        for (const [i, h] of hubs.entries()) {
          const pair = lab.psrdPair(i, n.keys.publicKey);
          nodeStore.ingest(pair.client);
          const hubStore = await PsrdStore.open(lab.stateDir(h));
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
    return lab;
  }

  /**
   * Creates a lab on a fresh {@link Topology}, runs `fn` with it and always removes everything
   * (processes, namespaces, temp dir), also when creating the lab or `fn` fails.
   */
  static async run<T>(opts: DskeLabOptions, fn: (lab: DskeLab) => Promise<T>): Promise<T> {
    const topo = new Topology();
    let dir: string | null = null;
    let lab: DskeLab | null = null;
    try {
      lab = await DskeLab.create(topo, opts, (d) => dir = d);
      return await fn(lab);
    } finally {
      if (lab !== null) await lab.cleanup();
      else await removeLab(topo, [], dir);
    }
  }

  /** The state dir (PSRD pool) of a node or hub of this lab. */
  stateDir(member: LabNode | LabHub): string {
    return `${this.dir}/state-${member.name}`;
  }

  /** The admin API socket of node `i` (each lab node gets its own, see `writeNodeConfig`). */
  adminSocket(i: number): string {
    return `${this.dir}/${this.nodes[i].name}.admin.sock`;
  }

  /**
   * A fresh PSRD pair between hub `h` (0-based; its id and endpoint) and the node with public key
   * `peerPublicKey` (base64), {@link DskeLabOptions.psrdBytes} each way. The caller ingests it.
   */
  psrdPair(h: number, peerPublicKey: string): { client: PsrdFile; hub: PsrdFile } {
    return createPsrdPair({
      hubId: this.#hubIds[h],
      hubEndpoint: `${this.hubs[h].wgIp}:51831`,
      peerId: decodeBase64(peerPublicKey),
      c2hLen: this.#psrdBytes,
      h2cLen: this.#psrdBytes,
    });
  }

  #logFile(name: string): string | undefined {
    if (!this.#logDir) return undefined;
    const n = this.#starts.get(name) ?? 0;
    this.#starts.set(name, n + 1);
    return `${this.#logDir}/${n === 0 ? name : `${name}-${n}`}.log`;
  }

  #check(): void {
    if (this.#removed) throw new Error("the lab was cleaned up");
  }

  /** Runs `start`, records its process as `procs[i]` (and for cleanup) and returns it. */
  async #start(procs: (Proc | null)[], i: number, start: () => Promise<Proc>): Promise<Proc> {
    this.#check();
    const proc = await start();
    this.#started.push(proc);
    procs[i] = proc;
    this.#check();
    return proc;
  }

  /** Clears `procs[i]` and stops that process with `signal` (SIGKILL after 3 s); waits for its exit. */
  async #stop(procs: (Proc | null)[], i: number, signal: Deno.Signal): Promise<void> {
    const proc = procs[i];
    procs[i] = null;
    await proc?.kill(signal);
  }

  /** Starts node `i` (0-based) with its config and waits until it says it is up. */
  startNode(i: number, env: Record<string, string> = {}): Promise<Proc> {
    const logFile = this.#logFile(this.nodes[i].name);
    return this.#start(
      this.nodeProcs,
      i,
      () => startTwofoldUp(this.nodeNs[i], this.nodeConfigs[i], { env, logFile }),
    );
  }

  /** Starts both nodes in parallel and waits until each says it is up. */
  startNodes(env: Record<string, string> = {}): Promise<Proc[]> {
    return Promise.all(this.nodes.map((_, i) => this.startNode(i, env)));
  }

  /** Stops node `i` with `signal` (default SIGTERM; SIGKILL after 3 s) and waits for it to exit. */
  stopNode(i: number, signal: Deno.Signal = "SIGTERM"): Promise<void> {
    return this.#stop(this.nodeProcs, i, signal);
  }

  /** Stops node `i` with `signal` and starts it again with the same config (and state dir). */
  async restartNode(
    i: number,
    signal: Deno.Signal = "SIGTERM",
    env: Record<string, string> = {},
  ): Promise<Proc> {
    await this.stopNode(i, signal);
    return await this.startNode(i, env);
  }

  /** Starts hub `i` (0-based) and waits until it says it is up. */
  startHub(i: number, env: Record<string, string> = {}): Promise<Proc> {
    const logFile = this.#logFile(this.hubs[i].name);
    return this.#start(
      this.hubProcs,
      i,
      () => startTwofoldHub(this.hubNs[i], this.hubConfigs[i], { env, logFile }),
    );
  }

  /** Starts every hub in parallel. */
  startHubs(env: Record<string, string> = {}): Promise<Proc[]> {
    return Promise.all(this.hubs.map((_, i) => this.startHub(i, env)));
  }

  /** Stops hub `i` with `signal` (default SIGTERM; SIGKILL after 3 s) and waits for it to exit. */
  stopHub(i: number, signal: Deno.Signal = "SIGTERM"): Promise<void> {
    return this.#stop(this.hubProcs, i, signal);
  }

  /** Starts a long-running command (e.g. ping, tcpdump) in one of the lab's namespaces; cleanup stops it. */
  spawnIn(ns: Netns, cmd: string[]): Proc {
    this.#check();
    if (![this.switchNs, ...this.nodeNs, ...this.hubNs].includes(ns)) {
      throw new Error(`namespace ${ns.name} is not part of the lab`);
    }
    const proc = ns.spawn(cmd);
    this.#started.push(proc);
    return proc;
  }

  /** Starts a long-running command (e.g. a ping) in node `i`'s namespace; cleanup stops it. */
  spawnInNode(i: number, cmd: string[]): Proc {
    return this.spawnIn(this.nodeNs[i], cmd);
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
