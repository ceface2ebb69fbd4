/**
 * The Rosenpass hash tree: every derivation is a chain of keyed-hash calls starting from the zero key
 * and the PROTOCOL string, then a purpose label, then labels or values. The fixed label nodes are
 * computed once per profile; the functions here apply them to values.
 */
import { COOKIE_LEN, KEY_LEN, MAC_LEN } from "./constants.ts";
import { type Profile, PROFILE_V03 } from "./profile.ts";

const encoder = new TextEncoder();

/** The precomputed label nodes of one profile and the derivations built on them. */
export interface HashDomains {
  /** hash(key, a, b, …) = hash(hash(key, a), b, …). */
  chain(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
  /** lhash("chaining key init", spkr): the first chaining key of a handshake. */
  chainingKeyInit(spkr: Uint8Array): Uint8Array;
  /** lhash("peer id", spk). */
  peerId(spk: Uint8Array): Uint8Array;
  /** lhash("mac", spkt, wire)[0..16]: the envelope MAC to the holder of spkt. */
  mac(spkt: Uint8Array, wire: Uint8Array): Uint8Array;
  /** lhash("mac", spkt): the MAC key of one public key; hashing 524 KB, so callers cache it. */
  macKey(spkt: Uint8Array): Uint8Array;
  /** The envelope MAC under a cached `macKey`: one hash over the message only. */
  macWithKey(macKey: Uint8Array, wire: Uint8Array): Uint8Array;
  /** lhash("cookie", cookieValue, wire)[0..16]; always computed with the SHAKE256 tree (both profiles). */
  cookie(cookieValue: Uint8Array, wire: Uint8Array): Uint8Array;
  /** lhash("biscuit additional data", spkr, sidi, sidr). */
  biscuitAd(spkr: Uint8Array, sidi: Uint8Array, sidr: Uint8Array): Uint8Array;
  /** Label nodes below "chaining key extract". */
  readonly extract: {
    mix: Uint8Array;
    handshakeEncryption: Uint8Array;
    initiatorEncryption: Uint8Array;
    responderEncryption: Uint8Array;
    wireguardPsk: Uint8Array;
  };
}

const cache = new Map<string, HashDomains>();

/** The hash domains of a profile (computed on first use). */
export function hashDomains(profile: Profile): HashDomains {
  const hit = cache.get(profile.name);
  if (hit) return hit;
  const hash = profile.keyedHash;
  const chain = (key: Uint8Array, ...parts: Uint8Array[]) => parts.reduce((k, part) => hash(k, part), key);
  const label = (s: string) => encoder.encode(s);
  const protocol = hash(new Uint8Array(KEY_LEN), label(profile.protocolId));
  const below = (...labels: string[]) => chain(protocol, ...labels.map(label));
  const macNode = below("mac");
  const peerIdNode = below("peer id");
  const biscuitAdNode = below("biscuit additional data");
  const ckInitNode = below("chaining key init");
  const cookieNode = profile.name === PROFILE_V03.name ? below("cookie") : undefined;
  const domains: HashDomains = {
    chain,
    chainingKeyInit: (spkr) => hash(ckInitNode, spkr),
    peerId: (spk) => hash(peerIdNode, spk),
    mac: (spkt, wire) => chain(macNode, spkt, wire).slice(0, MAC_LEN),
    macKey: (spkt) => hash(macNode, spkt),
    macWithKey: (macKey, wire) => hash(macKey, wire).slice(0, MAC_LEN),
    cookie: (cookieValue, wire) =>
      cookieNode
        ? chain(cookieNode, cookieValue, wire).slice(0, COOKIE_LEN)
        : hashDomains(PROFILE_V03).cookie(cookieValue, wire),
    biscuitAd: (spkr, sidi, sidr) => chain(biscuitAdNode, spkr, sidi, sidr),
    extract: {
      mix: below("chaining key extract", "mix"),
      handshakeEncryption: below("chaining key extract", "handshake encryption"),
      initiatorEncryption: below("chaining key extract", "initiator handshake encryption"),
      responderEncryption: below("chaining key extract", "responder handshake encryption"),
      wireguardPsk: below("chaining key extract", "user", "rosenpass.eu", "wireguard psk"),
    },
  };
  cache.set(profile.name, domains);
  return domains;
}
