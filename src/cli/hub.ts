/**
 * `twofold hub --config hub.json`: runs a DSKE security hub in the foreground until SIGINT/SIGTERM,
 * holding its state directory's lock. SIGHUP never stops it (a hub has no file to re-read; its config
 * is not re-read yet).
 * Config, state-directory lock and preflight problems (a busy wg0 port) are one line, exit 2, before
 * anything is brought up.
 * @module
 */
import { loadHubConfig } from "../config/hub-config.ts";
import { hubTestFaultOf, startHub } from "../hub/hub.ts";
import { logger } from "../log.ts";
import { formatPreflightProblem, preflightHub } from "../node/preflight.ts";
import { CliError } from "./errors.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";
import { usageOf } from "./help.ts";
import { holdStateDir } from "./state-dir.ts";

const USAGE = usageOf("hub");

/** Runs the command; resolves with the exit code. */
export async function runHub(args: string[]): Promise<number> {
  const cfg = await loadHubConfig(configPathArg(args, USAGE));
  const stateLock = holdStateDir(cfg.hub.stateDir, "hub.stateDir");
  const problems = await preflightHub(cfg);
  if (problems.length > 0) {
    stateLock.release();
    throw new CliError(formatPreflightProblem(problems[0]), 2);
  }
  // Test-only fault switch for the DSKE fault tests (see docs/dske.md, "Test-only fault switches"); never set in production.
  const testFault = hubTestFaultOf(Deno.env.get("TWOFOLD_TEST_FAULT"));
  return await runUntilStopped(async (onEnded) => {
    const hub = await startHub(cfg, {
      onEnded: () => {
        stateLock.release();
        onEnded();
      },
      testFault,
    });
    return {
      close: async (reason?: string) => {
        await hub.close(reason);
        stateLock.release();
      },
      reload: () =>
        "nothing to re-read (a hub has no PSK files); the config file is not re-read (not supported yet: " +
        "restart twofold hub to apply config changes)",
    };
  }, logger(cfg.hub.name));
}
