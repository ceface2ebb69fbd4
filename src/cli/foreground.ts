/**
 * What the long-running commands (`wg -f`, `up`, `hub`) share: the `--config` argument and running a
 * service in the foreground until SIGINT/SIGTERM or until it ends by itself.
 * @module
 */
import { parseArgs } from "node:util";
import { CliError, commandOfUsage, optionError } from "./errors.ts";
import { raiseFileDescriptorLimit } from "../../ffi/libc.ts";
import { SystemdNotifier } from "../systemd/notify.ts";

/** A started service. */
export interface Stoppable {
  /** Stops it; `reason` is logged. */
  close(reason?: string): Promise<void>;
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
 */
export async function runUntilStopped(
  start: (onEnded: () => void) => Promise<Stoppable>,
  notifier: SystemdNotifier = new SystemdNotifier(),
): Promise<number> {
  try {
    raiseFileDescriptorLimit();
  } catch { /* not permitted here: run with the limit as it is */ }
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => done = r);
  let service: Stoppable;
  try {
    service = await start(() => {
      notifier.stopping();
      done(0);
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  notifier.ready("running");
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      notifier.stopping();
      void service.close(`received ${sig}`).then(() => done(0));
    });
  }
  return await finished;
}
