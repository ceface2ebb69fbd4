/**
 * Test-only fault injection for the DSKE tests (never enabled in production: `twofold hub` and
 * `twofold up` turn a fault on only with the `TWOFOLD_TEST_FAULT` environment variable and say so in
 * their start-up line).
 *
 * `collude`: beyond-threshold collusion. Every hub running with it releases, instead of the share it
 * stored, its point of a forged sharing that all colluding hubs derive from the key id alone (no
 * communication needed): a valid AMD codeword of another key, split with coefficients from the same
 * seed. k colluding hubs thus hand a recoverer a consistent forged key that passes the AMD check; only
 * the key confirmation can tell.
 *
 * `inject-peer-frames`: a hub that read a key id and epoch in a SHARE_PUT sends the nodes forged
 * node-to-node frames for it: a KEY_ABORT in the old unauthenticated layout (version 1), a version-2
 * KEY_ABORT and KEY_OFFER tagged under a key of its own. A node must drop and count every one.
 * @module
 */
import { hash } from "../crypto/blake2s.ts";
import { concatBytes } from "../encoding.ts";
import { amdEncode } from "./amd.ts";
import { splitSecret } from "./shamir.ts";
import { DSKE_PORT, requestFrame } from "./frame-transport.ts";
import { ABORT_PSRD_EXHAUSTED } from "./agreement-types.ts";
import { encodePeerFrame, FRAME_MAGIC, FRAME_VERSION, FrameType, HEADER_LEN, KEY_ID_LEN } from "./frames.ts";

/** How long an injected frame may take to be sent. */
const INJECT_TIMEOUT_MS = 2_000;

const COLLUSION_LABEL = new TextEncoder().encode("twofold test fault: colluding hubs");

/** A deterministic byte stream from `seed` (BLAKE2s in counter mode; test use only). */
function stream(seed: Uint8Array): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let pos = 0; pos < n; pos += 32) {
      const block = hash(seed, Uint8Array.of(counter >>> 24, counter >>> 16, counter >>> 8, counter));
      counter++;
      out.set(block.subarray(0, Math.min(32, n - pos)), pos);
    }
    return out;
  };
}

/** The share a colluding hub releases for key `keyId` at x-coordinate `x` with threshold `k`. */
export function collusionShare(keyId: Uint8Array, x: number, k: number): Uint8Array {
  const random = stream(hash(concatBytes([COLLUSION_LABEL, keyId])));
  const codeword = amdEncode(random(32), random(16));
  // Coefficients come from `random` in one call whatever the x-coordinates, so every colluder gets
  // points of the same polynomial; the other coordinates only fill splitSecret's k-minimum.
  const xs = [x];
  for (let other = 1; xs.length < k; other++) if (other !== x) xs.push(other);
  return splitSecret(codeword, k, xs, random)[0];
}

/**
 * Sends forged node-to-node frames for key `keyId` / `epoch` to port 51831 of each of `hosts` (best
 * effort; errors are ignored): the version-1 KEY_ABORT a hub could send before frames were
 * authenticated, and a version-2 KEY_ABORT and KEY_OFFER tagged under a random key.
 */
export async function injectForgedPeerFrames(
  hosts: string[],
  keyId: Uint8Array,
  epoch: number,
): Promise<void> {
  const legacyAbort = new Uint8Array(HEADER_LEN + KEY_ID_LEN + 4);
  const view = new DataView(legacyAbort.buffer);
  view.setUint16(0, FRAME_MAGIC);
  legacyAbort[2] = FRAME_VERSION; // the version node frames had before they were authenticated
  legacyAbort[3] = FrameType.KEY_ABORT;
  view.setUint32(4, legacyAbort.length);
  legacyAbort.set(keyId, HEADER_LEN);
  legacyAbort[HEADER_LEN + KEY_ID_LEN] = ABORT_PSRD_EXHAUSTED;
  const forgeKey = crypto.getRandomValues(new Uint8Array(32));
  const abort = encodePeerFrame(
    { type: FrameType.KEY_ABORT, keyId, epoch, reason: ABORT_PSRD_EXHAUSTED },
    forgeKey,
  );
  const offer = encodePeerFrame({
    type: FrameType.KEY_OFFER,
    keyId: crypto.getRandomValues(new Uint8Array(KEY_ID_LEN)),
    epoch: epoch + 1,
    generatorPeer: crypto.getRandomValues(new Uint8Array(32)),
    recovererPeer: crypto.getRandomValues(new Uint8Array(32)),
    k: 2,
    n: 0,
    expiresMs: Date.now() + 10_000,
    confirm: new Uint8Array(32),
    hubs: [],
  }, forgeKey);
  await Promise.all(
    hosts.flatMap((host) =>
      [legacyAbort, abort, offer].map((frame) =>
        requestFrame(host, DSKE_PORT, frame, INJECT_TIMEOUT_MS, false).catch(() => {})
      )
    ),
  );
}
