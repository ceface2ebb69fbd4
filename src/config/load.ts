/**
 * Reading a config file (node, hub, broker) under the config-file rules, and its JSONC text into a
 * value; each failure is one CliError line (exit 2).
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { CliError } from "../operator-error.ts";
import { JsoncSyntaxError, parseJsonc } from "./jsonc.ts";
import { CONFIG_FILE_MAX_BYTES, FileRuleError, readConfigText } from "./secret-file.ts";

/** The `config <file>: <detail>` error line (exit 2); whitespace runs collapse to one space. */
export function configError(sourceName: string | undefined, detail: string): CliError {
  const where = sourceName ? `config ${sourceName}` : "config";
  return new CliError(`${where}: ${detail.replace(/\s+/g, " ")}`, 2);
}

/** Parses JSONC config text; a syntax error becomes one {@link configError} line naming where. */
export function parseConfigJsonc(text: string, sourceName: string | undefined): unknown {
  try {
    return parseJsonc(text);
  } catch (e) {
    if (e instanceof JsoncSyntaxError) {
      const fix = e.problem.includes(";") ? "" : "; fix the JSON syntax there";
      throw configError(sourceName, `${e.message}${fix}`);
    }
    throw e;
  }
}

/**
 * Reads a config file for the node, hub and broker loaders; returns its text and the directory
 * relative paths in it resolve against. A file the config-file rules refuse (missing, unreadable, not a
 * regular file, over {@link CONFIG_FILE_MAX_BYTES}) is one CliError line (exit 2).
 */
// deno-lint-ignore require-await
export async function readConfigFile(
  path: string,
  kind: "node" | "hub" | "broker",
): Promise<{ text: string; baseDir: string }> {
  const absolute = resolvePath(path);
  try {
    const text = readConfigText(absolute, { label: "config", maxBytes: CONFIG_FILE_MAX_BYTES });
    return { text, baseDir: resolvePath(absolute, "..") };
  } catch (e) {
    if (!(e instanceof FileRuleError)) throw e;
    const fix = e.broken === "missing" || e.broken === "not-regular" || e.broken === "too-large"
      ? `pass the path of a ${kind} config with --config`
      : e.fix;
    throw new CliError(`config ${path}: the file ${e.problem}; ${fix}`, 2);
  }
}
