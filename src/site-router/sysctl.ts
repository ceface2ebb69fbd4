/**
 * Reading and writing kernel switches under /proc/sys — the thin shell under forwarding-plan.ts. They
 * are plain files (per network namespace: the files show the namespace of the process that opens them).
 * @module
 */
import type { SysctlWrite } from "./forwarding-plan.ts";

/** Where the switches live. */
export const PROC_SYS = "/proc/sys";

/** Reads and writes sysctls; the node uses {@link procSysctl}, tests may wrap it. */
export interface SysctlIo {
  /** The value of `key` (a path under /proc/sys) without its newline, or null when it does not exist. */
  read(key: string): Promise<string | null>;
  /** Writes `value` to `key`; throws on failure. */
  write(key: string, value: string): Promise<void>;
}

/** The switches of the running kernel, in the caller's network namespace. */
export const procSysctl: SysctlIo = {
  async read(key) {
    try {
      return (await Deno.readTextFile(`${PROC_SYS}/${key}`)).trim();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  },
  async write(key, value) {
    await Deno.writeTextFile(`${PROC_SYS}/${key}`, `${value}\n`);
  },
};

/** Reads every key in `keys`, in order. */
export async function readSysctls(
  io: SysctlIo,
  keys: readonly string[],
): Promise<Map<string, string | null>> {
  const values = new Map<string, string | null>();
  for (const key of keys) values.set(key, await io.read(key));
  return values;
}

/**
 * Writes every value in `writes` in order, even past a failure (a restore puts back as much as it
 * can); returns the failures as `key: message`.
 */
export async function writeEverySysctl(io: SysctlIo, writes: readonly SysctlWrite[]): Promise<string[]> {
  const failures: string[] = [];
  for (const { key, value } of writes) {
    try {
      await io.write(key, value);
    } catch (e) {
      failures.push(`${PROC_SYS}/${key}: ${(e as Error).message}`);
    }
  }
  return failures;
}
