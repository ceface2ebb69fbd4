/**
 * `twofold rosenpass keygen | fingerprint` (runRosenpassCommand, in process) and the key-file checks:
 * a generated pair has the right sizes and modes (secret 0600), the printed fingerprint is the
 * SHA-256 of the public key file, and bad input is one CliError line (no overwrite, wrong size,
 * unknown profile, missing option).
 */
import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { encodeBase64 } from "../../src/encoding.ts";
import { runRosenpassCommand } from "../../src/cli/rosenpass.ts";
import { CliError } from "../../src/cli/errors.ts";
import {
  fingerprintMatches,
  profileOfSecretKey,
  publicKeyFingerprint,
  SECRET_KEY_LEN,
} from "../../src/rosenpass/key-files.ts";
import { PROFILE_V02 } from "../../src/rosenpass/profile.ts";

/** Runs the command with console.log/error captured. */
async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await runRosenpassCommand(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("rosenpass keygen writes a V02 key pair (secret 0600) and prints the fingerprint that `fingerprint` prints", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-rosenpass-cli-" });
  try {
    const sk = `${dir}/rp.sk`;
    const pk = `${dir}/rp.pk`;
    const gen = await run(["keygen", "--secret-key", sk, "--public-key", pk]);
    assert.equal(gen.code, 0);
    assert.match(
      gen.err[0],
      /generating a Classic McEliece 460896 key pair \(v02\)/,
      "a progress line first",
    );
    assert.match(gen.err.at(-1)!, /done in [0-9.]+ s/);
    const secret = await Deno.readFile(sk);
    const pub = await Deno.readFile(pk);
    assert.equal(secret.length, SECRET_KEY_LEN.v02);
    assert.equal(profileOfSecretKey(secret), PROFILE_V02);
    assert.equal(pub.length, 524_160);
    assert.equal((await Deno.stat(sk)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(pk)).mode! & 0o777, 0o644);
    const fp = await run(["fingerprint", pk]);
    assert.equal(fp.code, 0);
    assert.deepEqual(fp.out, [encodeBase64(sha256(pub))]);
    assert.deepEqual(gen.out, fp.out);
    assert.equal(fingerprintMatches(pub, fp.out[0]), true);
    assert.ok(!gen.out.join("").includes(encodeBase64(secret).slice(0, 20)), "no secret on stdout");

    await assert.rejects(
      () => run(["keygen", "--secret-key", sk, "--public-key", `${dir}/other.pk`]),
      (e) => e instanceof CliError && /already exists/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rosenpass CLI: bad input is one line naming the problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-rosenpass-cli-" });
  try {
    await Deno.writeFile(`${dir}/short.pk`, new Uint8Array(100));
    const cases: [string[], RegExp][] = [
      [["fingerprint", `${dir}/short.pk`], /is 100 bytes, a Rosenpass public key is 524160 bytes/],
      [["fingerprint", `${dir}/missing.pk`], /cannot read .*missing\.pk \(NotFound\)/],
      [["fingerprint"], /expected exactly 1 file argument/],
      [["keygen", "--public-key", `${dir}/x.pk`], /--secret-key is required/],
      [
        ["keygen", "--secret-key", `${dir}/a`, "--public-key", `${dir}/b`, "--profile", "v9"],
        /--profile must be v02 or v03/,
      ],
      [["keygen", "--bogus"], /unknown option "--bogus"/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ];
    for (const [args, pattern] of cases) {
      await assert.rejects(() => run(args), (e) => {
        assert.ok(e instanceof CliError, `${args.join(" ")}: a CliError`);
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      });
    }
    assert.equal((await run(["--help"])).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fingerprints: a different key or a malformed fingerprint does not match", () => {
  const a = new Uint8Array(524_160).fill(1);
  const b = new Uint8Array(524_160).fill(2);
  const fa = publicKeyFingerprint(a);
  assert.equal(fingerprintMatches(a, fa), true);
  assert.equal(fingerprintMatches(b, fa), false);
  assert.equal(fingerprintMatches(a, "not base64"), false);
  assert.equal(fingerprintMatches(a, fa.slice(0, 40)), false);
});
