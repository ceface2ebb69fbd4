/**
 * Minimal leveled logger writing one line per event to stderr. Callers never pass key material;
 * `redact` exists for values that might (it prints only a short public fingerprint).
 * @module
 */

/** Log levels, most verbose first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
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

let threshold: LogLevel = (Deno.env.get("TWOFOLD_LOG") as LogLevel | undefined) ?? "info";
if (!(threshold in ORDER)) threshold = "info";

/** Sets the process-wide log level. */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

const encoder = new TextEncoder();

/** A daemonized process logs to this file (set by `twofold wg` without -f) instead of stderr. */
const logFilePath = Deno.env.get("TWOFOLD_LOG_FILE");
let logFile: Deno.FsFile | null = null;
if (logFilePath) {
  try {
    logFile = Deno.openSync(logFilePath, { append: true, create: true, mode: 0o600 });
  } catch { /* fall back to stderr */ }
}

/** Creates a logger for `component` (e.g. "wg0"). */
export function logger(component: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] < ORDER[threshold]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${component}: ${msg}\n`;
    try {
      (logFile ?? Deno.stderr).writeSync(encoder.encode(line));
    } catch { /* stderr closed (daemonized): nothing to do */ }
  };
  return {
    debug: (m) => emit("debug", m),
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
  };
}
