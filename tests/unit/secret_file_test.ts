/**
 * The config and secret-file reader (src/config/secret-file.ts): regular files only, size caps, no
 * symbolic links for secrets, owner-only permissions; every refusal one line naming the path and the
 * fix. Cases that would block a careless reader (a FIFO, /dev/zero) run in a child process under a
 * timeout, so a regression fails the test instead of hanging it.
 */
import assert from "node:assert/strict";
import {
  checkSecretFile,
  type FileFacts,
  fileProblem,
  FileRuleError,
  KEY_FILE_MAX_BYTES,
  readConfigText,
  readSecretFile,
} from "../../src/config/secret-file.ts";
import { findBinary } from "../helpers/prereq.ts";
import { closeFd, openReadOnly, statFd } from "../../ffi/file.ts";
import { ELOOP, SysError } from "../../ffi/libc.ts";

const RULE = { label: "test key file", maxBytes: KEY_FILE_MAX_BYTES, createHint: "make one" };
const MODULE = new URL("../../src/config/secret-file.ts", import.meta.url).href;
const SECRET = "c2VjcmV0LWtleS1ieXRlcy10aGF0LW11c3Qtbm90LWxlYWs=";

const REGULAR: FileFacts = {
  isFile: true,
  isDirectory: false,
  isSymlink: false,
  isFifo: false,
  isCharDevice: false,
  isBlockDevice: false,
  isSocket: false,
  mode: 0o100600,
  size: 45,
};

function write(dir: string, name: string, text: string, mode: number): string {
  const path = `${dir}/${name}`;
  Deno.writeTextFileSync(path, text, { mode });
  Deno.chmodSync(path, mode);
  return path;
}

/** Asserts `fn` throws one FileRuleError line naming `path`, matching `re`, without the secret. */
function refused(fn: () => unknown, path: string, re: RegExp): FileRuleError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof FileRuleError, `expected a FileRuleError, got ${String(error)}`);
  assert.match(error.message, re);
  assert.ok(error.message.includes(path), `names the path: ${error.message}`);
  assert.ok(!error.message.includes("\n"), "one line");
  assert.ok(!error.message.includes(SECRET), "never the contents");
  assert.ok(error.fix.length > 0, "says what to do");
  return error;
}

/**
 * Reads `path` with readSecretFile (or readConfigText) in a child process killed after 10 s; returns
 * its one-line outcome ("ok <n>" or the error message).
 */
async function readInChild(path: string, kind: "secret" | "config"): Promise<string> {
  const reader = kind === "secret" ? "readSecretFile" : "readConfigText";
  const code = `import { ${reader} } from ${JSON.stringify(MODULE)};
try { const r = ${reader}(${JSON.stringify(path)}, { label: "file", maxBytes: 4096 });
  console.log("ok " + r.length); } catch (e) { console.log(e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  assert.equal(out.signal, null, `the reader did not finish within 10 s on ${path}`);
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("fileProblem: the rules on stat facts, in memory", () => {
  assert.equal(fileProblem(REGULAR, "/k", RULE, true), null);
  assert.equal(fileProblem({ ...REGULAR, mode: 0o100400 }, "/k", RULE, true), null);
  assert.equal(fileProblem({ ...REGULAR, mode: 0o100644 }, "/k", RULE, false), null, "configs may be 0644");
  assert.equal(
    fileProblem({ ...REGULAR, mode: null }, "/k", RULE, true),
    null,
    "no POSIX modes: no mode rule",
  );
  const cases: [Partial<FileFacts>, string, RegExp][] = [
    [{ mode: 0o100644 }, "permissions", /permissions 0644, wider than 0600/],
    [{ mode: 0o100604 }, "permissions", /0604/],
    [{ isFile: false, isSymlink: true }, "symlink", /symbolic link/],
    [{ isFile: false, isFifo: true }, "not-regular", /a FIFO, not a regular file/],
    [{ isFile: false, isCharDevice: true }, "not-regular", /a character device/],
    [{ isFile: false, isDirectory: true }, "not-regular", /a directory/],
    [{ isFile: false, isSocket: true }, "not-regular", /a socket/],
    [{ size: KEY_FILE_MAX_BYTES + 1 }, "too-large", /over the 4096-byte limit/],
  ];
  for (const [facts, broken, re] of cases) {
    const p = fileProblem({ ...REGULAR, ...facts }, "/k", RULE, true);
    assert.ok(p !== null, `refused: ${JSON.stringify(facts)}`);
    assert.equal(p.broken, broken);
    assert.match(p.problem, re);
  }
  assert.match(fileProblem({ ...REGULAR, mode: 0o100640 }, "/k", RULE, true)!.fix, /chmod 600 \/k/);
});

Deno.test("readSecretFile / readConfigText on real files", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "twofold-secret-file-" });
  try {
    const good = write(dir, "good.key", SECRET + "\n", 0o600);
    const open = write(dir, "open.key", SECRET + "\n", 0o644);

    await t.step("a regular 0600 file is read (0400 too)", () => {
      assert.equal(new TextDecoder().decode(readSecretFile(good, RULE)), SECRET + "\n");
      const ro = write(dir, "ro.key", SECRET, 0o400);
      assert.equal(readSecretFile(ro, RULE).length, SECRET.length);
      assert.equal(checkSecretFile(good, RULE).size, SECRET.length + 1);
    });

    await t.step("a file larger than one read(2) chunk reads back byte for byte", () => {
      const data = Uint8Array.from({ length: 3 * (1 << 20) + 123 }, (_, i) => (i * 31 + (i >> 11)) & 0xff);
      const path = `${dir}/large.bin`;
      Deno.writeFileSync(path, data, { mode: 0o600 });
      Deno.chmodSync(path, 0o600);
      assert.deepEqual(readSecretFile(path, { label: "PSRD file", maxBytes: 8 << 20 }), data);
      assert.throws(
        () => readSecretFile(path, { label: "PSRD file", maxBytes: data.length - 1 }),
        FileRuleError,
      );
    });

    await t.step("a 0644 secret is refused with the chmod fix for that very path", () => {
      const e = refused(() => readSecretFile(open, RULE), open, /permissions 0644, wider than 0600/);
      assert.equal(e.fix, `run \`chmod 600 ${open}\``);
      refused(() => checkSecretFile(open, RULE), open, /0644/);
    });

    await t.step("a symbolic link to a 0600 file is refused and names where it leads", () => {
      const link = `${dir}/link-good.key`;
      Deno.symlinkSync(good, link);
      const e = refused(() => readSecretFile(link, RULE), link, /is a symbolic link \(to .*good\.key\)/);
      assert.equal(e.broken, "symlink");
      refused(() => checkSecretFile(link, RULE), link, /symbolic link/);
    });

    await t.step(
      "a symbolic link to a 0644 file is refused as a link: no chmod advice that would follow it",
      () => {
        const link = `${dir}/link-open.key`;
        Deno.symlinkSync("open.key", link); // relative target: resolved against the link's directory
        const e = refused(
          () => readSecretFile(link, RULE),
          link,
          new RegExp(`symbolic link \\(to ${open}\\)`),
        );
        assert.ok(!e.message.includes("chmod"), `no chmod advice: ${e.message}`);
        assert.equal(Deno.statSync(open).mode! & 0o777, 0o644, "the target is untouched");
      },
    );

    await t.step("the open under the check refuses a link (O_NOFOLLOW) and reports the opened file", () => {
      const link = `${dir}/link-good.key`;
      assert.throws(
        () => openReadOnly(link, { noFollow: true }),
        (e: unknown) => e instanceof SysError && e.errno === ELOOP,
      );
      const fd = openReadOnly(link, { noFollow: false });
      try {
        const st = statFd(fd);
        assert.ok(st.isFile);
        assert.equal(st.ino, Deno.statSync(good).ino, "the fd is the link's target");
      } finally {
        closeFd(fd);
      }
    });

    await t.step("an oversize file is refused before it is read", () => {
      const big = `${dir}/big.key`;
      Deno.writeFileSync(big, new Uint8Array(0), { mode: 0o600 });
      Deno.truncateSync(big, 200_000_000); // sparse: no disk used
      refused(() => readSecretFile(big, RULE), big, /200000000 bytes, over the 4096-byte limit/);
      refused(() => readConfigText(big, { label: "config", maxBytes: 1 << 20 }), big, /over the/);
    });

    await t.step("missing and directory paths are refused", () => {
      const missing = `${dir}/absent.key`;
      const e = refused(() => readSecretFile(missing, RULE), missing, /does not exist: make one/);
      assert.equal(e.broken, "missing");
      refused(() => readSecretFile(dir, RULE), dir, /a directory, not a regular file/);
    });

    await t.step("a config may be a symbolic link (it is not a secret) and any mode", () => {
      const cfg = write(dir, "node.json", "{}", 0o644);
      const link = `${dir}/current.json`;
      Deno.symlinkSync(cfg, link);
      assert.equal(readConfigText(link, { label: "config", maxBytes: 1 << 20 }), "{}");
    });

    await t.step("/dev/zero is refused at once, as secret and as config", async () => {
      assert.equal(
        await readInChild("/dev/zero", "secret"),
        "file /dev/zero is a character device, not a regular file: point it at a regular file",
      );
      assert.match(await readInChild("/dev/zero", "config"), /^file \/dev\/zero is a character device/);
    });

    await t.step("a FIFO with no writer is refused at once, without blocking", async () => {
      const mkfifo = findBinary("mkfifo");
      if (mkfifo === null) throw new Error("mkfifo not found on PATH (coreutils)");
      const fifo = `${dir}/fifo`;
      const made = await new Deno.Command(mkfifo, { args: ["-m", "600", fifo] }).output();
      assert.equal(made.code, 0);
      assert.match(await readInChild(fifo, "secret"), /fifo is a FIFO, not a regular file/);
      assert.match(await readInChild(fifo, "config"), /fifo is a FIFO, not a regular file/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
