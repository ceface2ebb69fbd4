/**
 * `twofold up` and `twofold hub` take their state directory's lock before touching anything in it;
 * every problem is one CliError line, exit 2 (another process holding it is named by its PID).
 * @module
 */
import { lockStateDir, StateDirInUseError, type StateDirLock } from "../state-dir-lock.ts";
import { CliError } from "./errors.ts";

/** Locks `stateDir` (set by config field `field`) for this process, or throws a CliError (exit 2). */
export function holdStateDir(stateDir: string, field: string): StateDirLock {
  try {
    return lockStateDir(stateDir, field);
  } catch (e) {
    if (e instanceof StateDirInUseError) throw new CliError(e.message, 2);
    throw new CliError(
      `${field}: cannot create or lock ${stateDir} (${
        (e as Error).name
      }); run as its owner or pick another directory`,
      2,
    );
  }
}
