/**
 * Code-shape report for the acceptance figures of the codebase: every `.ts` file under the given
 * directories (default `src ffi`) longer than the file limit, and every function longer than the
 * function limit. Not a test and not a gate: it prints what a reviewer should look at.
 *
 * Functions are found by a heuristic, not a parser: a line that starts a function, method, arrow
 * function assigned to a name, or class constructor/getter, and whose body opens with `{` on that line
 * (or the next few); the body ends where the braces balance again. Braces inside strings, template
 * literals, regular expressions and comments are skipped well enough for this codebase; a miscount
 * shows up as an implausible length, which a reader spots at once.
 *
 * Usage: `deno run --allow-read tools/code-shape.ts [--file-limit 600] [--function-limit 100] [dir…]`
 * @module
 */
import { parseArgs } from "node:util";

/** A file or function over its limit. */
export interface Finding {
  /** File path as walked. */
  path: string;
  /** First line (1-based) of the function; 1 for a file. */
  line: number;
  /** Function name, or null for a whole file. */
  name: string | null;
  /** Length in lines. */
  lines: number;
}

/** Default limit for a file's length (lines): above it, a reviewer checks that it holds one concern. */
export const DEFAULT_FILE_LIMIT = 600;
/** Default limit for a function's length (lines). */
export const DEFAULT_FUNCTION_LIMIT = 100;

const FUNCTION_START = [
  /^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)\s*[<(]/,
  /^\s*(?:export\s+)?(?:const|let)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)?\s*(?::\s*[^=]+)?=>/,
  /^\s*(?:public\s+|private\s+|protected\s+|static\s+|readonly\s+|override\s+|async\s+|get\s+|set\s+)*(#?[A-Za-z_$][\w$]*)\s*(?:<[^>]*>)?\s*\((?:.*\)\s*(?::[^=;]*)?\{|[^)]*)\s*$/,
];

const NOT_METHODS = new Set([
  "if",
  "for",
  "while",
  "switch",
  "catch",
  "return",
  "function",
  "with",
  "await",
  "new",
]);

/** Strips strings, template literal text, regex-free comments and line comments, keeping braces that count. */
function codeOnly(line: string, state: { inBlockComment: boolean; inTemplate: boolean }): string {
  let out = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    const next = line[i + 1];
    if (state.inBlockComment) {
      if (c === "*" && next === "/") {
        state.inBlockComment = false;
        i++;
      }
      continue;
    }
    if (state.inTemplate) {
      if (c === "\\") i++;
      else if (c === "`") state.inTemplate = false;
      continue;
    }
    if (c === "/" && next === "/") break;
    if (c === "/" && next === "*") {
      state.inBlockComment = true;
      i++;
      continue;
    }
    if (c === "`") {
      state.inTemplate = true;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < line.length && line[j] !== c) j += line[j] === "\\" ? 2 : 1;
      i = j;
      continue;
    }
    out += c;
  }
  return out;
}

/** Functions longer than `limit` lines in one file's text. */
export function longFunctions(path: string, text: string, limit: number): Finding[] {
  const lines = text.split("\n");
  const state = { inBlockComment: false, inTemplate: false };
  const code = lines.map((l) => codeOnly(l, state));
  const found: Finding[] = [];
  for (let i = 0; i < lines.length; i++) {
    const name = functionNameAt(code[i]);
    if (name === null) continue;
    const end = bodyEnd(code, i);
    if (end === null) continue;
    const length = end - i + 1;
    if (length > limit) found.push({ path, line: i + 1, name, lines: length });
  }
  return found;
}

function functionNameAt(code: string): string | null {
  for (const pattern of FUNCTION_START) {
    const m = code.match(pattern);
    if (m && !NOT_METHODS.has(m[1])) return m[1];
  }
  return null;
}

/** What may follow a definition's parameter list: its body, a return type, or an arrow. */
const AFTER_PARAMETERS = new Set(["{", ":", "="]);

/**
 * The line where the body that opens at or shortly after `start` closes; null when none opens. Braces
 * inside the parameter list (destructuring, `= {}` defaults) do not open the body. A parameter list
 * followed by anything but a body, a return type or an arrow was a call's arguments (e.g. a call that
 * spans lines inside a declarative table): no function starts there.
 */
function bodyEnd(code: string[], start: number): number | null {
  let depth = 0;
  let parens = 0;
  let opened = false;
  let afterParameters = false;
  for (let i = start; i < code.length; i++) {
    for (const c of code[i]) {
      if (afterParameters && c.trim() !== "") {
        if (!AFTER_PARAMETERS.has(c)) return null;
        afterParameters = false;
      }
      if (c === "(") parens++;
      else if (c === ")") {
        parens--;
        if (!opened && parens === 0) afterParameters = true;
      } else if (!opened && parens > 0) continue;
      else if (c === "{") {
        depth++;
        opened = true;
      } else if (c === "}") {
        depth--;
        if (opened && depth === 0) return i;
      } else if (c === ";" && !opened && depth === 0) return null;
    }
    if (!opened && i - start > 6) return null;
  }
  return null;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile && path.endsWith(".ts")) yield path;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      "file-limit": { type: "string", default: String(DEFAULT_FILE_LIMIT) },
      "function-limit": { type: "string", default: String(DEFAULT_FUNCTION_LIMIT) },
    },
    allowPositionals: true,
  });
  const fileLimit = Number(values["file-limit"]);
  const functionLimit = Number(values["function-limit"]);
  const dirs = positionals.length > 0 ? positionals : ["src", "ffi"];
  const files: Finding[] = [];
  const functions: Finding[] = [];
  let fileCount = 0;
  for (const dir of dirs) {
    for await (const path of walk(dir)) {
      fileCount++;
      const text = await Deno.readTextFile(path);
      const lineCount = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
      if (lineCount > fileLimit) files.push({ path, line: 1, name: null, lines: lineCount });
      functions.push(...longFunctions(path, text, functionLimit));
    }
  }
  files.sort((a, b) => b.lines - a.lines);
  functions.sort((a, b) => b.lines - a.lines);
  console.log(`${fileCount} files under ${dirs.join(", ")}`);
  console.log(`files over ${fileLimit} lines: ${files.length}`);
  for (const f of files) console.log(`  ${String(f.lines).padStart(5)}  ${f.path}`);
  console.log(`functions over ${functionLimit} lines: ${functions.length}`);
  for (const f of functions) console.log(`  ${String(f.lines).padStart(5)}  ${f.path}:${f.line}  ${f.name}`);
}

if (import.meta.main) await main();
