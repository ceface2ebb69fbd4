/**
 * SKA key derivation (pure). The broker derives an intermediate key per endpoint pair and epoch from
 * its root key (NIST SP 800-108 KDF in counter mode, one 256-bit block, PRF = HMAC-SHA256):
 *
 *   intermediate = HMAC(root, 0x00000001 ‖ "twofold-ska-v1" ‖ 0x00 ‖ min(idA,idB) ‖ max(idA,idB) ‖ epoch_u64be ‖ 0x00000100)
 *
 * Each endpoint then mixes in a secret only the two endpoints share (their ephemeral X25519 result),
 * so the broker never learns the PSK:
 *
 *   psk = HMAC-SHA256(intermediate, "twofold-ska-psk" ‖ dh_secret ‖ epoch_u64be ‖ min(ids) ‖ max(ids))
 *
 * With DSKE as a second source: `HMAC-SHA256(dske_key, "twofold-combined" ‖ ska_psk)`.
 * ids are the endpoints' WireGuard (wg0) public keys; min/max compare bytewise.
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "../encoding.ts";

/** SP 800-108 label of the intermediate derivation. */
export const SKA_LABEL = "twofold-ska-v1";
/** Domain string of the endpoint PSK. */
export const SKA_PSK_LABEL = "twofold-ska-psk";
/** Domain string of the SKA+DSKE combination. */
export const COMBINED_LABEL = "twofold-combined";
/** SP 800-108 counter of the one output block. */
const COUNTER_ONE = 1;
/** SP 800-108 output length L in bits (one SHA-256 block). */
const OUTPUT_BITS = 256;
/** Length of an id (WireGuard public key), the DH secret and every derived key. */
export const SKA_KEY_LEN = 32;

const encoder = new TextEncoder();

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

/** `epoch` as an unsigned 64-bit big-endian integer. */
export function u64be(epoch: number): Uint8Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`epoch ${epoch} is not a u64`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(epoch), false);
  return b;
}

/** Bytewise comparison: negative when a < b. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The two ids in bytewise order (min first). */
export function sortedIds(idA: Uint8Array, idB: Uint8Array): [Uint8Array, Uint8Array] {
  checkLen("id", idA);
  checkLen("id", idB);
  return compareBytes(idA, idB) <= 0 ? [idA, idB] : [idB, idA];
}

function checkLen(what: string, b: Uint8Array): void {
  if (b.length !== SKA_KEY_LEN) throw new RangeError(`${what} must be ${SKA_KEY_LEN} bytes, got ${b.length}`);
}

/** The SP 800-108 input the broker gives HMAC(root, ·) for the pair (idA, idB) at `epoch`. */
export function intermediateInput(idA: Uint8Array, idB: Uint8Array, epoch: number): Uint8Array {
  const [lo, hi] = sortedIds(idA, idB);
  return concatBytes([
    u32be(COUNTER_ONE),
    encoder.encode(SKA_LABEL),
    Uint8Array.of(0),
    lo,
    hi,
    u64be(epoch),
    u32be(OUTPUT_BITS),
  ]);
}

/** The intermediate key for (idA, idB, epoch) under `rootHmac` (HMAC-SHA256 with the root key). */
export function deriveIntermediate(
  rootHmac: (data: Uint8Array) => Uint8Array,
  idA: Uint8Array,
  idB: Uint8Array,
  epoch: number,
): Uint8Array {
  return rootHmac(intermediateInput(idA, idB, epoch));
}

/** The endpoint PSK from the intermediate key and the endpoints' shared DH secret. */
export function deriveSkaPsk(
  intermediate: Uint8Array,
  dhSecret: Uint8Array,
  epoch: number,
  idA: Uint8Array,
  idB: Uint8Array,
): Uint8Array {
  checkLen("intermediate key", intermediate);
  checkLen("DH secret", dhSecret);
  const [lo, hi] = sortedIds(idA, idB);
  const input = concatBytes([encoder.encode(SKA_PSK_LABEL), dhSecret, u64be(epoch), lo, hi]);
  const psk = hmac(sha256, intermediate, input);
  input.fill(0);
  return psk;
}

/** The PSK when both SKA and DSKE supply one: breaking either alone reveals nothing. */
export function combinePsk(dskeKey: Uint8Array, skaPsk: Uint8Array): Uint8Array {
  checkLen("DSKE key", dskeKey);
  checkLen("SKA PSK", skaPsk);
  const input = concatBytes([encoder.encode(COMBINED_LABEL), skaPsk]);
  const psk = hmac(sha256, dskeKey, input);
  input.fill(0);
  return psk;
}
