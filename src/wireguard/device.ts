/**
 * A WireGuard device: the control plane of one interface (wg0 or aes0). It owns the peers, runs the
 * handshakes (Noise IKpsk2 of its suite) on the messages the decrypt worker admitted (mac1, and under
 * load mac2, cookie replies and rate limits happen there: admission.ts), the timers and key rotation,
 * publishes keys, endpoints and allowed IPs to the data-plane workers through shared memory, and
 * implements the UAPI get/set so the stock `wg` tool manages it.
 *
 * The suite is a parameter: wg0 and aes0 are this same class.
 * @module
 */
import { publicKey as derivePublicKey } from "../crypto/x25519.ts";
import type { Suite } from "../noise/suite.ts";
import { Dataplane } from "../dataplane/dataplane.ts";
import { MAX_ALLOWED_IPS, MAX_PEERS, P, PF } from "../dataplane/shared-state.ts";
import { toHex } from "../encoding.ts";
import { closeQuietly, SysError } from "../../ffi/libc.ts";
import { decodeSockaddr, encodeSockaddr, openUdp, sendTo } from "../../ffi/udp.ts";
import type { Logger } from "../log.ts";
import type { UapiDevice, UapiDeviceSnapshot, UapiSetRequest } from "../uapi/types.ts";
import { UapiErrno } from "../uapi/protocol.ts";
import { AllowedIps, formatCidr } from "./allowedips.ts";
import { KeypairSlots } from "./keypair-slots.ts";
import { planSet, type SetPlan } from "./set-plan.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type StaticIdentity,
} from "./noise-protocol.ts";
import { type Endpoint, Peer } from "./peer.ts";
import { tai64n, tai64nAfter } from "./tai64n.ts";
import {
  HANDSHAKE_INITIATION_RATE,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  RESPONSE_CONFIRMATION_TIMEOUT,
} from "./constants.ts";

const EADDRINUSE = UapiErrno.PORT_IN_USE;
const EIO = UapiErrno.IO;

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
 * Events the device reports (for status, logs and tests).
 * - `handshake-completed`: a session both sides derived: as initiator when the response is consumed, as
 *   responder only at key confirmation (the initiator's first authenticated packet under the new
 *   session), as WireGuard counts it. `pskIndex` is the PSK used (0 the one held when the keys were
 *   derived, i the i-th extra PSK); `derivedAt` when the keys were derived (clock ms).
 * - `handshake-failed`: a handshake message refused.
 * - `response-unconfirmed`: a response we sent was never confirmed: superseded by a new initiation, or
 *   nothing arrived under its session within RESPONSE_CONFIRMATION_TIMEOUT (the initiator's PSK differs,
 *   or our responses do not reach it).
 */
export type DeviceEvent =
  | { type: "handshake-completed"; peer: string; initiator: boolean; pskIndex: number; derivedAt: number }
  | { type: "handshake-failed"; peer: string | null; reason: string }
  | { type: "response-unconfirmed"; peer: string; reason: string };

/** Options for a device. */
export interface DeviceOptions {
  /** Interface name (also the UAPI socket name). */
  ifname: string;
  /** Cipher suite. */
  suite: Suite;
  /** An open TUN fd for the interface. */
  tunFd: number;
  /** Logger. */
  log: Logger;
  /** Address the UDP socket binds to (default: all, dual-stack). */
  bindAddress?: string;
  /**
   * Interface the UDP socket is tied to (SO_BINDTODEVICE): only datagrams that arrived through it are
   * received. aes0 ties its socket to wg0, so nothing reaches it from the underlay.
   */
  bindDevice?: string;
  /** Clock (unix ms); injectable for tests. */
  clock?: () => number;
  /** PSK policy hooks (aes0 gate). */
  pskPolicy?: PskPolicy;
  /** Event sink. */
  onEvent?: (e: DeviceEvent) => void;
  /**
   * Rekey an initiator's session after this many ms (1 000..120 000; default WireGuard's 120 000).
   * aes0 uses its key rotation interval so that each rotated PSK is in use within one interval.
   */
  rekeyAfterTimeMs?: number;
  /** Called once when the device shuts itself down (interface deleted, fatal worker error). */
  onFatal?: (reason: string) => void;
}

/** One WireGuard interface's control plane. */
export class Device implements UapiDevice {
  /** Interface name. */
  readonly ifname: string;
  /** Cipher suite of this device. */
  readonly suite: Suite;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #dp: Dataplane;
  readonly #slots: KeypairSlots;
  #allowed = new AllowedIps();
  readonly #peers = new Map<string, Peer>();
  readonly #byId: (Peer | undefined)[] = new Array(MAX_PEERS);
  #identity: StaticIdentity | null = null;
  #udpFd = -1;
  #listenPort = 0;
  #fwmark = 0;
  #bindAddress?: string;
  #tick: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #opts: DeviceOptions;
  #sendAddr = new Uint8Array(32);
  /** Keypairs out of rotation that may still decrypt until `until` (see #retire). */
  #retired: { slot: number; peer: number; until: number }[] = [];

  constructor(opts: DeviceOptions) {
    this.#opts = opts;
    this.ifname = opts.ifname;
    this.suite = opts.suite;
    this.#log = opts.log;
    this.#clock = opts.clock ?? Date.now;
    this.#bindAddress = opts.bindAddress;
    const rekeyAfterMs = opts.rekeyAfterTimeMs ?? REKEY_AFTER_TIME;
    if (!Number.isInteger(rekeyAfterMs) || rekeyAfterMs < 1_000 || rekeyAfterMs > REKEY_AFTER_TIME) {
      throw new RangeError(`rekeyAfterTimeMs must be an integer from 1000 to ${REKEY_AFTER_TIME}`);
    }
    this.#dp = new Dataplane(opts.tunFd, opts.suite.aead.name, {
      onHandshakeNeeded: (id) => this.#onHandshakeNeeded(id),
      onHandshakeMessage: (data, addr) => this.#onHandshakeMessage(data, addr),
      onConfirmed: (id, slot) => this.#onConfirmed(id, slot),
      onTunClosed: () => this.#fatal(`interface ${this.ifname} was removed`),
      onWorkerError: (m) => this.#fatal(`data-plane worker failed: ${m}`),
    }, rekeyAfterMs);
    this.#slots = new KeypairSlots(this.#dp.shared, this.#clock);
    this.#tick = setInterval(() => this.#onTick(), 100);
  }

  /** Shared data-plane state (counters, for status and tests). */
  get shared() {
    return this.#dp.shared;
  }

  /** The bound UDP port (0 until bound). */
  get listenPort(): number {
    return this.#listenPort;
  }

  /** Our public key, or null without a private key. */
  get publicKey(): Uint8Array | null {
    return this.#identity?.publicKey ?? null;
  }

  /** Publishes the TUN MTU (for padding). */
  setMtu(mtu: number): void {
    this.#dp.setMtu(mtu);
  }

  /** Binds the UDP socket to `port` (0 = any); throws SysError (EADDRINUSE) when busy. */
  bind(port: number): void {
    const sock = openUdp(port, {
      family: this.#bindAddress ? (this.#bindAddress.includes(":") ? 6 : 4) : "dual",
      bindAddress: this.#bindAddress,
      bindDevice: this.#opts.bindDevice,
      rcvbuf: 4 << 20,
      sndbuf: 4 << 20,
      nonBlocking: true,
    });
    const old = this.#udpFd;
    this.#udpFd = sock.fd;
    this.#listenPort = sock.port;
    this.#dp.setUdpFd(sock.fd);
    // Let the decrypt worker move off the old socket before closing it.
    if (old >= 0) setTimeout(() => closeQuietly(old), 300);
  }

  // ---------------------------------------------------------------- UAPI

  /** Current configuration and counters, as `wg show` reports them. */
  snapshot(): UapiDeviceSnapshot {
    const s = this.#dp.shared;
    const peers = [...this.#peers.values()].map((p) => {
      const ep = this.#endpointOf(p);
      return {
        publicKey: p.publicKey,
        presharedKey: p.presharedKey,
        endpoint: ep ? (ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`) : null,
        lastHandshakeMs: p.lastHandshakeMs,
        txBytes: s.peerF64[s.pf(p.id, PF.txBytes)],
        rxBytes: s.peerF64[s.pf(p.id, PF.rxBytes)],
        persistentKeepalive: p.persistentKeepalive,
        allowedIps: this.#allowed.entriesFor(p.id).map(formatCidr),
      };
    });
    return {
      privateKey: this.#identity?.privateKey ?? null,
      listenPort: this.#listenPort,
      fwmark: this.#fwmark,
      peers,
    };
  }

  /**
   * Applies a parsed UAPI set request all or nothing; returns 0 or a negative errno. The request is
   * planned first against a copy of the peers and routes (capacity: {@link MAX_PEERS} peers and
   * {@link MAX_ALLOWED_IPS} allowed IPs; PSK policy; endpoints), then the UDP port is bound, and only
   * then is anything changed, by steps that cannot fail. The data plane's routes are republished from
   * the control plane's table in one step at the end, so the two never disagree; a refusal is logged
   * and leaves both as they were.
   */
  apply(req: UapiSetRequest): number {
    const plan = planSet(
      {
        peers: new Map([...this.#peers.values()].map((p) => [p.publicKeyHex, p.id])),
        allowed: this.#allowed,
        ownPublicKey: this.#identity?.publicKey ?? null,
      },
      req,
      { maxPeers: MAX_PEERS, maxAllowedIps: MAX_ALLOWED_IPS },
      {
        psk: this.#opts.pskPolicy?.checkUapiPsk?.bind(this.#opts.pskPolicy),
        endpoint: (ep) => this.#endpointProblem(ep),
      },
    );
    if (!plan.ok) {
      this.#log.warn(`UAPI set refused (errno ${-plan.errno}): ${plan.reason}`);
      return plan.errno;
    }
    if (req.listenPort !== undefined && (req.listenPort !== this.#listenPort || this.#udpFd < 0)) {
      try {
        this.bind(req.listenPort);
      } catch (e) {
        this.#log.warn(
          `cannot bind UDP port ${req.listenPort}: ${(e as Error).message}; nothing was changed`,
        );
        return e instanceof SysError && e.errno === 98 ? EADDRINUSE : EIO;
      }
    }
    try {
      this.#commit(req, plan);
    } finally {
      // Even if a step threw (a bug), the data plane routes exactly what the control plane holds.
      this.#publishAllowedIps();
    }
    return 0;
  }

  /** Applies a planned request; nothing here may fail (the plan checked it all). */
  #commit(req: UapiSetRequest, plan: SetPlan): void {
    if (req.fwmark !== undefined) this.#fwmark = req.fwmark;
    if (req.privateKey !== undefined) this.#setPrivateKey(req.privateKey);
    if (req.replacePeers) { for (const p of [...this.#peers.values()]) this.#removePeer(p); }
    for (let i = 0; i < req.peers.length; i++) {
      const change = req.peers[i];
      const hex = toHex(change.publicKey);
      let peer = this.#peers.get(hex);
      if (change.remove) {
        if (peer) this.#removePeer(peer);
        continue;
      }
      if (this.#identity && hex === toHex(this.#identity.publicKey)) continue; // our own key: ignored
      const slot = plan.createdSlots[i];
      if (!peer) {
        if (slot === undefined) continue; // update_only
        peer = this.#createPeer(change.publicKey, slot);
      }
      if (change.presharedKey) {
        // With a PSK policy (the aes0 gate), the policy applies the key itself (keeping its rotation
        // grace); without one, the write is applied here as in wireguard-go.
        const policy = this.#opts.pskPolicy;
        if (policy) {
          const verdict = policy.onUapiPsk(peer.publicKey, change.presharedKey);
          if (verdict !== 0) {
            this.#log.warn(`UAPI preshared key not applied (errno ${-verdict}) after planning`);
          }
        } else {
          this.setPresharedKey(peer.publicKey, change.presharedKey);
        }
      }
      if (change.endpoint) this.#setEndpoint(peer, change.endpoint);
      if (change.persistentKeepalive !== undefined) {
        const was = peer.persistentKeepalive;
        peer.persistentKeepalive = change.persistentKeepalive;
        peer.timers.setPersistentKeepalive(change.persistentKeepalive * 1000, this.#clock());
        if (was === 0 && change.persistentKeepalive > 0) this.#sendKeepalive(peer);
      }
    }
    this.#allowed = plan.allowed;
  }

  /** Null when `ep` can be written as this socket's sockaddr; else the problem. */
  #endpointProblem(ep: Endpoint): string | null {
    try {
      encodeSockaddr(ep.ip, ep.port, new Uint8Array(32), 0, this.#v4Mapped());
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  #v4Mapped(): boolean {
    return !this.#bindAddress || this.#bindAddress.includes(":");
  }

  /**
   * The routes the data plane uses, read back from shared memory: every published allowed-IP entry
   * whose peer slot still holds the peer it was published for, with that peer's public key. Equal to
   * the allowed IPs of {@link snapshot} whenever no `set` is running (for diagnostics and tests).
   */
  dataPlaneRoutes(): { publicKey: Uint8Array; allowedIp: string }[] {
    const s = this.#dp.shared;
    const published = s.readAllowedIps();
    if (published === null) return [];
    const out = [];
    for (const e of published.entries) {
      const peer = this.#byId[e.peer];
      if (!peer || s.peerGet(e.peer, P.generation) !== published.generations[e.peer]) continue;
      out.push({ publicKey: peer.publicKey, allowedIp: formatCidr(e) });
    }
    return out;
  }

  /** Sets a peer's PSK (used by UAPI and by the aes0 gate). Applies at the next handshake. */
  setPresharedKey(peerPublicKey: Uint8Array, psk: Uint8Array, extraPsks: Uint8Array[] = []): boolean {
    const peer = this.#peers.get(toHex(peerPublicKey));
    if (!peer || psk.length !== 32) return false;
    peer.presharedKey.set(psk);
    for (const k of peer.extraPsks) k.fill(0);
    peer.extraPsks = extraPsks.map((k) => k.slice());
    return true;
  }

  /** Starts a handshake with a peer now (aes0 gate opening). */
  initiateHandshake(peerPublicKey: Uint8Array): void {
    const peer = this.#peers.get(toHex(peerPublicKey));
    if (peer) this.#sendInitiation(peer, false, true);
  }

  /** Ends a peer's sessions: its keypairs are wiped; the next packet to it starts a handshake. */
  dropSessions(peerPublicKey: Uint8Array): void {
    const peer = this.#peers.get(toHex(peerPublicKey));
    if (peer) this.#expireKeypairs(peer);
  }

  /** Per-peer handshake statistics (for status and tests). */
  peerStats(peerPublicKey: Uint8Array): { handshakes: number; failures: number; hasSession: boolean } | null {
    const peer = this.#peers.get(toHex(peerPublicKey));
    if (!peer) return null;
    return { handshakes: peer.handshakes, failures: peer.handshakeFailures, hasSession: peer.current >= 0 };
  }

  /** Stops the workers, closes the socket and wipes all keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    await this.#dp.stop();
    for (const p of [...this.#peers.values()]) this.#removePeer(p);
    this.#allowed.clear();
    this.#identity?.privateKey.fill(0);
    if (this.#udpFd >= 0) closeQuietly(this.#udpFd);
    this.#udpFd = -1;
  }

  // ---------------------------------------------------------------- peers

  #setPrivateKey(key: Uint8Array): void {
    const zero = key.every((b) => b === 0);
    this.#identity?.privateKey.fill(0);
    this.#identity = zero ? null : { privateKey: key.slice(), publicKey: derivePublicKey(key) };
    this.#dp.shared.writeLocalPublic(this.#identity?.publicKey ?? null);
    for (const p of [...this.#peers.values()]) {
      if (this.#identity && p.publicKeyHex === toHex(this.#identity.publicKey)) {
        this.#removePeer(p); // wireguard-go drops a peer whose key equals ours
        continue;
      }
      p.precompute(this.#identity?.privateKey ?? null);
      this.#expireKeypairs(p);
    }
  }

  /** Creates a peer in `id`, a free slot (the plan chose it): a fresh generation, nothing inherited. */
  #createPeer(publicKey: Uint8Array, id: number): Peer {
    if (this.#byId[id]) throw new Error(`peer slot ${id} is taken`);
    const peer = new Peer(id, publicKey, this.#clock);
    peer.precompute(this.#identity?.privateKey ?? null);
    const initial = this.#opts.pskPolicy?.onPeerCreated(publicKey);
    if (initial) peer.presharedKey.set(initial);
    this.#peers.set(peer.publicKeyHex, peer);
    this.#byId[id] = peer;
    const s = this.#dp.shared;
    for (
      const f of [
        PF.txBytes,
        PF.rxBytes,
        PF.lastDataSent,
        PF.lastDataReceived,
        PF.lastAuthSent,
        PF.lastAuthReceived,
      ]
    ) {
      s.peerF64[s.pf(id, f)] = 0;
    }
    s.peerSet(id, P.needHandshake, 0);
    s.peerSet(id, P.keepalivePending, 0);
    s.writeEndpoint(id, this.#sendAddr, 0, 0);
    s.peerAdd(id, P.generation, 1);
    s.peerSet(id, P.active, 1);
    return peer;
  }

  /**
   * Removes a peer and clears its slot: keys wiped, endpoint and pending work dropped, and a new slot
   * generation, so the routes the data plane still holds for the slot stop working at once (they are
   * republished without it by the caller) and nothing of this peer reaches the next one in the slot.
   */
  #removePeer(peer: Peer): void {
    const s = this.#dp.shared;
    s.peerSet(peer.id, P.active, 0);
    s.peerAdd(peer.id, P.generation, 1);
    this.#expireKeypairs(peer);
    if (peer.handshake) this.#slots.free(KeypairSlots.slotOf(peer.handshake.localIndex));
    s.writeEndpoint(peer.id, this.#sendAddr, 0, 0);
    s.peerSet(peer.id, P.needHandshake, 0);
    s.peerSet(peer.id, P.keepalivePending, 0);
    peer.wipe();
    this.#allowed.removePeer(peer.id);
    this.#peers.delete(peer.publicKeyHex);
    this.#byId[peer.id] = undefined;
  }

  #expireKeypairs(peer: Peer): void {
    for (const slot of [peer.current, peer.previous, peer.next]) this.#slots.free(slot);
    peer.current = peer.previous = peer.next = -1;
    peer.timers.responseAbandoned();
    this.#publishKeypairs(peer);
    this.#freeRetired((r) => r.peer === peer.id);
  }

  /**
   * Takes a keypair out of the peer's rotation (previous/current/next), but keeps it able to decrypt
   * for REKEY_TIMEOUT before its slot is freed. The rotation itself is wireguard-go's; the grace is
   * ours: after crossing handshakes (both sides initiating at once, which the aes0 gate and rekeys
   * make routine) the peer may still be sending under the keypair it had until our response reaches
   * it, and freeing it at once would drop those packets. Sending never uses a retired keypair, and
   * REJECT_AFTER_TIME still applies to it. Nothing changes on the wire.
   */
  #retire(peer: Peer, slot: number): void {
    if (slot < 0) return;
    this.#retired.push({ slot, peer: peer.id, until: this.#clock() + REKEY_TIMEOUT });
  }

  /** Frees the retired keypairs that match. */
  #freeRetired(match: (r: { slot: number; peer: number; until: number }) => boolean): void {
    if (this.#retired.length === 0) return;
    const keep = [];
    for (const r of this.#retired) {
      if (match(r)) this.#slots.free(r.slot);
      else keep.push(r);
    }
    this.#retired = keep;
  }

  #publishKeypairs(peer: Peer): void {
    const s = this.#dp.shared;
    s.peerSet(peer.id, P.next, peer.next);
    s.peerSet(peer.id, P.previous, peer.previous);
    s.peerSet(peer.id, P.current, peer.current);
  }

  #publishAllowedIps(): void {
    const entries = [...this.#peers.values()].flatMap((p) =>
      this.#allowed.entriesFor(p.id).map((c) => ({
        family: c.family,
        addr: c.addr,
        bits: c.bits,
        peer: p.id,
      }))
    );
    this.#dp.shared.writeAllowedIps(entries);
  }

  #setEndpoint(peer: Peer, ep: Endpoint): void {
    const len = encodeSockaddr(ep.ip, ep.port, this.#sendAddr, 0, this.#v4Mapped());
    this.#dp.shared.writeEndpoint(peer.id, this.#sendAddr, 0, len);
    peer.endpoint = ep;
  }

  #endpointOf(peer: Peer): Endpoint | null {
    const len = this.#dp.shared.readEndpoint(peer.id, this.#sendAddr, 0);
    return len ? decodeSockaddr(this.#sendAddr, 0) : null;
  }

  // ---------------------------------------------------------------- handshakes

  #send(peer: Peer, msg: Uint8Array): boolean {
    const len = this.#dp.shared.readEndpoint(peer.id, this.#sendAddr, 0);
    if (!len || this.#udpFd < 0) return false;
    return sendTo(this.#udpFd, msg, 0, msg.length, this.#sendAddr, len) === msg.length;
  }

  #sendInitiation(peer: Peer, isRetry: boolean, force = false): void {
    const now = this.#clock();
    if (!this.#identity || !peer.staticStatic) return;
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    if (!force && now - peer.lastSentHandshake < REKEY_TIMEOUT) return;
    if (peer.handshake) this.#slots.free(KeypairSlots.slotOf(peer.handshake.localIndex));
    peer.handshake = null;
    const localIndex = this.#slots.reserve(peer.id);
    if (localIndex < 0) {
      this.#log.warn("no free keypair slot for a handshake");
      return;
    }
    const { message, state } = createInitiation(
      this.suite,
      this.#identity,
      peer.keys(),
      localIndex,
      tai64n(now),
    );
    peer.cookies.addMacs(message);
    peer.handshake = { state, localIndex, sentAt: now };
    peer.lastSentHandshake = now;
    peer.timers.handshakeInitiated(now);
    if (this.#send(peer, message)) peer.timers.anyAuthenticatedPacketSent(now);
  }

  #sendKeepalive(peer: Peer): void {
    this.#dp.shared.peerSet(peer.id, P.keepalivePending, 1);
    this.#dp.wake();
  }

  /**
   * The data plane wants a handshake (no usable keypair, or time to rekey). A handshake in flight
   * answers it (its completion or give-up clears the request); otherwise WireGuard sends at most one
   * initiation per REKEY_TIMEOUT, so a request inside that time is deferred to the tick, not dropped
   * (the workers ask only once until the request is cleared).
   */
  #onHandshakeNeeded(id: number): void {
    const peer = this.#byId[id];
    if (!peer) return;
    const now = this.#clock();
    if (peer.handshake && now - peer.handshake.sentAt < REKEY_TIMEOUT) return;
    if (!this.#identity || now - peer.lastSentHandshake < REKEY_TIMEOUT) {
      peer.initiationDeferred = true;
      return;
    }
    this.#sendInitiation(peer, false);
  }

  /** A handshake completed or gave up: the workers may ask for the next one. */
  #handshakeSatisfied(peer: Peer): void {
    peer.initiationDeferred = false;
    this.#dp.shared.peerSet(peer.id, P.needHandshake, 0);
  }

  /** A handshake message the decrypt worker admitted (its mac1, and under load its mac2, are valid). */
  #onHandshakeMessage(msg: Uint8Array, addr: Uint8Array): void {
    if (this.#closed || !this.#identity) return;
    const type = msg[0];
    if (type === 3) return this.#onCookieReply(msg);
    const src = decodeSockaddr(addr, 0);
    if (type === 1) this.#onInitiation(msg, addr, src);
    else if (type === 2) this.#onResponse(msg, addr, src);
  }

  #onInitiation(msg: Uint8Array, addr: Uint8Array, src: Endpoint): void {
    const identity = this.#identity!;
    const consumed = consumeInitiation(
      this.suite,
      identity,
      msg,
      (pub) => this.#peers.get(toHex(pub))?.keys() ?? null,
    );
    if (!consumed) {
      this.#event({ type: "handshake-failed", peer: null, reason: "initiation did not authenticate" });
      return;
    }
    const peer = this.#peers.get(toHex(consumed.remoteStatic));
    if (!peer) return;
    const now = this.#clock();
    if (peer.lastTimestamp && !tai64nAfter(consumed.timestamp, peer.lastTimestamp)) {
      this.#failed(peer, "replayed initiation (timestamp not newer)");
      return;
    }
    if (now - peer.lastInitiationConsumed < HANDSHAKE_INITIATION_RATE) {
      this.#failed(peer, "initiation flood guard");
      return;
    }
    peer.lastTimestamp = consumed.timestamp;
    peer.lastInitiationConsumed = now;
    this.#dp.shared.writeEndpoint(peer.id, addr, 0, addr.length);
    peer.endpoint = src;
    const localIndex = this.#slots.reserve(peer.id);
    if (localIndex < 0) return;
    const { message, keys } = createResponse(this.suite, identity, peer.keys(), consumed, localIndex);
    const slot = this.#slots.install(keys, peer.id);
    // Responder: the new keypair waits in "next" until the initiator's first packet confirms it
    // (#onConfirmed); only then does the handshake count (last handshake, event), as in WireGuard.
    this.#retire(peer, peer.next);
    this.#retire(peer, peer.previous);
    peer.previous = -1;
    peer.next = slot;
    this.#publishKeypairs(peer);
    peer.cookies.addMacs(message);
    peer.timers.anyAuthenticatedPacketReceived(now);
    peer.timers.sessionDerived(now);
    if (this.#send(peer, message)) peer.timers.anyAuthenticatedPacketSent(now);
    if (peer.timers.responseSent(now)) this.#responseUnconfirmed(peer, "superseded by a new initiation");
  }

  /** A response we sent will never be confirmed. */
  #responseUnconfirmed(peer: Peer, how: string): void {
    this.#event({
      type: "response-unconfirmed",
      peer: peer.publicKeyHex,
      reason: `our handshake response was never confirmed (${how}): the peer's PSK differs, or our ` +
        "responses do not reach it",
    });
  }

  #onResponse(msg: Uint8Array, addr: Uint8Array, src: Endpoint): void {
    const receiver = (msg[8] | (msg[9] << 8) | (msg[10] << 16) | (msg[11] << 24)) >>> 0;
    const peer = this.#peerByHandshakeIndex(receiver);
    if (!peer || !peer.handshake) return;
    const result = consumeResponse(
      this.suite,
      this.#identity!,
      peer.handshake.state,
      peer.keys(),
      msg,
      peer.extraPsks,
    );
    if (!result) {
      this.#failed(peer, "response did not authenticate (PSK mismatch or corrupted)");
      return;
    }
    const now = this.#clock();
    peer.handshake.state.ephemeralPrivate.fill(0);
    peer.handshake = null;
    const slot = this.#slots.install(result.keys, peer.id);
    // Initiator: the new keypair is current at once; the old current becomes previous.
    if (peer.next >= 0) {
      this.#retire(peer, peer.previous);
      this.#retire(peer, peer.current);
      peer.previous = peer.next;
      peer.next = -1;
    } else {
      this.#retire(peer, peer.previous);
      peer.previous = peer.current;
    }
    peer.current = slot;
    this.#publishKeypairs(peer);
    this.#dp.shared.writeEndpoint(peer.id, addr, 0, addr.length);
    peer.endpoint = src;
    peer.lastHandshakeMs = now;
    peer.handshakes++;
    this.#handshakeSatisfied(peer);
    peer.timers.anyAuthenticatedPacketReceived(now);
    peer.timers.handshakeComplete(now);
    peer.timers.sessionDerived(now);
    this.#sendKeepalive(peer); // confirms the session; staged packets go first
    this.#event({
      type: "handshake-completed",
      peer: peer.publicKeyHex,
      initiator: true,
      pskIndex: result.pskUsed,
      derivedAt: now,
    });
  }

  #onCookieReply(msg: Uint8Array): void {
    const receiver = (msg[4] | (msg[5] << 8) | (msg[6] << 16) | (msg[7] << 24)) >>> 0;
    const peer = this.#peerByHandshakeIndex(receiver);
    if (peer) peer.cookies.consumeReply(msg);
  }

  #peerByHandshakeIndex(index: number): Peer | undefined {
    if (!this.#slots.owns(index)) return undefined;
    for (const p of this.#peers.values()) if (p.handshake && p.handshake.localIndex === index) return p;
    return undefined;
  }

  /**
   * Key confirmation: the first authenticated packet arrived under a responder's "next" keypair. It
   * becomes current, and the handshake counts now (last handshake, timers, event), as wireguard-go's
   * ReceivedWithKeypair and the kernel do.
   */
  #onConfirmed(id: number, slot: number): void {
    const peer = this.#byId[id];
    if (!peer || peer.next !== slot) return;
    const now = this.#clock();
    const derivedAt = this.#slots.created(slot);
    this.#retire(peer, peer.previous);
    peer.previous = peer.current;
    peer.current = slot;
    peer.next = -1;
    this.#publishKeypairs(peer);
    peer.lastHandshakeMs = now;
    peer.handshakes++;
    peer.timers.handshakeComplete(now);
    this.#handshakeSatisfied(peer);
    this.#dp.wake();
    this.#event({
      type: "handshake-completed",
      peer: peer.publicKeyHex,
      initiator: false,
      pskIndex: 0,
      derivedAt,
    });
  }

  #failed(peer: Peer, reason: string): void {
    peer.handshakeFailures++;
    this.#event({ type: "handshake-failed", peer: peer.publicKeyHex, reason });
  }

  #event(e: DeviceEvent): void {
    if (e.type === "handshake-failed") this.#log.debug(`handshake failed: ${e.reason}`);
    this.#opts.onEvent?.(e);
  }

  // ---------------------------------------------------------------- timers

  #onTick(): void {
    const s = this.#dp.shared;
    const now = this.#clock();
    this.#freeRetired((r) => r.until <= now);
    for (const peer of this.#peers.values()) {
      const f = (field: number) => s.peerF64[s.pf(peer.id, field)];
      const events: [number, () => void][] = [];
      const seen = peer.seen;
      const ds = f(PF.lastDataSent), dr = f(PF.lastDataReceived);
      const as = f(PF.lastAuthSent), ar = f(PF.lastAuthReceived);
      if (as > seen.authSent) events.push([as, () => peer.timers.anyAuthenticatedPacketSent(as)]);
      if (ds > seen.dataSent) events.push([ds, () => peer.timers.dataSent(ds)]);
      if (ar > seen.authReceived) events.push([ar, () => peer.timers.anyAuthenticatedPacketReceived(ar)]);
      if (dr > seen.dataReceived) events.push([dr, () => peer.timers.dataReceived(dr)]);
      seen.authSent = as;
      seen.dataSent = ds;
      seen.authReceived = ar;
      seen.dataReceived = dr;
      events.sort((a, b) => a[0] - b[0]);
      for (const [, fire] of events) fire();
      if (
        peer.initiationDeferred && !peer.handshake && this.#identity &&
        now - peer.lastSentHandshake >= REKEY_TIMEOUT
      ) {
        peer.initiationDeferred = false;
        this.#sendInitiation(peer, false);
      }
      if (peer.timers.nextDeadline() > now) continue;
      for (const action of peer.timers.poll(now)) {
        switch (action) {
          case "send-initiation":
            this.#sendInitiation(peer, true);
            break;
          case "send-keepalive":
            this.#sendKeepalive(peer);
            break;
          case "zero-keys":
            this.#expireKeypairs(peer);
            if (peer.handshake) this.#slots.free(KeypairSlots.slotOf(peer.handshake.localIndex));
            peer.handshake = null;
            break;
          case "handshake-gave-up":
            if (peer.handshake) this.#slots.free(KeypairSlots.slotOf(peer.handshake.localIndex));
            peer.handshake = null;
            this.#handshakeSatisfied(peer);
            break;
          case "response-unconfirmed":
            this.#responseUnconfirmed(
              peer,
              `no packet under its session within ${RESPONSE_CONFIRMATION_TIMEOUT / 1000} s`,
            );
            break;
        }
      }
    }
  }

  #fatal(reason: string): void {
    if (this.#closed) return;
    this.#log.info(reason);
    this.#opts.onFatal?.(reason);
  }
}
