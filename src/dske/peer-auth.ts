/**
 * Authentication of node ↔ node DSKE frames (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC): only the two
 * nodes of a pair can compute the key, so a hub, another node or anything else on wg0 cannot forge or
 * redirect one of these frames.
 *
 * The key of one direction is derived from the X25519 static-static Diffie-Hellman of the two nodes'
 * WireGuard keys (both already hold them: the private key of one, the public key of the other), with
 * the Noise KDF (HKDF over HMAC-BLAKE2s) under a domain label and the sender's and receiver's public
 * keys, so the two directions use different keys and a frame cannot be reflected back to its sender.
 * The tag is HMAC-BLAKE2s over every frame byte before it: the header (version and frame type) and the
 * body (key id and epoch), so it binds the frame type, key id and epoch. Tags are compared in constant
 * time. Pure: no I/O.
 * @module
 */
import { dh } from "../crypto/x25519.ts";
import { hash, hmac } from "../crypto/blake2s.ts";
import { kdf1 } from "../crypto/kdf.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import { concatBytes } from "../encoding.ts";

/** Length of the tag that ends every authenticated node ↔ node frame. */
export const PEER_TAG_LEN = 32;

/** Domain label of the node ↔ node frame keys (the KDF's chaining key is its hash). */
const PEER_AUTH_LABEL = new TextEncoder().encode("twofold dske node-to-node frames v2");

/** The two directional MAC keys of one node pair, as one side sees them. */
export interface PeerAuthKeys {
  /** Key for frames this node sends to the peer. */
  send: Uint8Array;
  /** Key for frames the peer sends to this node. */
  receive: Uint8Array;
}

/**
 * Derives the keys of the pair (self, peer) from our static private key and the peer's static public
 * key. Returns null when the Diffie-Hellman result is all zeros (a low-order peer key).
 */
export function derivePeerAuthKeys(
  selfPrivateKey: Uint8Array,
  selfPublicKey: Uint8Array,
  peerPublicKey: Uint8Array,
): PeerAuthKeys | null {
  const shared = dh(selfPrivateKey, peerPublicKey);
  if (!shared) return null;
  const chain = hash(PEER_AUTH_LABEL);
  try {
    return {
      send: kdf1(chain, concatBytes([shared, selfPublicKey, peerPublicKey])),
      receive: kdf1(chain, concatBytes([shared, peerPublicKey, selfPublicKey])),
    };
  } finally {
    shared.fill(0);
  }
}

/** The tag of a node ↔ node frame: HMAC-BLAKE2s(key, every frame byte before the tag). */
export function peerFrameTag(key: Uint8Array, authenticated: Uint8Array): Uint8Array {
  return hmac(key, authenticated);
}

/** Whether `tag` is the tag of `authenticated` under `key` (constant time). */
export function verifyPeerFrameTag(key: Uint8Array, authenticated: Uint8Array, tag: Uint8Array): boolean {
  return constantTimeEqual(peerFrameTag(key, authenticated), tag);
}
