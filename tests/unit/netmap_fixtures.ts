/**
 * Shared fixtures for the network map tests.
 * @module
 */
import { encodeBase64 } from "../../src/encoding.ts";

/** A distinct public key per index (any 32 bytes parse as a key). */
export function key(i: number): string {
  return encodeBase64(new Uint8Array(32).fill(i + 1));
}
