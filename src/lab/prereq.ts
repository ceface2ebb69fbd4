/**
 * Prerequisite checks for integration tests that need root, network namespaces or Debian binaries.
 *
 * Outside CI a missing prerequisite makes a test *skip* with an explicit message. When the `CI`
 * environment variable is set, a missing prerequisite must make the test *fail* instead: there the
 * environment is supposed to provide everything, so a skip would hide a broken set-up.
 * @module
 */

/** True when running under CI (env `CI` set to anything but "", "0" or "false"). */
export function isCI(): boolean {
  const v = Deno.env.get("CI");
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/** Returns a reason to skip when the process is not root, otherwise null. */
export function requireRoot(): string | null {
  try {
    return Deno.uid() === 0 ? null : "needs root (network namespaces, TUN devices)";
  } catch {
    return "cannot determine the user id (needs --allow-sys)";
  }
}

/** Returns a reason to skip when `/dev/net/tun` is missing, otherwise null. */
export function requireTun(): string | null {
  try {
    return Deno.statSync("/dev/net/tun").isCharDevice ? null : "/dev/net/tun is not a character device";
  } catch {
    return "/dev/net/tun is missing";
  }
}

/** Returns a reason to skip when executable `name` is not found on PATH, otherwise null. */
export function requireBinary(name: string): string | null {
  return findBinary(name) === null ? `binary not found on PATH: ${name}` : null;
}

/** Absolute path of executable `name` on PATH (or `name` itself if it contains a slash), or null. */
export function findBinary(name: string): string | null {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").filter((d) => d !== "").map((
      d,
    ) => `${d}/${name}`);
  for (const path of candidates) {
    try {
      const st = Deno.statSync(path);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return path;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}

/** All non-null reasons among `checks`. */
function reasons(checks: (string | null)[]): string[] {
  return checks.filter((c): c is string => c !== null);
}

/**
 * For `Deno.test({ ignore: skipReason(...) !== false })`: the joined reasons to skip, or false to run.
 * Prints the reason so a skip is never silent. Under CI it always returns false (the test runs) and
 * the test must call {@link assertPrerequisites} first, so that missing prerequisites fail it.
 */
export function skipReason(...checks: (string | null)[]): string | false {
  const missing = reasons(checks);
  if (missing.length === 0) return false;
  if (isCI()) return false;
  const reason = missing.join("; ");
  console.warn(`[skip] ${reason}`);
  return reason;
}

/** Throws an error naming every missing prerequisite among `checks` (use at the start of a test body). */
export function assertPrerequisites(...checks: (string | null)[]): void {
  const missing = reasons(checks);
  if (missing.length > 0) {
    throw new Error(
      `missing prerequisites${isCI() ? " (CI: failing instead of skipping)" : ""}: ${missing.join("; ")}`,
    );
  }
}

/**
 * Registers an integration test that skips (with a printed reason) when a prerequisite is missing,
 * or fails when one is missing under CI. `checks` are results of the `requireX` functions.
 */
export function integrationTest(
  name: string,
  checks: (string | null)[],
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const missing = reasons(checks);
  const ignore = missing.length > 0 && !isCI();
  if (ignore) console.warn(`[skip] ${name}: ${missing.join("; ")}`);
  Deno.test({
    name,
    ignore,
    fn: async (t) => {
      assertPrerequisites(...checks);
      await fn(t);
    },
  });
}
