/**
 * `twofold audit verify FILE…`: checks audit log files offline (oldest first, e.g.
 * `/var/lib/twofold/audit*.jsonl`) as one hash chain and prints one line: ok with the head record
 * and hash, or the first broken record (file, line, sequence number, what is wrong).
 * @module
 */
import { describeReport, verifyChain } from "../audit/chain.ts";
import { CliError } from "./errors.ts";
import { usageOf } from "./help.ts";

const USAGE = usageOf("audit verify");

/** Runs `twofold audit …`; resolves with the exit code (0 intact, 1 broken, 2 bad usage or file). */
export async function runAudit(args: string[]): Promise<number> {
  const [sub, ...files] = args;
  if (sub !== "verify") {
    throw new CliError(
      sub === undefined ? `a subcommand is required (${USAGE})` : `unknown subcommand "${sub}" (${USAGE})`,
    );
  }
  const unknown = files.find((f) => f.startsWith("-"));
  if (unknown) throw new CliError(`unknown option "${unknown}"; run "twofold audit verify --help"`);
  if (files.length === 0) throw new CliError(`name at least one audit file (${USAGE})`);
  const texts = [];
  for (const name of files) {
    try {
      texts.push({ name, text: await Deno.readTextFile(name) });
    } catch (e) {
      throw new CliError(`${name}: cannot read the audit file (${(e as Error).message.split(":")[0]})`);
    }
  }
  const report = verifyChain(texts);
  (report.ok ? console.log : console.error)(describeReport(report));
  return report.ok ? 0 : 1;
}
