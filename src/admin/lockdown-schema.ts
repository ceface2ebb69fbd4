/**
 * The wg0 lockdown extra-port list on the wire: request and response schemas (for validation and the
 * OpenAPI document) and the value rules.
 *
 * An entry is `{ "proto": "tcp" | "udp", "port": 8080 }` or `{ "proto": "udp", "port": "6000-6010" }`
 * (an inclusive range; `"8080"` is accepted for a single port). Responses add `from` and `to`, and
 * extra fields in a request entry are ignored, so a listed entry can be sent back as it is.
 *
 * Validation happens in two steps: the zod schemas check the shape (types, required fields) and a
 * failure there is a 400; {@link checkEntries} checks the values and a failure there is a 422:
 * proto `tcp` or `udp`; ports 1..65535; a range's low ≤ high; at most {@link MAX_LOCKDOWN_ENTRIES}
 * entries; no two entries of one protocol overlapping; no entry that is just a port the lockdown
 * always allows (UDP on the aes0 port, TCP 51831 of the key plane — ranges that merely contain one are
 * fine).
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { LockdownState } from "./model.ts";
import { ApiError } from "./errors.ts";
import { DSKE_PORT } from "../config/ports.ts";
import {
  type AlwaysAllowed,
  formatEntry,
  isAlwaysAllowed,
  type LockdownPort,
  MAX_LOCKDOWN_ENTRIES,
  overlaps,
  parsePortRange,
  PortSpecError,
  sortEntries,
} from "../config/lockdown-ports.ts";

/** Re-exported for the admin API's callers; the rules live in `config/lockdown-ports.ts`. */
export {
  type AlwaysAllowed,
  formatEntry,
  formatPort,
  isAlwaysAllowed,
  MAX_LOCKDOWN_ENTRIES,
  overlaps,
  sortEntries,
} from "../config/lockdown-ports.ts";

/** The key plane's TCP port inside wg0, always allowed by the lockdown (the DSKE port). */
export const DSKE_TCP_PORT = DSKE_PORT;

const PORT_DESCRIPTION =
  'A port 1..65535 (a number, or a decimal string), or an inclusive range "LOW-HIGH" with 1 ≤ LOW ≤ HIGH ≤ 65535.';

/** One entry in a request (shape only; values are checked by {@link checkEntries}). */
export const LockdownEntryInputSchema = z.object({
  proto: z.string().openapi({ enum: ["tcp", "udp"], example: "tcp", description: "Transport protocol." }),
  port: z.union([z.number(), z.string()]).openapi({ description: PORT_DESCRIPTION, example: 8080 }),
}).openapi("LockdownEntryInput", {
  description: 'One extra port or range: `tcp` or `udp`, a port (8080) or an inclusive range ("6000-6010").',
});

/** Body of `PUT /v1/lockdown/ports` (replace the list). */
export const LockdownReplaceSchema = z.object({
  ports: z.array(LockdownEntryInputSchema).openapi({
    maxItems: MAX_LOCKDOWN_ENTRIES,
    description:
      `The whole new list (at most ${MAX_LOCKDOWN_ENTRIES} entries, none overlapping); [] empties it.`,
    example: [{ proto: "tcp", port: 8080 }, { proto: "udp", port: "6000-6010" }],
  }),
}).openapi("LockdownReplace");

/**
 * Body of `POST /v1/lockdown/ports` that adds several entries at once: all of them or none (any bad,
 * present or overlapping entry refuses the whole request).
 */
export const LockdownAddSchema = z.object({
  ports: z.array(LockdownEntryInputSchema).min(1).openapi({
    minItems: 1,
    maxItems: MAX_LOCKDOWN_ENTRIES,
    description: "The entries to add: all of them, or none when any one is refused.",
    example: [{ proto: "tcp", port: 8080 }, { proto: "udp", port: "6000-6010" }],
  }),
}).openapi("LockdownAdd");

/** One entry in a response. */
export const LockdownEntrySchema = z.object({
  proto: z.enum(["tcp", "udp"]),
  port: z.union([z.number().int(), z.string()]).openapi({
    description: 'The port as a number, or "LOW-HIGH" for a range.',
    example: 8080,
  }),
  from: z.number().int().openapi({ description: "First port (inclusive).", example: 8080 }),
  to: z.number().int().openapi({
    description: "Last port (inclusive); equals from for one port.",
    example: 8080,
  }),
}).openapi("LockdownEntry");

/** Every lockdown response. */
export const LockdownStateSchema = z.object({
  ports: z.array(LockdownEntrySchema),
  enforced: z.boolean().openapi({
    description: "Whether a firewall on this node enforces the list (false until the wg0 firewall exists).",
  }),
}).openapi("LockdownState");

/** A lockdown entry as the API reports it. */
export type LockdownEntry = z.infer<typeof LockdownEntrySchema>;

/** The response form of one entry. */
export function toEntry(p: LockdownPort): LockdownEntry {
  return { proto: p.proto, port: p.from === p.to ? p.from : `${p.from}-${p.to}`, from: p.from, to: p.to };
}

/** The response form of the whole state. */
export function toStateBody(s: LockdownState): z.infer<typeof LockdownStateSchema> {
  return { ports: s.ports.map(toEntry), enforced: s.enforced };
}

/**
 * Parses a port spec ("8080", "6000-6010" or a number) into an inclusive range; throws a 422
 * {@link ApiError} naming `where` when the value is not valid (the rule is {@link parsePortRange}).
 */
export function parsePortSpec(spec: number | string, where: string): { from: number; to: number } {
  try {
    return parsePortRange(spec);
  } catch (e) {
    if (e instanceof PortSpecError) throw new ApiError(422, "invalid_value", `${where}: ${e.message}`);
    throw e;
  }
}

/** Parses a protocol; throws a 422 {@link ApiError} naming `where` for anything but tcp/udp. */
export function parseProto(proto: string, where: string): "tcp" | "udp" {
  const p = proto.trim().toLowerCase();
  if (p === "tcp" || p === "udp") return p;
  throw new ApiError(
    422,
    "invalid_value",
    `${where}: protocol ${JSON.stringify(proto.slice(0, 20))} is not "tcp" or "udp"`,
  );
}

/** Throws a 422 when `p` is exactly one port the lockdown always allows (a redundant entry). */
export function checkNotAlwaysAllowed(p: LockdownPort, always: AlwaysAllowed, where: string): void {
  if (isAlwaysAllowed(p, always)) {
    throw new ApiError(
      422,
      "invalid_value",
      `${where}: ${formatEntry(p)} is always allowed by the lockdown; leave it out`,
    );
  }
}

/**
 * Checks and normalizes request entries (shape already validated): values, the entry limit, no
 * overlap among them, nothing redundant with the always-allowed ports. Returns the sorted list; throws
 * a 422 {@link ApiError} naming the first bad entry.
 */
export function checkEntries(
  entries: z.infer<typeof LockdownEntryInputSchema>[],
  always: AlwaysAllowed,
  where: (i: number) => string = (i) => `ports[${i}]`,
): LockdownPort[] {
  if (entries.length > MAX_LOCKDOWN_ENTRIES) {
    throw new ApiError(
      422,
      "invalid_value",
      `ports: ${entries.length} entries is more than the ${MAX_LOCKDOWN_ENTRIES} allowed; use ranges`,
    );
  }
  const out: LockdownPort[] = [];
  entries.forEach((e, i) => {
    const at = where(i);
    const proto = parseProto(e.proto, `${at}.proto`);
    const { from, to } = parsePortSpec(e.port, `${at}.port`);
    const p: LockdownPort = { proto, from, to };
    checkNotAlwaysAllowed(p, always, at);
    const j = out.findIndex((q) => overlaps(p, q));
    if (j >= 0) {
      throw new ApiError(
        422,
        "invalid_value",
        `${at}: ${formatEntry(p)} overlaps ${where(j)} ${formatEntry(out[j])}; merge them into one entry`,
      );
    }
    out.push(p);
  });
  return sortEntries(out);
}

/** Entries in `next` not in `prev` and entries in `prev` not in `next` (exact matches). */
export function diffEntries(
  prev: LockdownPort[],
  next: LockdownPort[],
): { added: LockdownPort[]; removed: LockdownPort[] } {
  const same = (a: LockdownPort, b: LockdownPort) =>
    a.proto === b.proto && a.from === b.from && a.to === b.to;
  return {
    added: next.filter((n) => !prev.some((p) => same(p, n))),
    removed: prev.filter((p) => !next.some((n) => same(p, n))),
  };
}
