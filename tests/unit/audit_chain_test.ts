/**
 * The audit log's hash chain, in memory: a chain verifies; a modified, deleted, reordered, repeated,
 * replaced or truncated record is named exactly (file, line, record, what); rotation across files
 * keeps the chain; node events become records with public fields only.
 */
import assert from "node:assert/strict";
import {
  type AuditFile,
  describeReport,
  GENESIS_HASH,
  sealRecord,
  verifyChain,
} from "../../src/audit/chain.ts";
import { auditInputOf } from "../../src/audit/node-events.ts";
import type { NodeEvent } from "../../src/events/bus.ts";

/** Six sealed lines: gate events for peer node-b with epochs 1..6. */
function chain(n = 6, start = 1, prev = GENESIS_HASH): string[] {
  const lines: string[] = [];
  for (let seq = start; seq < start + n; seq++) {
    const r = sealRecord(prev, seq, `2026-01-01T00:00:0${seq % 10}.000Z`, {
      event: "key-rotated",
      fields: { peer: "node-b", epoch: seq, reason: "DSKE round" },
    });
    lines.push(r.line);
    prev = r.hash;
  }
  return lines;
}
const file = (lines: string[], name = "audit.jsonl"): AuditFile => ({
  name,
  text: lines.map((l) => `${l}\n`).join(""),
});
const brk = (files: AuditFile[]) => {
  const r = verifyChain(files);
  assert.equal(r.ok, false, "the chain must be reported broken");
  return r.break!;
};

Deno.test("an intact chain verifies from the genesis record and reports its head", () => {
  const lines = chain();
  const r = verifyChain([file(lines)]);
  assert.equal(r.ok, true);
  assert.equal(r.verified, 6);
  assert.equal(r.fromGenesis, true);
  assert.equal(r.headSeq, 6);
  assert.equal(r.headHash, JSON.parse(lines[5]).hash);
  assert.match(describeReport(r), /^ok: records 1\.\.6 verified from the first record; head 6 [0-9a-f]{64}$/);
});

Deno.test("a modified record is named: its own hash no longer matches", () => {
  const lines = chain();
  lines[2] = lines[2].replace('"epoch":3', '"epoch":33');
  assert.deepEqual(brk([file(lines)]), {
    file: "audit.jsonl",
    line: 3,
    seq: 3,
    problem: "record 3 was modified: its hash does not match its content",
  });
  const last = chain();
  last[5] = last[5].replace("DSKE round", "manual");
  assert.equal(brk([file(last)]).line, 6, "the newest record too");
});

Deno.test("a record rewritten with a recomputed hash breaks the link of the next one", () => {
  const lines = chain();
  const original = JSON.parse(lines[2]);
  lines[2] = sealRecord(original.prev, 3, original.at, {
    event: "key-rotated",
    fields: { peer: "node-b", epoch: 99, reason: "forged" },
  }).line;
  assert.deepEqual(brk([file(lines)]), {
    file: "audit.jsonl",
    line: 4,
    seq: 4,
    problem: "record 4 does not link to record 3: one of them was replaced",
  });
});

Deno.test("deleted records are named by their sequence numbers", () => {
  const one = chain();
  one.splice(2, 1);
  assert.deepEqual(brk([file(one)]), {
    file: "audit.jsonl",
    line: 3,
    seq: 4,
    problem: "record 4 where record 3 was expected: record 3 was deleted",
  });
  const two = chain();
  two.splice(1, 2);
  assert.equal(brk([file(two)]).problem, "record 4 where record 2 was expected: records 2..3 were deleted");
});

Deno.test("reordered records are named, with where the expected one is", () => {
  const lines = chain();
  [lines[2], lines[3]] = [lines[3], lines[2]];
  assert.deepEqual(brk([file(lines)]), {
    file: "audit.jsonl",
    line: 3,
    seq: 4,
    problem: "record 4 where record 3 was expected: records reordered (3 is at audit.jsonl:4)",
  });
});

Deno.test("a repeated record is named", () => {
  const lines = chain();
  lines.splice(2, 0, lines[1]);
  assert.deepEqual(brk([file(lines)]), {
    file: "audit.jsonl",
    line: 3,
    seq: 2,
    problem: "record 2 where record 3 was expected: a record repeated or moved back",
  });
});

Deno.test("a file cut inside a record names that record as truncated", () => {
  const text = file(chain()).text;
  const cut = text.slice(0, text.length - 40);
  assert.deepEqual(brk([{ name: "audit.jsonl", text: cut }]), {
    file: "audit.jsonl",
    line: 6,
    seq: 6,
    problem: "incomplete record: the file ends inside it (truncated)",
  });
  const lines = chain();
  lines[3] = lines[3].slice(0, 50);
  const mid = brk([file(lines)]);
  assert.equal(mid.line, 4);
  assert.match(mid.problem, /^not a complete record/);
});

Deno.test("whole records cut off the end leave a valid but shorter chain: the head shows it", () => {
  const r = verifyChain([file(chain().slice(0, 4))]);
  assert.equal(r.ok, true);
  assert.equal(r.headSeq, 4, "compare with a head noted earlier (6)");
});

Deno.test("a replaced first record (not from the genesis hash) is named", () => {
  const lines = chain();
  lines[0] = sealRecord("f".repeat(64), 1, "2026-01-01T00:00:00.000Z", { event: "x", fields: {} }).line;
  assert.equal(brk([file(lines)]).problem, "record 1 does not start from the genesis hash: it was replaced");
});

Deno.test("rotated files verify as one chain; a break in a later file names that file", () => {
  const lines = chain(9);
  const files = [file(lines.slice(0, 4), "audit.000000000001.jsonl"), file(lines.slice(4), "audit.jsonl")];
  const ok = verifyChain(files);
  assert.equal(ok.ok, true);
  assert.equal(ok.headSeq, 9);
  const gap = [files[0], file(lines.slice(5), "audit.jsonl")];
  assert.deepEqual(brk(gap), {
    file: "audit.jsonl",
    line: 1,
    seq: 6,
    problem: "record 6 where record 5 was expected: record 5 was deleted",
  });
  const swapped = verifyChain([files[1], files[0]]);
  assert.equal(swapped.ok, false, "files in the wrong order do not verify");
  const tailOnly = verifyChain([files[1]]);
  assert.equal(tailOnly.ok, true);
  assert.match(describeReport(tailOnly), /from record 5 \(earlier records not given\)/);
});

Deno.test("describeReport names file, line and record of a break", () => {
  const lines = chain();
  lines.splice(2, 1);
  assert.equal(
    describeReport(verifyChain([file(lines)])),
    "broken at audit.jsonl:3 (record 4): record 4 where record 3 was expected: record 3 was deleted; " +
      "2 records before it verified",
  );
});

Deno.test("sealRecord refuses fields that would shadow the chain's own", () => {
  for (const name of ["seq", "at", "event", "prev", "hash"]) {
    assert.throws(() => sealRecord(GENESIS_HASH, 1, "t", { event: "x", fields: { [name]: 1 } }), /reserved/);
  }
});

Deno.test("node events: key-plane and security events are audited with public fields only", () => {
  const base = { id: 7, at: "2026-01-01T00:00:00.000Z" };
  const rotated: NodeEvent = {
    ...base,
    type: "key-rotated",
    layer: "aes0",
    peer: "node-b",
    publicKey: "B".repeat(43) + "=",
    epoch: 12,
    reason: "agreed through 2 of 3 hubs",
    data: { source: "dske" },
  };
  assert.deepEqual(auditInputOf(rotated), {
    event: "key-rotated",
    fields: {
      eventId: 7,
      layer: "aes0",
      peer: "node-b",
      publicKey: "B".repeat(43) + "=",
      epoch: 12,
      reason: "agreed through 2 of 3 hubs",
      "data.source": "dske",
    },
  });
  for (
    const type of [
      "gate-opened",
      "gate-closed",
      "mismatch-suspected",
      "psrd-exhausted",
      "lockdown-changed",
      "key-confirmation-failed",
      "shares-inconsistent",
    ] as const
  ) {
    assert.ok(auditInputOf({ ...base, type, reason: "r" }), type);
  }
  assert.equal(auditInputOf({ ...base, type: "handshake-completed", reason: "r" }), null);
  assert.equal(auditInputOf({ ...base, type: "handshake-failed", reason: "r" }), null);
});
