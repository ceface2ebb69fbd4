/**
 * Reads the vendored upstream Rosenpass V03 test vector (tests/vectors/rosenpass/): its entries in
 * order, and the bytes of entry i (inline base64, or an offloaded zstd file holding a JSON base64 string).
 */
import assert from "node:assert/strict";
import { decompress } from "fzstd";
import { decodeBase64 } from "../../src/encoding.ts";

const DIR = new URL("../vectors/rosenpass/", import.meta.url);
const TOML = "crypto_server_test_vector_1.toml";

/** One [[entries]] item of the vector. */
export interface Entry {
  name?: string;
  value?: string;
  offload?: boolean;
}

/** Reads the [[entries]] list of the vector (a flat TOML subset: strings and booleans). */
function readEntries(): Entry[] {
  const entries: Entry[] = [];
  for (const line of Deno.readTextFileSync(new URL(TOML, DIR)).split("\n")) {
    if (line.trim() === "[[entries]]") entries.push({});
    const m = line.match(/^(\w+) = (?:"(.*)"|(true|false))$/);
    if (m && entries.length > 0) {
      const entry = entries[entries.length - 1] as Record<string, unknown>;
      entry[m[1]] = m[2] ?? m[3] === "true";
    }
  }
  return entries;
}

/** The entries of the vector, in order. */
export const entries: Entry[] = readEntries();

/** The bytes of entry `i`: inline base64, or an offloaded zstd file holding a JSON base64 string. */
export function bytes(i: number): Uint8Array {
  const entry = entries[i];
  if (entry.offload) {
    const raw = decompress(Deno.readFileSync(new URL(`${TOML}_offloaded_value_${i}.zstd`, DIR)));
    return decodeBase64(JSON.parse(new TextDecoder().decode(raw)));
  }
  assert.ok(entry.value !== undefined, `entry ${i} has a value`);
  return decodeBase64(entry.value);
}

/** The vector's two static key pairs (V03: McEliece 460896 round 4) and its PSK. */
export function vectorKeys() {
  return {
    a: { secretKey: bytes(0), publicKey: bytes(1) },
    b: { secretKey: bytes(2), publicKey: bytes(3) },
    psk: bytes(4),
  };
}
