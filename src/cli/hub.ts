/**
 * `twofold hub --config hub.json`: runs a DSKE security hub in the foreground until SIGINT/SIGTERM.
 * Config and preflight problems (a busy wg0 port) are one line, exit 2, before anything is brought up.
 * @module
 */
import { loadHubConfig } from "../config/hub-config.ts";
import { hubTestFaultOf, startHub } from "../hub/hub.ts";
import { formatPreflightProblem, preflightHub } from "../node/preflight.ts";
import { CliError } from "./errors.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";
import { usageOf } from "./help.ts";

const USAGE = usageOf("hub");

/** Runs the command; resolves with the exit code. */
export async function runHub(args: string[]): Promise<number> {
  const cfg = await loadHubConfig(configPathArg(args, USAGE));
  const problems = await preflightHub(cfg);
  if (problems.length > 0) throw new CliError(formatPreflightProblem(problems[0]), 2);
  // Test-only fault switch for the DSKE fault tests (see the README); never set in production.
  const testFault = hubTestFaultOf(Deno.env.get("TWOFOLD_TEST_FAULT"));
  return await runUntilStopped((onEnded) => startHub(cfg, { onEnded, testFault }));
}
