/**
 * Minimal leveled logger writing one line per event to stderr. Callers never pass key material.
 * The level comes from `TWOFOLD_LOG` (see env.ts; the CLI refuses an unknown value before anything
 * logs, so the fallback to info here only serves library use).
 * @module
 */
import { envChoice, type EnvReader, envValue, type LOG_LEVELS, processEnv } from "./env.ts";

/** Log levels, most verbose first. */
export type LogLevel = typeof LOG_LEVELS[number];
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger bound to a component name. */
export interface Logger {
  /** Verbose diagnostics. */
  debug(msg: string): void;
  /** Normal operation. */
  info(msg: string): void;
  /** Something an operator should look at. */
  warn(msg: string): void;
  /** A failure. */
  error(msg: string): void;
}

let threshold: LogLevel = levelFromEnvironment() ?? "info";

function levelFromEnvironment(): LogLevel | undefined {
  try {
    return envChoice("TWOFOLD_LOG");
  } catch {
    return undefined;
  }
}

/** Whether the operator chose a level through `TWOFOLD_LOG`. */
export function logLevelFromEnvironment(): boolean {
  return levelFromEnvironment() !== undefined;
}

/** Sets the process-wide log level. */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

const encoder = new TextEncoder();

/**
 * A daemonized process logs to this file (set by `twofold wg` without -f) instead of stderr. Opened on
 * the first line logged, so that loading this module creates nothing.
 */
let logFile: Deno.FsFile | null | undefined;

function logSink(): Deno.FsFile | typeof Deno.stderr {
  if (logFile === undefined) {
    logFile = null;
    const path = envValue("TWOFOLD_LOG_FILE");
    if (path) {
      try {
        logFile = Deno.openSync(path, { append: true, create: true, mode: 0o600 });
      } catch { /* fall back to stderr */ }
    }
  }
  return logFile ?? Deno.stderr;
}

/** syslog priorities of the levels, for journald's `<N>` line prefixes (sd-daemon(3)). */
export const JOURNAL_PRIORITY: Readonly<Record<LogLevel, number>> = { debug: 7, info: 6, warn: 4, error: 3 };

/** How a line is written: plain (timestamp and level word) or for journald (`<N>` prefix, no timestamp). */
export type LogFormat = "plain" | "journal";

/**
 * One log line. journald adds its own timestamps and reads the level from the `<N>` prefix, so the
 * journal format has neither a timestamp nor the level word.
 */
export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  component: string,
  msg: string,
  now: Date,
): string {
  if (format === "journal") return `<${JOURNAL_PRIORITY[level]}>${component}: ${msg}\n`;
  return `${now.toISOString()} ${level.toUpperCase().padEnd(5)} ${component}: ${msg}\n`;
}

/** journald when systemd connected stderr to the journal (`JOURNAL_STREAM`) and no log file is set. */
export function logFormatFor(read: EnvReader = processEnv): LogFormat {
  return envValue("JOURNAL_STREAM", read) && !envValue("TWOFOLD_LOG_FILE", read) ? "journal" : "plain";
}

let format: LogFormat | undefined;

/** Creates a logger for `component` (e.g. "wg0"). */
export function logger(component: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    format ??= logFormatFor();
    const line = formatLogLine(format, level, component, msg, new Date());
    try {
      logSink().writeSync(encoder.encode(line));
    } catch { /* stderr closed (daemonized): nothing to do */ }
  };
  return {
    debug: (m) => emit("debug", m),
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
  };
}
