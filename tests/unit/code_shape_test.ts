/** The code-shape report's function finder: definitions are measured, multi-line calls in tables are not. */
import assert from "node:assert/strict";
import { longFunctions } from "../../tools/code-shape.ts";

/** `n` body lines of one statement each. */
function bodyLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`);
}

Deno.test("a function, a method and an arrow function are measured from their first to their last line", () => {
  const text = [
    "export function plain(a: number): number {",
    ...bodyLines(4),
    "  return a;",
    "}",
    "class C {",
    "  method(",
    "    a: string,",
    "  ): string {",
    ...bodyLines(3),
    "    return a;",
    "  }",
    "}",
    "const arrow = async (x: number): Promise<number> => {",
    ...bodyLines(2),
    "  return x;",
    "};",
  ].join("\n");
  const found = longFunctions("f.ts", text, 0).map((f) => [f.name, f.line, f.lines]);
  assert.deepEqual(found, [["plain", 1, 7], ["method", 9, 8], ["arrow", 18, 5]]);
});

Deno.test("a call whose arguments span lines inside a declarative table is not a function", () => {
  const text = [
    "const TABLE = [",
    "  {",
    '    name: "a",',
    "    signals: [",
    "      hangUpSignal(",
    '        "re-reads the files",',
    "      ),",
    "    ],",
    "  },",
    "  {",
    '    name: "b",',
    "    start: () =>",
    "      startPart(cfg, {",
    "        hook: (peer) => peer,",
    "      }, (e) => e),",
    "  },",
    "];",
  ].join("\n");
  assert.deepEqual(longFunctions("table.ts", text, 0).map((f) => f.name), []);
});

Deno.test("only functions longer than the limit are reported", () => {
  const text = ["function short() {", ...bodyLines(3), "}", "function long() {", ...bodyLines(8), "}"].join(
    "\n",
  );
  assert.deepEqual(longFunctions("f.ts", text, 6).map((f) => [f.name, f.lines]), [["long", 10]]);
});
