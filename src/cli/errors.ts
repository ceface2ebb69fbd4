/**
 * Errors the CLI reports as one line on stderr with an exit code: 2 for bad usage, bad input or an
 * environment that prevents starting (no root, no /dev/net/tun, busy port, existing socket), 1 for
 * failures at run time.
 * @module
 */

import { CliError } from "../operator-error.ts";

/** Re-exported for the CLI: the class lives in `src/operator-error.ts` so lower layers can throw it. */
export { CliError } from "../operator-error.ts";

/**
 * A `node:util` parseArgs failure of `command` (e.g. "psrd new") as one usage line naming the option
 * and where the help is: `unknown option "--x"; run "twofold psrd new --help"` (exit 2).
 */
export function optionError(command: string, e: unknown): CliError {
  const message = (e as Error)?.message ?? String(e);
  const option = message.match(/'([^']+)'/)?.[1]?.split(" ")[0];
  const problem = /^Unknown option/i.test(message) && option
    ? `unknown option "${option}"`
    : /argument missing/i.test(message) && option
    ? `option "${option}" needs a value`
    : /does not take an argument/i.test(message) && option
    ? `option "${option}" takes no value`
    : message.split("\n")[0].split(". ")[0];
  return new CliError(`${problem}; run "twofold ${command} --help"`);
}

/** The command a usage line (`usage: twofold status …`) belongs to. */
export function commandOfUsage(usage: string): string {
  return usage.match(/^usage: twofold (\S+)/)?.[1] ?? "help";
}
