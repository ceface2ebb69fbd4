/**
 * The support bundle's ustar writer and gzip: archives read back by the system `tar` (listing, exact
 * contents after extraction, modes), header fields and checksum, padding, and refused names.
 */
import assert from "node:assert/strict";
import { MAX_TAR_NAME, TAR_BLOCK, tarHeader, writeTar, writeTarGz } from "../../src/support/tar.ts";
import { requireBinary, skipReason } from "../helpers/prereq.ts";

const MTIME = 1_767_225_600; // 2026-01-01T00:00:00Z

Deno.test("tar: sizes are headers plus padded data plus two zero blocks", () => {
  const tar = writeTar([
    { name: "a/empty.txt", data: "", mtime: MTIME },
    { name: "a/one.txt", data: "x", mtime: MTIME },
    { name: "a/block.bin", data: new Uint8Array(TAR_BLOCK).fill(7), mtime: MTIME },
  ]);
  assert.equal(tar.length, 3 * TAR_BLOCK + 0 + TAR_BLOCK + TAR_BLOCK + 2 * TAR_BLOCK);
  assert.ok(tar.subarray(tar.length - 2 * TAR_BLOCK).every((b) => b === 0), "two zero end blocks");
  // "x" is followed by zero padding up to the next header.
  assert.equal(tar[2 * TAR_BLOCK], 0x78);
  assert.ok(tar.subarray(2 * TAR_BLOCK + 1, 3 * TAR_BLOCK).every((b) => b === 0));
});

Deno.test("tar: header fields and checksum", () => {
  const h = tarHeader("dir/file.json", 1234, MTIME);
  const text = (from: number, len: number) => new TextDecoder().decode(h.subarray(from, from + len));
  assert.equal(text(0, 13), "dir/file.json");
  assert.equal(text(100, 8), "0000600\0");
  assert.equal(text(124, 12), `${(1234).toString(8).padStart(11, "0")}\0`);
  assert.equal(text(136, 12), `${MTIME.toString(8).padStart(11, "0")}\0`);
  assert.equal(text(156, 1), "0");
  assert.equal(text(257, 6), "ustar\0");
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  assert.equal(parseInt(text(148, 6), 8), sum);
});

Deno.test("tar: refused names and duplicates", () => {
  for (const bad of ["", "/abs", "a/../b", "a//b", "with space", "é", "x".repeat(MAX_TAR_NAME + 1)]) {
    assert.throws(() => tarHeader(bad, 0, MTIME), RangeError, JSON.stringify(bad));
  }
  assert.throws(
    () => writeTar([{ name: "a", data: "", mtime: 0 }, { name: "a", data: "", mtime: 0 }]),
    /listed twice/,
  );
});

Deno.test({
  name: "tar.gz: the system tar lists and extracts exactly what was written",
  ignore: skipReason(requireBinary("tar")) !== false,
  fn: async () => {
    const binary = crypto.getRandomValues(new Uint8Array(3 * TAR_BLOCK + 17));
    const entries = [
      { name: "bundle-x/config.json", data: '{"a": 1}\n', mtime: MTIME },
      { name: "bundle-x/empty.txt", data: "", mtime: MTIME },
      { name: "bundle-x/sub/binary.bin", data: binary, mtime: MTIME },
      { name: "bundle-x/utf8.txt", data: "gate → open ✓\n", mtime: MTIME },
      { name: `bundle-x/${"n".repeat(MAX_TAR_NAME - 9)}`, data: "long name\n", mtime: MTIME },
    ];
    const gz = await writeTarGz(entries);
    assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");
    const dir = await Deno.makeTempDir({ prefix: "tf-tar-" });
    try {
      const file = `${dir}/b.tar.gz`;
      await Deno.writeFile(file, gz);
      const list = await new Deno.Command("tar", { args: ["-tzf", file] }).output();
      assert.equal(list.code, 0, new TextDecoder().decode(list.stderr));
      assert.deepEqual(
        new TextDecoder().decode(list.stdout).trim().split("\n"),
        entries.map((e) => e.name),
      );
      const out = `${dir}/out`;
      await Deno.mkdir(out);
      const x = await new Deno.Command("tar", { args: ["-xzf", file, "-C", out] }).output();
      assert.equal(x.code, 0, new TextDecoder().decode(x.stderr));
      for (const e of entries) {
        const got = await Deno.readFile(`${out}/${e.name}`);
        const want = typeof e.data === "string" ? new TextEncoder().encode(e.data) : e.data;
        assert.deepEqual(got, want, e.name);
        const st = await Deno.stat(`${out}/${e.name}`);
        assert.equal(st.mode! & 0o777, 0o600, `${e.name} mode`);
        assert.equal(Math.floor(st.mtime!.getTime() / 1000), MTIME);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
