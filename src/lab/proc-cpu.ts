/**
 * CPU time of a process from /proc/PID/stat, for the bench's "CPU seconds per GB moved": the pure
 * parser of the stat line and a thin reader around it.
 * @module
 */

/**
 * Clock ticks per second of the utime/stime fields (USER_HZ, what `getconf CLK_TCK` prints): 100 on
 * every Linux architecture the bench runs on.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Index of utime among the fields after the `(comm)` field: state is field 3 (index 0), utime field 14. */
const UTIME_AFTER_COMM = 14 - 3;
/** Index of stime among the fields after the `(comm)` field (field 15). */
const STIME_AFTER_COMM = 15 - 3;

/** CPU time a process has used, in clock ticks (see {@link CLOCK_TICKS_PER_SECOND}). */
export interface CpuTicks {
  /** Time in user mode (utime). */
  userTicks: number;
  /** Time in kernel mode (stime). */
  systemTicks: number;
}

/**
 * Parses the utime and stime fields of a /proc/PID/stat line. For a process (not a /task/TID entry)
 * the kernel sums them over all its threads, dead ones included. The command name (field 2) sits in
 * parentheses and may itself contain spaces and parentheses, so the fields are counted from the last
 * `)` of the line.
 */
export function parseProcStat(text: string): CpuTicks {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error(`not a /proc/PID/stat line: ${text.slice(0, 120)}`);
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const userTicks = Number(fields[UTIME_AFTER_COMM]);
  const systemTicks = Number(fields[STIME_AFTER_COMM]);
  if (!Number.isInteger(userTicks) || !Number.isInteger(systemTicks)) {
    throw new Error(`no utime/stime in /proc/PID/stat line: ${text.slice(0, 120)}`);
  }
  return { userTicks, systemTicks };
}

/** User plus system CPU seconds of `ticks`. */
export function cpuSeconds(ticks: CpuTicks): number {
  return (ticks.userTicks + ticks.systemTicks) / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds (user + system, all threads) process `pid` has used so far, or NaN if it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    return cpuSeconds(parseProcStat(Deno.readTextFileSync(`/proc/${pid}/stat`)));
  } catch {
    return NaN;
  }
}
