/**
 * The error every layer throws for a problem the operator must fix (bad input, an environment that
 * prevents starting): one line naming the problem and the fix, and the exit code the CLI ends with
 * (2 for bad usage, bad input or environment, 1 for failures at run time). It lives below the CLI so
 * that config parsing can throw it without depending on the CLI.
 * @module
 */

/** An error meant for the operator: its message names the problem and the fix. */
export class CliError extends Error {
  /** Process exit code. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}
