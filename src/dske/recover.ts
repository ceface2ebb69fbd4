/**
 * Share generation and the recoverer's reconstruction-with-validation of docs/design.md §3.8–3.9: the 32-byte
 * key is AMD-encoded, Shamir-split per byte, and recovered by trying k-subsets until one interpolates to a
 * codeword whose AMD check passes; the remaining shares then name hubs that are off the polynomial.
 * @module
 */

import { AMD_CODEWORD_BYTES, amdDecode, amdEncode } from "./amd.ts";
import { GF128_BYTES } from "./gf128.ts";
import {
  combineShares,
  type RandomBytes,
  shareConsistent,
  splitSecret,
  systemRandomBytes,
} from "./shamir.ts";

/** A share as held for one hub: its id, its x-coordinate and the 64-byte share. */
export interface HubShare {
  /** Hub identifier (hex of the 16-byte HubID in the protocol). */
  hubId: string;
  /** Shamir x-coordinate, 1..255. */
  x: number;
  /** The 64-byte share of the AMD codeword. */
  share: Uint8Array;
}

/**
 * Outcome of {@link recoverSecret}. On failure, `inconsistent` names only hubs with malformed entries
 * (without a confirmed key there is no honest reference to judge a share by); `forged` lists, for
 * "confirmation-failed", the hubs whose shares made a key that passed the AMD check but not the
 * confirmation (beyond-threshold collusion, or shares of another round), in input order.
 */
export type RecoverResult =
  | { ok: true; secret: Uint8Array; used: string[]; inconsistent: string[] }
  | { ok: false; reason: "not-enough-shares" | "validation-failed"; inconsistent: string[] }
  | { ok: false; reason: "confirmation-failed"; inconsistent: string[]; forged: string[] };

/** Tuning for {@link recoverSecret}. */
export interface RecoverOptions {
  /**
   * Upper bound on interpolation trials (default 10 000). The search never exceeds C(m, k) anyway; the
   * cap only matters for large hub sets, where C(m, k) would let liars make the recoverer spin.
   */
  maxTrials?: number;
  /**
   * Key confirmation: a candidate key that passes the AMD check is accepted only when this returns
   * true for it (the generator's confirmation tag, key-confirm.ts). Shares are then judged only against
   * a confirmed key, so a consistent forged key from k colluding hubs names nobody as a liar.
   */
  confirm?: (secret: Uint8Array) => boolean;
}

const DEFAULT_MAX_TRIALS = 10_000;

/**
 * Builds the AMD codeword of `secret32` and splits it among `hubIds`, the x-coordinate of each hub being
 * its 1-based index in the sorted id list (default string order: for equal-length lowercase hex ids this
 * is the byte order of the HubIDs). Returns one 64-byte share per hub, in the order of `hubIds`.
 *
 * `random` (default: system CSPRNG) supplies first the 16-byte α, then the Shamir coefficients.
 * @throws RangeError on a secret that is not 32 bytes, duplicate hub ids, or k outside 2..hubIds.length,
 *   or more than 255 hubs.
 */
export function makeShares(
  secret32: Uint8Array,
  k: number,
  hubIds: readonly string[],
  random: RandomBytes = systemRandomBytes,
): HubShare[] {
  const sorted = [...hubIds].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new RangeError("hub ids must be distinct");
  }
  const xOf = new Map(sorted.map((id, i) => [id, i + 1]));
  const xs = hubIds.map((id) => xOf.get(id)!);
  const alpha = random(GF128_BYTES);
  if (alpha.length !== GF128_BYTES) throw new RangeError("random source returned the wrong length");
  const codeword = amdEncode(secret32, alpha);
  alpha.fill(0);
  try {
    const shares = splitSecret(codeword, k, xs, random);
    return hubIds.map((hubId, i) => ({ hubId, x: xs[i], share: shares[i] }));
  } finally {
    codeword.fill(0);
  }
}

/** Advances `indices` (a strictly increasing k-subset of 0..m−1) to the next one in lexicographic order. */
function nextCombination(indices: number[], m: number): boolean {
  const k = indices.length;
  let i = k - 1;
  while (i >= 0 && indices[i] === m - k + i) i--;
  if (i < 0) return false;
  indices[i]++;
  for (let j = i + 1; j < k; j++) indices[j] = indices[j - 1] + 1;
  return true;
}

/**
 * Recovers and validates the secret from shares given in preference order (lowest latency first).
 *
 * - Only the first entry per hubId counts. An entry whose x is not an integer in 1..255 or whose share is
 *   not 64 bytes is malformed: its hub is reported as inconsistent and the entry is not used.
 * - Among the rest, only the first entry per x-coordinate takes part in reconstruction (m counts those);
 *   a later entry from another hub with an already-seen x is still checked against the accepted
 *   polynomial, and its hub named if it is off it.
 * - k-subsets are tried in lexicographic order of preference (so with m = k, all shares at once), at most
 *   min(C(m, k), maxTrials) of them; the first whose interpolated codeword passes the AMD check wins.
 * - With `confirm`, a subset whose key passes the AMD check but not the confirmation is not accepted:
 *   its hubs go to `forged` and the search goes on.
 * - Every share outside the accepted subset is then checked; hubs whose share is not on the accepted
 *   polynomial are listed in `inconsistent` (in input order). Without an accepted polynomial no honest
 *   reference exists, so a failure names only malformed entries.
 *
 * @throws RangeError if k is not an integer in 2..255.
 */
export function recoverSecret(
  shares: readonly HubShare[],
  k: number,
  options: RecoverOptions = {},
): RecoverResult {
  if (!Number.isInteger(k) || k < 2 || k > 255) {
    throw new RangeError("threshold k must be an integer in 2..255");
  }
  const maxTrials = options.maxTrials ?? DEFAULT_MAX_TRIALS;

  const seenHubs = new Set<string>();
  const seenXs = new Set<number>();
  const candidates: HubShare[] = [];
  const duplicateX: HubShare[] = [];
  const badHubs = new Set<string>();
  for (const entry of shares) {
    if (seenHubs.has(entry.hubId)) continue;
    seenHubs.add(entry.hubId);
    const wellFormed = Number.isInteger(entry.x) && entry.x >= 1 && entry.x <= 255 &&
      entry.share.length === AMD_CODEWORD_BYTES;
    if (!wellFormed) badHubs.add(entry.hubId);
    else if (seenXs.has(entry.x)) duplicateX.push(entry);
    else {
      seenXs.add(entry.x);
      candidates.push(entry);
    }
  }
  const inputOrder = (ids: Set<string>) => [...seenHubs].filter((id) => ids.has(id));

  const m = candidates.length;
  if (m < k) return { ok: false, reason: "not-enough-shares", inconsistent: inputOrder(badHubs) };

  const indices = Array.from({ length: k }, (_, i) => i);
  let accepted: HubShare[] | null = null;
  let secret: Uint8Array | null = null;
  let trials = 0;
  const forged = new Set<string>();
  do {
    if (trials++ >= maxTrials) break;
    const subset = indices.map((i) => candidates[i]);
    const codeword = combineShares(subset);
    secret = amdDecode(codeword);
    codeword.fill(0);
    if (secret && options.confirm && !options.confirm(secret)) {
      for (const s of subset) forged.add(s.hubId);
      secret.fill(0);
      secret = null;
    }
    if (secret) accepted = subset;
  } while (!accepted && nextCombination(indices, m));

  if (!accepted || !secret) {
    if (forged.size > 0) {
      return {
        ok: false,
        reason: "confirmation-failed",
        inconsistent: inputOrder(badHubs),
        forged: inputOrder(forged),
      };
    }
    return { ok: false, reason: "validation-failed", inconsistent: inputOrder(badHubs) };
  }

  const used = new Set(accepted.map((s) => s.hubId));
  for (const other of [...candidates, ...duplicateX]) {
    if (used.has(other.hubId)) continue;
    if (!shareConsistent(accepted, other)) badHubs.add(other.hubId);
  }
  return { ok: true, secret, used: accepted.map((s) => s.hubId), inconsistent: inputOrder(badHubs) };
}
