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

/** Log lines the process keeps in memory, newest last, for the support bundle (`twofold bundle`). */
export const RECENT_LOG_LINES = 1_000;
/** Longest kept line, characters; a longer one is cut (the ring stays within about 1 MiB). */
export const RECENT_LOG_LINE_CHARS = 1_024;

const recent: string[] = [];
let recentNext = 0;

function remember(line: string): void {
  const kept = line.length > RECENT_LOG_LINE_CHARS ? `${line.slice(0, RECENT_LOG_LINE_CHARS)}…` : line;
  if (recent.length < RECENT_LOG_LINES) recent.push(kept);
  else recent[recentNext] = kept;
  recentNext = (recentNext + 1) % RECENT_LOG_LINES;
}

/**
 * The last {@link RECENT_LOG_LINES} lines this process logged (at the level in force), oldest first,
 * each with its timestamp and level whatever the output format.
 */
export function recentLogLines(): string[] {
  return recent.length < RECENT_LOG_LINES
    ? [...recent]
    : [...recent.slice(recentNext), ...recent.slice(0, recentNext)];
}

/** Creates a logger for `component` (e.g. "wg0"). */
export function logger(component: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    format ??= logFormatFor();
    const now = new Date();
    const line = formatLogLine(format, level, component, msg, now);
    remember(
      format === "plain"
        ? line.slice(0, -1)
        : formatLogLine("plain", level, component, msg, now).slice(0, -1),
    );
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
