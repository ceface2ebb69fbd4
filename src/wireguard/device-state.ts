/**
 * The state one device's parts share (UAPI mapping, handshake dispatch, timer tick) and the peer
 * lifecycle on it: the peers and their slots, our identity, the keypair slots and their rotation, the
 * transport socket, and what is published to the data plane through shared memory (keypairs,
 * endpoints, allowed IPs). Only the device and its parts use it; {@link Device} is the public face.
 * @module
 */
import { publicKey as derivePublicKey } from "../crypto/x25519.ts";
import type { DataplaneHandle } from "./dataplane/dataplane.ts";
import { MAX_PEERS, PeerTraffic, PeerWord } from "./dataplane/shared-state.ts";
import { toHex } from "../encoding.ts";
import { closeQuietly } from "../../ffi/libc.ts";
import { decodeSockaddr, encodeSockaddr } from "../../ffi/udp.ts";
import type { Logger } from "../log.ts";
import type { Suite } from "../noise/suite.ts";
import { AllowedIps } from "./allowedips.ts";
import { REKEY_TIMEOUT } from "./constants.ts";
import { KeypairSlots } from "./keypair-slots.ts";
import { type KeypairRing, RetiredKeypairs, rotateKeypairs, type RotationStep } from "./keypair-rotation.ts";
import type { StaticIdentity } from "./noise-protocol.ts";
import { type Endpoint, Peer } from "./peer.ts";
import type { PacketTransport } from "./transport.ts";

/** How long the old transport socket stays open after a rebind, so the decrypt worker moves off it. */
const OLD_SOCKET_LINGER_MS = 300;

/** Hooks that let a layer above (the aes0 PSK gate) govern PSKs. */
export interface PskPolicy {
  /** Called for a UAPI `preshared_key` write; return 0 to allow, a negative errno to refuse. */
  onUapiPsk(peerPublicKey: Uint8Array, psk: Uint8Array): number;
  /**
   * Would {@link onUapiPsk} accept this write? 0 or the negative errno it would return, without
   * applying anything (`created`: the same request creates the peer, through {@link onPeerCreated}).
   * Lets a `set` be refused before any of it is applied.
   */
  checkUapiPsk?(peerPublicKey: Uint8Array, psk: Uint8Array, created: boolean): number;
  /** Called when a peer is created, so the policy can install its initial PSK. */
  onPeerCreated(peerPublicKey: Uint8Array): Uint8Array | null;
}

/**
 * Why a handshake message was refused. Consumers match on this, never on the reason text:
 * - `initiation-unauthenticated`: an initiation that matched no peer or whose MACs/AEAD failed.
 * - `initiation-replayed`: an initiation whose timestamp is not newer than the last one consumed.
 * - `initiation-flood`: an initiation within HANDSHAKE_INITIATION_RATE of the last one consumed.
 * - `response-unauthenticated`: a response to our initiation that did not decrypt (the PSK differs, or
 *   it was corrupted): the only cause that says something about the PSK.
 */
export type HandshakeFailureCause =
  | "initiation-unauthenticated"
  | "initiation-replayed"
  | "initiation-flood"
  | "response-unauthenticated";

/**
 * Events the device reports (for status, logs and tests).
 * - `handshake-completed`: a session both sides derived: as initiator when the response is consumed, as
 *   responder only at key confirmation (the initiator's first authenticated packet under the new
 *   session), as WireGuard counts it. `pskIndex` is the PSK used (0 the one held when the keys were
 *   derived, i the i-th extra PSK); `derivedAt` when the keys were derived (clock ms).
 * - `handshake-failed`: a handshake message refused; `cause` says which check refused it (see
 *   {@link HandshakeFailureCause}), `reason` says it in words for logs.
 * - `response-unconfirmed`: a response we sent was never confirmed: superseded by a new initiation, or
 *   nothing arrived under its session within RESPONSE_CONFIRMATION_TIMEOUT (the initiator's PSK differs,
 *   or our responses do not reach it).
 */
export type DeviceEvent =
  | { type: "handshake-completed"; peer: string; initiator: boolean; pskIndex: number; derivedAt: number }
  | { type: "handshake-failed"; peer: string | null; cause: HandshakeFailureCause; reason: string }
  | { type: "response-unconfirmed"; peer: string; reason: string };

/** What the shared state is built from. */
export interface DeviceStateOptions {
  /** Cipher suite. */
  suite: Suite;
  /** Logger. */
  log: Logger;
  /** Clock (unix ms). */
  clock: () => number;
  /** The running data plane. */
  dataplane: DataplaneHandle;
  /** Where the socket comes from. */
  transport: PacketTransport;
  /** PSK policy hooks (aes0 gate). */
  pskPolicy?: PskPolicy;
  /** Event sink. */
  onEvent?: (e: DeviceEvent) => void;
}

/** One device's shared state and peer lifecycle. */
export class DeviceState {
  /** Cipher suite. */
  readonly suite: Suite;
  /** Logger. */
  readonly log: Logger;
  /** Clock (unix ms). */
  readonly clock: () => number;
  /** The data plane. */
  readonly dp: DataplaneHandle;
  /** Where the socket comes from. */
  readonly transport: PacketTransport;
  /** Keypair slots in shared memory. */
  readonly slots: KeypairSlots;
  /**
   * Keypairs out of the rotation that keep decrypting for REKEY_TIMEOUT before their slots are freed.
   * The rotation itself is wireguard-go's; the grace is ours: after crossing handshakes (both sides
   * initiating at once, which the aes0 gate and rekeys make routine) the peer may still be sending
   * under the keypair it had until our response reaches it, and freeing it at once would drop those
   * packets. Nothing changes on the wire.
   */
  readonly retired = new RetiredKeypairs(REKEY_TIMEOUT);
  /** Peers by public key hex. */
  readonly peers = new Map<string, Peer>();
  /** Peers by slot. */
  readonly byId: (Peer | undefined)[] = new Array(MAX_PEERS);
  /** PSK policy hooks, if any. */
  readonly pskPolicy?: PskPolicy;
  /** The control plane's routing table (published to the data plane by {@link publishAllowedIps}). */
  allowed = new AllowedIps();
  /** Our static keys, or null without a private key. */
  identity: StaticIdentity | null = null;
  /** The transport socket fd (-1 until bound). */
  udpFd = -1;
  /** The bound port (0 until bound). */
  listenPort = 0;
  /** UAPI fwmark (reported, not applied). */
  fwmark = 0;
  /** True once the device closed. */
  closed = false;
  readonly #onEvent?: (e: DeviceEvent) => void;
  readonly #addr = new Uint8Array(32);

  constructor(opts: DeviceStateOptions) {
    this.suite = opts.suite;
    this.log = opts.log;
    this.clock = opts.clock;
    this.dp = opts.dataplane;
    this.transport = opts.transport;
    this.pskPolicy = opts.pskPolicy;
    this.#onEvent = opts.onEvent;
    this.slots = new KeypairSlots(this.dp.shared, this.clock);
  }

  /** The peer with this public key. */
  peer(publicKey: Uint8Array): Peer | undefined {
    return this.peers.get(toHex(publicKey));
  }

  /** Opens the transport on `port` (0 = any) and hands it to the data plane; throws when busy. */
  bind(port: number): void {
    const sock = this.transport.open(port);
    const old = this.udpFd;
    this.udpFd = sock.fd;
    this.listenPort = sock.port;
    this.dp.setUdpFd(sock.fd, sock.port);
    // Let the decrypt worker move off the old socket before closing it.
    if (old >= 0) setTimeout(() => closeQuietly(old), OLD_SOCKET_LINGER_MS);
  }

  // ---------------------------------------------------------------- peer lifecycle

  /** Sets (or with all zeros clears) our private key; every peer's sessions end. */
  setPrivateKey(key: Uint8Array): void {
    const zero = key.every((b) => b === 0);
    this.identity?.privateKey.fill(0);
    this.identity = zero ? null : { privateKey: key.slice(), publicKey: derivePublicKey(key) };
    this.dp.shared.writeLocalPublic(this.identity?.publicKey ?? null);
    for (const p of [...this.peers.values()]) {
      if (this.identity && p.publicKeyHex === toHex(this.identity.publicKey)) {
        this.removePeer(p); // wireguard-go drops a peer whose key equals ours
        continue;
      }
      p.precompute(this.identity?.privateKey ?? null);
      this.expireKeypairs(p);
    }
  }

  /** Creates a peer in `id`, a free slot (the plan chose it): a fresh generation, nothing inherited. */
  createPeer(publicKey: Uint8Array, id: number): Peer {
    if (this.byId[id]) throw new Error(`peer slot ${id} is taken`);
    const peer = new Peer(id, publicKey, this.clock);
    peer.precompute(this.identity?.privateKey ?? null);
    const initial = this.pskPolicy?.onPeerCreated(publicKey);
    if (initial) peer.presharedKey.set(initial);
    this.peers.set(peer.publicKeyHex, peer);
    this.byId[id] = peer;
    const s = this.dp.shared;
    const counters = [
      PeerTraffic.txBytes,
      PeerTraffic.rxBytes,
      PeerTraffic.lastDataSent,
      PeerTraffic.lastDataReceived,
      PeerTraffic.lastAuthSent,
      PeerTraffic.lastAuthReceived,
    ];
    for (const f of counters) s.peerF64[s.pf(id, f)] = 0;
    s.peerSet(id, PeerWord.needHandshake, 0);
    s.peerSet(id, PeerWord.keepalivePending, 0);
    s.writeEndpoint(id, this.#addr, 0, 0);
    s.peerAdd(id, PeerWord.generation, 1);
    s.peerSet(id, PeerWord.active, 1);
    return peer;
  }

  /**
   * Removes a peer and clears its slot: keys wiped, endpoint and pending work dropped, and a new slot
   * generation, so the routes the data plane still holds for the slot stop working at once (they are
   * republished without it by the caller) and nothing of this peer reaches the next one in the slot.
   */
  removePeer(peer: Peer): void {
    const s = this.dp.shared;
    s.peerSet(peer.id, PeerWord.active, 0);
    s.peerAdd(peer.id, PeerWord.generation, 1);
    this.expireKeypairs(peer);
    this.dropHandshake(peer);
    s.writeEndpoint(peer.id, this.#addr, 0, 0);
    s.peerSet(peer.id, PeerWord.needHandshake, 0);
    s.peerSet(peer.id, PeerWord.keepalivePending, 0);
    peer.wipe();
    this.allowed.removePeer(peer.id);
    this.peers.delete(peer.publicKeyHex);
    this.byId[peer.id] = undefined;
  }

  /** Sets a peer's PSK (and the extra PSKs an initiator accepts); applies at the next handshake. */
  setPresharedKey(peer: Peer, psk: Uint8Array, extraPsks: Uint8Array[]): void {
    peer.presharedKey.set(psk);
    for (const k of peer.extraPsks) k.fill(0);
    peer.extraPsks = extraPsks.map((k) => k.slice());
  }

  // ---------------------------------------------------------------- keypairs

  /**
   * Moves a peer's keypairs one step ({@link rotateKeypairs}) and publishes them. Keypairs leaving the
   * rotation are retired (they decrypt a while longer); an `expired` step frees them and the peer's
   * retired ones at once. False when the step changed nothing (a confirmation that came too late).
   */
  rotate(peer: Peer, step: RotationStep): boolean {
    const ring: KeypairRing = { previous: peer.previous, current: peer.current, next: peer.next };
    const rotation = rotateKeypairs(ring, step);
    if (!rotation) return false;
    ({ previous: peer.previous, current: peer.current, next: peer.next } = rotation.ring);
    if (step.kind === "expired") {
      for (const slot of rotation.removed) this.slots.free(slot);
    } else {
      const now = this.clock();
      for (const slot of rotation.removed) this.retired.retire(peer.id, slot, now);
    }
    this.#publishKeypairs(peer);
    if (step.kind === "expired") { for (const slot of this.retired.takePeer(peer.id)) this.slots.free(slot); }
    return true;
  }

  /** Ends a peer's sessions: every keypair (retired ones too) is wiped and freed. */
  expireKeypairs(peer: Peer): void {
    this.rotate(peer, { kind: "expired" });
    peer.timers.responseAbandoned();
  }

  /** Frees the retired keypairs whose grace ended at `now`. */
  freeRetired(now: number): void {
    for (const slot of this.retired.takeDue(now)) this.slots.free(slot);
  }

  /** Forgets the handshake a peer has in flight and frees its reserved slot. */
  dropHandshake(peer: Peer): void {
    if (peer.handshake) this.slots.free(KeypairSlots.slotOf(peer.handshake.localIndex));
    peer.handshake = null;
  }

  #publishKeypairs(peer: Peer): void {
    const s = this.dp.shared;
    s.peerSet(peer.id, PeerWord.next, peer.next);
    s.peerSet(peer.id, PeerWord.previous, peer.previous);
    s.peerSet(peer.id, PeerWord.current, peer.current);
  }

  // ---------------------------------------------------------------- publishing

  /** Republishes the whole routing table to the data plane in one step. */
  publishAllowedIps(): void {
    const entries = [...this.peers.values()].flatMap((p) =>
      this.allowed.entriesFor(p.id).map((c) => ({ family: c.family, addr: c.addr, bits: c.bits, peer: p.id }))
    );
    this.dp.shared.writeAllowedIps(entries);
  }

  /** Sets a configured endpoint (UAPI). */
  setEndpoint(peer: Peer, ep: Endpoint): void {
    const len = encodeSockaddr(ep.ip, ep.port, this.#addr, 0, this.transport.v4Mapped);
    this.dp.shared.writeEndpoint(peer.id, this.#addr, 0, len);
    peer.endpoint = ep;
  }

  /** Roams a peer to the raw sockaddr an authenticated handshake message came from. */
  roam(peer: Peer, addr: Uint8Array): void {
    this.dp.shared.writeEndpoint(peer.id, addr, 0, addr.length);
    peer.endpoint = decodeSockaddr(addr, 0);
  }

  /** The endpoint the data plane sends to (configured or roamed), or null. */
  endpointOf(peer: Peer): Endpoint | null {
    const len = this.dp.shared.readEndpoint(peer.id, this.#addr, 0);
    return len ? decodeSockaddr(this.#addr, 0) : null;
  }

  /** Sends a handshake message to the peer's endpoint; false without endpoint or socket. */
  send(peer: Peer, msg: Uint8Array): boolean {
    const len = this.dp.shared.readEndpoint(peer.id, this.#addr, 0);
    if (!len || this.udpFd < 0) return false;
    return this.transport.send(this.udpFd, msg, this.#addr, len);
  }

  /** Asks the data plane to send a keepalive to the peer now. */
  sendKeepalive(peer: Peer): void {
    this.dp.shared.peerSet(peer.id, PeerWord.keepalivePending, 1);
    this.dp.wake();
  }

  /** A handshake completed or gave up: the workers may ask for the next one. */
  handshakeSatisfied(peer: Peer): void {
    peer.initiationDeferred = false;
    this.dp.shared.peerSet(peer.id, PeerWord.needHandshake, 0);
  }

  // ---------------------------------------------------------------- events

  /** Reports an event (a failed handshake is also logged at debug). */
  event(e: DeviceEvent): void {
    if (e.type === "handshake-failed") this.log.debug(`handshake failed: ${e.reason}`);
    this.#onEvent?.(e);
  }

  /** Counts and reports a refused handshake message of a known peer. */
  failed(peer: Peer, cause: HandshakeFailureCause, reason: string): void {
    peer.handshakeFailures++;
    this.event({ type: "handshake-failed", peer: peer.publicKeyHex, cause, reason });
  }
}
