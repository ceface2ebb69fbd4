/**
 * `twofold keygen` and `twofold pubkey`: WireGuard-compatible base64 keys, like `wg genkey` and
 * `wg pubkey`.
 * @module
 */
import { generatePrivateKey, publicKey } from "../crypto/x25519.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { CliError } from "./errors.ts";
import { KEY_FILE_MAX_BYTES } from "../config/secret-file.ts";

/** Refuses any argument: the key commands take none (`--help` is answered before they run). */
function noArguments(cmd: string, args: string[]): void {
  if (args.length > 0) {
    throw new CliError(`${cmd}: unexpected argument "${args[0]}"; run "twofold ${cmd} --help"`);
  }
}

/** Prints a new private key. */
export function runKeygen(args: string[] = []): number {
  noArguments("keygen", args);
  const k = generatePrivateKey();
  console.log(encodeBase64(k));
  k.fill(0);
  return 0;
}

/** Reads a private key from stdin and prints its public key. */
export async function runPubkey(args: string[] = []): Promise<number> {
  noArguments("pubkey", args);
  const text = new TextDecoder().decode(await readStdinAtMost(KEY_FILE_MAX_BYTES)).trim();
  let key: Uint8Array;
  try {
    key = decodeBase64(text);
  } catch {
    throw new CliError("pubkey: stdin is not a base64 key; pipe a key from `twofold keygen` or `wg genkey`");
  }
  if (key.length !== 32) {
    throw new CliError("pubkey: the key on stdin must be 32 bytes of base64 (44 characters)");
  }
  console.log(encodeBase64(publicKey(key)));
  key.fill(0);
  return 0;
}

/** Reads stdin to its end; refuses (CliError) more than `max` bytes, so `pubkey < /dev/zero` stops at once. */
async function readStdinAtMost(max: number): Promise<Uint8Array> {
  const out = new Uint8Array(max);
  let len = 0;
  for await (const chunk of Deno.stdin.readable) {
    if (len + chunk.length > max) {
      out.fill(0);
      chunk.fill(0);
      throw new CliError(`pubkey: stdin holds more than ${max} bytes; pipe one key from \`twofold keygen\``);
    }
    out.set(chunk, len);
    chunk.fill(0);
    len += chunk.length;
  }
  const key = out.slice(0, len);
  out.fill(0);
  return key;
}
