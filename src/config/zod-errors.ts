/**
 * Schema issues as one operator line: the shared wording every config parser (node config, policies,
 * network map) uses for paths, types, quoted values, unknown keys and the DNS-label rule.
 * @module
 */
import type { z } from "zod";

/** One DNS label: letters, digits, hyphens, 1–63, not starting or ending with a hyphen. */
export const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** The {@link DNS_LABEL} rule in words. */
export const DNS_LABEL_RULE = "1-63 letters, digits or hyphens, not starting or ending with a hyphen";

/** A problem with one field: `field` is its path, `problem` says what is wrong and how to fix it. */
export class FieldProblem extends Error {
  /** Takes the field path and the problem text; the message is `field: problem`. */
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

/** `["peers", 2, "aesIp"]` → `peers[2].aesIp` (after `base`, when given); empty → `(top level)`. */
export function formatPath(path: readonly PropertyKey[], base = ""): string {
  let out = base;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(top level)" : out;
}

/** What kind of value `value` is, in words ("a whole number", "an array"). */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "a whole number" : "a fractional number";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** A zod expected-type name in words. */
export const EXPECTED: Readonly<Record<string, string>> = {
  string: "a string in double quotes",
  int: "a whole number",
  number: "a number",
  object: "an object { … }",
  array: "an array [ … ]",
  boolean: "true or false",
};

/** Quotes a short operator-supplied value for a message (never used for key material). */
export function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The problem text for an unknown `key` where `known` keys are allowed (with a case-only near miss). */
export function unknownKeyProblem(key: string, known: readonly string[]): string {
  const meant = known.find((k) => k.toLowerCase() === key.toLowerCase());
  return `unknown key; remove it or fix the spelling (allowed here: ${known.join(", ")})` +
    (meant ? `; did you mean "${meant}"?` : "");
}

/** The problem text for a wrong-typed or missing value; `formatHint` is where the format is documented. */
export function wrongTypeProblem(issue: z.core.$ZodIssueInvalidType, formatHint: string): string {
  const expected = EXPECTED[issue.expected] ?? issue.expected;
  if (issue.input === undefined) return `missing; add it (${expected})`;
  const fix = typeof issue.input === "string" && (issue.expected === "number" || issue.expected === "int")
    ? "remove the quotes around the number"
    : `see ${formatHint} for the format`;
  return `expected ${expected}, got ${describeType(issue.input)}; ${fix}`;
}

/** The problem text for a value outside an enumeration. */
export function notAllowedProblem(input: unknown, values: readonly unknown[]): string {
  return `${quote(input)} is not allowed; use one of ${values.map((v) => quote(v)).join(", ")}`;
}

/**
 * The one issue to report: a misspelled key also makes its correct spelling "missing", so the unknown
 * key (the real mistake) wins.
 */
export function firstIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  return issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
}
