/**
 * A small tar writer (POSIX ustar, regular files only) and its gzip wrapper, for the support bundle.
 * The node builds the bundle in memory inside its own process, so it needs neither the `tar` binary
 * (absent from a sandboxed service's view of a minimal host) nor a Node-streams npm package: ustar is
 * a 512-byte header per file, the data padded to 512 bytes, and two zero blocks at the end; gzip is
 * the platform's `CompressionStream`. Pure apart from the compression.
 * @module
 */

/** Size of a tar block: every header and every data section is a whole number of them. */
export const TAR_BLOCK = 512;
/** Longest member name the writer takes (the ustar `name` field; no prefix splitting). */
export const MAX_TAR_NAME = 100;
/** Largest member the 11 octal digits of the size field can describe. */
export const MAX_TAR_MEMBER_BYTES = 8 ** 11 - 1;
/** File mode of every member: readable by the owner only (a bundle is for the operator). */
export const TAR_FILE_MODE = 0o600;

/** One file in the archive. */
export interface TarEntry {
  /** Path inside the archive: ASCII, relative, at most {@link MAX_TAR_NAME} bytes. */
  name: string;
  /** Contents (text is written as UTF-8). */
  data: Uint8Array | string;
  /** Modification time, unix seconds. */
  mtime: number;
}

const encoder = new TextEncoder();

/** Writes `value` as zero-padded octal of `digits` digits followed by NUL at `at`. */
function octal(header: Uint8Array, at: number, digits: number, value: number): void {
  const text = Math.floor(value).toString(8).padStart(digits, "0");
  if (text.length > digits) throw new RangeError(`tar field overflow: ${value}`);
  header.set(encoder.encode(text), at);
  header[at + digits] = 0;
}

function checkName(name: string): void {
  if (
    name.length === 0 || name.length > MAX_TAR_NAME || !/^[\x21-\x7e]+$/.test(name) ||
    name.startsWith("/") || name.split("/").some((part) => part === ".." || part === "")
  ) {
    throw new RangeError(
      `tar member name ${JSON.stringify(name.slice(0, 120))} must be 1-${MAX_TAR_NAME} printable ASCII ` +
        "characters without spaces, relative, without empty or .. components",
    );
  }
}

/** The 512-byte ustar header of a regular file. */
export function tarHeader(name: string, size: number, mtime: number): Uint8Array {
  checkName(name);
  if (!Number.isInteger(size) || size < 0 || size > MAX_TAR_MEMBER_BYTES) {
    throw new RangeError(`tar member ${name}: size ${size} is out of range`);
  }
  const h = new Uint8Array(TAR_BLOCK);
  h.set(encoder.encode(name), 0);
  octal(h, 100, 7, TAR_FILE_MODE);
  octal(h, 108, 7, 0); // uid
  octal(h, 116, 7, 0); // gid
  octal(h, 124, 11, size);
  octal(h, 136, 11, Math.max(0, mtime));
  h.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  h[156] = 0x30; // typeflag '0': regular file
  h.set(encoder.encode("ustar\0"), 257);
  h.set(encoder.encode("00"), 263);
  h.set(encoder.encode("root"), 265); // uname
  h.set(encoder.encode("root"), 297); // gname
  let sum = 0;
  for (const b of h) sum += b;
  octal(h, 148, 6, sum);
  h[155] = 0x20;
  return h;
}

/** The whole archive (headers, padded data, two zero blocks) of `entries`, in order. */
export function writeTar(entries: readonly TarEntry[]): Uint8Array {
  const names = new Set<string>();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const e of entries) {
    if (names.has(e.name)) throw new RangeError(`tar member ${e.name} is listed twice`);
    names.add(e.name);
    const data = typeof e.data === "string" ? encoder.encode(e.data) : e.data;
    const header = tarHeader(e.name, data.length, e.mtime);
    const padded = Math.ceil(data.length / TAR_BLOCK) * TAR_BLOCK;
    parts.push(header, data);
    total += TAR_BLOCK + padded;
    if (padded > data.length) parts.push(new Uint8Array(padded - data.length));
  }
  total += 2 * TAR_BLOCK;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out; // the two end blocks are the zeros already there
}

/** `bytes` compressed as one gzip member (RFC 1952) through the platform's CompressionStream. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A `.tar.gz` of `entries`. */
export async function writeTarGz(entries: readonly TarEntry[]): Promise<Uint8Array> {
  return await gzip(writeTar(entries));
}
