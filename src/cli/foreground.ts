/**
 * What the long-running commands (`wg -f`, `up`, `hub`) share: the `--config` argument and running a
 * service in the foreground until SIGINT/SIGTERM or until it ends by itself. SIGHUP (also what a
 * dropped SSH session sends) never stops a service: it asks the service to re-read what it can and
 * logs what that was.
 * @module
 */
import { parseArgs } from "node:util";
import type { Logger } from "../log.ts";
import { CliError, commandOfUsage, optionError } from "./errors.ts";
import { raiseFileDescriptorLimit } from "../../ffi/libc.ts";
import { SystemdNotifier } from "../systemd/notify.ts";

/** A started service. */
export interface Stoppable {
  /** Stops it; `reason` is logged. */
  close(reason?: string): Promise<void>;
  /**
   * Re-reads what can change without a restart (on SIGHUP); returns one line for the log saying what
   * was re-read and what was not. Absent: the service has nothing to re-read.
   */
  reload?(): string | Promise<string>;
}

/**
 * Parses `--config FILE` (and `--help`) for a command whose usage line is `usage`; returns the path.
 * Bad options, a missing --config and --help are CliErrors (exit 2, or 0 for --help).
 */
export function configPathArg(args: string[], usage: string): string {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    throw optionError(commandOfUsage(usage), e);
  }
  if (parsed.values.help) throw new CliError(usage, 0);
  if (!parsed.values.config) throw new CliError(`--config is required (${usage})`);
  return parsed.values.config;
}

/**
 * Starts a service with `start(onEnded)` and keeps it running until SIGINT/SIGTERM (then closes it)
 * or until it calls `onEnded`; resolves with exit code 0. A start-up failure becomes one CliError line.
 * First raises the open-file soft limit to the hard limit, so sockets (admin, UAPI, DSKE) have the
 * most room the system grants before their caps and back-offs have to act.
 * Under systemd (`Type=notify`) it sends `READY=1` once `start` has resolved (for `up`: both
 * interfaces and the admin API are up) and `STOPPING=1` when the service begins to stop.
 * SIGHUP calls the service's `reload` and logs its answer on `log`; it never ends the service.
 */
export async function runUntilStopped(
  start: (onEnded: () => void) => Promise<Stoppable>,
  log: Logger,
  notifier: SystemdNotifier = new SystemdNotifier(),
): Promise<number> {
  try {
    raiseFileDescriptorLimit();
  } catch { /* not permitted here: run with the limit as it is */ }
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => done = r);
  let service: Stoppable | null = null;
  // Installed before start-up, so that a hang-up during start-up does not kill the process either.
  Deno.addSignalListener("SIGHUP", () => void hangUp(service, log));
  try {
    service = await start(() => {
      notifier.stopping();
      done(0);
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  notifier.ready("running");
  const running = service;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      notifier.stopping();
      void running.close(`received ${sig}`).then(() => done(0));
    });
  }
  return await finished;
}

/** SIGHUP: the service re-reads what it can; the outcome (or that there was nothing) is logged. */
async function hangUp(service: Stoppable | null, log: Logger): Promise<void> {
  if (service === null) {
    log.info("received SIGHUP during start-up: ignored, still starting");
    return;
  }
  if (!service.reload) {
    log.info("received SIGHUP: nothing to re-read; still running");
    return;
  }
  try {
    log.info(`received SIGHUP: ${await service.reload()}; still running`);
  } catch (e) {
    log.warn(`received SIGHUP: re-reading failed (${(e as Error).message}); still running`);
  }
}
