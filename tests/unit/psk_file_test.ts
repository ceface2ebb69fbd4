import assert from "node:assert/strict";
import { readPskFile } from "../../src/keys/psk-file.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);

function write(dir: string, name: string, data: Uint8Array | string, mode = 0o600): string {
  const path = `${dir}/${name}`;
  if (typeof data === "string") Deno.writeTextFileSync(path, data);
  else Deno.writeFileSync(path, data);
  Deno.chmodSync(path, mode);
  return path;
}

/** Asserts that reading `path` throws with a message matching `re` and not containing the key. */
function refuses(path: string, re: RegExp): void {
  let message = "";
  assert.throws(() => readPskFile(path), (e: unknown) => {
    message = (e as Error).message;
    return true;
  });
  assert.match(message, re);
  assert.ok(message.includes(path), "the error names the file");
  for (const secret of [toHex(KEY), encodeBase64(KEY), encodeBase64(KEY).slice(0, 20)]) {
    assert.ok(!message.includes(secret), "the error holds no key material");
  }
}

Deno.test("readPskFile: raw and base64 keys, and every refusal names the file and the fix", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "twofold-psk-" });
  try {
    await t.step("32 raw bytes are accepted", () => {
      assert.deepEqual(readPskFile(write(dir, "raw", KEY)), KEY);
    });

    await t.step("a base64 line (wg genpsk format) is accepted, with or without newline / CRLF", () => {
      assert.deepEqual(readPskFile(write(dir, "b64", encodeBase64(KEY) + "\n")), KEY);
      assert.deepEqual(readPskFile(write(dir, "b64-bare", encodeBase64(KEY))), KEY);
      assert.deepEqual(readPskFile(write(dir, "b64-crlf", encodeBase64(KEY) + "\r\n")), KEY);
    });

    await t.step("0400 is accepted (narrower than 0600)", () => {
      assert.deepEqual(readPskFile(write(dir, "ro", KEY, 0o400)), KEY);
    });

    await t.step("permissions wider than 0600 are refused with the chmod fix", () => {
      refuses(
        write(dir, "wide", encodeBase64(KEY) + "\n", 0o644),
        /permissions 0644, wider than 0600: run `chmod 600 .*wide`/,
      );
      refuses(write(dir, "group", KEY, 0o640), /0640, wider than 0600/);
      refuses(write(dir, "other", KEY, 0o604), /0604/);
    });

    await t.step("a missing file is refused", () => {
      refuses(`${dir}/nope`, /does not exist: generate one with `wg genpsk >/);
    });

    await t.step("a directory is refused as not a regular file", () => {
      const sub = `${dir}/sub`;
      Deno.mkdirSync(sub);
      refuses(sub, /not a regular file/);
    });

    await t.step("wrong lengths are refused", () => {
      refuses(write(dir, "short", KEY.slice(0, 31)), /wrong length \(31 bytes\)/);
      refuses(write(dir, "long", new Uint8Array(200).fill(1)), /wrong length \(200 bytes\)/);
      refuses(write(dir, "empty", new Uint8Array(0)), /wrong length \(0 bytes\)/);
      refuses(
        write(dir, "b64-short", encodeBase64(KEY.slice(0, 31)) + "\n"),
        /wrong length|not a valid base64/,
      );
    });

    await t.step("invalid base64 is refused", () => {
      const bad = encodeBase64(KEY).replace(/^./, "*");
      refuses(write(dir, "bad64", bad + "\n"), /not a valid base64 key/);
      refuses(
        write(dir, "two-keys", encodeBase64(KEY) + "\n" + encodeBase64(KEY) + "\n"),
        /not a valid base64 key/,
      );
      refuses(write(dir, "binary", new Uint8Array(45).fill(0xff)), /neither 32 raw bytes nor base64 text/);
    });

    await t.step("an all-zero key is refused (it means 'no PSK')", () => {
      refuses(write(dir, "zero", new Uint8Array(32)), /all-zero key/);
      refuses(write(dir, "zero64", encodeBase64(new Uint8Array(32)) + "\n"), /all-zero key/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
