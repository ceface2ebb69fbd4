/**
 * `twofold hub --config hub.json`: runs a DSKE security hub in the foreground until SIGINT/SIGTERM.
 * @module
 */
import { loadHubConfig } from "../config/hub-config.ts";
import { startHub } from "../hub/hub.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";
import { usageOf } from "./help.ts";

const USAGE = usageOf("hub");

/** Runs the command; resolves with the exit code. */
export async function runHub(args: string[]): Promise<number> {
  const cfg = await loadHubConfig(configPathArg(args, USAGE));
  // Test-only fault switch for the lying-hub test (see the README); never set in production.
  const alterShares = Deno.env.get("TWOFOLD_TEST_FAULT") === "alter-shares";
  return await runUntilStopped((onEnded) => startHub(cfg, { onEnded, alterShares }));
}
