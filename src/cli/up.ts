/**
 * `twofold up --config node.json`: runs one edge node (wg0 + aes0 with the PSK gate) in the
 * foreground until SIGINT/SIGTERM or until one of its interfaces is deleted.
 * @module
 */
import { parseArgs } from "node:util";
import { loadNodeConfig } from "../config/node-config.ts";
import { startNode } from "../node/node.ts";
import { CliError } from "./errors.ts";

const USAGE = "usage: twofold up --config node.json";

/** Runs the command; resolves with the exit code. */
export async function runUp(args: string[]): Promise<number> {
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
  const cfg = await loadNodeConfig(parsed.values.config);
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => done = r);
  let node;
  try {
    node = await startNode(cfg, { onEnded: () => done(0) });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const running = node;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void running.close(`received ${sig}`).then(() => done(0)));
  }
  return await finished;
}
