/**
 * One running node or hub per state directory: `twofold up` and `twofold hub` hold an exclusive
 * advisory lock (flock) on `<stateDir>/twofold.lock` for as long as they run, so two processes never
 * share PSRD pools, the lockdown list or the admin token. The file holds the owner's PID, so a second
 * start can name the process that has it. The kernel drops the lock when the process ends, however it
 * ends, so a lock left by a crash is never stale: the file stays, the lock does not.
 * @module
 */

/** Name of the lock file inside the state directory. */
export const STATE_LOCK_FILE = "twofold.lock";

/** The state directory is held by another running process. */
export class StateDirInUseError extends Error {
  /**
   * `pid` is the holder's PID as it wrote it (null when unreadable); `field` names the config field
   * the operator changes to give this process its own directory.
   */
  constructor(readonly stateDir: string, readonly pid: number | null, field: string) {
    super(
      `state directory ${stateDir} is in use by another twofold process${
        pid === null ? "" : ` (PID ${pid})`
      }: stop it, or give this one its own ${field}`,
    );
    this.name = "StateDirInUseError";
  }
}

/** A held lock on a state directory. */
export interface StateDirLock {
  /** Path of the lock file. */
  readonly path: string;
  /** Releases the lock (closing the file); idempotent. The file stays. */
  release(): void;
}

/**
 * Creates `stateDir` (0700) when absent and takes its lock for this process. Throws
 * {@link StateDirInUseError} naming the holder's PID when another process has it; `field` is the
 * config field that sets the directory (`node.stateDir`, `hub.stateDir`).
 */
export function lockStateDir(stateDir: string, field: string): StateDirLock {
  Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = `${stateDir}/${STATE_LOCK_FILE}`;
  const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = file.tryLockSync(true);
    if (!locked) throw new StateDirInUseError(stateDir, readPid(file), field);
    file.truncateSync(0);
    file.seekSync(0, Deno.SeekMode.Start);
    const bytes = new TextEncoder().encode(`${Deno.pid}\n`);
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
  } catch (e) {
    file.close();
    throw e;
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      file.close();
    },
  };
}

/** The PID written in the lock file, or null when it holds none. */
function readPid(file: Deno.FsFile): number | null {
  const buf = new Uint8Array(32);
  let n: number | null;
  try {
    n = file.readSync(buf);
  } catch {
    return null;
  }
  const text = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
  return /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : null;
}
