/**
 * `twofold up --config node.json`: runs one edge node (wg0 + aes0 with the PSK gate) in the
 * foreground until SIGINT/SIGTERM or until one of its interfaces is deleted.
 * @module
 */
import { loadNodeConfig } from "../config/node-config.ts";
import { startNode } from "../node/node.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";

const USAGE = "usage: twofold up --config node.json";

/** Runs the command; resolves with the exit code. */
export async function runUp(args: string[]): Promise<number> {
  const cfg = await loadNodeConfig(configPathArg(args, USAGE));
  return await runUntilStopped((onEnded) => startNode(cfg, { onEnded }));
}
