/**
 * What a new operator meets first, run for real as `deno run -A main.ts …` (no root needed): every
 * command's and subcommand's `--help` exits 0 with its help on stdout and no side effect (no key
 * printed, nothing created in the working directory, HOME or TMPDIR, stdin left unread), `--version`,
 * an empty environment variable counted as unset, an unknown `TWOFOLD_LOG` refused in one line, and the
 * config mistakes (a misspelled peer key, wg0.address without a prefix) reported as what they are.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/cli/help.ts";
import { denoBin } from "../helpers/deno.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** Far above a cold start on a loaded machine; a command waiting on stdin would hit it. */
const TIMEOUT_MS = 60_000;
/** How many commands run at once (the machine has 2 cores). */
const PARALLEL = 3;
/** A WireGuard key printed on a line of its own. */
const KEY_LINE = /^[A-Za-z0-9+/]{43}=$/m;

/** Deno's cache as this test process sees it: the children get a temp HOME but must share the cache. */
function denoDir(): string {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return `${xdg || `${Deno.env.get("HOME") ?? "/root"}/.cache`}/deno`;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs twofold in `dir` (also HOME and TMPDIR) with stdin an open pipe that never delivers data, so a
 * command that reads stdin would hang until the timeout instead of finishing.
 */
async function twofold(dir: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = new Deno.Command(denoBin(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: dir,
    env: { HOME: dir, TMPDIR: dir, DENO_DIR: denoDir(), NO_COLOR: "1", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, TIMEOUT_MS);
  try {
    const out = await child.output();
    return {
      code: out.signal ? -1 : out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
    await child.stdin.close().catch(() => {});
  }
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-front-door-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Runs `jobs` with at most PARALLEL at a time, in order of completion. */
async function pool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return results;
}

Deno.test("every command's --help exits 0, prints its help and has no side effect", async () => {
  const lines: string[][] = [["--help"], ["help"], ["-h"]];
  for (const c of COMMANDS) {
    const words = c.name.split(" ");
    lines.push([...words, "--help"], [...words, "-h"], ["help", ...words]);
  }
  // Help given after other arguments wins over them too (nothing runs, nothing is written).
  lines.push(
    ["keygen", "--help"],
    [
      "psrd",
      "new",
      "--hub-endpoint",
      "10.0.0.1:51831",
      "--client-out",
      "c.psrd",
      "--hub-out",
      "h.psrd",
      "--help",
    ],
    ["psrd", "help", "new"],
    ["lockdown", "add", "tcp/8080", "--help"],
    ["up", "--config", "node.json", "--help"],
  );
  await withDir(async (dir) => {
    const logFile = `${dir}/should-not-exist.log`;
    const runs = await pool(lines.map((args) => () => twofold(dir, args, { TWOFOLD_LOG_FILE: logFile })));
    runs.forEach((r, i) => {
      const what = `twofold ${lines[i].join(" ")}`;
      assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
      assert.match(r.stdout, /^usage: twofold /, `${what}: help on stdout`);
      assert.ok(r.stdout.trim().split("\n").length >= 5, `${what}: more than a usage line`);
      assert.doesNotMatch(r.stdout, KEY_LINE, `${what}: no key printed`);
      assert.equal(r.stderr, "", `${what}: nothing on stderr`);
      const top = lines[i][0] === "help" ? lines[i][1] : lines[i][0];
      if (top && !top.startsWith("-")) {
        assert.ok(r.stdout.includes(`twofold ${top}`) || top === "help", `${what}: about ${top}`);
      }
    });
    assert.deepEqual(await entries(dir), [], "no file created in the working directory, HOME or TMPDIR");
  });
});

Deno.test("--version names twofold, Deno and the AEAD backend", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  await withDir(async (dir) => {
    const r = await twofold(dir, ["--version"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines[0], `twofold ${denoJson.version}`);
    assert.match(lines[1], new RegExp(`^deno ${Deno.version.deno.replaceAll(".", "\\.")} `));
    assert.match(lines[2], /^AEAD backend (libcrypto|noble)$/);
    const forced = await twofold(dir, ["--version"], { TWOFOLD_AEAD_BACKEND: "noble" });
    assert.match(forced.stdout, /^AEAD backend noble$/m);
    assert.deepEqual(await entries(dir), []);
  });
});

Deno.test("environment: empty means unset; an unknown value is one line, exit 2, nothing done", async () => {
  await withDir(async (dir) => {
    // With TWOFOLD_CIPHER empty, wg goes on to the next check (the interface name): the cipher is fine.
    const empty = await twofold(dir, ["wg", "-f", "bad name!"], { TWOFOLD_CIPHER: "", TWOFOLD_LOG: "" });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /invalid interface name "bad name!"/);
    assert.doesNotMatch(empty.stderr, /cipher/);

    const badCipher = await twofold(dir, ["wg", "-f", "wg9"], { TWOFOLD_CIPHER: "aes" });
    assert.equal(badCipher.code, 2);
    assert.equal(badCipher.stderr.trim().split("\n").length, 1, badCipher.stderr);
    assert.match(
      badCipher.stderr,
      /^twofold: TWOFOLD_CIPHER="aes" is not one of chacha20-poly1305, aes-256-gcm/,
    );

    const badLog = await twofold(dir, ["keygen"], { TWOFOLD_LOG: "verbose" });
    assert.equal(badLog.code, 2);
    assert.equal(badLog.stderr.trim().split("\n").length, 1, badLog.stderr);
    assert.match(badLog.stderr, /^twofold: TWOFOLD_LOG="verbose" is not one of debug, info, warn, error/);
    assert.equal(badLog.stdout, "", "the command did not run: no key printed");

    const ok = await twofold(dir, ["keygen"], { TWOFOLD_LOG: "" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, KEY_LINE);
  });
});

Deno.test("config mistakes: a misspelled peer key and wg0.address without a prefix", async () => {
  await withDir(async (dir) => {
    const config = (wg0Address: string, peerAddressKey: string) =>
      JSON.stringify({
        node: { name: "node-a", privateKeyFile: "./node-a.key", stateDir: "./state" },
        wg0: { address: wg0Address },
        aes0: { address: "100.127.0.1/16" },
        peers: [{
          name: "node-b",
          publicKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          [peerAddressKey]: "100.64.0.2",
          aesIp: "100.127.0.2",
        }],
      });
    await Deno.writeTextFile(`${dir}/misspelled.json`, config("100.64.0.1/10", "wgIP"));
    const misspelled = await twofold(dir, ["up", "--config", "misspelled.json"]);
    assert.equal(misspelled.code, 2);
    assert.equal(misspelled.stderr.trim().split("\n").length, 1, misspelled.stderr);
    assert.match(
      misspelled.stderr,
      /config misspelled\.json: peers\[0\]\.wgIP: unknown key; .*allowed here: name, publicKey, wgIp.*did you mean "wgIp"/,
    );

    await Deno.writeTextFile(`${dir}/no-prefix.json`, config("100.64.0.1", "wgIp"));
    const noPrefix = await twofold(dir, ["up", "--config", "no-prefix.json"]);
    assert.equal(noPrefix.code, 2);
    assert.match(
      noPrefix.stderr,
      /wg0\.address: "100\.64\.0\.1" needs a prefix length; write 100\.64\.0\.1\/10/,
    );
    assert.deepEqual(await entries(dir), ["misspelled.json", "no-prefix.json"], "no state created");
  });
});
