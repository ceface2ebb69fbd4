/**
 * The audit log writer on a temp directory: records appended, fsynced and closed verify as one chain;
 * rotation renames full files and keeps the chain across them (and prunes old ones); a reopened log
 * continues the chain; a line cut by a crash is kept and named by the verifier; `twofold audit verify`
 * prints the result and exits 0 (intact) or 1 (broken).
 */
import assert from "node:assert/strict";
import { AUDIT_FILE, AuditLog, rotatedFileName } from "../../src/audit/audit-log.ts";
import { verifyChain } from "../../src/audit/chain.ts";

async function chainFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (/^audit.*\.jsonl$/.test(e.name)) names.push(e.name);
  return names.sort().map((n) => `${dir}/${n}`);
}
async function verifyDir(dir: string) {
  const files = await chainFiles(dir);
  return verifyChain(
    await Promise.all(files.map(async (name) => ({ name, text: await Deno.readTextFile(name) }))),
  );
}
const input = (i: number) => ({
  event: "gate-opened",
  fields: { peer: "node-b", epoch: i, reason: "first key" },
});

Deno.test("AuditLog: appended records verify; reopening continues the chain", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfaudit-" });
  try {
    const log = AuditLog.open(dir);
    for (let i = 1; i <= 3; i++) log.append(input(i));
    assert.equal(log.headSeq, 3);
    log.close();
    assert.equal((await Deno.stat(`${dir}/${AUDIT_FILE}`)).mode! & 0o777, 0o600);
    const again = AuditLog.open(dir);
    assert.equal(again.headSeq, 3, "continues after the last record");
    again.append(input(4));
    again.close();
    const r = await verifyDir(dir);
    assert.equal(r.ok, true, JSON.stringify(r.break));
    assert.equal(r.headSeq, 4);
    assert.equal(r.fromGenesis, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AuditLog: rotation keeps the chain across files and prunes the oldest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfaudit-" });
  try {
    const log = AuditLog.open(dir, { maxFileBytes: 600, keepFiles: 100 });
    for (let i = 1; i <= 20; i++) log.append(input(i));
    log.close();
    const files = await chainFiles(dir);
    assert.ok(files.length >= 4, `rotated into several files: ${files}`);
    assert.ok(files[0].endsWith(rotatedFileName(1)), "the first rotated file is named by its first record");
    const r = await verifyDir(dir);
    assert.equal(r.ok, true, JSON.stringify(r.break));
    assert.equal(r.headSeq, 20);

    const pruned = AuditLog.open(dir, { maxFileBytes: 600, keepFiles: 1 });
    for (let i = 21; i <= 30; i++) pruned.append(input(i));
    pruned.close();
    const left = await chainFiles(dir);
    assert.equal(left.length, 2, `one rotated file and the current one: ${left}`);
    const tail = await verifyDir(dir);
    assert.equal(tail.ok, true, JSON.stringify(tail.break));
    assert.equal(tail.fromGenesis, false, "the oldest records were pruned");
    assert.equal(tail.headSeq, 30);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AuditLog: a line cut by a crash stays and is named; later records link past it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfaudit-" });
  try {
    const log = AuditLog.open(dir);
    log.append(input(1));
    log.append(input(2));
    log.close();
    const path = `${dir}/${AUDIT_FILE}`;
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.slice(0, text.length - 30)); // record 2 cut mid-line
    const again = AuditLog.open(dir);
    assert.equal(again.headSeq, 1, "continues after the last complete record");
    again.append(input(3));
    again.close();
    const r = await verifyDir(dir);
    assert.equal(r.ok, false);
    assert.equal(r.break?.line, 2);
    assert.match(r.break!.problem, /not a complete record/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("twofold audit verify: exit 0 and the head for an intact log, 1 and the break otherwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfaudit-" });
  try {
    const log = AuditLog.open(dir);
    for (let i = 1; i <= 4; i++) log.append(input(i));
    log.close();
    const path = `${dir}/${AUDIT_FILE}`;
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", main, "audit", "verify", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const ok = await run(path);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: records 1\.\.4 verified from the first record; head 4 [0-9a-f]{64}\n$/);
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.splice(1, 1);
    await Deno.writeTextFile(path, lines.join("\n"));
    const broken = await run(path);
    assert.equal(broken.code, 1);
    assert.equal(
      broken.stderr,
      `broken at ${path}:2 (record 3): record 3 where record 2 was expected: record 2 was deleted; ` +
        "1 record before it verified\n",
    );
    const missing = await run(`${dir}/absent.jsonl`);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^twofold: .*absent\.jsonl: cannot read the audit file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
