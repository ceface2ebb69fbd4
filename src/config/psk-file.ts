/**
 * Reads a static pre-shared key from a file: the `manual` key source of the aes0 PSK gate (manual
 * deployments and tests). The file holds either the 32 raw bytes or one base64 line as written by
 * `wg genpsk`. It is read by the one secret-file reader (secret-file.ts): a regular file, not a
 * symbolic link, readable by its owner only (mode 0600 or narrower).
 *
 * Errors name the file and the fix, never the file's contents.
 * @module
 */
import { decodeBase64 } from "../encoding.ts";
import { KEY_FILE_MAX_BYTES, readSecretFile } from "./secret-file.ts";

const PSK_LEN = 32;
const BASE64_PSK = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Returns the 32-byte PSK held in `path` (raw bytes, or one base64 line with optional surrounding
 * whitespace). Throws an Error naming the file and the fix when the file breaks the secret-file rules
 * (missing, unreadable, not a regular file, a symbolic link, permissions wider than 0600, too large) or
 * does not hold exactly one 32-byte key (including an all-zero key, which WireGuard reads as "no PSK").
 */
export function readPskFile(path: string): Uint8Array {
  const regenerate = `generate one with \`wg genpsk > ${path} && chmod 600 ${path}\``;
  const bytes = readSecretFile(path, {
    label: "PSK file",
    maxBytes: KEY_FILE_MAX_BYTES,
    createHint: regenerate,
  });
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
