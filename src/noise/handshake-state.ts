/**
 * The Noise IKpsk2 handshake core (Noise spec rev. 34, §5 and §9), parameterized by the AEAD.
 *
 * Pattern:
 * ```
 * IKpsk2:
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se, psk
 * ```
 * DH is X25519 and HASH is BLAKE2s-256 with its HMAC-based HKDF; only the AEAD (and the protocol
 * name that selects the initial chaining key) varies. WireGuard's handshake
 * (`src/wireguard/noise-protocol.ts`) is this same core with prologue = IDENTIFIER, a 12-byte
 * TAI64N payload in the first message and an empty payload in the second.
 *
 * The AEAD nonce for counter `n` is whatever the supplied {@link Aead} writes: WireGuard's
 * `0^4 ‖ LE64(n)`. Handshake messages always use `n = 0`, so they match the Noise spec for every
 * AEAD; transport messages with `n > 0` match Noise's AESGCM (big-endian nonce) only for ChaChaPoly.
 * @module
 */
import type { Aead } from "../crypto/aead.ts";
import { hash } from "../crypto/blake2s.ts";
import { kdf2, kdf3 } from "../crypto/kdf.ts";
import { dh, publicKey } from "../crypto/x25519.ts";

/** HASHLEN of BLAKE2s-256; also the size of chaining keys, cipher keys and X25519 keys. */
export const HASH_LEN = 32;
/** AEAD tag length (Poly1305 and GCM alike). */
export const AEAD_TAG_LEN = 16;

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

/**
 * The Noise `InitializeSymmetric(protocol_name)` value: the UTF-8 name zero-padded to 32 bytes when
 * it fits, else its BLAKE2s-256 hash. It is both the initial chaining key and the initial hash.
 */
export function protocolNameHash(protocolName: string): Uint8Array {
  const name = textEncoder.encode(protocolName);
  if (name.length <= HASH_LEN) {
    const padded = new Uint8Array(HASH_LEN);
    padded.set(name);
    return padded;
  }
  return hash(name);
}

/**
 * Noise's SymmetricState (chaining key `ck`, handshake hash `h`) fused with its CipherState
 * (`k`, `n`). Every operation replaces `ck`/`k` with fresh arrays and wipes the old ones, so a
 * state built with {@link SymmetricState.restore} never aliases or mutates the caller's bytes.
 */
export class SymmetricState {
  /** Chaining key. */
  ck: Uint8Array;
  /** Handshake hash (transcript). */
  h: Uint8Array;
  /** Current handshake cipher key, or null before the first MixKey. */
  k: Uint8Array | null = null;
  /** Nonce counter for `k`. */
  n = 0;
  /** The AEAD used by EncryptAndHash/DecryptAndHash. */
  readonly aead: Aead;

  private constructor(aead: Aead, ck: Uint8Array, h: Uint8Array) {
    this.aead = aead;
    this.ck = ck;
    this.h = h;
  }

  /** Noise `InitializeSymmetric(protocolName)` followed by `MixHash(prologue)`. */
  static initialize(aead: Aead, protocolName: string, prologue: Uint8Array): SymmetricState {
    const start = protocolNameHash(protocolName);
    const state = new SymmetricState(aead, start.slice(), start);
    state.mixHash(prologue);
    return state;
  }

  /** A state resumed from a saved chaining key and hash (both copied); `k` is empty. */
  static restore(aead: Aead, chainKey: Uint8Array, handshakeHash: Uint8Array): SymmetricState {
    return new SymmetricState(aead, chainKey.slice(), handshakeHash.slice());
  }

  /** An independent copy (used to try several PSKs without disturbing this state). */
  clone(): SymmetricState {
    const copy = new SymmetricState(this.aead, this.ck.slice(), this.h.slice());
    copy.k = this.k ? this.k.slice() : null;
    copy.n = this.n;
    return copy;
  }

  /** Takes over `other`'s values (wiping this state's own secrets first). */
  assign(other: SymmetricState): void {
    this.wipe();
    this.ck = other.ck.slice();
    this.h = other.h.slice();
    this.k = other.k ? other.k.slice() : null;
    this.n = other.n;
  }

  /** `h = HASH(h ‖ data)`. */
  mixHash(data: Uint8Array): void {
    this.h = hash(this.h, data);
  }

  /** `(ck, k) = HKDF(ck, ikm, 2)`; `n = 0`. */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, k] = kdf2(this.ck, inputKeyMaterial);
    this.ck.fill(0);
    this.k?.fill(0);
    this.ck = ck;
    this.k = k;
    this.n = 0;
  }

  /** `(ck, t, k) = HKDF(ck, ikm, 3)`; `MixHash(t)`; `n = 0` (the `psk` token). */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [ck, t, k] = kdf3(this.ck, inputKeyMaterial);
    this.ck.fill(0);
    this.k?.fill(0);
    this.ck = ck;
    this.mixHash(t);
    t.fill(0);
    this.k = k;
    this.n = 0;
  }

  /** Encrypts `plaintext` with ad = `h` (plaintext passes through while `k` is empty); then MixHash. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.k ? this.aead.seal(this.k, this.n++, plaintext, this.h) : plaintext.slice();
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** Inverse of {@link encryptAndHash}; null (state then unusable) when authentication fails. */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array | null {
    let plaintext: Uint8Array | null;
    if (this.k) {
      if (ciphertext.length < AEAD_TAG_LEN) return null;
      plaintext = this.aead.open(this.k, this.n, ciphertext, this.h);
      if (!plaintext) return null;
      this.n++;
    } else {
      plaintext = ciphertext.slice();
    }
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** `(k1, k2) = HKDF(ck, ε, 2)`: k1 protects initiator→responder, k2 responder→initiator. */
  split(): [Uint8Array, Uint8Array] {
    return kdf2(this.ck, EMPTY);
  }

  /** Zeroes `ck`, `h` and `k`. */
  wipe(): void {
    this.ck.fill(0);
    this.h.fill(0);
    this.k?.fill(0);
    this.k = null;
    this.n = 0;
  }
}

/** A transport CipherState after Split: key plus a per-message counter. */
export class CipherState {
  /** The AEAD. */
  readonly aead: Aead;
  /** Transport key. */
  readonly key: Uint8Array;
  /** Next nonce counter. */
  n = 0;

  /** Wraps `key` (copied). */
  constructor(aead: Aead, key: Uint8Array) {
    this.aead = aead;
    this.key = key.slice();
  }

  /** Seals the next message. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return this.aead.seal(this.key, this.n++, plaintext, ad);
  }

  /** Opens the next message; null on failure (the counter then does not advance). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    const plaintext = this.aead.open(this.key, this.n, ciphertext, ad);
    if (plaintext) this.n++;
    return plaintext;
  }

  /** Zeroes the key. */
  wipe(): void {
    this.key.fill(0);
  }
}

/** Length of the first IKpsk2 message for a payload of `payloadLen` bytes: e ‖ enc(s) ‖ enc(payload). */
export function initiatorMessageLength(payloadLen: number): number {
  return HASH_LEN + HASH_LEN + AEAD_TAG_LEN + payloadLen + AEAD_TAG_LEN;
}

/** Length of the second IKpsk2 message for a payload of `payloadLen` bytes: e ‖ enc(payload). */
export function responderMessageLength(payloadLen: number): number {
  return HASH_LEN + payloadLen + AEAD_TAG_LEN;
}

/** Inputs of the initiator's `-> e, es, s, ss` message. */
export interface InitiatorWriteKeys {
  /** Initiator ephemeral private key. */
  ephemeralPrivate: Uint8Array;
  /** Initiator static public key (sent encrypted). */
  staticPublic: Uint8Array;
  /** Responder static public key. */
  remoteStatic: Uint8Array;
  /** DH(s, rs): computed by the caller so that it can be precomputed (WireGuard does). */
  staticStatic: Uint8Array;
}

/**
 * Writes `-> e, es, s, ss` plus the encrypted payload into a new array, advancing `sym`.
 * `sym` must already hold the prologue and the `<- s` pre-message. Returns null when a DH result is
 * all zeros (low-order key).
 */
export function writeInitiatorMessage(
  sym: SymmetricState,
  keys: InitiatorWriteKeys,
  payload: Uint8Array,
): Uint8Array | null {
  const ephemeralPublic = publicKey(keys.ephemeralPrivate);
  // e (psk handshakes also MixKey the ephemeral)
  sym.mixHash(ephemeralPublic);
  sym.mixKey(ephemeralPublic);
  // es
  const es = dh(keys.ephemeralPrivate, keys.remoteStatic);
  if (!es) return null;
  sym.mixKey(es);
  es.fill(0);
  // s
  const encryptedStatic = sym.encryptAndHash(keys.staticPublic);
  // ss
  sym.mixKey(keys.staticStatic);
  const encryptedPayload = sym.encryptAndHash(payload);
  const out = new Uint8Array(initiatorMessageLength(payload.length));
  out.set(ephemeralPublic, 0);
  out.set(encryptedStatic, HASH_LEN);
  out.set(encryptedPayload, HASH_LEN + encryptedStatic.length);
  return out;
}

/** What the responder learns from the first message. */
export interface InitiatorMessageContents {
  /** Initiator ephemeral public key. */
  remoteEphemeral: Uint8Array;
  /** Initiator static public key (decrypted). */
  remoteStatic: Uint8Array;
  /** Decrypted payload. */
  payload: Uint8Array;
}

/**
 * Reads `-> e, es, s, ss` plus payload, advancing `sym`. `staticStaticFor(rs)` supplies DH(s, rs)
 * for the decrypted initiator key (or null to reject it: unknown peer or low-order key). Returns
 * null on any failure; `sym` is then garbage, so callers pass a state they can discard.
 */
export function readInitiatorMessage(
  sym: SymmetricState,
  staticPrivate: Uint8Array,
  message: Uint8Array,
  staticStaticFor: (remoteStatic: Uint8Array) => Uint8Array | null,
): InitiatorMessageContents | null {
  if (message.length < initiatorMessageLength(0)) return null;
  const remoteEphemeral = message.slice(0, HASH_LEN);
  sym.mixHash(remoteEphemeral);
  sym.mixKey(remoteEphemeral);
  const es = dh(staticPrivate, remoteEphemeral);
  if (!es) return null;
  sym.mixKey(es);
  es.fill(0);
  const staticEnd = HASH_LEN + HASH_LEN + AEAD_TAG_LEN;
  const remoteStatic = sym.decryptAndHash(message.subarray(HASH_LEN, staticEnd));
  if (!remoteStatic) return null;
  const staticStatic = staticStaticFor(remoteStatic);
  if (!staticStatic) return null;
  sym.mixKey(staticStatic);
  const payload = sym.decryptAndHash(message.subarray(staticEnd));
  if (!payload) return null;
  return { remoteEphemeral, remoteStatic, payload };
}

/** Inputs of the responder's `<- e, ee, se, psk` message. */
export interface ResponderWriteKeys {
  /** Responder ephemeral private key. */
  ephemeralPrivate: Uint8Array;
  /** Initiator ephemeral public key (from the first message). */
  remoteEphemeral: Uint8Array;
  /** Initiator static public key (from the first message). */
  remoteStatic: Uint8Array;
  /** Pre-shared key (32 bytes). */
  psk: Uint8Array;
}

/** Writes `<- e, ee, se, psk` plus the encrypted payload, advancing `sym`; null on a zero DH. */
export function writeResponderMessage(
  sym: SymmetricState,
  keys: ResponderWriteKeys,
  payload: Uint8Array,
): Uint8Array | null {
  const ephemeralPublic = publicKey(keys.ephemeralPrivate);
  sym.mixHash(ephemeralPublic);
  sym.mixKey(ephemeralPublic);
  const ee = dh(keys.ephemeralPrivate, keys.remoteEphemeral);
  if (!ee) return null;
  sym.mixKey(ee);
  ee.fill(0);
  const se = dh(keys.ephemeralPrivate, keys.remoteStatic);
  if (!se) return null;
  sym.mixKey(se);
  se.fill(0);
  sym.mixKeyAndHash(keys.psk);
  const encryptedPayload = sym.encryptAndHash(payload);
  const out = new Uint8Array(responderMessageLength(payload.length));
  out.set(ephemeralPublic, 0);
  out.set(encryptedPayload, HASH_LEN);
  return out;
}

/** What the initiator learns from the second message. */
export interface ResponderMessageContents {
  /** Responder ephemeral public key. */
  remoteEphemeral: Uint8Array;
  /** Decrypted payload. */
  payload: Uint8Array;
  /** Index into the candidate PSK list of the PSK that authenticated the message. */
  pskIndex: number;
}

/**
 * Reads `<- e, ee, se, psk` plus payload, advancing `sym`. Each candidate PSK is tried in order on
 * a copy of the state (the DHs are computed once); the first that authenticates wins and its state
 * is assigned to `sym`. Returns null on any failure (`sym` is then garbage).
 */
export function readResponderMessage(
  sym: SymmetricState,
  ephemeralPrivate: Uint8Array,
  staticPrivate: Uint8Array,
  message: Uint8Array,
  candidatePsks: readonly Uint8Array[],
): ResponderMessageContents | null {
  if (message.length < responderMessageLength(0)) return null;
  const remoteEphemeral = message.slice(0, HASH_LEN);
  sym.mixHash(remoteEphemeral);
  sym.mixKey(remoteEphemeral);
  const ee = dh(ephemeralPrivate, remoteEphemeral);
  if (!ee) return null;
  sym.mixKey(ee);
  ee.fill(0);
  const se = dh(staticPrivate, remoteEphemeral);
  if (!se) return null;
  sym.mixKey(se);
  se.fill(0);
  const encryptedPayload = message.subarray(HASH_LEN);
  for (let i = 0; i < candidatePsks.length; i++) {
    const psk = candidatePsks[i];
    if (!(psk instanceof Uint8Array) || psk.length !== HASH_LEN) continue;
    const trial = sym.clone();
    trial.mixKeyAndHash(psk);
    const payload = trial.decryptAndHash(encryptedPayload);
    if (payload) {
      sym.assign(trial);
      trial.wipe();
      return { remoteEphemeral, payload, pskIndex: i };
    }
    trial.wipe();
  }
  return null;
}

/** Configuration of a generic {@link IKpsk2Handshake}. */
export interface IKpsk2Options {
  /** The AEAD of the cipher suite. */
  aead: Aead;
  /** Full Noise protocol name, e.g. `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`. */
  protocolName: string;
  /** True for the initiator. */
  initiator: boolean;
  /** Prologue (both sides must agree). */
  prologue: Uint8Array;
  /** Local static private key. */
  staticPrivate: Uint8Array;
  /** Responder static public key; required for the initiator (IK pre-message), ignored otherwise. */
  remoteStatic?: Uint8Array;
  /** The pre-shared key (32 bytes). */
  psk: Uint8Array;
  /** Fixed ephemeral private key (test vectors); random when absent. */
  ephemeralPrivate?: Uint8Array;
  /** Source of ephemeral keys when none is fixed. */
  generateEphemeral?: () => Uint8Array;
}

/**
 * A complete Noise IKpsk2 HandshakeState for arbitrary prologue, keys, PSK and payloads
 * (`writeMessage`/`readMessage` alternate initiator, responder). Used to reproduce published test
 * vectors; WireGuard uses the same message functions directly.
 */
export class IKpsk2Handshake {
  readonly #options: IKpsk2Options;
  readonly #sym: SymmetricState;
  readonly #staticPublic: Uint8Array;
  #remoteStatic: Uint8Array | null;
  #remoteEphemeral: Uint8Array | null = null;
  #ephemeralPrivate: Uint8Array | null = null;
  #messageIndex = 0;

  /** Initializes the state and processes the `<- s` pre-message. */
  constructor(options: IKpsk2Options) {
    this.#options = options;
    this.#staticPublic = publicKey(options.staticPrivate);
    this.#sym = SymmetricState.initialize(options.aead, options.protocolName, options.prologue);
    if (options.initiator) {
      if (!options.remoteStatic) throw new Error("IKpsk2 initiator needs the responder's static key");
      this.#remoteStatic = options.remoteStatic.slice();
      this.#sym.mixHash(this.#remoteStatic);
    } else {
      this.#remoteStatic = null;
      this.#sym.mixHash(this.#staticPublic);
    }
  }

  /** True after both handshake messages. */
  get complete(): boolean {
    return this.#messageIndex >= 2;
  }

  /** The handshake hash `h` (channel binding value once complete). */
  get handshakeHash(): Uint8Array {
    return this.#sym.h.slice();
  }

  /** The peer's static public key once known. */
  get remoteStatic(): Uint8Array | null {
    return this.#remoteStatic ? this.#remoteStatic.slice() : null;
  }

  #ephemeral(): Uint8Array {
    const fixed = this.#options.ephemeralPrivate;
    if (fixed) return fixed.slice();
    if (!this.#options.generateEphemeral) throw new Error("no ephemeral key source");
    return this.#options.generateEphemeral();
  }

  /** Writes the next handshake message (throws when it is not this side's turn or a DH fails). */
  writeMessage(payload: Uint8Array): Uint8Array {
    const initiatorTurn = this.#messageIndex === 0;
    const responderTurn = this.#messageIndex === 1;
    if (this.#options.initiator ? !initiatorTurn : !responderTurn) throw new Error("not our turn to write");
    this.#ephemeralPrivate = this.#ephemeral();
    let out: Uint8Array | null;
    if (this.#options.initiator) {
      const staticStatic = dh(this.#options.staticPrivate, this.#remoteStatic!);
      if (!staticStatic) throw new Error("low-order remote static key");
      out = writeInitiatorMessage(this.#sym, {
        ephemeralPrivate: this.#ephemeralPrivate,
        staticPublic: this.#staticPublic,
        remoteStatic: this.#remoteStatic!,
        staticStatic,
      }, payload);
      staticStatic.fill(0);
    } else {
      out = writeResponderMessage(this.#sym, {
        ephemeralPrivate: this.#ephemeralPrivate,
        remoteEphemeral: this.#remoteEphemeral!,
        remoteStatic: this.#remoteStatic!,
        psk: this.#options.psk,
      }, payload);
    }
    if (!out) throw new Error("DH produced the all-zero value");
    this.#messageIndex++;
    return out;
  }

  /**
   * Reads the next handshake message; returns the payload or null on failure. A failed read leaves
   * this object unusable (as in the Noise spec, a failed handshake is abandoned).
   */
  readMessage(message: Uint8Array): Uint8Array | null {
    const expected = this.#options.initiator ? 1 : 0;
    if (this.#messageIndex !== expected) return null;
    if (this.#options.initiator) {
      const result = readResponderMessage(
        this.#sym,
        this.#ephemeralPrivate!,
        this.#options.staticPrivate,
        message,
        [this.#options.psk],
      );
      if (!result) {
        this.#messageIndex = -1;
        return null;
      }
      this.#remoteEphemeral = result.remoteEphemeral;
      this.#messageIndex++;
      return result.payload;
    }
    const result = readInitiatorMessage(
      this.#sym,
      this.#options.staticPrivate,
      message,
      (rs) => dh(this.#options.staticPrivate, rs),
    );
    if (!result) {
      this.#messageIndex = -1;
      return null;
    }
    this.#remoteEphemeral = result.remoteEphemeral;
    this.#remoteStatic = result.remoteStatic;
    this.#messageIndex++;
    return result.payload;
  }

  /** After both messages: this side's transport CipherStates `{ send, receive }`. */
  split(): { send: CipherState; receive: CipherState } {
    if (!this.complete) throw new Error("handshake not complete");
    const [k1, k2] = this.#sym.split();
    const initiatorToResponder = new CipherState(this.#options.aead, k1);
    const responderToInitiator = new CipherState(this.#options.aead, k2);
    k1.fill(0);
    k2.fill(0);
    this.#ephemeralPrivate?.fill(0);
    return this.#options.initiator
      ? { send: initiatorToResponder, receive: responderToInitiator }
      : { send: responderToInitiator, receive: initiatorToResponder };
  }
}
