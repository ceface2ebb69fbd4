/**
 * What the support bundle gathers from the host and the node's files (the I/O shell of bundle.ts):
 * versions, the node's `ip` output (it runs in the node's own namespace, so `ip` sees the node's
 * view), the config file's text, the last accepted network map and the newest audit records. Each
 * part that fails becomes a one-line reason in the bundle instead of failing the whole bundle.
 * @module
 */
import { libcryptoVersion } from "../../ffi/libcrypto.ts";
import { AUDIT_FILE } from "../audit/audit-log.ts";
import { CONFIG_FILE_MAX_BYTES, readConfigText } from "../config/secret-file.ts";
import { aeadBackendInUse } from "../crypto/backend.ts";
import { LAST_GOOD_FILE, loadLastGood } from "../netmap/last-good.ts";
import { VERSION } from "../version.ts";
import { type Gathered, IP_COMMANDS } from "./bundle.ts";

/** How long one `ip` command may run, ms. */
export const IP_TIMEOUT_MS = 5_000;
/** Largest `ip` output kept, bytes (a host with huge tables gets a cut copy). */
export const IP_OUTPUT_MAX_BYTES = 4 * 1024 * 1024;
/** Newest audit records included. */
export const AUDIT_HEAD_RECORDS = 200;

function failure(e: unknown): { error: string } {
  return { error: ((e as Error)?.message ?? String(e)).split("\n")[0].slice(0, 300) };
}

/** twofold, Deno, V8, TypeScript, kernel, OS, libcrypto and the AEAD backend in use. */
export function gatherVersions(): Record<string, string> {
  const v: Record<string, string> = {
    twofold: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
  try {
    v.kernel = Deno.osRelease();
  } catch (e) {
    v.kernel = `unknown (${failure(e).error})`;
  }
  v.libcrypto = libcryptoVersion() ?? "not loaded";
  try {
    v.aeadBackend = aeadBackendInUse() ?? "none chosen yet";
  } catch (e) {
    v.aeadBackend = `unknown (${failure(e).error})`;
  }
  return v;
}

/** Runs `ip ARGS` once (bounded in time and output). */
export async function runIp(args: readonly string[]): Promise<Gathered<string>> {
  try {
    const out = await new Deno.Command("ip", {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(IP_TIMEOUT_MS),
    }).output();
    const text = new TextDecoder().decode(out.stdout.subarray(0, IP_OUTPUT_MAX_BYTES));
    if (out.code !== 0) {
      return { error: `exit ${out.code}: ${new TextDecoder().decode(out.stderr).trim().slice(0, 300)}` };
    }
    return { ok: text.endsWith("\n") ? text : `${text}\n` };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { error: "ip (iproute2) is not installed" };
    return failure(e);
  }
}

/** Every `ip` output of the bundle, by file name. */
export async function gatherIp(): Promise<Record<string, Gathered<string>>> {
  const out: Record<string, Gathered<string>> = {};
  for (const [file, args] of Object.entries(IP_COMMANDS)) out[file] = await runIp(args);
  return out;
}

/** The config file's text, read under the config-file rules (a regular file of bounded size). */
export function gatherConfig(path: string | null): Gathered<{ path: string; text: string }> {
  if (path === null) return { missing: "the node did not say which config file it runs" };
  try {
    return { ok: { path, text: readConfigText(path, { label: "config", maxBytes: CONFIG_FILE_MAX_BYTES }) } };
  } catch (e) {
    return failure(e);
  }
}

/** The network map the node last accepted (`<stateDir>/netmap-last-good.json`), if any. */
export function gatherNetmap(stateDir: string): Gathered<{ path: string; text: string }> {
  const path = `${stateDir}/${LAST_GOOD_FILE}`;
  try {
    const last = loadLastGood(stateDir);
    if (last === null) return { missing: `no network map (${path} does not exist)` };
    return { ok: { path, text: new TextDecoder().decode(last.document) } };
  } catch (e) {
    return failure(e);
  }
}

/** The newest {@link AUDIT_HEAD_RECORDS} lines of `<stateDir>/audit.jsonl` (the head of the chain). */
export function gatherAuditHead(stateDir: string): Gathered<{ path: string; text: string }> {
  const path = `${stateDir}/${AUDIT_FILE}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { missing: `no audit log (${path} does not exist)` };
    return failure(e);
  }
  const lines = text.split("\n").filter((l) => l !== "");
  return { ok: { path, text: lines.slice(-AUDIT_HEAD_RECORDS).join("\n") + (lines.length > 0 ? "\n" : "") } };
}
