/**
 * Errors the CLI reports as one line on stderr with an exit code: 2 for bad usage, bad input or an
 * environment that prevents starting (no root, no /dev/net/tun, busy port, existing socket), 1 for
 * failures at run time.
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
