/**
 * Stand-in entry point for the netmap CLI tests until `twofold netmap` is wired into main.ts: runs
 * runNetmapCommand with main.ts's error handling (one line `twofold: …` on stderr, the CliError's exit
 * code). Replace with main.ts in the tests once it dispatches `netmap`.
 * @module
 */
import { CliError } from "../../src/cli/errors.ts";
import { runNetmapCommand } from "../../src/cli/netmap.ts";

let code: number;
try {
  code = await runNetmapCommand(Deno.args);
} catch (e) {
  console.error(`twofold: ${(e as Error)?.message ?? String(e)}`);
  code = e instanceof CliError ? e.exitCode : 1;
}
Deno.exit(code);
