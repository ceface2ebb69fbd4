/**
 * The rules of the wg0 lockdown extra-port list, shared by the config loader, the node's persisted list
 * and the admin API: what an entry is, its text form `PROTO/PORT` or `PROTO/FIRST-LAST` (e.g. `tcp/8080`,
 * `udp/6000-6010`), which ports the lockdown always allows (so an entry naming just one of them is
 * redundant), and how a list is validated and ordered. Pure.
 * @module
 */

/** One wg0 lockdown extra port or range (inclusive); `from === to` for a single port. */
export interface LockdownPort {
  /** Transport protocol. */
  proto: "tcp" | "udp";
  /** First port, 1..65535. */
  from: number;
  /** Last port, from..65535. */
  to: number;
}

/** Most entries the list may hold. */
export const MAX_LOCKDOWN_ENTRIES = 256;

/** "tcp/8080" or "udp/6000-6010". */
export function formatEntry(p: LockdownPort): string {
  return `${p.proto}/${formatPort(p)}`;
}

/** "8080" or "6000-6010". */
export function formatPort(p: LockdownPort): string {
  return p.from === p.to ? String(p.from) : `${p.from}-${p.to}`;
}

/** Whether two entries share a protocol and at least one port. */
export function overlaps(a: LockdownPort, b: LockdownPort): boolean {
  return a.proto === b.proto && a.from <= b.to && b.from <= a.to;
}

/** Sorts by protocol, then first port (the stored order). */
export function sortEntries(list: LockdownPort[]): LockdownPort[] {
  return [...list].sort((a, b) => a.proto.localeCompare(b.proto) || a.from - b.from || a.to - b.to);
}

/** Ports the lockdown always allows: UDP on the aes0 port, TCP on the key-plane port. */
export interface AlwaysAllowed {
  /** aes0's UDP listen port (51830 by default). */
  aesUdpPort: number;
  /** The key plane's TCP port (51831). */
  dskeTcpPort: number;
}

/** Whether `p` is exactly one port the lockdown always allows (a redundant entry); a range is not. */
export function isAlwaysAllowed(p: LockdownPort, always: AlwaysAllowed): boolean {
  return p.from === p.to &&
    ((p.proto === "udp" && p.from === always.aesUdpPort) ||
      (p.proto === "tcp" && p.from === always.dskeTcpPort));
}

/** A port spec that is not a port 1..65535 or a range LOW-HIGH in order; the message says why. */
export class PortSpecError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PortSpecError";
  }
}

/**
 * Parses a port spec ("8080", "6000-6010" or a number) into an inclusive range; throws a
 * {@link PortSpecError} saying why the value is not valid.
 */
export function parsePortRange(spec: number | string): { from: number; to: number } {
  const bad = (why: string) => new PortSpecError(why);
  let from: number, to: number;
  if (typeof spec === "number") {
    if (!Number.isInteger(spec)) throw bad(`${spec} is not a whole port number`);
    from = to = spec;
  } else {
    const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(spec);
    if (!m) {
      throw bad(`${JSON.stringify(spec.slice(0, 40))} is not a port or a range like "6000-6010"`);
    }
    from = Number(m[1]);
    to = m[2] === undefined ? from : Number(m[2]);
  }
  for (const n of [from, to]) if (n < 1 || n > 65535) throw bad(`${n} is outside 1..65535`);
  if (from > to) throw bad(`the range ${from}-${to} is reversed: write ${to}-${from}`);
  return { from, to };
}

/** A list that is invalid, or a persisted list that cannot be loaded or saved. */
export class LockdownListError extends Error {
  /** Index of the bad entry, when one entry is to blame. */
  readonly index: number | null;
  /** What is wrong with that entry, without the entry's own label (the message is label + problem). */
  readonly problem: string;

  /** Creates the error; `entry` names the bad entry and its problem. */
  constructor(message: string, entry?: { index: number; problem: string }) {
    super(message);
    this.name = "LockdownListError";
    this.index = entry?.index ?? null;
    this.problem = entry?.problem ?? message;
  }
}

/** Options of {@link normalizeLockdownPorts}. */
export interface NormalizeOptions {
  /** How an entry is named in messages (default `entry N`). */
  label?: (index: number) => string;
  /** Also refuse an entry that is just a port the lockdown always allows. */
  alwaysAllowed?: AlwaysAllowed;
}

const SPEC = /^(tcp|udp)\/([0-9]{1,5})(?:-([0-9]{1,5}))?$/;
/** How to write one entry, for error messages. */
export const PORT_SPEC_HINT =
  "write PROTO/PORT or PROTO/FIRST-LAST with PROTO tcp or udp, e.g. tcp/8080 or udp/6000-6010";

/** Parses `tcp/8080` or `udp/6000-6010`; throws a LockdownListError naming the problem. */
export function parseProtoPort(text: string): LockdownPort {
  const m = SPEC.exec(text.trim().toLowerCase());
  if (!m) throw new LockdownListError(`${JSON.stringify(text)} is not a port or range; ${PORT_SPEC_HINT}`);
  const from = Number(m[2]);
  const to = m[3] === undefined ? from : Number(m[3]);
  return checkPort({ proto: m[1] as "tcp" | "udp", from, to }, JSON.stringify(text));
}

function checkPort(p: LockdownPort, what: string): LockdownPort {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!ok(p.from) || !ok(p.to)) throw new LockdownListError(`${what}: ports must be from 1 to 65535`);
  if (p.from > p.to) {
    throw new LockdownListError(`${what}: the range ends before it starts; write the lower port first`);
  }
  return { proto: p.proto, from: p.from, to: p.to };
}

/**
 * Validates a list with the admin API's rules (protocols, port bounds, ranges in order, at most
 * MAX_LOCKDOWN_ENTRIES, no two entries of one protocol overlapping; with `alwaysAllowed`, no entry that
 * is just such a port) and returns it sorted (protocol, first port, last port). Throws a
 * LockdownListError naming the first bad entry (`entry N`, or `opts.label(N)`) with its index.
 */
export function normalizeLockdownPorts(
  ports: readonly LockdownPort[],
  opts: NormalizeOptions = {},
): LockdownPort[] {
  const label = opts.label ?? ((i: number) => `entry ${i}`);
  const bad = (i: number, problem: string, sep = " ") =>
    new LockdownListError(`${label(i)}${sep}${problem}`, { index: i, problem });
  if (!Array.isArray(ports)) throw new LockdownListError("the list must be an array");
  if (ports.length > MAX_LOCKDOWN_ENTRIES) {
    throw new LockdownListError(
      `${ports.length} entries is more than ${MAX_LOCKDOWN_ENTRIES}; merge them into ranges`,
    );
  }
  const out: LockdownPort[] = [];
  ports.forEach((p, i) => {
    if (typeof p !== "object" || p === null || (p.proto !== "tcp" && p.proto !== "udp")) {
      throw bad(i, 'proto must be "tcp" or "udp"', ": ");
    }
    let c: LockdownPort;
    try {
      c = checkPort(p, `(${p.proto}/${p.from}-${p.to})`);
    } catch (e) {
      throw bad(i, (e as Error).message);
    }
    if (opts.alwaysAllowed && isAlwaysAllowed(c, opts.alwaysAllowed)) {
      throw bad(
        i,
        `${formatEntry(c)} is always allowed by the lockdown (aes0 and the key plane); leave it out`,
        ": ",
      );
    }
    const j = out.findIndex((q) => overlaps(c, q));
    if (j >= 0) {
      throw bad(
        i,
        `(${formatEntry(c)}) overlaps ${label(j)} (${formatEntry(out[j])}); merge them into one entry`,
      );
    }
    out.push(c);
  });
  return sortEntries(out);
}
