/**
 * Key confirmation of a DSKE round, in both directions, before anyone installs the key: the generator
 * puts a confirmation tag computed under the new key into its KEY_OFFER, the recoverer checks it against
 * the key it reconstructed (so k colluding hubs that hand it a consistent forged key are caught, not
 * installed); the recoverer answers with its own tag under the key it holds, which the generator checks
 * before it installs (so it never opens its gate for a key the recoverer does not hold).
 *
 * Each tag is HMAC-BLAKE2s under a key derived from the secret with the Noise KDF and a per-direction
 * label, over the round's identity (key id, epoch, generator and recoverer public keys): a tag proves
 * knowledge of this round's key and reveals nothing about it. Compared in constant time. Pure.
 * @module
 */
import { hash, hmac } from "../crypto/blake2s.ts";
import { kdf1 } from "../crypto/kdf.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { concatBytes } from "../encoding.ts";

/** Length of a key-confirmation tag. */
export const CONFIRM_TAG_LEN = 32;

/** Who vouches for the key: the generator (in KEY_OFFER) or the recoverer (in KEY_RESULT). */
export type ConfirmRole = "generator" | "recoverer";

const LABELS: Record<ConfirmRole, Uint8Array> = {
  generator: hash(new TextEncoder().encode("twofold dske key confirmation v2: generator")),
  recoverer: hash(new TextEncoder().encode("twofold dske key confirmation v2: recoverer")),
};

/** The round a tag is bound to. */
export interface ConfirmContext {
  /** Key id (16 bytes). */
  keyId: Uint8Array;
  /** Key epoch. */
  epoch: number;
  /** Generator's WireGuard public key. */
  generatorPeer: Uint8Array;
  /** Recoverer's WireGuard public key. */
  recovererPeer: Uint8Array;
}

/** The confirmation tag `role` sends for `secret` in round `ctx`. */
export function confirmationTag(secret: Uint8Array, role: ConfirmRole, ctx: ConfirmContext): Uint8Array {
  const key = kdf1(LABELS[role], secret);
  const epoch = new Uint8Array(8);
  new DataView(epoch.buffer).setBigUint64(0, BigInt(ctx.epoch));
  try {
    return hmac(key, concatBytes([ctx.keyId, epoch, ctx.generatorPeer, ctx.recovererPeer]));
  } finally {
    key.fill(0);
  }
}

/** Whether `tag` is `role`'s confirmation of `secret` for round `ctx` (constant time). */
export function checkConfirmation(
  secret: Uint8Array,
  role: ConfirmRole,
  ctx: ConfirmContext,
  tag: Uint8Array,
): boolean {
  return constantTimeEqual(confirmationTag(secret, role, ctx), tag);
}
