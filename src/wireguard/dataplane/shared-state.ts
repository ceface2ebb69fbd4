/**
 * The state the control plane (main isolate) shares with the data-plane workers, laid out in one
 * SharedArrayBuffer so the per-packet path reads keys, peers and routes without messages or
 * allocation.
 *
 * Ownership (each field has one writer):
 * - main writes keypairs, peer keypair pointers, allowed-IPs and the header;
 * - the encrypt worker writes send counters, tx bytes and "sent" timestamps;
 * - the decrypt worker writes rx bytes and "received" timestamps;
 * - endpoints have two writers (UAPI/handshakes in main, roaming in the decrypt worker) and are
 *   guarded by a per-peer seqlock.
 *
 * Local indices encode the keypair slot in their low bits (`index & SLOT_MASK`), so the receive
 * path finds a keypair without a map; the upper bits are random and checked.
 *
 * Peer slots are reused. Every slot carries a generation, bumped whenever a peer is created in it or
 * removed from it, and the allowed-IPs table is published stamped with the generation of each slot it
 * routes to; a worker uses a route only while the slot's live generation equals the stamp, so routes
 * (and packets staged under them) of a removed peer can never reach the next peer in its slot. The
 * table itself is published under a seqlock (odd version while it is being written), so a worker never
 * builds its copy from a half-written table.
 * @module
 */

/** Most peers one device holds. */
export const MAX_PEERS = 256;
/** Keypair slots (current, previous, next and handshakes in flight for every peer). */
export const MAX_KEYPAIRS = 1024;
/** Bits of a local index that name the keypair slot. */
export const SLOT_BITS = 10;
/** Mask for the slot part of a local index. */
export const SLOT_MASK = (1 << SLOT_BITS) - 1;
/** Most allowed-IP entries one device holds. */
export const MAX_ALLOWED_IPS = 8192;
/** Bytes reserved per peer endpoint (a sockaddr_in6 is 28). */
export const ENDPOINT_BYTES = 32;

/** The device-wide Int32 words at the start of the shared state (fds, versions, MTU, offload bits, stop). */
export const DeviceWord = {
  /** 1 once the device asked its paths to stop (they leave the workers). */
  stop: 0,
  /** Bumped after every published allowed-IPs table (the paths rebuild their mirror). */
  allowedIpsVersion: 1,
  /** Entries of the published allowed-IPs table. */
  allowedIpsCount: 2,
  /** The UDP socket (-1 until bound). */
  udpFd: 3,
  /** The TUN fd. */
  tunFd: 4,
  /** Handshake messages posted to the control plane and not yet handled (admission's queue depth). */
  pendingHandshakes: 5,
  /** The TUN MTU (padding; the largest packet). */
  mtu: 6,
  /** The eventfd that wakes the send path (staged packets, keepalives, stop). */
  wakeFd: 7,
  /** Bumped after every change of the local public key (0 = none yet). */
  identityVersion: 10,
  /** 1 while the device has a private key (the local public key below is valid). */
  hasIdentity: 11,
  /** 1 when every TUN read and write carries a virtio_net_hdr (set before the workers start). */
  tunVnetHdr: 12,
  /** The TUN_F_* offload bits the TUN accepted (set before the workers start). */
  tunOffloadBits: 13,
  /** 1 when the workers may use UDP_SEGMENT / UDP_GRO on the socket (set before the workers start). */
  udpOffloads: 14,
} as const;
const HEADER_INTS = 16;

/** Each peer's Int32 words: its keypair slots (current/previous/next), endpoint lock, flags the workers raise. */
export const PeerWord = {
  /** 1 while a peer occupies the slot. */
  active: 0,
  /** The keypair slot sending uses (-1: none). */
  current: 1,
  /** The keypair slot before the current one (still opens late packets; -1: none). */
  previous: 2,
  /** A responder's keypair slot waiting for its first packet (key confirmation; -1: none). */
  next: 3,
  /** Seqlock counter of the endpoint bytes (odd while being written). */
  endpointSeq: 4,
  /** Spin lock of endpoint writers (roaming from the receive path, the control plane). */
  endpointLock: 5,
  /** Bytes of the endpoint sockaddr (0: no endpoint). */
  endpointLen: 6,
  /** 1 while a handshake request is on its way to the control plane (one per peer at a time). */
  needHandshake: 7,
  /** 1 when the control plane asked the send path for a keepalive. */
  keepalivePending: 8,
  /** Bumped when a new peer takes the slot (routes and staged packets of the old one are void). */
  generation: 10,
} as const;
const PEER_INTS = 16;

/** Each peer's Float64 fields: bytes moved and the times of its last data and authenticated packets. */
export const PeerTraffic = {
  txBytes: 0,
  rxBytes: 1,
  lastDataSent: 2,
  lastDataReceived: 3,
  lastAuthSent: 4,
  lastAuthReceived: 5,
} as const;
const PEER_F64 = 8;

/** Each keypair slot's Int32 words: its state, owner, indices, role and key generation. */
export const KeypairWord = {
  /** A `SlotState` (src/wireguard/keypair-slots.ts): free, valid (usable) or reserved for a handshake. */
  state: 0,
  peer: 1,
  localIndex: 2,
  remoteIndex: 3,
  isInitiator: 4,
  generation: 5,
  confirmPosted: 6,
} as const;
const KEYPAIR_INTS = 8;

/** Each keypair slot's Float64 fields: when it was made and the next send counter (its nonce). */
export const KeypairUsage = {
  created: 0,
  sendCounter: 1,
} as const;
const KEYPAIR_F64 = 2;

/** Counters of packets dropped, by reason (the first counters of the stats array). */
export const DROP_STATS = [
  "rxMalformed",
  "rxUnknownIndex",
  "rxExpiredKey",
  "rxAuthFailed",
  "rxReplay",
  "rxSourceNotAllowed",
  "rxBadInnerPacket",
  "rxHandshakeQueueFull",
  "rxHandshakeBadMac1",
  "rxHandshakeRateLimited",
  "txNoRoute",
  "txNoEndpoint",
  "txStagedDropped",
  "txSendErrors",
  "tunWriteErrors",
  // The packet filter's inbound drops (src/filter), by reason.
  "filterLockdown",
  "filterPolicy",
  "filterMalformed",
  "filterFragment",
  // A TUN read whose virtio_net_hdr contradicts the packet (offloads on; not expected from Linux).
  "txBadOffload",
] as const;
/** Drop and traffic counters (Float64): the drops by reason, then traffic. */
export const STATS = [...DROP_STATS, "rxPackets", "txPackets", "rxKeepalives", "txCookieReplies"] as const;
/** A counter name. */
export type StatName = typeof STATS[number];
/** Index of each counter (drops by reason, traffic) in the stats array. */
export const StatIndex: Record<StatName, number> = Object.fromEntries(STATS.map((n, i) => [n, i])) as Record<
  StatName,
  number
>;

const ALLOWED_ENTRY_BYTES = 20; // family u8, bits u8, peer u16, addr 16
/** Bytes of the local static public key (not secret: the decrypt worker derives the mac1 key from it). */
const PUBLIC_KEY_BYTES = 32;

/** One allowed-IPs entry as published to the workers. */
export interface AllowedIpEntry {
  /** Address family. */
  family: 4 | 6;
  /** Prefix address bytes (4 or 16). */
  addr: Uint8Array;
  /** Prefix length. */
  bits: number;
  /** Peer slot. */
  peer: number;
}

/** A consistent copy of the published allowed-IPs table. */
export interface PublishedRoutes {
  /** The (even) table version it was read at. */
  version: number;
  /** The entries. */
  entries: AllowedIpEntry[];
  /** Per peer slot: the slot generation the entries route to. */
  generations: Int32Array;
}

/** Typed views over the shared buffer; constructed identically on both sides. */
export class SharedState {
  /** The buffer itself (posted to workers). */
  readonly sab: SharedArrayBuffer;
  /** Header words. */
  readonly header: Int32Array;
  /** Peer Int32 fields, `peerI32[peer * PEER_INTS + PeerWord.x]`. */
  readonly peerI32: Int32Array;
  /** Peer Float64 fields. */
  readonly peerF64: Float64Array;
  /** Peer endpoints as raw sockaddr bytes. */
  readonly endpoints: Uint8Array;
  /** Keypair Int32 fields. */
  readonly kpI32: Int32Array;
  /** Keypair Float64 fields. */
  readonly kpF64: Float64Array;
  /** Keypair keys: 64 bytes each, send key then receive key. */
  readonly kpKeys: Uint8Array;
  /** Allowed-IPs table entries. */
  readonly allowed: Uint8Array;
  /** Per peer slot: the slot generation the published allowed-IPs table routes to. */
  readonly routeGenerations: Int32Array;
  /** Counters. */
  readonly stats: Float64Array;
  /** The device's static public key (valid while `DeviceWord.hasIdentity` is 1). */
  readonly localPublic: Uint8Array;

  constructor(sab?: SharedArrayBuffer) {
    const sizes = [
      HEADER_INTS * 4,
      MAX_PEERS * PEER_INTS * 4,
      MAX_PEERS * PEER_F64 * 8,
      MAX_PEERS * ENDPOINT_BYTES,
      MAX_KEYPAIRS * KEYPAIR_INTS * 4,
      MAX_KEYPAIRS * KEYPAIR_F64 * 8,
      MAX_KEYPAIRS * 64,
      MAX_ALLOWED_IPS * ALLOWED_ENTRY_BYTES,
      STATS.length * 8,
      MAX_PEERS * 4,
      PUBLIC_KEY_BYTES,
    ];
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) {
      total = Math.ceil(total / 8) * 8;
      offsets.push(total);
      total += s;
    }
    this.sab = sab ?? new SharedArrayBuffer(total);
    const b = this.sab;
    this.header = new Int32Array(b, offsets[0], HEADER_INTS);
    this.peerI32 = new Int32Array(b, offsets[1], MAX_PEERS * PEER_INTS);
    this.peerF64 = new Float64Array(b, offsets[2], MAX_PEERS * PEER_F64);
    this.endpoints = new Uint8Array(b, offsets[3], MAX_PEERS * ENDPOINT_BYTES);
    this.kpI32 = new Int32Array(b, offsets[4], MAX_KEYPAIRS * KEYPAIR_INTS);
    this.kpF64 = new Float64Array(b, offsets[5], MAX_KEYPAIRS * KEYPAIR_F64);
    this.kpKeys = new Uint8Array(b, offsets[6], MAX_KEYPAIRS * 64);
    this.allowed = new Uint8Array(b, offsets[7], MAX_ALLOWED_IPS * ALLOWED_ENTRY_BYTES);
    this.stats = new Float64Array(b, offsets[8], STATS.length);
    this.routeGenerations = new Int32Array(b, offsets[9], MAX_PEERS);
    this.localPublic = new Uint8Array(b, offsets[10], PUBLIC_KEY_BYTES);
    if (!sab) {
      for (let p = 0; p < MAX_PEERS; p++) {
        const o = p * PEER_INTS;
        this.peerI32[o + PeerWord.current] = -1;
        this.peerI32[o + PeerWord.previous] = -1;
        this.peerI32[o + PeerWord.next] = -1;
      }
    }
  }

  /** Reads a peer Int32 field atomically. */
  peerGet(peer: number, field: number): number {
    return Atomics.load(this.peerI32, peer * PEER_INTS + field);
  }
  /** Writes a peer Int32 field atomically. */
  peerSet(peer: number, field: number, value: number): void {
    Atomics.store(this.peerI32, peer * PEER_INTS + field, value);
  }
  /** Adds to a peer Int32 field atomically (slot generations); returns the previous value. */
  peerAdd(peer: number, field: number, delta: number): number {
    return Atomics.add(this.peerI32, peer * PEER_INTS + field, delta);
  }
  /** Compare-and-swap on a peer Int32 field; returns the previous value. */
  peerCas(peer: number, field: number, expect: number, value: number): number {
    return Atomics.compareExchange(this.peerI32, peer * PEER_INTS + field, expect, value);
  }
  /** Index of a peer Float64 field. */
  pf(peer: number, field: number): number {
    return peer * PEER_F64 + field;
  }
  /** Reads a keypair Int32 field atomically. */
  kpGet(slot: number, field: number): number {
    return Atomics.load(this.kpI32, slot * KEYPAIR_INTS + field);
  }
  /** Writes a keypair Int32 field atomically. */
  kpSet(slot: number, field: number, value: number): void {
    Atomics.store(this.kpI32, slot * KEYPAIR_INTS + field, value);
  }
  /** Bumps a keypair's generation (workers rebuild their cached cipher state when it moves). */
  kpBumpGeneration(slot: number): void {
    Atomics.add(this.kpI32, slot * KEYPAIR_INTS + KeypairWord.generation, 1);
  }
  /** Index of a keypair Float64 field. */
  kf(slot: number, field: number): number {
    return slot * KEYPAIR_F64 + field;
  }

  /** Writes a peer's endpoint (raw sockaddr) under the seqlock. Either side may call it. */
  writeEndpoint(peer: number, sockaddr: Uint8Array, off: number, len: number): void {
    const lockIdx = peer * PEER_INTS + PeerWord.endpointLock;
    while (Atomics.compareExchange(this.peerI32, lockIdx, 0, 1) !== 0) { /* spin: writers are brief */ }
    const seqIdx = peer * PEER_INTS + PeerWord.endpointSeq;
    Atomics.add(this.peerI32, seqIdx, 1);
    const base = peer * ENDPOINT_BYTES;
    for (let i = 0; i < len; i++) this.endpoints[base + i] = sockaddr[off + i];
    Atomics.store(this.peerI32, peer * PEER_INTS + PeerWord.endpointLen, len);
    Atomics.add(this.peerI32, seqIdx, 1);
    Atomics.store(this.peerI32, lockIdx, 0);
  }

  /**
   * Copies a peer's endpoint into `out` at `off`; returns its length (0 when none).
   * Consistent even while a writer runs (seqlock retry).
   */
  readEndpoint(peer: number, out: Uint8Array, off: number): number {
    const seqIdx = peer * PEER_INTS + PeerWord.endpointSeq;
    const base = peer * ENDPOINT_BYTES;
    for (;;) {
      const s1 = Atomics.load(this.peerI32, seqIdx);
      if (s1 & 1) continue;
      const len = Atomics.load(this.peerI32, peer * PEER_INTS + PeerWord.endpointLen);
      for (let i = 0; i < len; i++) out[off + i] = this.endpoints[base + i];
      if (Atomics.load(this.peerI32, seqIdx) === s1) return len;
    }
  }

  /** True when the endpoint bytes equal `buf[off, off+len)` (read without the lock; a hint). */
  endpointEquals(peer: number, buf: Uint8Array, off: number, len: number): boolean {
    if (Atomics.load(this.peerI32, peer * PEER_INTS + PeerWord.endpointLen) !== len) return false;
    const base = peer * ENDPOINT_BYTES;
    for (let i = 0; i < len; i++) if (this.endpoints[base + i] !== buf[off + i]) return false;
    return true;
  }

  /**
   * Replaces the allowed-IPs table (main only), stamped with the current generation of every peer
   * slot. The version is odd while the table is written and even once it is complete. The caller
   * validates the size first (see MAX_ALLOWED_IPS): a table that does not fit is a programming error.
   */
  writeAllowedIps(entries: AllowedIpEntry[]): void {
    if (entries.length > MAX_ALLOWED_IPS) {
      throw new RangeError(`allowed-IPs table overflow: ${entries.length} > ${MAX_ALLOWED_IPS}`);
    }
    Atomics.add(this.header, DeviceWord.allowedIpsVersion, 1); // odd: writing
    let o = 0;
    for (const e of entries) {
      this.allowed[o] = e.family;
      this.allowed[o + 1] = e.bits;
      this.allowed[o + 2] = e.peer & 0xff;
      this.allowed[o + 3] = e.peer >>> 8;
      this.allowed.fill(0, o + 4, o + 20);
      this.allowed.set(e.addr, o + 4);
      o += ALLOWED_ENTRY_BYTES;
    }
    for (let p = 0; p < MAX_PEERS; p++) {
      Atomics.store(this.routeGenerations, p, this.peerGet(p, PeerWord.generation));
    }
    Atomics.store(this.header, DeviceWord.allowedIpsCount, entries.length);
    Atomics.add(this.header, DeviceWord.allowedIpsVersion, 1); // even: complete
  }

  /**
   * Reads the allowed-IPs table and the slot generations it routes to (workers rebuild their local
   * trie from it when the version moves). Returns null when the table is being written or changed
   * while it was read; the caller keeps its copy and tries again later.
   */
  readAllowedIps(): PublishedRoutes | null {
    const version = Atomics.load(this.header, DeviceWord.allowedIpsVersion);
    if (version & 1) return null;
    const n = Atomics.load(this.header, DeviceWord.allowedIpsCount);
    const entries: AllowedIpEntry[] = [];
    for (let i = 0; i < n; i++) {
      const o = i * ALLOWED_ENTRY_BYTES;
      const family = this.allowed[o] as 4 | 6;
      entries.push({
        family,
        bits: this.allowed[o + 1],
        peer: this.allowed[o + 2] | (this.allowed[o + 3] << 8),
        addr: this.allowed.slice(o + 4, o + 4 + (family === 4 ? 4 : 16)),
      });
    }
    const generations = new Int32Array(MAX_PEERS);
    for (let p = 0; p < MAX_PEERS; p++) generations[p] = Atomics.load(this.routeGenerations, p);
    if (Atomics.load(this.header, DeviceWord.allowedIpsVersion) !== version) return null;
    return { version, entries, generations };
  }

  /**
   * Publishes the device's static public key, or null when it has no private key (main only). The
   * decrypt worker checks mac1 against it and answers cookie replies with it.
   */
  writeLocalPublic(publicKey: Uint8Array | null): void {
    Atomics.store(this.header, DeviceWord.hasIdentity, 0);
    Atomics.add(this.header, DeviceWord.identityVersion, 1);
    if (publicKey === null) {
      this.localPublic.fill(0);
    } else {
      this.localPublic.set(publicKey);
      Atomics.store(this.header, DeviceWord.hasIdentity, 1);
    }
    Atomics.add(this.header, DeviceWord.identityVersion, 1);
  }

  /**
   * A copy of the local public key and the version it was read at, or null while there is none or
   * a write is in progress (odd version: read again later).
   */
  readLocalPublic(): { publicKey: Uint8Array; version: number } | null {
    const v1 = Atomics.load(this.header, DeviceWord.identityVersion);
    if (v1 & 1 || Atomics.load(this.header, DeviceWord.hasIdentity) !== 1) return null;
    const publicKey = this.localPublic.slice();
    return Atomics.load(this.header, DeviceWord.identityVersion) === v1 ? { publicKey, version: v1 } : null;
  }

  /** Counter snapshot by name. */
  statsSnapshot(): Record<StatName, number> {
    const out = {} as Record<StatName, number>;
    for (const n of STATS) out[n] = this.stats[StatIndex[n]];
    return out;
  }
}
