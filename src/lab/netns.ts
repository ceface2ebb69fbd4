/**
 * Network namespaces for integration tests and benchmarks: create/delete namespaces, run commands
 * inside them with a private `/var/run/wireguard`, start long-running processes tracked by PID, wire
 * namespaces together with veth pairs, and tear everything down reliably.
 *
 * Every command runs as `ip netns exec NS sh -c 'mount --bind RUNDIR /run/wireguard && exec "$@"'`.
 * `ip netns exec` already puts the command in a fresh mount namespace whose mounts are slaves of the
 * host's, so the bind mount is visible only to that command (and its children): several namespaces
 * can each run a `wg0` whose UAPI socket is `/var/run/wireguard/wg0.sock`. Namespaces created with
 * the same `runDir` share one such directory, as namespaces on a real host share /var/run/wireguard. `/var/run` is resolved
 * to its real path (on Debian a symlink to `/run`) before mounting. `ip netns exec`, `sh` and the
 * command share one PID (each `exec`s the next), so a {@link Proc}'s PID is the daemon's PID.
 * @module
 */

export {
  assertPrerequisites,
  integrationTest,
  isCI,
  requireBinary,
  requireRoot,
  requireTun,
  skipReason,
} from "./prereq.ts";

/** Result of a finished command. */
export interface ExecResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@link Netns.exec}. */
export interface ExecOptions {
  /** Throw when the exit code is not 0 (default true). The error names the command, never stdin. */
  check?: boolean;
  /** Text fed to standard input (e.g. a `wg setconf` config with keys: it never touches the disk). */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** Options for {@link Netns.spawn}. */
export interface SpawnOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Also write the process's combined stdout/stderr to this file. */
  logFile?: string;
}

/** Where WireGuard implementations put their UAPI sockets, with `/var/run` resolved to its real path. */
export function wireguardRunDir(): string {
  let varRun = "/var/run";
  try {
    varRun = Deno.realPathSync("/var/run");
  } catch {
    // no /var/run at all: mount over the literal path (mkdir -p creates it)
  }
  return `${varRun}/wireguard`;
}

/** Shell wrapper: bind the private run dir ($1) over the wireguard run dir ($2), then exec the command. */
const BIND_AND_EXEC = 'mkdir -p "$2" && mount --bind "$1" "$2" || ' +
  '{ echo "netns wrapper: cannot bind $1 over $2" >&2; exit 97; }; shift 2; exec "$@"';

/** Longest output a {@link Proc} keeps in memory (the tail is kept). */
const MAX_OUTPUT_CHARS = 256 * 1024;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Resolves after `ms` milliseconds (at once for ms ≤ 0). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a host command (not in a namespace) and returns its result; throws on failure when `check`. */
export async function hostExec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return await runCommand(cmd[0], cmd.slice(1), cmd.join(" "), opts);
}

async function runCommand(
  program: string,
  args: string[],
  label: string,
  opts: ExecOptions,
): Promise<ExecResult> {
  const command = new Deno.Command(program, {
    args,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(encoder.encode(opts.stdin));
      await writer.close();
    } catch {
      // the command exited without reading all of stdin; its exit code tells the story
    }
  }
  const out = await child.output();
  const result = { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  if ((opts.check ?? true) && result.code !== 0) {
    throw new Error(`command failed (exit ${result.code}): ${label}\n${result.stderr.trim()}`);
  }
  return result;
}

/** A long-running process started by {@link Netns.spawn}, stopped by its PID. */
export class Proc {
  /** PID of the process (the same through `ip netns exec`, `sh` and the command). */
  readonly pid: number;
  /** Human-readable description: namespace and command. */
  readonly label: string;
  #child: Deno.ChildProcess;
  #status: Promise<Deno.CommandStatus>;
  #exited = false;
  #exitCode: number | null = null;
  #chunks: string[] = [];
  #chars = 0;
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #drained: Promise<void>;
  #log: Deno.FsFile | null;

  /** Wraps an already spawned child; prefer {@link Netns.spawn}. */
  constructor(child: Deno.ChildProcess, label: string, logFile?: string) {
    this.#child = child;
    this.pid = child.pid;
    this.label = label;
    this.#log = logFile === undefined
      ? null
      : Deno.openSync(logFile, { write: true, create: true, truncate: true, mode: 0o600 });
    this.#status = child.status.then((s) => {
      this.#exited = true;
      this.#exitCode = s.code;
      return s;
    });
    this.#drained = Promise.all([this.#pump(child.stdout), this.#pump(child.stderr)]).then(() => {});
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.getReader();
    this.#readers.push(reader);
    const textDecoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.#append(textDecoder.decode(value, { stream: true }));
        if (this.#log !== null) {
          try {
            this.#log.writeSync(value);
          } catch {
            // logging is best effort
          }
        }
      }
    } catch {
      // cancelled (a grandchild kept the pipe open) or the stream failed: output stays as collected
    } finally {
      reader.releaseLock();
    }
  }

  #append(text: string): void {
    if (text === "") return;
    this.#chunks.push(text);
    this.#chars += text.length;
    if (this.#chars > MAX_OUTPUT_CHARS * 2) {
      const all = this.#chunks.join("").slice(-MAX_OUTPUT_CHARS);
      this.#chunks = [all];
      this.#chars = all.length;
    }
  }

  /** True once the process has exited (and been reaped, so its PID may be reused: it is never signalled again). */
  get exited(): boolean {
    return this.#exited;
  }

  /** Exit code once exited, else null. */
  get exitCode(): number | null {
    return this.#exitCode;
  }

  /** Combined stdout and stderr collected so far (the last 256 KiB at most). */
  output(): string {
    const all = this.#chunks.join("");
    return all.length > MAX_OUTPUT_CHARS ? all.slice(-MAX_OUTPUT_CHARS) : all;
  }

  /** Waits for exit and for its output to be collected; returns the exit code. */
  async wait(): Promise<number> {
    const status = await this.#status;
    // A grandchild that inherited the pipes could keep them open: give up on the rest after 1 s.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#drained.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), 1000);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const r of this.#readers) await r.cancel().catch(() => {});
      await this.#drained;
    }
    if (this.#log !== null) {
      this.#log.close();
      this.#log = null;
    }
    return status.code;
  }

  /** Resolves true if the process exits within `ms` milliseconds, false otherwise. */
  async waitFor(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#status.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return exited;
  }

  /**
   * Stops the process by PID: `signal` (default SIGTERM), up to 3 s to exit, then SIGKILL.
   * Safe to call repeatedly and after the process exited (an exited PID is never signalled).
   */
  async kill(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // already gone
      }
      if (!(await this.waitFor(3000))) {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    await this.wait();
  }
}

/** Directory that holds the private run dirs of all namespaces created by this process. */
let runDirBase: string | null = null;

/** A network namespace with a private `/var/run/wireguard` for the commands run inside it. */
export class Netns {
  /** Namespace name (as in `ip netns list`). */
  readonly name: string;
  /** Host directory bind-mounted over `/var/run/wireguard` for commands in this namespace. */
  readonly runDir: string;
  #ownsRunDir: boolean;
  #procs: Proc[] = [];
  #deleted = false;

  private constructor(name: string, runDir: string, ownsRunDir: boolean) {
    this.name = name;
    this.runDir = runDir;
    this.#ownsRunDir = ownsRunDir;
  }

  /**
   * Creates namespace `name` with loopback up. Throws if it already exists, unless `replaceExisting`
   * (then the stale namespace is deleted first; use only for names your own prefix owns). `runDir`
   * (an existing directory the caller owns and removes) is shared with every namespace given the same
   * one; by default each namespace gets a private run dir of its own.
   */
  static async create(
    name: string,
    opts: { replaceExisting?: boolean; runDir?: string } = {},
  ): Promise<Netns> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`invalid namespace name: ${name}`);
    if (await namespaceExists(name)) {
      if (!opts.replaceExisting) {
        throw new Error(
          `namespace ${name} already exists (left over?); delete it with: ip netns del ${name}`,
        );
      }
      await hostExec(["ip", "netns", "del", name]);
    }
    let runDir = opts.runDir;
    if (runDir === undefined) {
      if (runDirBase === null) runDirBase = await Deno.makeTempDir({ prefix: "netns-run-" });
      runDir = `${runDirBase}/${name}`;
      await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
    }
    await hostExec(["ip", "netns", "add", name]);
    const ns = new Netns(name, runDir, opts.runDir === undefined);
    try {
      await hostExec(["ip", "-n", name, "link", "set", "lo", "up"]);
    } catch (e) {
      await ns.delete();
      throw e;
    }
    return ns;
  }

  #args(cmd: string[]): string[] {
    if (cmd.length === 0) throw new Error("empty command");
    return [
      "netns",
      "exec",
      this.name,
      "sh",
      "-c",
      BIND_AND_EXEC,
      "sh",
      this.runDir,
      wireguardRunDir(),
      ...cmd,
    ];
  }

  /** Runs `cmd` inside the namespace and waits for it. Throws on a non-zero exit unless `check: false`. */
  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.#deleted) throw new Error(`namespace ${this.name} was deleted`);
    return await runCommand("ip", this.#args(cmd), `[${this.name}] ${cmd.join(" ")}`, opts);
  }

  /** Starts a long-running `cmd` inside the namespace; the namespace remembers it and kills it on delete. */
  spawn(cmd: string[], opts: SpawnOptions = {}): Proc {
    if (this.#deleted) throw new Error(`namespace ${this.name} was deleted`);
    const child = new Deno.Command("ip", {
      args: this.#args(cmd),
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const proc = new Proc(child, `[${this.name}] ${cmd.join(" ")}`, opts.logFile);
    this.#procs.push(proc);
    return proc;
  }

  /** Processes started with {@link spawn} that are still running. */
  get runningProcs(): Proc[] {
    return this.#procs.filter((p) => !p.exited);
  }

  /** Kills this namespace's processes (by PID), deletes the namespace and its run dir. Idempotent. */
  async delete(): Promise<void> {
    const errors: unknown[] = [];
    for (const p of [...this.#procs].reverse()) {
      try {
        await p.kill();
      } catch (e) {
        errors.push(e);
      }
    }
    if (!this.#deleted) {
      this.#deleted = true;
      if (await namespaceExists(this.name)) {
        const r = await hostExec(["ip", "netns", "del", this.name], { check: false });
        if (r.code !== 0) errors.push(new Error(`ip netns del ${this.name}: ${r.stderr.trim()}`));
      }
      if (this.#ownsRunDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
      if (this.#ownsRunDir && runDirBase !== null && this.runDir.startsWith(`${runDirBase}/`)) {
        // remove the shared parent once the last namespace is gone (fails harmlessly while not empty)
        const base = runDirBase;
        await Deno.remove(base).then(() => {
          if (runDirBase === base) runDirBase = null;
        }).catch(() => {});
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `deleting namespace ${this.name} failed`);
  }
}

/** Names of all network namespaces on the host (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const r = await hostExec(["ip", "netns", "list"], { check: false });
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter((n) => n !== undefined && n !== "");
}

async function namespaceExists(name: string): Promise<boolean> {
  return (await listNamespaces()).includes(name);
}

/**
 * Connects two namespaces with a veth pair: `aIf` (address `aCidr`, e.g. "10.201.0.1/24") in `a`,
 * `bIf` in `b`; both ends up.
 */
export async function vethPair(
  a: Netns,
  aIf: string,
  aCidr: string,
  b: Netns,
  bIf: string,
  bCidr: string,
): Promise<void> {
  await hostExec([
    "ip",
    "link",
    "add",
    aIf,
    "netns",
    a.name,
    "type",
    "veth",
    "peer",
    "name",
    bIf,
    "netns",
    b.name,
  ]);
  for (const [ns, ifname, cidr] of [[a, aIf, aCidr], [b, bIf, bCidr]] as const) {
    await hostExec(["ip", "-n", ns.name, "addr", "add", cidr, "dev", ifname]);
    await hostExec(["ip", "-n", ns.name, "link", "set", ifname, "up"]);
  }
}

/**
 * Tracks namespaces and processes of one test or bench run; {@link cleanup} kills the processes by
 * PID (newest first) and deletes the namespaces. Use with try/finally or `await using`.
 */
export class Topology {
  #namespaces: Netns[] = [];
  #procs: Proc[] = [];

  /** Creates a namespace (see {@link Netns.create}) and tracks it. */
  async netns(name: string, opts: { replaceExisting?: boolean; runDir?: string } = {}): Promise<Netns> {
    const ns = await Netns.create(name, opts);
    this.#namespaces.push(ns);
    return ns;
  }

  /** Tracks an existing namespace. */
  addNamespace(ns: Netns): Netns {
    this.#namespaces.push(ns);
    return ns;
  }

  /** Tracks a process (e.g. one spawned on the host) so that cleanup kills it. */
  track(proc: Proc): Proc {
    this.#procs.push(proc);
    return proc;
  }

  /** Namespaces tracked so far. */
  get namespaces(): readonly Netns[] {
    return this.#namespaces;
  }

  /** PIDs of every process tracked directly or spawned in a tracked namespace. */
  get pids(): number[] {
    return [...this.#procs, ...this.#namespaces.flatMap((n) => n.runningProcs)].map((p) => p.pid);
  }

  /** Kills tracked processes by PID, then deletes the namespaces (newest first). Idempotent. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const p of this.#procs.splice(0).reverse()) await p.kill().catch((e) => errors.push(e));
    for (const ns of this.#namespaces.splice(0).reverse()) await ns.delete().catch((e) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, "topology cleanup failed");
  }

  /** `await using topo = new Topology()` support. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}

/** Polls `predicate` every `intervalMs` until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * Joins namespaces on one L2 segment: a bridge `br0` inside `switchNs`, and a veth per member (`ifname`
 * with address `cidr` in the member, `sw-<ifname>` on the bridge). All links up.
 */
export async function bridgeSegment(
  switchNs: Netns,
  members: { ns: Netns; ifname: string; cidr: string }[],
): Promise<void> {
  await hostExec(["ip", "-n", switchNs.name, "link", "add", "br0", "type", "bridge"]);
  await hostExec(["ip", "-n", switchNs.name, "link", "set", "br0", "up"]);
  for (const m of members) {
    const port = `sw-${m.ifname}`.slice(0, 15);
    await hostExec([
      "ip",
      "link",
      "add",
      m.ifname,
      "netns",
      m.ns.name,
      "type",
      "veth",
      "peer",
      "name",
      port,
      "netns",
      switchNs.name,
    ]);
    await hostExec(["ip", "-n", switchNs.name, "link", "set", port, "master", "br0"]);
    await hostExec(["ip", "-n", switchNs.name, "link", "set", port, "up"]);
    await hostExec(["ip", "-n", m.ns.name, "addr", "add", m.cidr, "dev", m.ifname]);
    await hostExec(["ip", "-n", m.ns.name, "link", "set", m.ifname, "up"]);
  }
}
