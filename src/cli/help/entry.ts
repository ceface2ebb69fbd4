/**
 * The shape of one help entry and the pieces many entries share (the help option, the admin API
 * options, exit-code and signal tables). The entries themselves live beside this file, one file per
 * command group; `cli/help.ts` puts them in one table in the overview's order.
 * @module
 */
import { DEFAULT_ADMIN_SOCKET } from "../../admin/server.ts";
import { DEFAULT_TOKEN_FILE } from "../admin-client.ts";
import type { EnvName } from "../../env.ts";

/** One command's (or subcommand's) help. */
export interface CommandHelp {
  /** Its words after `twofold`, e.g. "psrd new". */
  name: string;
  /** One line for the overview. */
  summary: string;
  /** Usage lines, each without the leading `twofold ` (the first is the error messages' usage). */
  usage: string[];
  /** What it does, a few lines. */
  description: string;
  /** Options and arguments: [flag, meaning]. */
  options: [string, string][];
  /** Exit codes: [code, meaning]. */
  exitCodes: [number, string][];
  /** Signals it handles: [signal, effect]; empty for commands that do not run long. */
  signals: [string, string][];
  /** Environment variables it reads. */
  environment: EnvName[];
  /** Subcommands (their own help entries), for `psrd` and `lockdown`. */
  subcommands?: string[];
}

/** `-h, --help`: every command has it. */
export const HELP_OPTION: [string, string] = ["-h, --help", "print this help and exit (no other effect)"];

/** `--config`, `--admin`, `--token-file`: what status, events and lockdown share. */
export const ADMIN_OPTIONS: [string, string][] = [
  [
    "-c, --config FILE",
    "the node's config: its admin.listen and admin.tokenFile (node defaults for what it leaves out)",
  ],
  [
    "--admin ADDR",
    `the node's admin API: unix:/path, /path.sock, 127.0.0.1:PORT or [::1]:PORT (default: from --config, else unix:${DEFAULT_ADMIN_SOCKET})`,
  ],
  [
    "--token-file FILE",
    `the admin token, for changes and for TCP (default: from --config, else ${DEFAULT_TOKEN_FILE})`,
  ],
];

/** The environment every long-running command reads. */
export const COMMON_ENV: EnvName[] = [
  "TWOFOLD_LOG",
  "TWOFOLD_AEAD_BACKEND",
  "TWOFOLD_OFFLOADS",
  "JOURNAL_STREAM",
  "NOTIFY_SOCKET",
];

/** SIGINT and SIGTERM of the long-running commands. */
export const STOP_SIGNALS: [string, string][] = [[
  "SIGINT, SIGTERM",
  "stop cleanly (interfaces and sockets removed), exit 0",
]];

/** SIGHUP for the long-running commands: never a stop; what it does differs (see each command). */
export function hangUpSignal(effect: string): [string, string] {
  return ["SIGHUP", `${effect}; never stops it (a closed terminal or SSH session sends it)`];
}

/** Exit codes of the commands that talk to a running node's admin API. */
export const ADMIN_EXIT: [number, string][] = [
  [0, "success"],
  [1, "the node could not be reached or refused the request"],
  [2, "bad usage, or the token file cannot be read"],
];

/** Exit codes of the long-running services (up, hub, broker). */
export const SERVICE_EXIT: [number, string][] = [
  [0, "stopped by a signal, or its interfaces were deleted"],
  [1, "failed while running"],
  [2, "bad usage or config, or the host prevents starting (no root, no /dev/net/tun, busy port)"],
];

/** Exit codes of a one-shot command that can fail while running (psrd, rosenpass, broker enroll). */
export const RUN_ONCE_EXIT: [number, string][] = [
  [0, "success"],
  [1, "failed while running"],
  [2, "bad usage or bad input"],
];

/** Exit codes of a command that cannot fail once its input is good. */
export const SIMPLE_EXIT: [number, string][] = [[0, "success"], [2, "bad usage or bad input"]];
