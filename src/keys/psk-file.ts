/**
 * Reads a static pre-shared key from a file: the `manual` key source of the aes0 PSK gate (manual
 * deployments and tests). The file holds either the 32 raw bytes or one base64 line as written by
 * `wg genpsk`. It must be a regular file readable by its owner only (mode 0600 or narrower).
 *
 * Errors name the file and the fix, never the file's contents.
 * @module
 */
import { decodeBase64 } from "../encoding.ts";

const PSK_LEN = 32;
const BASE64_PSK = /^[A-Za-z0-9+/]{43}=$/;

function octal(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

/**
 * Returns the 32-byte PSK held in `path` (raw bytes, or one base64 line with optional surrounding
 * whitespace). Throws an Error naming the file and the fix when the file is missing, unreadable, not a
 * regular file, has permissions wider than 0600, or does not hold exactly one 32-byte key (including an
 * all-zero key, which WireGuard reads as "no PSK").
 */
export function readPskFile(path: string): Uint8Array {
  const regenerate = `generate one with \`wg genpsk > ${path} && chmod 600 ${path}\``;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`PSK file ${path} does not exist: ${regenerate}`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `PSK file ${path} cannot be accessed (permission denied): run twofold as the file's owner`,
      );
    }
    throw new Error(`PSK file ${path} cannot be read (${(e as Error).name}): check the path`);
  }
  if (!info.isFile) {
    throw new Error(`PSK file ${path} is not a regular file: point the config at a file holding the key`);
  }
  checkMode(path, info.mode);
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new Error(`PSK file ${path} cannot be read (permission denied): run twofold as the file's owner`);
    }
    throw new Error(`PSK file ${path} cannot be read (${(e as Error).name}): check the file`);
  }
  try {
    const key = parsePsk(path, bytes, regenerate);
    if (key.every((b) => b === 0)) {
      key.fill(0);
      throw new Error(`PSK file ${path} holds an all-zero key, which means "no PSK": ${regenerate}`);
    }
    return key;
  } finally {
    bytes.fill(0);
  }
}

function checkMode(path: string, mode: number | null): void {
  if (mode === null) return; // no POSIX modes on this platform
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `PSK file ${path} has permissions ${octal(mode)}, wider than 0600: run \`chmod 600 ${path}\``,
    );
  }
}

function parsePsk(path: string, bytes: Uint8Array, regenerate: string): Uint8Array {
  if (bytes.length === PSK_LEN) return bytes.slice();
  const expected = `expected ${PSK_LEN} raw bytes or one base64 line of 44 characters`;
  // A base64 key is 44 characters; allow surrounding whitespace (newline, CRLF) but nothing else.
  if (bytes.length < 44 || bytes.length > 128) {
    throw new Error(
      `PSK file ${path} has the wrong length (${bytes.length} bytes): ${expected}; ${regenerate}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim();
  } catch {
    throw new Error(`PSK file ${path} is neither ${PSK_LEN} raw bytes nor base64 text: ${regenerate}`);
  }
  if (!BASE64_PSK.test(text)) {
    throw new Error(`PSK file ${path} is not a valid base64 key (${expected}): ${regenerate}`);
  }
  const key = decodeBase64(text);
  if (key.length !== PSK_LEN) {
    key.fill(0);
    throw new Error(`PSK file ${path} is not a valid base64 key (${expected}): ${regenerate}`);
  }
  return key;
}
