/**
 * Crash-safe writes for small state files (PSRD watermarks, DSKE epoch counters): after a crash a file
 * holds either its old or its new contents, never a mix, and a completed write is on disk.
 * @module
 */

const encoder = new TextEncoder();

/** Writes all of `bytes` to `file` (a single write may be short). */
export function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
}

/** fsyncs a directory, so renames and creations inside it survive a crash. */
export function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

/** Writes `text` to `dir/name` (mode 0600) via `name.tmp`: write, fsync, rename, fsync directory. */
export function writeFileAtomic(dir: string, name: string, text: string): void {
  const tmp = `${dir}/${name}.tmp`;
  const f = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    writeAll(f, encoder.encode(text));
    f.syncSync();
  } finally {
    f.close();
  }
  Deno.renameSync(tmp, `${dir}/${name}`);
  syncDir(dir);
}
