/**
 * `twofold reload`: asks a running node (`POST /v1/reload`, admin token required) to re-read its PSK
 * files, the live parts of its config and its network map, as SIGHUP does, and prints what it did and
 * which changes need a restart.
 * @module
 */
import type { ReloadOutcome } from "../admin/model.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";

const USAGE = usageOf("reload");
const HELP = helpOf("reload");

/** Runs the command; resolves with the exit code. */
export async function runReload(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP);
  if (a.positionals.length > 0) throw new CliError(`unexpected argument "${a.positionals[0]}" (${USAGE})`);
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  try {
    const o = await client.json<ReloadOutcome>("POST", "/v1/reload", { auth: true });
    if (a.json) console.log(JSON.stringify(o, null, 2));
    else {
      console.log(o.summary);
      for (const line of o.restartNeeded) console.log(`needs a restart: ${line}`);
    }
    return 0;
  } finally {
    client.close();
  }
}
