/**
 * Argument parsing for the commands with subcommands that take options and a fixed number of
 * positional arguments (`psrd new|ingest|list|remove`, `rosenpass keygen|fingerprint`): every
 * usage mistake is one line naming the subcommand and where its help is (exit 2).
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError, optionError } from "./errors.ts";

/** The options a subcommand accepts, as `node:util` parseArgs takes them. */
export type SubcommandOptions = NonNullable<ParseArgsConfig["options"]>;

/** One subcommand: its name as the user typed it (`psrd new`) and the command whose help to point at. */
export interface Subcommand {
  /** Names the subcommand in messages, e.g. `psrd new`. */
  name: string;
  /** The `twofold … --help` to point at, e.g. `psrd new` or `rosenpass`. */
  help: string;
}

/**
 * Parses `args` for `cmd`: the `options`, then exactly `positionals` positional arguments, each
 * named `noun` in the message when the count is wrong.
 */
export function parseSubcommandArgs(
  cmd: Subcommand,
  args: string[],
  options: SubcommandOptions,
  positionals: number,
  noun = "file",
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
  } catch (e) {
    throw new CliError(`${cmd.name}: ${optionError(cmd.name, e).message}`);
  }
  if (parsed.positionals.length !== positionals) {
    throw new CliError(
      positionals === 0
        ? `${cmd.name}: unexpected argument "${parsed.positionals[0]}"; run "twofold ${cmd.help} --help"`
        : `${cmd.name}: expected exactly ${positionals} ${noun} argument; run "twofold ${cmd.help} --help"`,
    );
  }
  return parsed;
}

/** The string value of option `--name`, or a usage error saying it is required. */
export function requiredOption(cmd: Subcommand, values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") {
    throw new CliError(`${cmd.name}: --${name} is required; run "twofold ${cmd.help} --help"`);
  }
  return v;
}
