/**
 * The Deno binary running this process, so tests can start Deno subprocesses (for example inside a
 * network namespace with `ip netns exec NS <denoBin()> run -A script.ts`) without going through npx.
 *
 * @module
 */

/** Absolute path of the running Deno executable (`Deno.execPath()`). */
export function denoBin(): string {
  return Deno.execPath();
}
