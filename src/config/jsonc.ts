/**
 * JSON with comments (JSONC) for configuration files: `//` line comments, `/* *\/` block comments and
 * trailing commas before `}` or `]` are allowed; everything else is strict JSON.
 *
 * Comments and trailing commas are blanked out with spaces (line breaks kept), so every offset in the
 * stripped text is the offset in the original, and JSON syntax errors are reported at the operator's
 * own line and column. Comment markers inside strings are left alone.
 * @module
 */

/** A JSONC syntax error at a 1-based line and column of the input. */
export class JsoncSyntaxError extends Error {
  /** 1-based line of the error. */
  readonly line: number;
  /** 1-based column of the error (in UTF-16 code units, as editors count for most text). */
  readonly column: number;
  /** What is wrong, without the position. */
  readonly problem: string;
  constructor(problem: string, line: number, column: number) {
    super(`line ${line}:${column}: ${problem}`);
    this.name = "JsoncSyntaxError";
    this.problem = problem;
    this.line = line;
    this.column = column;
  }
}

/** Line and column (both 1-based) of a UTF-16 offset in `text`. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

function errorAt(text: string, offset: number, problem: string): JsoncSyntaxError {
  const { line, column } = lineColumnAt(text, offset);
  return new JsoncSyntaxError(problem, line, column);
}

/** Replaces every character except line breaks in `chars[from, to)` with a space. */
function blank(chars: string[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    if (chars[i] !== "\n" && chars[i] !== "\r") chars[i] = " ";
  }
}

/** Index just past the string literal that opens at `start` (a `"`), or -1 when it never closes. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === '"') return i + 1;
    else if (c === "\n") return -1;
  }
  return -1;
}

/**
 * Returns `text` with comments and trailing commas replaced by spaces (same length, same line breaks),
 * ready for `JSON.parse`. A leading byte-order mark is blanked too. Throws JsoncSyntaxError for an
 * unterminated block comment or string.
 */
export function stripJsonc(text: string): string {
  const chars = Array.from({ length: text.length }, (_, i) => text[i]);
  if (text.charCodeAt(0) === 0xfeff) chars[0] = " ";
  // Offset of the last comma seen outside strings and comments, while only blanks followed it.
  let pendingComma = -1;
  // Last character outside strings, comments and blanks: a comma is "trailing" only after a value.
  let previous = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = endOfString(text, i);
      if (end < 0) {
        throw errorAt(text, i, "unterminated string; close it with a double quote on the same line");
      }
      pendingComma = -1;
      previous = '"';
      i = end;
    } else if (c === "/" && text[i + 1] === "/") {
      let end = text.indexOf("\n", i);
      if (end < 0) end = text.length;
      blank(chars, i, end);
      i = end;
    } else if (c === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      if (close < 0) throw errorAt(text, i, "unterminated /* comment; close it with */");
      blank(chars, i, close + 2);
      i = close + 2;
    } else if (c === ",") {
      pendingComma = previous === "" || "{[,:".includes(previous) ? -1 : i;
      previous = c;
      i++;
    } else if (c === "}" || c === "]") {
      if (pendingComma >= 0) chars[pendingComma] = " ";
      pendingComma = -1;
      previous = c;
      i++;
    } else {
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") {
        pendingComma = -1;
        previous = c;
      }
      i++;
    }
  }
  return chars.join("");
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERALS: ReadonlyArray<[string, unknown]> = [["true", true], ["false", false], ["null", null]];
/** Deepest nesting accepted; a config file never comes close. */
const MAX_DEPTH = 64;

/**
 * Strict JSON parser over comment-free text that reports the offset of the first error and refuses
 * duplicate object keys (JSON.parse silently keeps the last one, which hides typos in configs).
 */
class StrictJsonParser {
  #pos = 0;
  constructor(private readonly source: string, private readonly text: string) {}

  parseDocument(): unknown {
    this.#skipBlanks();
    if (this.#pos >= this.text.length) throw this.#fail("the file is empty; it must hold one JSON value");
    const value = this.#value(0);
    this.#skipBlanks();
    if (this.#pos < this.text.length) throw this.#fail("unexpected text after the end of the JSON value");
    return value;
  }

  #fail(problem: string, at = this.#pos): JsoncSyntaxError {
    return errorAt(this.source, at, problem);
  }

  #skipBlanks(): void {
    while (this.#pos < this.text.length) {
      const c = this.text[this.#pos];
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") return;
      this.#pos++;
    }
  }

  #describeHere(): string {
    if (this.#pos >= this.text.length) return "the end of the file";
    return JSON.stringify(this.text[this.#pos]);
  }

  #value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw this.#fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.#pos];
    if (c === "{") return this.#object(depth);
    if (c === "[") return this.#array(depth);
    if (c === '"') return this.#string();
    NUMBER.lastIndex = this.#pos;
    const num = NUMBER.exec(this.text);
    if (num) {
      this.#pos += num[0].length;
      return Number(num[0]);
    }
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.#pos)) {
        this.#pos += word.length;
        return value;
      }
    }
    throw this.#fail(
      `expected a value (string, number, object, array, true, false or null) but found ${this.#describeHere()}` +
        (c === "'" ? "; use double quotes for strings" : ""),
    );
  }

  #string(): string {
    const start = this.#pos;
    const end = endOfString(this.text, start);
    if (end < 0) throw this.#fail("unterminated string; close it with a double quote on the same line");
    const literal = this.text.slice(start, end);
    for (let i = 1; i < literal.length - 1; i++) {
      if (literal.charCodeAt(i) < 0x20) {
        throw this.#fail("control character inside a string; write it as an escape such as \\t", start + i);
      }
    }
    try {
      this.#pos = end;
      return JSON.parse(literal) as string;
    } catch {
      throw this.#fail("invalid escape sequence in a string", start);
    }
  }

  #object(depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.#pos++; // {
    this.#skipBlanks();
    if (this.text[this.#pos] === "}") {
      this.#pos++;
      return out;
    }
    for (;;) {
      if (this.text[this.#pos] !== '"') {
        throw this.#fail(`expected a property name in double quotes but found ${this.#describeHere()}`);
      }
      const keyAt = this.#pos;
      const key = this.#string();
      if (seen.has(key)) {
        throw this.#fail(`duplicate key ${JSON.stringify(key)}; keep only one of them`, keyAt);
      }
      seen.add(key);
      this.#skipBlanks();
      if (this.text[this.#pos] !== ":") {
        throw this.#fail(`expected ':' after property name but found ${this.#describeHere()}`);
      }
      this.#pos++;
      this.#skipBlanks();
      // defineProperty keeps a key named "__proto__" an ordinary property.
      Object.defineProperty(out, key, {
        value: this.#value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.#skipBlanks();
      const c = this.text[this.#pos];
      this.#pos++;
      if (c === "}") return out;
      if (c !== ",") {
        this.#pos--;
        throw this.#fail(`expected ',' or '}' after a property value but found ${this.#describeHere()}`);
      }
      this.#skipBlanks();
    }
  }

  #array(depth: number): unknown[] {
    const out: unknown[] = [];
    this.#pos++; // [
    this.#skipBlanks();
    if (this.text[this.#pos] === "]") {
      this.#pos++;
      return out;
    }
    for (;;) {
      out.push(this.#value(depth + 1));
      this.#skipBlanks();
      const c = this.text[this.#pos];
      this.#pos++;
      if (c === "]") return out;
      if (c !== ",") {
        this.#pos--;
        throw this.#fail(`expected ',' or ']' after an array element but found ${this.#describeHere()}`);
      }
      this.#skipBlanks();
    }
  }
}

/**
 * Parses JSONC text into a plain JSON value. Throws JsoncSyntaxError naming the line and column of the
 * first syntax error (of the original text, comments included), including a key repeated in one object.
 */
export function parseJsonc(text: string): unknown {
  return new StrictJsonParser(text, stripJsonc(text)).parseDocument();
}
