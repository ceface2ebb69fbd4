import assert from "node:assert/strict";
import { lockStateDir, STATE_LOCK_FILE, StateDirInUseError } from "../../src/state-dir-lock.ts";

const MODULE = new URL("../../src/state-dir-lock.ts", import.meta.url).href;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-lock-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function inUse(fn: () => unknown): StateDirInUseError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StateDirInUseError, `expected StateDirInUseError, got ${String(e)}`);
    return e;
  }
  assert.fail("the second lock was granted");
}

Deno.test("state directory lock", async (t) => {
  await t.step("creates the directory (0700) and records the holder's PID", async () => {
    await withTempDir((dir) => {
      const stateDir = `${dir}/a/b`;
      const lock = lockStateDir(stateDir, "node.stateDir");
      try {
        assert.equal(lock.path, `${stateDir}/${STATE_LOCK_FILE}`);
        assert.equal(Deno.statSync(stateDir).mode! & 0o777, 0o700);
        assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);
        assert.equal(Deno.statSync(lock.path).mode! & 0o777, 0o600);
      } finally {
        lock.release();
      }
      return Promise.resolve();
    });
  });

  await t.step(
    "a second holder is refused with one line naming the PID and the field; release frees it",
    async () => {
      await withTempDir((dir) => {
        const lock = lockStateDir(dir, "hub.stateDir");
        const e = inUse(() => lockStateDir(dir, "hub.stateDir"));
        assert.equal(e.pid, Deno.pid);
        assert.equal(
          e.message,
          `state directory ${dir} is in use by another twofold process (PID ${Deno.pid}): stop it, or give this ` +
            "one its own hub.stateDir",
        );
        lock.release();
        lock.release(); // idempotent
        const again = lockStateDir(dir, "hub.stateDir");
        again.release();
        return Promise.resolve();
      });
    },
  );

  await t.step("another process's lock is named by its PID and gone once it is killed", async () => {
    await withTempDir(async (dir) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { lockStateDir } from "${MODULE}"; lockStateDir(${
            JSON.stringify(dir)
          }, "node.stateDir"); ` +
          `console.log("locked"); setTimeout(() => {}, 60_000);`,
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      try {
        const reader = child.stdout.getReader();
        const { value } = await reader.read();
        assert.equal(new TextDecoder().decode(value).trim(), "locked");
        reader.releaseLock();
        const e = inUse(() => lockStateDir(dir, "node.stateDir"));
        assert.equal(e.pid, child.pid);
        assert.match(e.message, new RegExp(`\\(PID ${child.pid}\\)`));
      } finally {
        child.kill("SIGKILL");
        await child.status;
        await child.stdout.cancel().catch(() => {});
      }
      // A crash leaves the file with the dead PID, but not the lock.
      assert.equal(Deno.readTextFileSync(`${dir}/${STATE_LOCK_FILE}`), `${child.pid}\n`);
      const lock = lockStateDir(dir, "node.stateDir");
      assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);
      lock.release();
    });
  });
});
