/**
 * The audit log's hash chain, pure: sealing a record into its JSON line and verifying a sequence of
 * lines offline. Each line is one JSON object that begins with `{"seq":N,"at":…` and ends with
 * `,"prev":"<hex>","hash":"<hex>"}`: `prev` is the previous record's `hash` (64 zeros before the first
 * record ever written) and `hash` is the SHA-256 of the line up to and including the `prev` field,
 * closed with `}`. A changed byte breaks that record's own hash; a removed, inserted or moved record
 * breaks the sequence numbers and the links. Rotated files continue the chain (the first record of a
 * new file links to the last of the previous one), so files verify together in order.
 *
 * What a hash chain cannot show by itself: records cut off the end of the newest file, or a tail
 * rewritten in full by someone who recomputes every hash. `verifyChain` reports the head (last seq
 * and hash) so it can be compared with a head seen earlier (the journal logs one at each rotation).
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../encoding.ts";

/** `prev` of the very first record: no record precedes it. */
export const GENESIS_HASH = "0".repeat(64);

/** Scalar fields an audit record carries besides its sequence, time and links. Never key material. */
export type AuditFields = Record<string, string | number | boolean | null>;

/** What a writer supplies for one record. */
export interface AuditInput {
  /** What happened (a node event type, or an audit-log event such as `audit-opened`). */
  event: string;
  /** The facts, in words and public identifiers only. */
  fields: AuditFields;
}

/** A sealed record: its line (without the newline) and its hash. */
export interface SealedRecord {
  /** The JSON line as written to the file. */
  line: string;
  /** Its hash, the next record's `prev`. */
  hash: string;
}

const encoder = new TextEncoder();
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

function hashOf(body: string): string {
  return toHex(sha256(encoder.encode(body)));
}

/**
 * Seals record `seq` (time `at`, ISO 8601) after the record whose hash is `prev`. The fields are
 * written after `seq`, `at` and `event`; fields named like those or the links are refused.
 */
export function sealRecord(prev: string, seq: number, at: string, input: AuditInput): SealedRecord {
  for (const reserved of ["seq", "at", "event", "prev", "hash"]) {
    if (reserved in input.fields) throw new Error(`audit field "${reserved}" is reserved`);
  }
  const record = { seq, at, event: input.event, ...input.fields, prev };
  const body = JSON.stringify(record);
  const hash = hashOf(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** One file's text, named for the messages. */
export interface AuditFile {
  /** How to name it (its path). */
  name: string;
  /** Its whole content. */
  text: string;
}

/** The first place the chain is broken. */
export interface ChainBreak {
  /** The file and 1-based line of the broken record. */
  file: string;
  line: number;
  /** Its sequence number, when it could be read. */
  seq?: number;
  /** What is wrong, one line. */
  problem: string;
}

/** Outcome of {@link verifyChain}. */
export interface ChainReport {
  /** True when every record verified. */
  ok: boolean;
  /** Records that verified, before the break (all of them when ok). */
  verified: number;
  /** Sequence number of the first record (undefined when there is none). */
  firstSeq?: number;
  /** Sequence number and hash of the last verified record. */
  headSeq?: number;
  headHash?: string;
  /** True when the first record is the very first ever written (seq 1 after the genesis hash). */
  fromGenesis: boolean;
  /** The first break, when not ok. */
  break?: ChainBreak;
}

interface ParsedLine {
  file: string;
  line: number;
  text: string;
}

/**
 * Verifies `files` (oldest first) as one chain and names the first broken record: a line that is not
 * a complete record (truncated or edited), a record whose hash does not match its content (modified),
 * a sequence number out of place (deleted, reordered or duplicated records), or a record that does not
 * link to its predecessor (one replaced by another valid-looking record).
 */
export function verifyChain(files: AuditFile[]): ChainReport {
  const lines: ParsedLine[] = [];
  for (const f of files) {
    if (f.text === "") continue;
    const parts = f.text.split("\n");
    const complete = f.text.endsWith("\n");
    if (complete) parts.pop();
    parts.forEach((text, i) => lines.push({ file: f.name, line: i + 1, text }));
    if (!complete) lines[lines.length - 1].text += "\u0000"; // marks a last line without its newline
  }
  const report: ChainReport = { ok: true, verified: 0, fromGenesis: false };
  const fail = (at: ParsedLine, problem: string, seq?: number): ChainReport => ({
    ...report,
    ok: false,
    break: { file: at.file, line: at.line, ...(seq !== undefined ? { seq } : {}), problem },
  });
  const seqs = lines.map((l) => seqOf(l.text));
  let prevHash: string | undefined;
  let expected: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i];
    if (at.text.endsWith("\u0000")) {
      return fail(at, "incomplete record: the file ends inside it (truncated)", seqs[i]);
    }
    const parsed = parseRecord(at.text);
    if (typeof parsed === "string") return fail(at, parsed, seqs[i]);
    const { seq, prev, hash, body } = parsed;
    if (hashOf(body) !== hash) {
      return fail(at, `record ${seq} was modified: its hash does not match its content`, seq);
    }
    if (expected !== undefined && seq !== expected) {
      const later = seqs.indexOf(expected, i + 1);
      const what = `record ${seq} where record ${expected} was expected`;
      const gap = seq - expected === 1 ? `record ${expected} was` : `records ${expected}..${seq - 1} were`;
      const problem = seq < expected
        ? `${what}: a record repeated or moved back`
        : later >= 0
        ? `${what}: records reordered (${expected} is at ${lines[later].file}:${lines[later].line})`
        : `${what}: ${gap} deleted`;
      return fail(at, problem, seq);
    }
    if (prevHash !== undefined && prev !== prevHash) {
      return fail(at, `record ${seq} does not link to record ${seq - 1}: one of them was replaced`, seq);
    }
    if (prevHash === undefined) {
      report.firstSeq = seq;
      report.fromGenesis = seq === 1 && prev === GENESIS_HASH;
      if (seq === 1 && prev !== GENESIS_HASH) {
        return fail(at, "record 1 does not start from the genesis hash: it was replaced", seq);
      }
    }
    prevHash = hash;
    expected = seq + 1;
    report.verified++;
    report.headSeq = seq;
    report.headHash = hash;
  }
  return report;
}

function seqOf(text: string): number | undefined {
  const m = /^\{"seq":(\d+),/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function parseRecord(text: string): { seq: number; prev: string; hash: string; body: string } | string {
  const m = HASH_SUFFIX.exec(text);
  if (!m) return "not a complete record (no hash at its end: truncated or edited)";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not a complete record (not valid JSON: truncated or edited)";
  }
  const r = value as Record<string, unknown>;
  if (
    typeof r !== "object" || r === null || !Number.isSafeInteger(r.seq) || (r.seq as number) < 1 ||
    typeof r.prev !== "string" || !/^[0-9a-f]{64}$/.test(r.prev) || seqOf(text) !== r.seq
  ) {
    return "not a record (seq or prev missing or malformed)";
  }
  return { seq: r.seq as number, prev: r.prev, hash: m[1], body: `${text.slice(0, m.index)}}` };
}

/** A one-line summary of a report, as `twofold audit verify` prints it. */
export function describeReport(report: ChainReport): string {
  if (!report.ok && report.break) {
    const b = report.break;
    return `broken at ${b.file}:${b.line}${b.seq !== undefined ? ` (record ${b.seq})` : ""}: ${b.problem}; ` +
      `${report.verified} record${report.verified === 1 ? "" : "s"} before it verified`;
  }
  if (report.verified === 0) return "ok: no records";
  const start = report.fromGenesis
    ? "from the first record"
    : `from record ${report.firstSeq} (earlier records not given)`;
  return `ok: records ${report.firstSeq}..${report.headSeq} verified ${start}; head ${report.headSeq} ${report.headHash}`;
}
