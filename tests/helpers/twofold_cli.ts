/**
 * Running the `twofold` CLI from a test (the resolved Deno binary on `main.ts`, never npx) and writing the
 * secret files its commands read, so namespace tests that drive `twofold netmap`, `keygen` and friends share
 * one way to do it.
 *
 * @module
 */
import assert from "node:assert/strict";

/** `main.ts` of this checkout. */
export const TWOFOLD_MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** What one CLI run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `twofold ARGS…` in `cwd` (default: this process's) and returns its exit code and output. */
export async function runTwofoldCli(args: string[], cwd?: string): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", TWOFOLD_MAIN, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `twofold ARGS…` in `cwd`, asserts it exited 0 (its stderr in the message) and returns its stdout. */
export async function twofoldOk(cwd: string, ...args: string[]): Promise<string> {
  const run = await runTwofoldCli(args, cwd);
  assert.equal(run.code, 0, `twofold ${args.join(" ")}: ${run.stderr}`);
  return run.stdout;
}

/**
 * Writes `text` and a newline to `path` as a 0600 secret file, through a temporary name renamed over it, so
 * a node watching the file never reads it half-written (the chmod undoes a narrowing umask).
 */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text + "\n", { mode: 0o600 });
  await Deno.chmod(`${path}.tmp`, 0o600);
  await Deno.rename(`${path}.tmp`, path);
}
