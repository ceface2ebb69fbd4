/**
 * `twofold bundle [-o FILE]`: fetches a support bundle from a running node's admin API
 * (`GET /v1/debug/bundle`, always with the admin token) and writes it, mode 0600, to FILE (default:
 * the name the node suggests, `twofold-bundle-<node>-<time>.tar.gz`, in the current directory; `-`
 * for stdout). An existing file is never overwritten. The node is found as `twofold status` finds it
 * (`--config`, `--admin`, `--token-file`). See docs/support-bundle.md for what the bundle holds.
 * @module
 */
import { AdminClient, describeTarget, parseAdminArgs } from "./admin-client.ts";
import { CliError } from "./errors.ts";
import { helpOf, usageOf } from "./help.ts";

const USAGE = usageOf("bundle");
const HELP = helpOf("bundle");
/** The API path of the bundle. */
export const BUNDLE_PATH = "/v1/debug/bundle";
const SUGGESTED = /filename="(twofold-bundle-[A-Za-z0-9_-]+-\d{8}T\d{6}Z\.tar\.gz)"/;

/** Runs the command; resolves with the exit code. */
export async function runBundle(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP, ["output"], { output: "o" });
  if (a.positionals.length > 0) throw new CliError(`unexpected argument "${a.positionals[0]}" (${USAGE})`);
  if (a.json) throw new CliError(`--json is not an option of bundle (${USAGE})`);
  const output = a.strings.output;
  if (output === "") throw new CliError(`-o needs a file name, or - for stdout (${USAGE})`);
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  try {
    const r = await client.request("GET", BUNDLE_PATH, {
      auth: true,
      headers: { accept: "application/gzip" },
    });
    if (!r.ok) throw client.apiError(r.status, await r.text());
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (output === "-") {
      await Deno.stdout.write(bytes);
      return 0;
    }
    const path = output ?? SUGGESTED.exec(r.headers.get("content-disposition") ?? "")?.[1] ??
      "twofold-bundle.tar.gz";
    await writeNew(path, bytes);
    console.log(`wrote ${path} (${bytes.length} bytes) from ${describeTarget(a.target)}`);
    return 0;
  } finally {
    client.close();
  }
}

/** Writes `bytes` to a file that must not exist yet, mode 0600; problems are one line (exit 1). */
async function writeNew(path: string, bytes: Uint8Array): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new CliError(`${path} exists already; choose another name with -o FILE`, 1);
    }
    throw new CliError(`cannot create ${path}: ${(e as Error).message}`, 1);
  }
  try {
    let at = 0;
    while (at < bytes.length) at += await f.write(bytes.subarray(at));
  } finally {
    f.close();
  }
}
