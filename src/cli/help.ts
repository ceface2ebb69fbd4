/**
 * The one home of the CLI's help: the table of every command and subcommand (what it does, usage,
 * options, exit codes, signals, environment) in the overview's order, the overview `twofold help`
 * prints, and the pure decision whether a command line asks for help or the version instead of
 * running anything. The entries live in `cli/help/`, one file per command group. main.ts answers
 * `--help`/`-h` from this table before a command module is loaded, so asking for help never has a side
 * effect (no key printed, no file created, no stdin read). The command modules take their usage lines
 * from here for their error messages.
 * @module
 */
import { ENV_VARS } from "../env.ts";
import { CliError } from "./errors.ts";
import type { CommandHelp } from "./help/entry.ts";
import { SERVICE_HELP } from "./help/services.ts";
import { PSRD_HELP } from "./help/psrd.ts";
import { NODE_ADMIN_HELP } from "./help/node-admin.ts";
import { NETMAP_HELP } from "./help/netmap.ts";
import { SUPPORT_HELP } from "./help/support.ts";
import { TOOL_HELP } from "./help/tools.ts";

export type { CommandHelp } from "./help/entry.ts";

/** Every command and subcommand, in the order the overview lists them. */
export const COMMANDS: readonly CommandHelp[] = [
  ...SERVICE_HELP,
  ...PSRD_HELP,
  ...NODE_ADMIN_HELP,
  ...NETMAP_HELP,
  ...SUPPORT_HELP,
  ...TOOL_HELP,
];

/** The help entry for `words` (e.g. ["psrd", "new"]), or undefined. */
export function findCommand(words: string[]): CommandHelp | undefined {
  const name = words.join(" ");
  return COMMANDS.find((c) => c.name === name);
}

/** `usage: twofold …` of a command (its first usage line), for error messages. */
export function usageOf(name: string): string {
  const c = COMMANDS.find((c) => c.name === name);
  if (!c) throw new Error(`no help entry for "${name}"`);
  return `usage: twofold ${c.usage[0]}`;
}

function columns(rows: [string, string][], indent = "  "): string[] {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}  ${b}`);
}

/** The full help text of one command. */
export function renderHelp(c: CommandHelp): string {
  const out = [
    `usage: twofold ${c.usage[0]}`,
    ...c.usage.slice(1).map((u) => `       twofold ${u}`),
    "",
    c.description,
    "",
    "options:",
    ...columns(c.options),
    "",
    "exit codes:",
    ...columns(c.exitCodes.map(([n, t]) => [String(n), t])),
  ];
  if (c.signals.length > 0) out.push("", "signals:", ...columns(c.signals));
  out.push("", "environment (an empty variable counts as unset):");
  if (c.environment.length === 0) out.push("  none read");
  else out.push(...columns(c.environment.map((n) => [n, ENV_VARS[n].description])));
  return out.join("\n");
}

/** The list of commands `twofold help` prints. */
export function renderOverview(): string {
  const top = COMMANDS.filter((c) => !c.name.includes(" "));
  return [
    "usage: twofold <command> [options]",
    "",
    "commands:",
    ...columns(top.map((c) => [c.name, c.summary])),
    "",
    'Run "twofold help COMMAND" or "twofold COMMAND --help" for a command\'s options, exit codes, signals',
    'and environment; "twofold --version" for the versions.',
  ].join("\n");
}

/** What a command line asks for before anything runs. */
export type HelpRequest =
  | { kind: "help"; text: string; exitCode: 0 | 2 }
  | { kind: "version" }
  | { kind: "run" };

const HELP_FLAGS = ["-h", "--help"];

/**
 * Decides, without side effects, whether `args` ask for help or the version: `twofold`, `help [CMD
 * [SUB]]`, `--version`, `CMD [SUB] … --help|-h` (before any `--`), and `CMD help [SUB]` for commands
 * with subcommands. Everything else is `run`. An unknown command named for help is a CliError (exit 2).
 */
export function helpRequest(args: string[]): HelpRequest {
  const [cmd, ...rest] = args;
  if (cmd === undefined) return { kind: "help", text: renderOverview(), exitCode: 2 };
  if (cmd === "--version" || cmd === "-V") return { kind: "version" };
  if (HELP_FLAGS.includes(cmd)) return { kind: "help", text: renderOverview(), exitCode: 0 };
  if (cmd === "help") {
    const words = rest.filter((w) => !HELP_FLAGS.includes(w));
    if (words.length === 0) return { kind: "help", text: renderOverview(), exitCode: 0 };
    return { kind: "help", text: renderHelp(lookup(words)), exitCode: 0 };
  }
  const top = findCommand([cmd]);
  if (!top) return { kind: "run" };
  const end = rest.indexOf("--");
  const before = end < 0 ? rest : rest.slice(0, end);
  const sub = top.subcommands?.includes(before[0]) ? before[0] : undefined;
  if (top.subcommands && before[0] === "help") {
    return { kind: "help", text: renderHelp(lookup(before[1] ? [cmd, before[1]] : [cmd])), exitCode: 0 };
  }
  if (!before.some((a) => HELP_FLAGS.includes(a))) return { kind: "run" };
  return { kind: "help", text: renderHelp(findCommand(sub ? [cmd, sub] : [cmd]) ?? top), exitCode: 0 };
}

function lookup(words: string[]): CommandHelp {
  const c = findCommand(words);
  if (c) return c;
  const top = findCommand([words[0]]);
  if (top?.subcommands && words.length > 1) {
    throw new CliError(
      `"${words[0]}" has no subcommand "${words[1]}" (it has ${
        top.subcommands.join(", ")
      }); run "twofold help ${words[0]}"`,
    );
  }
  throw new CliError(`unknown command "${words.join(" ")}"; run "twofold help" for the list of commands`);
}

/** The full help text of a command by name (for the modules' own `--help` handling). */
export function helpOf(name: string): string {
  const c = findCommand(name.split(" "));
  if (!c) throw new Error(`no help entry for "${name}"`);
  return renderHelp(c);
}
