/**
 * The forwarding switches' values from before twofold changed them, kept in
 * `<stateDir>/site-forwarding.json` while a router node runs. After a crash the kernel still has our
 * values; the next start reads this file and takes the values in it as the ones to restore, so a
 * crash never makes "forwarding on" the state we put back. Removed after a clean restore.
 * @module
 */
import { writeFileAtomic } from "../dske/durable-file.ts";
import type { SysctlWrite } from "./forwarding-plan.ts";

/** The file's name in the state directory. */
export const SAVED_FORWARDING_FILE = "site-forwarding.json";

/** The only keys the file may name: a per-interface forwarding switch (never a global one). */
const SAVED_KEY =
  /^net\/ipv(4\/conf\/[A-Za-z0-9_.=+-]{1,15}\/forwarding|6\/conf\/[A-Za-z0-9_.=+-]{1,15}\/force_forwarding)$/;
/** A saved value: a small number. */
const SAVED_VALUE = /^[0-9]{1,3}$/;

/** The file's text for `restore`. */
export function formatSavedForwarding(restore: readonly SysctlWrite[]): string {
  return JSON.stringify({ version: 1, restore }, null, 2) + "\n";
}

/** The values in the file's `text`; throws an Error saying what is wrong. */
export function parseSavedForwarding(text: string): SysctlWrite[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  const restore = data as { version?: unknown; restore?: unknown } | null;
  if (restore?.version !== 1 || !Array.isArray(restore.restore)) {
    throw new Error('expected {"version": 1, "restore": [...]}');
  }
  return restore.restore.map((entry: unknown) => {
    const { key, value } = (entry ?? {}) as { key?: unknown; value?: unknown };
    if (
      typeof key !== "string" || !SAVED_KEY.test(key) || typeof value !== "string" || !SAVED_VALUE.test(value)
    ) {
      throw new Error(`not a forwarding switch and value: ${JSON.stringify(entry)}`);
    }
    return { key, value };
  });
}

/** The values saved in `dir` (empty when there is no file); throws an Error naming the file when it is corrupt. */
export async function loadSavedForwarding(dir: string): Promise<SysctlWrite[]> {
  const path = `${dir}/${SAVED_FORWARDING_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  try {
    return parseSavedForwarding(text);
  } catch (e) {
    throw new Error(
      `${path} is corrupt (${
        (e as Error).message
      }); restore the forwarding switches it held by hand and remove it`,
    );
  }
}

/** Saves `restore` in `dir` atomically (write, fsync, rename); removes the file when `restore` is empty. */
export async function saveForwarding(dir: string, restore: readonly SysctlWrite[]): Promise<void> {
  if (restore.length === 0) return await removeSavedForwarding(dir);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(dir, SAVED_FORWARDING_FILE, formatSavedForwarding(restore));
}

/** Removes the file from `dir` (nothing to do when it is absent). */
export async function removeSavedForwarding(dir: string): Promise<void> {
  try {
    await Deno.remove(`${dir}/${SAVED_FORWARDING_FILE}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
