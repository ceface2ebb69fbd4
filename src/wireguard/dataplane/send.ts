/**
 * Data-plane worker: TUN → encrypt → UDP, the send path (wireguard-go's send.go). The worker serves
 * the send path of every device attached to it (worker-loop.ts: wg0's and aes0's in `twofold up`)
 * and blocks in one `poll` on their TUN fds and wake eventfds; a path reads packets until its TUN is
 * empty (up to one batch), routes each to a peer by its destination, seals it in place with the
 * peer's current keypair and sends the batch with one `sendmmsg`. No allocation per packet in steady state.
 * Packets for a peer without a usable keypair are staged (up to 128 per peer) and a handshake is
 * requested from the control plane.
 *
 * With TUN offloads (the TUN carries a virtio_net_hdr; docs/offload.md) one read may return a TCP or
 * UDP super-packet: it is read into a scratch buffer, cut into MTU-sized segments straight into the
 * batch slots behind the WireGuard header (segment.ts), routed once (all segments share the
 * destination) and each segment is sealed as its own transport message. The packet filter's tracker
 * sees every segment, as it would have seen the packets without offloads. With UDP offloads the
 * flushed batch goes out as UDP_SEGMENT runs (gso-send.ts), plain sendmmsg after a refusal.
 *
 * With the aes0 → wg0 hand-off (handoff-channel.ts, docs/offload.md) aes0's flushed datagrams go to
 * wg0's send path, not aes0's socket: by a call when both paths share this worker (as in `twofold up`),
 * else through the send ring, whose eventfd wakes wg0's worker. wg0's path puts the kernel's IP + UDP
 * header in front of each and routes and seals it like a TUN read. What cannot be handed off takes
 * the socket.
 * @module
 */
/// <reference lib="deno.worker" />
import { bigLen, EAGAIN, EINTR, errno, libc, POLLIN } from "../../../ffi/libc.ts";
import type { PollSet } from "../../../ffi/poll.ts";
import { drainEventFd } from "../../../ffi/eventfd.ts";
import { MsgBatch } from "../../../ffi/udp.ts";
import { getAead } from "../../crypto/backend.ts";
import type { AeadName } from "../../crypto/aead.ts";
import { sealTransport, TRANSPORT_HEADER, TRANSPORT_TAG } from "../transport-message.ts";
import { SlotState } from "../keypair-slots.ts";
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES } from "../constants.ts";
import {
  DeviceWord,
  KeypairUsage,
  KeypairWord,
  MAX_PEERS,
  PeerTraffic,
  PeerWord,
  SharedState,
  StatIndex,
} from "./shared-state.ts";
import { ConnTracker } from "../../filter/conn-tracker.ts";
import { ParsedPacket, ParseMode, parsePacket, ParseStatus } from "../../filter/packet-parse.ts";
import { SegmentError, segmentPacket } from "../offload/segment.ts";
import { emptyVirtioNetHdr, readVirtioNetHdr, VIRTIO_NET_HDR_LEN } from "../offload/virtio-net-hdr.ts";
import { MAX_IP_PACKET } from "../offload/packet-layout.ts";
import { AllowedIpsMirror, SlotCiphers } from "./worker-common.ts";
import { StagedPackets } from "./staged-packets.ts";
import { type DevicePath, type HandoffEnd, hostDevicePaths } from "./worker-loop.ts";
import type { WorkerEvent, WorkerInit } from "./worker-protocol.ts";
import { GsoSender, sendWithBackpressure } from "./gso-send.ts";
import { HandoffChannel, HandoffDirection, type HandoffEntry } from "./handoff-channel.ts";
import {
  HANDOFF_HEADER_V4,
  HANDOFF_HEADER_V6,
  handoffHeaderLength,
  type HandoffLocal,
  writeHandoffHeader,
} from "./handoff-packet.ts";

/** Where a message's plaintext starts in a batch buffer (after the transport header). */
const HEADER = TRANSPORT_HEADER;
/** The AEAD tag after the body. */
const TAG = TRANSPORT_TAG;
const BATCH = 32;
/**
 * Batch slots with TUN offloads: a whole super-packet's segments go into one batch (64 KiB at the
 * smallest usual MSS of 536 is 123 segments; wireguard-go reads into 128 buffers too).
 */
const OFFLOAD_BATCH = 128;
/** Bytes of one TUN read with offloads: the virtio_net_hdr and the largest IP packet. */
const SUPER_READ_MAX = VIRTIO_NET_HDR_LEN + MAX_IP_PACKET;
const BUF_SIZE = HEADER + 65535 + TAG + 16;
const READ_MAX = bigLen(BUF_SIZE - HEADER - TAG - 16);
/** Most TUN reads per wake-up before the batch is flushed and poll is asked again. */
const READS_PER_WAKE = 4 * BATCH;
/** Most super-packet reads per wake-up (each may fill most of a batch). */
const SUPER_READS_PER_WAKE = BATCH;
/** Most datagrams wg0 takes from the hand-off ring per wake-up before its TUN gets a turn. */
const HANDOFF_TAKES_PER_WAKE = 4 * BATCH;
/** Poll entries of a path: its TUN, its wake eventfd and (wg0 with an unpaired hand-off) the send ring's eventfd. */
const enum Entry {
  tun = 0,
  wake = 1,
  handoff = 2,
}
const POLL_ENTRIES = 3;
/** How often staged packets and keepalives are serviced without a wake-up (ms). */
const CONTROL_INTERVAL_MS = 100;

/**
 * Where a handed-off datagram goes in a batch slot: behind the transport header and the IP + UDP
 * header, whose length follows the local family (every endpoint aes0 hands over shares it).
 */
function handedOffAt(local: HandoffLocal): number {
  return HEADER + (local.address.length === 4 ? HANDOFF_HEADER_V4 : HANDOFF_HEADER_V6);
}

/** What reading the TUN ended with. */
const enum ReadEnd {
  /** The TUN is empty (or the read budget is spent): flush and poll again. */
  drained,
  /** The interface is gone. */
  closed,
}

/** The send path of one device: its buffers, its view of the shared state and its steps. */
class EncryptPath implements DevicePath {
  readonly pollEntries = POLL_ENTRIES;
  readonly handoffEnd: HandoffEnd | null;
  readonly #init: WorkerInit;
  readonly #post: (event: WorkerEvent) => void;
  readonly #shared: SharedState;
  /** Whether every TUN read starts with a virtio_net_hdr (the TUN was opened with offloads). */
  readonly #vnetHdr: boolean;
  /** Batch slots: {@link BATCH}, or {@link OFFLOAD_BATCH} with offloads. */
  readonly #batchSize: number;
  readonly #batch: MsgBatch;
  /** With UDP offloads: sends the batch as GSO runs (and owns it). */
  readonly #gso: GsoSender | null;
  readonly #readViews: Uint8Array[];
  /** With offloads: where a TUN read lands before it is cut into the batch slots. */
  readonly #superPacket: Uint8Array;
  readonly #superRead = bigLen(SUPER_READ_MAX);
  readonly #vnet = emptyVirtioNetHdr();
  /** Segment lengths per batch slot, as segmentPacket writes them. */
  readonly #segLens: Int32Array;
  readonly #ciphers: SlotCiphers;
  readonly #staged = new StagedPackets(MAX_PEERS);
  readonly #allowed: AllowedIpsMirror;
  /** The packet filter's outbound side: flows we open, so that the decrypt worker lets their replies in. */
  readonly #tracker: ConnTracker;
  readonly #outbound = new ParsedPacket();
  readonly #filterOn: boolean;
  /** The aes0 → wg0 hand-off channel, when this device is one of its ends: wg0's (outer) or aes0's. */
  readonly #handoff: HandoffChannel | null;
  readonly #handoffOuter: boolean;
  /** aes0's path: wg0's path when it runs in this worker too (it seals aes0's datagrams by a call, no ring). */
  #pairedOuter: EncryptPath | null = null;
  /** wg0's path: true when aes0's path runs in this worker (it calls {@link sealFromInner}; no ring to poll). */
  #pairedInner = false;
  /** When staged packets and keepalives were last serviced. */
  #lastControl = 0;
  readonly #handoffEntry: HandoffEntry = { len: 0, addrLen: 0 };
  readonly #handoffAddr = new Uint8Array(32);
  /** IPv4 identification of the next handed-off packet. */
  #ipId = 0;
  readonly #tunFd: number;
  readonly #wakeFd: number;
  /** Messages in the batch. */
  #n = 0;

  constructor(init: WorkerInit, post: (event: WorkerEvent) => void) {
    this.#init = init;
    this.#post = post;
    this.#shared = new SharedState(init.sab);
    this.#vnetHdr = Atomics.load(this.#shared.header, DeviceWord.tunVnetHdr) === 1;
    this.#batchSize = this.#vnetHdr ? OFFLOAD_BATCH : BATCH;
    // With offloads one more slot is the super-packet scratch: one backing makes segmentation's copies memmoves.
    const slots = this.#vnetHdr ? OFFLOAD_BATCH + 1 : BATCH;
    this.#gso = Atomics.load(this.#shared.header, DeviceWord.udpOffloads) === 1
      ? new GsoSender(slots, BUF_SIZE)
      : null;
    this.#batch = this.#gso?.batch ?? new MsgBatch(slots, BUF_SIZE);
    this.#readViews = this.#batch.bufs.map((b) => b.subarray(HEADER));
    this.#superPacket = this.#vnetHdr ? this.#batch.bufs[OFFLOAD_BATCH] : new Uint8Array(0);
    this.#segLens = new Int32Array(this.#batchSize);
    this.#ciphers = new SlotCiphers(this.#shared, getAead(init.aead as AeadName), "send");
    this.#allowed = new AllowedIpsMirror(this.#shared);
    this.#tracker = new ConnTracker(init.tracker, init.trackerBuckets);
    this.#filterOn = init.packetFilter;
    this.#tunFd = Atomics.load(this.#shared.header, DeviceWord.tunFd);
    this.#wakeFd = Atomics.load(this.#shared.header, DeviceWord.wakeFd);
    this.#handoff = init.handoff ? new HandoffChannel(init.handoff.sab) : null;
    this.#handoffOuter = init.handoff?.role === "outer";
    this.handoffEnd = this.#handoff && init.handoff
      ? { channel: this.#handoff.id, role: init.handoff.role }
      : null;
  }

  stopRequested(): boolean {
    return Atomics.load(this.#shared.header, DeviceWord.stop) !== 0;
  }

  pairWith(other: DevicePath | null): void {
    if (this.#handoffOuter) this.#pairedInner = other !== null;
    else this.#pairedOuter = other instanceof EncryptPath ? other : null;
  }

  arm(poll: PollSet, at: number): void {
    poll.set(at + Entry.tun, this.#tunFd, POLLIN);
    poll.set(at + Entry.wake, this.#wakeFd, POLLIN);
    const ring = this.#handoffOuter && !this.#pairedInner ? this.#handoff!.wakeFd(HandoffDirection.send) : -1;
    poll.set(at + Entry.handoff, ring, POLLIN);
  }

  /** One turn: control work when woken or due, the hand-off ring, then the TUN; false when the TUN is gone. */
  service(poll: PollSet, at: number, ready: boolean, now: number): boolean {
    this.#allowed.sync();
    if (ready && (poll.revents(at + Entry.wake) & POLLIN)) {
      drainEventFd(this.#wakeFd);
      this.#serviceControl(now);
    } else if (now - this.#lastControl >= CONTROL_INTERVAL_MS) this.#serviceControl(now);
    if (!ready) return true;
    if (poll.revents(at + Entry.handoff) & POLLIN) {
      this.#handoff!.clearWake(HandoffDirection.send);
      if (!this.#sealHandedOff(now)) this.#handoff!.wake(HandoffDirection.send); // more: after the TUN's turn
      this.#flush();
    }
    const tunRevents = poll.revents(at + Entry.tun);
    if (tunRevents & ~POLLIN) return false; // POLLERR/POLLHUP/POLLNVAL: the interface is gone
    if (!(tunRevents & POLLIN)) return true;
    const end = this.#vnetHdr ? this.#readSuperPackets(now) : this.#readTun(now);
    this.#flush();
    return end !== ReadEnd.closed;
  }

  finish(): void {
    this.#flush();
    this.#ciphers.freeAll();
  }

  /** Reads packets from the TUN into the batch and sends each on its way, until the TUN is empty. */
  #readTun(now: number): ReadEnd {
    for (let k = 0; k < READS_PER_WAKE; k++) {
      const len = libc.read(this.#tunFd, this.#readViews[this.#n], READ_MAX);
      if (len <= 0) {
        if (len < 0 && errno() !== EAGAIN && errno() !== EINTR) return ReadEnd.closed;
        return ReadEnd.drained;
      }
      this.#observeOutbound(this.#n, len, now);
      this.#routeAndSeal(this.#n, len, now);
    }
    return ReadEnd.drained;
  }

  /**
   * Reads (super-)packets with their virtio_net_hdr, cuts each into segments in the free batch slots,
   * and routes and seals them; until the TUN is empty.
   */
  #readSuperPackets(now: number): ReadEnd {
    const scratch = this.#superPacket;
    for (let k = 0; k < SUPER_READS_PER_WAKE; k++) {
      const len = libc.read(this.#tunFd, scratch, this.#superRead);
      if (len <= 0) {
        if (len < 0 && errno() !== EAGAIN && errno() !== EINTR) return ReadEnd.closed;
        return ReadEnd.drained;
      }
      const count = this.#segment(len - VIRTIO_NET_HDR_LEN);
      if (count <= 0) continue;
      const first = this.#n;
      for (let i = first; i < first + count; i++) this.#observeOutbound(i, this.#segLens[i], now);
      const peer = this.#route(this.#batch.bufs[first], this.#segLens[first]);
      if (peer < 0) {
        this.#shared.stats[StatIndex.txNoRoute] += count - 1; // #route counted the first
        continue;
      }
      this.#sealSegments(first, count, peer, now);
    }
    return ReadEnd.drained;
  }

  /**
   * Cuts the packet read into the scratch buffer (`len` bytes after its header) into batch slots
   * from the next free one, flushing first when they do not fit. Returns the segment count (0: the
   * header contradicted the packet; dropped and counted).
   */
  #segment(len: number): number {
    if (len <= 0) {
      this.#shared.stats[StatIndex.txBadOffload]++;
      return 0;
    }
    readVirtioNetHdr(this.#superPacket, 0, this.#vnet);
    let count = this.#cut(len);
    if (count === SegmentError.TooManySegments && this.#n > 0) {
      this.#flush();
      count = this.#cut(len);
    }
    if (count <= 0) {
      this.#shared.stats[StatIndex.txBadOffload]++;
      return 0;
    }
    return count;
  }

  /** segmentPacket of the scratch buffer's packet into the free batch slots. */
  #cut(len: number): number {
    return segmentPacket(
      this.#vnet,
      this.#superPacket,
      VIRTIO_NET_HDR_LEN,
      len,
      this.#batch.bufs,
      HEADER,
      this.#segLens,
      this.#n,
      this.#batchSize - this.#n,
    );
  }

  /**
   * Seals the `count` segments in batch slots `first…` (the next free ones) for `peer`. They share
   * the peer and its keypair, so when one cannot be sealed the rest are staged (no keypair) or
   * dropped alike.
   */
  #sealSegments(first: number, count: number, peer: number, now: number): void {
    for (let i = first; i < first + count; i++) {
      if (!this.#seal(i, peer, this.#segLens[i], now)) {
        for (let j = i; j < first + count; j++) this.#stageIfNoKeys(j, peer, this.#segLens[j]);
        break;
      }
      this.#n++;
    }
    if (this.#n === this.#batchSize) this.#flush();
  }

  /**
   * wg0's end of the hand-off, called by aes0's path in the same worker (no ring): puts the datagram
   * `src[0, len)` for the sockaddr `endpoint` behind the IP + UDP header into the next batch slot and
   * routes and seals it like a TUN read. {@link flushFromInner} sends what it sealed.
   */
  sealFromInner(src: Uint8Array, len: number, endpoint: Uint8Array, now: number): void {
    const local = this.#handoff!.local();
    const i = this.#n;
    this.#batch.bufs[i].set(src.subarray(0, len), handedOffAt(local));
    this.#sealHandedOffSlot(i, local, endpoint, len, now);
  }

  /** Sends what {@link sealFromInner} sealed. */
  flushFromInner(): void {
    this.#flush();
  }

  /**
   * Writes the IP + UDP header in front of the datagram of `len` bytes already in batch slot `i`
   * (the next free one), from `local` to the sockaddr `endpoint`, and routes and seals the packet like
   * a TUN read.
   */
  #sealHandedOffSlot(i: number, local: HandoffLocal, endpoint: Uint8Array, len: number, now: number): void {
    const buf = this.#batch.bufs[i];
    // aes0 held its datagrams to wg0's MTU; MAX_IP_PACKET only bounds the header's lengths.
    const header = writeHandoffHeader(buf, HEADER, local, endpoint, 0, len, this.#ipId, MAX_IP_PACKET);
    this.#ipId = (this.#ipId + 1) & 0xffff;
    if (header < 0) {
      this.#shared.stats[StatIndex.txNoRoute]++;
      return;
    }
    this.#observeOutbound(i, header + len, now);
    this.#routeAndSeal(i, header + len, now);
  }

  /**
   * wg0's end of the hand-off: puts each of aes0's datagrams (up to {@link HANDOFF_TAKES_PER_WAKE})
   * behind the IP + UDP header to its endpoint and routes and seals it like a TUN read. True when the
   * ring is empty.
   */
  #sealHandedOff(now: number): boolean {
    const ch = this.#handoff!;
    if (!ch.attached) {
      ch.discard(HandoffDirection.send); // aes0 is gone: what it left would go nowhere
      return true;
    }
    const local = ch.local();
    const entry = this.#handoffEntry;
    const at = handedOffAt(local);
    for (let k = 0; k < HANDOFF_TAKES_PER_WAKE; k++) {
      const i = this.#n;
      const buf = this.#batch.bufs[i];
      if (!ch.take(HandoffDirection.send, buf, at, this.#handoffAddr, entry)) {
        ch.notifyRoom(HandoffDirection.send);
        return true;
      }
      this.#sealHandedOffSlot(i, local, this.#handoffAddr, entry.len, now);
    }
    ch.notifyRoom(HandoffDirection.send);
    return false;
  }

  /**
   * aes0's end of the hand-off: hands the batch's datagrams, from the first, to wg0's send path — by a
   * call when it runs in this worker, else through the send ring, waking its worker — and returns how
   * many it took (the rest take the socket: an endpoint of another family, or a ring still full). A
   * datagram that would exceed wg0's MTU is dropped and counted as a send error, as the kernel refuses
   * it (EMSGSIZE).
   */
  #handOff(n: number): number {
    const ch = this.#handoff!;
    const batch = this.#batch;
    const stats = this.#shared.stats;
    const local = ch.local();
    const mtu = ch.outerMtu;
    const outer = this.#pairedOuter;
    const now = outer === null ? 0 : Date.now();
    let i = 0;
    for (; i < n; i++) {
      const len = batch.lens[i];
      const header = handoffHeaderLength(local, batch.addrs[i], 0);
      if (header < 0) break;
      if (mtu > 0 && header + len > mtu) {
        stats[StatIndex.txSendErrors]++;
        continue;
      }
      if (outer !== null) outer.sealFromInner(batch.bufs[i], len, batch.addrs[i], now);
      else if (
        !ch.pushOrWait(HandoffDirection.send, batch.addrs[i], batch.addrLens[i], batch.bufs[i], 0, len)
      ) {
        break;
      }
      stats[StatIndex.txPackets]++;
    }
    if (outer !== null) outer.flushFromInner();
    else if (i > 0) ch.wake(HandoffDirection.send);
    return i;
  }

  /** Tells the connection tracker about a flow this packet (batch slot `i`) opens or continues. */
  #observeOutbound(i: number, len: number, now: number): void {
    const buf = this.#batch.bufs[i];
    if (
      this.#filterOn && parsePacket(buf, HEADER, len, this.#outbound, ParseMode.strict) === ParseStatus.ok
    ) {
      this.#tracker.observeOutbound(buf, this.#outbound, now);
    }
  }

  /** The peer whose allowed IPs hold the destination of the packet at `buf[HEADER…]`, or -1. */
  #route(buf: Uint8Array, len: number): number {
    const version = buf[HEADER] >> 4;
    let peer = -1;
    if (version === 4 && len >= 20) peer = this.#allowed.table.lookup(buf, HEADER + 16, 4);
    else if (version === 6 && len >= 40) peer = this.#allowed.table.lookup(buf, HEADER + 24, 6);
    if (peer < 0 || !this.#allowed.routesTo(peer)) {
      this.#shared.stats[StatIndex.txNoRoute]++;
      return -1;
    }
    return peer;
  }

  /** Routes the packet in batch slot `i` (the next free one) and seals it there, or stages it. */
  #routeAndSeal(i: number, len: number, now: number): void {
    const buf = this.#batch.bufs[i];
    const peer = this.#route(buf, len);
    if (peer < 0) return;
    this.#sealOrStage(i, peer, len, now);
  }

  /** Seals slot `i` (the next free one) for `peer` and adds it to the batch; stages it while keys are missing. */
  #sealOrStage(i: number, peer: number, len: number, now: number): void {
    if (!this.#seal(i, peer, len, now)) {
      this.#stageIfNoKeys(i, peer, len);
      return;
    }
    this.#n++;
    if (this.#n === this.#batchSize) this.#flush();
  }

  /** Stages the packet in slot `i` when `peer` has no usable keypair (else it is dropped). */
  #stageIfNoKeys(i: number, peer: number, len: number): void {
    const shared = this.#shared;
    const current = shared.peerGet(peer, PeerWord.current);
    if (current < 0 || shared.kpGet(current, KeypairWord.state) !== SlotState.valid) {
      if (this.#staged.stage(peer, this.#allowed.generationOf(peer), this.#batch.bufs[i], HEADER, len)) {
        shared.stats[StatIndex.txStagedDropped]++;
      }
    }
  }

  #requestHandshake(peer: number): void {
    if (this.#shared.peerCas(peer, PeerWord.needHandshake, 0, 1) === 0) {
      this.#post({ t: "handshake", peer });
    }
  }

  /** The peer's usable sending keypair slot, or -1 (and a handshake is requested). */
  #sendingSlot(peer: number, now: number): number {
    const shared = this.#shared;
    const slot = shared.peerGet(peer, PeerWord.current);
    if (slot < 0 || shared.kpGet(slot, KeypairWord.state) !== SlotState.valid) {
      this.#requestHandshake(peer);
      return -1;
    }
    const age = now - shared.kpF64[shared.kf(slot, KeypairUsage.created)];
    const counter = shared.kpF64[shared.kf(slot, KeypairUsage.sendCounter)];
    if (age >= REJECT_AFTER_TIME || counter >= REJECT_AFTER_MESSAGES) {
      this.#requestHandshake(peer);
      return -1;
    }
    if (
      (shared.kpGet(slot, KeypairWord.isInitiator) === 1 && age >= this.#init.rekeyAfterMs) ||
      counter >= REKEY_AFTER_MESSAGES
    ) this.#requestHandshake(peer);
    return slot;
  }

  /** Seals the packet in batch slot `i` (plaintext at HEADER, `len` bytes) for `peer`; false if not sent. */
  #seal(i: number, peer: number, len: number, now: number): boolean {
    const shared = this.#shared;
    const batch = this.#batch;
    const slot = this.#sendingSlot(peer, now);
    if (slot < 0) return false;
    const ci = shared.kf(slot, KeypairUsage.sendCounter);
    const counter = shared.kpF64[ci];
    shared.kpF64[ci] = counter + 1;
    const total = sealTransport(
      this.#ciphers.get(slot),
      batch.bufs[i],
      len,
      shared.kpGet(slot, KeypairWord.remoteIndex),
      counter,
      Atomics.load(shared.header, DeviceWord.mtu),
    );
    const alen = shared.readEndpoint(peer, batch.addrs[i], 0);
    if (alen === 0) {
      shared.stats[StatIndex.txNoEndpoint]++;
      return false;
    }
    batch.addrLens[i] = alen;
    batch.lens[i] = total;
    const pf = shared.pf(peer, 0);
    shared.peerF64[pf + PeerTraffic.txBytes] += total;
    shared.peerF64[pf + PeerTraffic.lastAuthSent] = now;
    if (len > 0) shared.peerF64[pf + PeerTraffic.lastDataSent] = now;
    return true;
  }

  /** Sends the batch: as UDP GSO runs where the socket takes them, else (or for the rest) with sendmmsg. */
  #flush(): void {
    const n = this.#n;
    if (n === 0) return;
    this.#n = 0;
    const shared = this.#shared;
    const udpFd = Atomics.load(shared.header, DeviceWord.udpFd);
    let from = 0;
    if (this.#handoff !== null && !this.#handoffOuter && this.#handoff.attached) {
      from = this.#handOff(n);
      if (from === n) return;
    }
    if (from === 0 && this.#gso !== null && n > 1 && this.#gso.usable(udpFd)) {
      const out = this.#gso.send(udpFd, n);
      shared.stats[StatIndex.txPackets] += out.sent;
      from = out.sent;
      if (from < n && !out.refused) {
        shared.stats[StatIndex.txSendErrors] += n - from;
        return;
      }
    }
    this.#sendEach(udpFd, from, n);
  }

  /** Sends messages from..n-1 with sendmmsg, waiting briefly while the socket buffer is full. */
  #sendEach(udpFd: number, from: number, n: number): void {
    const stats = this.#shared.stats;
    const reached = sendWithBackpressure(this.#batch, udpFd, from, n);
    stats[StatIndex.txPackets] += reached - from;
    if (reached < n) stats[StatIndex.txSendErrors] += n - reached;
  }

  /** Sends staged packets and pending keepalives for peers that now have keys. */
  #serviceControl(now: number): void {
    this.#lastControl = now;
    const shared = this.#shared;
    for (let peer = 0; peer < MAX_PEERS; peer++) {
      if (shared.peerGet(peer, PeerWord.active) !== 1) {
        this.#staged.keepOnly(peer, -1);
        continue;
      }
      this.#staged.keepOnly(peer, shared.peerGet(peer, PeerWord.generation)); // a new peer starts empty
      this.#sendStaged(peer, now);
      if (shared.peerCas(peer, PeerWord.keepalivePending, 1, 0) === 1) {
        if (this.#n === this.#batchSize) this.#flush();
        if (this.#seal(this.#n, peer, 0, now)) this.#n++;
      }
    }
    this.#flush();
  }

  /** Seals the packets staged for `peer` while it has a current keypair. */
  #sendStaged(peer: number, now: number): void {
    const staged = this.#staged;
    if (staged.count(peer) === 0 || this.#shared.peerGet(peer, PeerWord.current) < 0) return;
    while (staged.count(peer) > 0) {
      if (this.#n === this.#batchSize) this.#flush();
      const len = staged.peek(peer, this.#batch.bufs[this.#n], HEADER);
      if (!this.#seal(this.#n, peer, len, now)) break;
      this.#n++;
      staged.shift(peer);
    }
  }
}

hostDevicePaths((init, post) => new EncryptPath(init, post));
