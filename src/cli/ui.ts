/**
 * `twofold ui [--port N] [--config FILE | --admin ADDR]`: serves a running node's status page on 127.0.0.1 by
 * proxying its admin API (see ui-proxy.ts), prints the URL and stays in the foreground until SIGINT or
 * SIGTERM. The node must answer first: an unreachable node is one error line (exit 1).
 * @module
 */
import { AdminClient, describeTarget, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";
import { runUntilStopped } from "./foreground.ts";
import { startUiProxy } from "./ui-proxy.ts";
import { logger } from "../log.ts";

const USAGE = usageOf("ui");
const HELP = helpOf("ui");

/** `--port`: 0..65535 (0, the default, picks a free port); anything else is a CliError (exit 2). */
export function parseUiPort(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new CliError(`--port ${JSON.stringify(text)}: a port is 0..65535 (${USAGE})`);
  }
  return Number(text);
}

/** Runs the command; resolves with the exit code. */
export async function runUi(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP, ["port"]);
  if (a.positionals.length > 0) throw new CliError(`unexpected argument "${a.positionals[0]}" (${USAGE})`);
  const port = parseUiPort(a.strings.port);
  // The node must answer before the URL is printed (no token: /healthz is open everywhere).
  const probe = new AdminClient(a.target, a.tokenFile);
  try {
    const r = await probe.request("GET", "/healthz");
    await r.body?.cancel();
  } finally {
    probe.close();
  }
  return await runUntilStopped(() => {
    let proxy;
    try {
      proxy = startUiProxy({ target: a.target, port });
    } catch (e) {
      const why = e instanceof Deno.errors.AddrInUse ? `port ${port} is in use` : (e as Error).message;
      return Promise.reject(new Error(`cannot listen on 127.0.0.1:${port}: ${why}`));
    }
    console.log(`twofold ui: ${proxy.url} shows the node at ${describeTarget(a.target)} (Ctrl-C ends it)`);
    return Promise.resolve({ close: () => proxy.close() });
  }, logger("ui"));
}
