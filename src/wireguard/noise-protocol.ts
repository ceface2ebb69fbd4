/**
 * WireGuard's handshake messages (docs/design.md §2.3) on top of the generic Noise IKpsk2 core in
 * `src/noise/handshake-state.ts`: prologue = IDENTIFIER (folded into the suite's `Hi`), payload 1 =
 * TAI64N, payload 2 = empty, plus the WireGuard framing (type, indices, mac1/mac2 slots).
 *
 * Pure functions: ephemeral keys can be injected, nothing reads the clock. mac1/mac2 are left zero
 * here and written by `CookieGenerator.addMacs`. Timestamp replay checks and flood guards belong to
 * the device. Consume functions return null on any malformed or unauthenticated input, never throw,
 * and never modify the caller's objects when they fail.
 * @module
 */
import { dh, generatePrivateKey } from "../crypto/x25519.ts";
import {
  readInitiatorMessage,
  readResponderMessage,
  SymmetricState,
  writeInitiatorMessage,
  writeResponderMessage,
} from "../noise/handshake-state.ts";
import type { Suite } from "../noise/suite.ts";
import {
  InitiationOffsetEphemeral,
  InitiationOffsetMac1,
  InitiationOffsetSender,
  MessageInitiationSize,
  MessageInitiationType,
  MessageResponseSize,
  MessageResponseType,
  messageType,
  readU32LE,
  ResponseOffsetEphemeral,
  ResponseOffsetMac1,
  ResponseOffsetReceiver,
  ResponseOffsetSender,
  writeMessageHeader,
  writeU32LE,
} from "./messages.ts";
import { TAI64N_LEN } from "./tai64n.ts";

const EMPTY = new Uint8Array(0);

/** This device's static key pair. */
export interface StaticIdentity {
  /** X25519 private key. */
  privateKey: Uint8Array;
  /** X25519 public key. */
  publicKey: Uint8Array;
}

/** Per-peer handshake inputs. */
export interface PeerKeys {
  /** The peer's static public key. */
  remoteStatic: Uint8Array;
  /** The current pre-shared key (32 zero bytes when none is configured). */
  presharedKey: Uint8Array;
  /** Precomputed DH(S_local, S_remote); null when the peer key is low-order (no handshake possible). */
  staticStatic: Uint8Array | null;
}

/** What the initiator keeps between sending an initiation and consuming the response. */
export interface InitiatorState {
  /** Our sender index in the initiation. */
  localIndex: number;
  /** Chaining key after the initiation. */
  chainKey: Uint8Array;
  /** Handshake hash after the initiation. */
  hash: Uint8Array;
  /** Our ephemeral private key. */
  ephemeralPrivate: Uint8Array;
  /** The responder's static public key. */
  remoteStatic: Uint8Array;
}

/** An authenticated initiation, for the device to vet (timestamp, flood) before responding. */
export interface ConsumedInitiation {
  /** The initiator's static public key. */
  remoteStatic: Uint8Array;
  /** The initiator's sender index (our receiver index for it). */
  senderIndex: number;
  /** The decrypted TAI64N timestamp (12 bytes). */
  timestamp: Uint8Array;
  /** Chaining key after the initiation. */
  chainKey: Uint8Array;
  /** Handshake hash after the initiation. */
  hash: Uint8Array;
  /** The initiator's ephemeral public key. */
  remoteEphemeral: Uint8Array;
}

/** Transport keys of a completed handshake. */
export interface SessionKeys {
  /** Key for packets we send. */
  sendKey: Uint8Array;
  /** Key for packets we receive. */
  recvKey: Uint8Array;
  /** Our index (peers put it in the receiver field of packets to us). */
  localIndex: number;
  /** The peer's index (we put it in the receiver field of packets we send). */
  remoteIndex: number;
  /** True on the side that sent the initiation. */
  isInitiator: boolean;
}

/**
 * Builds a 148-byte initiation (mac1/mac2 zero) for `peer`. `timestamp` is the 12-byte TAI64N.
 * Throws when the peer's key is low-order (`staticStatic` null) or an argument is malformed; these
 * are configuration errors, not network input.
 */
export function createInitiation(
  suite: Suite,
  local: StaticIdentity,
  peer: PeerKeys,
  localIndex: number,
  timestamp: Uint8Array,
  ephemeralPrivate?: Uint8Array,
): { message: Uint8Array; state: InitiatorState } {
  if (!peer.staticStatic) throw new Error("peer public key is invalid (low-order)");
  if (timestamp.length !== TAI64N_LEN) throw new Error("timestamp must be 12 bytes");
  const ephemeral = ephemeralPrivate ? ephemeralPrivate.slice() : generatePrivateKey();
  const sym = SymmetricState.restore(suite.aead, suite.initialChainKey, suite.initialHash);
  sym.mixHash(peer.remoteStatic);
  const body = writeInitiatorMessage(sym, {
    ephemeralPrivate: ephemeral,
    staticPublic: local.publicKey,
    remoteStatic: peer.remoteStatic,
    staticStatic: peer.staticStatic,
  }, timestamp);
  if (!body) {
    sym.wipe();
    ephemeral.fill(0);
    throw new Error("peer public key is invalid (low-order)");
  }
  const message = new Uint8Array(MessageInitiationSize);
  writeMessageHeader(message, MessageInitiationType);
  writeU32LE(message, InitiationOffsetSender, localIndex);
  message.set(body, InitiationOffsetEphemeral);
  const state: InitiatorState = {
    localIndex: localIndex >>> 0,
    chainKey: sym.ck.slice(),
    hash: sym.h.slice(),
    ephemeralPrivate: ephemeral,
    remoteStatic: peer.remoteStatic.slice(),
  };
  sym.wipe();
  return { message, state };
}

/**
 * Authenticates an initiation addressed to `local`. `lookup` maps the decrypted initiator static
 * key to its PeerKeys (null: unknown peer). Returns null for any malformed, unknown or
 * unauthenticated message. mac1/mac2 are not checked here (see `CookieChecker`).
 */
export function consumeInitiation(
  suite: Suite,
  local: StaticIdentity,
  msg: Uint8Array,
  lookup: (remoteStatic: Uint8Array) => PeerKeys | null,
): ConsumedInitiation | null {
  let sym: SymmetricState | null = null;
  try {
    if (!(msg instanceof Uint8Array) || messageType(msg, msg.length) !== MessageInitiationType) return null;
    sym = SymmetricState.restore(suite.aead, suite.initialChainKey, suite.initialHash);
    sym.mixHash(local.publicKey);
    const contents = readInitiatorMessage(
      sym,
      local.privateKey,
      msg.subarray(InitiationOffsetEphemeral, InitiationOffsetMac1),
      (remoteStatic) => lookup(remoteStatic)?.staticStatic ?? null,
    );
    if (!contents || contents.payload.length !== TAI64N_LEN) return null;
    return {
      remoteStatic: contents.remoteStatic,
      senderIndex: readU32LE(msg, InitiationOffsetSender),
      timestamp: contents.payload,
      chainKey: sym.ck.slice(),
      hash: sym.h.slice(),
      remoteEphemeral: contents.remoteEphemeral,
    };
  } catch {
    return null;
  } finally {
    sym?.wipe();
  }
}

/**
 * Builds the 92-byte response (mac1/mac2 zero) to a vetted initiation and derives the session keys.
 * `init` is single-use: its chain key and hash are wiped afterwards. Throws only on malformed
 * arguments (a consumed initiation always yields a response).
 */
export function createResponse(
  suite: Suite,
  local: StaticIdentity,
  peer: PeerKeys,
  init: ConsumedInitiation,
  localIndex: number,
  ephemeralPrivate?: Uint8Array,
): { message: Uint8Array; keys: SessionKeys } {
  void local; // the responder's static key already entered the transcript while consuming
  const ephemeral = ephemeralPrivate ? ephemeralPrivate.slice() : generatePrivateKey();
  const sym = SymmetricState.restore(suite.aead, init.chainKey, init.hash);
  try {
    const body = writeResponderMessage(sym, {
      ephemeralPrivate: ephemeral,
      remoteEphemeral: init.remoteEphemeral,
      remoteStatic: init.remoteStatic,
      psk: peer.presharedKey,
    }, EMPTY);
    if (!body) throw new Error("handshake failed: low-order key");
    const message = new Uint8Array(MessageResponseSize);
    writeMessageHeader(message, MessageResponseType);
    writeU32LE(message, ResponseOffsetSender, localIndex);
    writeU32LE(message, ResponseOffsetReceiver, init.senderIndex);
    message.set(body, ResponseOffsetEphemeral);
    const [initiatorToResponder, responderToInitiator] = sym.split();
    init.chainKey.fill(0);
    init.hash.fill(0);
    return {
      message,
      keys: {
        sendKey: responderToInitiator,
        recvKey: initiatorToResponder,
        localIndex: localIndex >>> 0,
        remoteIndex: init.senderIndex,
        isInitiator: false,
      },
    };
  } finally {
    sym.wipe();
    ephemeral.fill(0);
  }
}

/**
 * Authenticates a response to our initiation `state` and derives the session keys. The response
 * is tried with `peer.presharedKey` and then with each of `extraPsks` (e.g. the previous PSK for a
 * short grace period after a rotation); `pskUsed` is 0 for the current PSK, i for `extraPsks[i-1]`.
 * Returns null for any malformed or unauthenticated message, leaving `state` untouched. On success
 * `state` is spent: its ephemeral key, chain key and hash are wiped.
 */
export function consumeResponse(
  suite: Suite,
  local: StaticIdentity,
  state: InitiatorState,
  peer: PeerKeys,
  msg: Uint8Array,
  extraPsks?: Uint8Array[],
): { keys: SessionKeys; pskUsed: number } | null {
  let sym: SymmetricState | null = null;
  try {
    if (!(msg instanceof Uint8Array) || messageType(msg, msg.length) !== MessageResponseType) return null;
    if (readU32LE(msg, ResponseOffsetReceiver) !== state.localIndex) return null;
    sym = SymmetricState.restore(suite.aead, state.chainKey, state.hash);
    const contents = readResponderMessage(
      sym,
      state.ephemeralPrivate,
      local.privateKey,
      msg.subarray(ResponseOffsetEphemeral, ResponseOffsetMac1),
      extraPsks ? [peer.presharedKey, ...extraPsks] : [peer.presharedKey],
    );
    if (!contents || contents.payload.length !== 0) return null;
    const [initiatorToResponder, responderToInitiator] = sym.split();
    state.ephemeralPrivate.fill(0);
    state.chainKey.fill(0);
    state.hash.fill(0);
    return {
      keys: {
        sendKey: initiatorToResponder,
        recvKey: responderToInitiator,
        localIndex: state.localIndex,
        remoteIndex: readU32LE(msg, ResponseOffsetSender),
        isInitiator: true,
      },
      pskUsed: contents.pskIndex,
    };
  } catch {
    return null;
  } finally {
    sym?.wipe();
  }
}

/** The receiver index of a response (our sender index from the initiation it answers). */
export function responseReceiverIndex(msg: Uint8Array): number {
  return readU32LE(msg, ResponseOffsetReceiver);
}

/** Computes `PeerKeys.staticStatic` = DH(S_local, S_remote), or null for a low-order peer key. */
export function precomputeStaticStatic(local: StaticIdentity, remoteStatic: Uint8Array): Uint8Array | null {
  return dh(local.privateKey, remoteStatic);
}
