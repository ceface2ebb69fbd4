/**
 * Minimal leveled logger writing one line per event to stderr. Callers never pass key material.
 * The level comes from `TWOFOLD_LOG` (see env.ts; the CLI refuses an unknown value before anything
 * logs, so the fallback to info here only serves library use).
 * @module
 */
import { envChoice, envValue, type LOG_LEVELS } from "./env.ts";

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

/** Creates a logger for `component` (e.g. "wg0"). */
export function logger(component: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${component}: ${msg}\n`;
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
