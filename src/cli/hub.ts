/**
 * `twofold hub --config hub.json`: runs a DSKE security hub in the foreground until SIGINT/SIGTERM.
 * @module
 */
import { parseArgs } from "node:util";
import { loadHubConfig } from "../config/hub-config.ts";
import { startHub } from "../hub/hub.ts";
import { CliError } from "./errors.ts";

const USAGE = "usage: twofold hub --config hub.json";

/** Runs the command; resolves with the exit code. */
export async function runHub(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    const option = (e as Error).message.match(/'([^']+)'/)?.[1];
    throw new CliError(
      `${option ? `unknown option "${option}"` : (e as Error).message.split(".")[0]} (${USAGE})`,
    );
  }
  if (parsed.values.help) throw new CliError(USAGE, 0);
  if (!parsed.values.config) throw new CliError(`--config is required (${USAGE})`);
  const cfg = await loadHubConfig(parsed.values.config);
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => done = r);
  let hub;
  try {
    // Test-only fault switch for the lying-hub test; documented as such in the README.
    const alterShares = Deno.env.get("TWOFOLD_TEST_FAULT") === "alter-shares";
    hub = await startHub(cfg, { onEnded: () => done(0), alterShares });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const running = hub;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void running.close(`received ${sig}`).then(() => done(0)));
  }
  return await finished;
}
