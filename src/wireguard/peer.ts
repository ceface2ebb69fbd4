/**
 * A peer as the control plane keeps it: identity, PSK, handshake in flight, keypair pointers,
 * cookie state, timers and replay guards. Per-packet counters live in shared memory.
 * @module
 */
import { dh } from "../crypto/x25519.ts";
import { CookieGenerator } from "./cookie.ts";
import type { InitiatorState, PeerKeys } from "./noise-protocol.ts";
import { PeerTimers } from "./timers.ts";

/** A configured endpoint. */
export interface Endpoint {
  /** IP address literal (IPv4 or IPv6). */
  ip: string;
  /** UDP port. */
  port: number;
}

/** A handshake we initiated and are waiting on. */
export interface PendingHandshake {
  /** Noise state after our initiation. */
  state: InitiatorState;
  /** Local index (also names the reserved keypair slot). */
  localIndex: number;
  /** When it was sent (ms). */
  sentAt: number;
}

/** Control-plane state of one peer. */
export class Peer {
  /** Slot number in shared memory. */
  readonly id: number;
  /** The peer's static public key. */
  readonly publicKey: Uint8Array;
  /** Hex of the public key (map key; public, safe to log). */
  readonly publicKeyHex: string;
  /** Current preshared key (32 zero bytes = none). */
  presharedKey = new Uint8Array(32);
  /** PSKs an initiator also accepts in a response for a short while (aes0 rotation grace). */
  extraPsks: Uint8Array[] = [];
  /** DH(S_local, S_peer), or null when low-order / no local key. */
  staticStatic: Uint8Array | null = null;
  /** Configured or roamed endpoint (authoritative copy is in shared memory). */
  endpoint: Endpoint | null = null;
  /** Persistent keepalive interval in seconds (0 = off). */
  persistentKeepalive = 0;
  /** Handshake we initiated, if any. */
  handshake: PendingHandshake | null = null;
  /** Last accepted initiation timestamp (TAI64N) — replay guard. */
  lastTimestamp: Uint8Array | null = null;
  /** When we last accepted an initiation (ms) — flood guard. */
  lastInitiationConsumed = -Infinity;
  /** When we last sent an initiation (ms). */
  lastSentHandshake = -Infinity;
  /** The data plane asked for a handshake inside the REKEY_TIMEOUT rate limit: send it when allowed. */
  initiationDeferred = false;
  /** Unix ms of the last completed handshake (0 = never). */
  lastHandshakeMs = 0;
  /** Keypair slots (mirrored to shared memory). */
  current = -1;
  /** Previous keypair slot. */
  previous = -1;
  /** Next (unconfirmed responder) keypair slot. */
  next = -1;
  /** Cookie state for messages we send to this peer. */
  readonly cookies: CookieGenerator;
  /** Protocol timers. */
  readonly timers: PeerTimers;
  /** Last shared-memory timestamps fed into the timers. */
  readonly seen = { dataSent: 0, dataReceived: 0, authSent: 0, authReceived: 0 };
  /** Handshakes completed, by us as initiator or responder. */
  handshakes = 0;
  /** Handshake attempts that failed authentication or were refused. */
  handshakeFailures = 0;

  constructor(id: number, publicKey: Uint8Array, clock: () => number) {
    this.id = id;
    this.publicKey = publicKey.slice();
    this.publicKeyHex = Array.from(publicKey, (b) => b.toString(16).padStart(2, "0")).join("");
    this.cookies = new CookieGenerator(this.publicKey, clock);
    this.timers = new PeerTimers({ persistentKeepaliveMs: 0 });
  }

  /** Recomputes the static-static DH for a (new) local private key. */
  precompute(localPrivate: Uint8Array | null): void {
    this.staticStatic?.fill(0);
    this.staticStatic = localPrivate ? dh(localPrivate, this.publicKey) : null;
  }

  /** The keys the Noise layer needs for this peer. */
  keys(): PeerKeys {
    return { remoteStatic: this.publicKey, presharedKey: this.presharedKey, staticStatic: this.staticStatic };
  }

  /** Wipes secrets held here. */
  wipe(): void {
    this.presharedKey.fill(0);
    this.staticStatic?.fill(0);
    for (const k of this.extraPsks) k.fill(0);
    this.extraPsks = [];
    this.handshake?.state.ephemeralPrivate.fill(0);
    this.handshake = null;
  }
}
