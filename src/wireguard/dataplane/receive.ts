/**
 * Data-plane worker: UDP → decrypt → TUN, the receive path (wireguard-go's receive.go). The worker
 * serves the receive path of every device attached to it (worker-loop.ts: wg0's and aes0's in
 * `twofold up`) and blocks in one `poll` on their UDP sockets; a path receives a batch with one
 * `recvmmsg` and dispatches each message by type. A transport message finds its keypair from the receiver index, is opened in place, passes
 * the replay window, roams the endpoint, and its inner packet is checked against the sending peer's
 * allowed IPs and the packet filter before it is written to the TUN. Handshake messages are admitted
 * here (admission.ts: mac1, and under load mac2 with cookie replies sent from this worker, a
 * per-source rate limit and a bounded queue) before the few that deserve Noise work are passed to the
 * control plane, so a handshake flood never reaches its event loop. Every rejected packet is dropped
 * and counted, never thrown.
 *
 * With TUN offloads (the TUN carries a virtio_net_hdr; docs/offload.md) the packets a receive batch
 * delivers are written after the batch, coalesced (coalesce.ts) into super-packets of one flow where
 * the kernel's GRO rules allow, each write with its header; the filter has decided every packet
 * before it is coalesced.
 *
 * With the aes0 → wg0 hand-off (handoff-channel.ts, docs/offload.md) wg0's path hands what the kernel
 * would deliver to aes0's socket (checked as the kernel would) to aes0's path, not the TUN: by a call
 * when both paths share this worker (as in `twofold up`), else through the receive ring, whose eventfd
 * wakes aes0's worker. aes0's path dispatches those datagrams as if `recvmmsg` had brought them.
 * @module
 */
/// <reference lib="deno.worker" />
import { bigLen, libc, POLLIN } from "../../../ffi/libc.ts";
import type { PollSet } from "../../../ffi/poll.ts";
import { MsgBatch } from "../../../ffi/udp.ts";
import { enableUdpGro, OffloadMsgBatch } from "../../../ffi/udp-offload.ts";
import { copyBytes } from "../offload/copy-sum.ts";
import { getAead } from "../../crypto/backend.ts";
import type { AeadName } from "../../crypto/aead.ts";
import { ReplayFilter } from "../replay.ts";
import {
  openTransport,
  TRANSPORT_HEADER,
  TRANSPORT_TAG,
  transportCounter,
  transportReceiver,
} from "../transport-message.ts";
import { SlotState } from "../keypair-slots.ts";
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_TIME_RECEIVING } from "../constants.ts";
import {
  DeviceWord,
  KeypairUsage,
  KeypairWord,
  MAX_KEYPAIRS,
  MAX_PEERS,
  PeerTraffic,
  PeerWord,
  SharedState,
  SLOT_MASK,
  StatIndex,
} from "./shared-state.ts";
import { ConnTracker } from "../../filter/conn-tracker.ts";
import { DropEventLimiter } from "../../filter/drop-events.ts";
import { FragmentTable } from "../../filter/fragment-table.ts";
import { PacketFilter } from "../../filter/packet-filter.ts";
import { TableReader } from "../../filter/table-exchange.ts";
import { DropReason } from "../../filter/verdict.ts";
import { FILTER_TABLE_READER, type WorkerEvent, type WorkerInit } from "./worker-protocol.ts";
import { AllowedIpsMirror, SlotCiphers } from "./worker-common.ts";
import { type DevicePath, type HandoffEnd, hostDevicePaths, IDLE_POLL_MS } from "./worker-loop.ts";
import { HandshakeIntake } from "./handshake-intake.ts";
import { GroBatch } from "../offload/coalesce.ts";
import { VIRTIO_NET_HDR_LEN, writePlainVirtioNetHdr } from "../offload/virtio-net-hdr.ts";
import { TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6 } from "../../../ffi/tun.ts";
import { HandoffChannel, HandoffDirection, type HandoffEntry } from "./handoff-channel.ts";
import { HandoffDatagram, HandoffReceive, readHandoffDatagram } from "./handoff-packet.ts";

/** Where a message's plaintext starts in a batch buffer (after the transport header). */
const HEADER = TRANSPORT_HEADER;
/** The AEAD tag after the body. */
const TAG = TRANSPORT_TAG;
const BATCH = 32;
const BUF_SIZE = 65536;
/**
 * Message buffers for the datagrams of UDP GRO slots: each is opened (and maybe coalesced into) in
 * its own buffer; when all are in use the held packets are written first.
 */
const SPLIT_BUFFERS = 32;
/** Most recvmmsg rounds per wake-up before poll is asked again (and shared state re-synced). */
const ROUNDS_PER_WAKE = 8;
/** Poll entries of a path: its UDP socket and (aes0 with an unpaired hand-off) the receive ring's eventfd. */
const enum Entry {
  udp = 0,
  handoff = 1,
}
const POLL_ENTRIES = 2;
/** The stats counter of each filter drop reason (indexed by DropReason code; `none` never counts). */
const DROP_REASON_STATS = new Int32Array(5);
DROP_REASON_STATS[DropReason.lockdown] = StatIndex.filterLockdown;
DROP_REASON_STATS[DropReason.policy] = StatIndex.filterPolicy;
DROP_REASON_STATS[DropReason.malformed] = StatIndex.filterMalformed;
DROP_REASON_STATS[DropReason.fragment] = StatIndex.filterFragment;

/** The receive path of one device: its buffers, its view of the shared state and its steps. */
class DecryptPath implements DevicePath {
  readonly pollEntries = POLL_ENTRIES;
  readonly handoffEnd: HandoffEnd | null;
  readonly #post: (event: WorkerEvent) => void;
  readonly #shared: SharedState;
  /** The receive batch: with UDP offloads an OffloadMsgBatch (a slot may hold several datagrams). */
  readonly #batch: MsgBatch | OffloadMsgBatch;
  /** Per batch slot, the UDP GRO datagram size (0: one datagram); null without UDP offloads. */
  readonly #groSizes: Int32Array | null;
  /** Message buffers: the batch slots, then (with UDP offloads) the {@link SPLIT_BUFFERS}. */
  readonly #msgBufs: Uint8Array[];
  /** Split buffers in use in this receive batch. */
  #splitUsed = 0;
  /** The batch slot the message being handled arrived in (its source address). */
  #from = 0;
  readonly #tunViews: Uint8Array[];
  readonly #replay: ReplayFilter[] = Array.from({ length: MAX_KEYPAIRS }, () => new ReplayFilter());
  readonly #ciphers: SlotCiphers;
  readonly #allowed: AllowedIpsMirror;
  readonly #tables: TableReader;
  readonly #filter: PacketFilter;
  readonly #dropEvents = new DropEventLimiter();
  readonly #filterOn: boolean;
  /** Slot generations the drop-event limiter counted for (a new peer in a slot starts fresh). */
  readonly #eventGenerations = new Int32Array(MAX_PEERS);
  /** The UDP socket in use (-1 until the control plane publishes one). */
  #udpFd = -1;
  /** When idle rate-limiter entries were last forgotten. */
  #lastGc = 0;
  /** The aes0 → wg0 hand-off channel, when this device is one of its ends: wg0's (outer) or aes0's. */
  readonly #handoff: HandoffChannel | null;
  readonly #handoffOuter: boolean;
  /** wg0's path: aes0's path when it runs in this worker too (it gets aes0's datagrams by a call, no ring). */
  #pairedInner: DecryptPath | null = null;
  /** aes0's path: batch slots taken by {@link receiveFromOuter} since the last {@link finishFromOuter}. */
  #fromOuter = 0;
  /** aes0's path: true when wg0's path runs in this worker (it calls {@link receiveFromOuter}; no ring to poll). */
  #pairedOuter = false;
  readonly #handoffDatagram = new HandoffDatagram();
  readonly #handoffEntry: HandoffEntry = { len: 0, addrLen: 0 };
  readonly #handoffSource = new Uint8Array(32);
  /** Datagrams wg0 put on the receive ring in this receive batch (aes0's worker is woken after it). */
  #handedOff = 0;
  readonly #tunFd: number;
  /** Whether every TUN write starts with a virtio_net_hdr (the TUN was opened with offloads). */
  readonly #vnetHdr: boolean;
  /** The coalescer, when the TUN takes TCP super-packets (else packets are written one by one). */
  readonly #gro: GroBatch | null;
  /** TUN writes from the virtio_net_hdr in front of each slot's packet. */
  readonly #vnetViews: Uint8Array[];
  /** Packets of the current receive batch waiting for coalescing: their batch slots, buffers, lengths. */
  readonly #pendingSlots = new Int32Array(BATCH + SPLIT_BUFFERS);
  readonly #pendingBufs: Uint8Array[] = new Array(BATCH + SPLIT_BUFFERS);
  readonly #pendingLens = new Int32Array(BATCH + SPLIT_BUFFERS);
  #pending = 0;
  readonly #handshakes: HandshakeIntake;

  constructor(init: WorkerInit, post: (event: WorkerEvent) => void) {
    this.#post = post;
    this.#shared = new SharedState(init.sab);
    this.#handshakes = new HandshakeIntake(this.#shared, post, BATCH);
    if (Atomics.load(this.#shared.header, DeviceWord.udpOffloads) === 1) {
      // One backing for the batch and the split buffers: copies between them are memmoves.
      const batchBytes = (OffloadMsgBatch.byteLength(BATCH, BUF_SIZE) + 7) & ~7;
      const sab = new SharedArrayBuffer(batchBytes + SPLIT_BUFFERS * BUF_SIZE);
      const batch = new OffloadMsgBatch(BATCH, BUF_SIZE, sab, 0);
      this.#batch = batch;
      this.#groSizes = batch.segSizes;
      this.#msgBufs = [
        ...batch.bufs,
        ...Array.from(
          { length: SPLIT_BUFFERS },
          (_, k) => new Uint8Array(sab, batchBytes + k * BUF_SIZE, BUF_SIZE),
        ),
      ];
    } else {
      this.#batch = new MsgBatch(BATCH, BUF_SIZE);
      this.#groSizes = null;
      this.#msgBufs = this.#batch.bufs;
    }
    this.#tunViews = this.#msgBufs.map((b) => b.subarray(HEADER));
    this.#vnetViews = this.#msgBufs.map((b) => b.subarray(HEADER - VIRTIO_NET_HDR_LEN));
    this.#ciphers = new SlotCiphers(
      this.#shared,
      getAead(init.aead as AeadName),
      "receive",
      (slot) => this.#replay[slot].reset(),
    );
    this.#allowed = new AllowedIpsMirror(this.#shared);
    this.#tables = new TableReader(init.filterTables, FILTER_TABLE_READER.decrypt);
    this.#filter = new PacketFilter({
      rules: this.#tables,
      tracker: new ConnTracker(init.tracker, init.trackerBuckets),
      fragments: new FragmentTable(undefined, crypto.getRandomValues(new Int32Array(1))[0]),
    });
    this.#filterOn = init.packetFilter;
    this.#tunFd = Atomics.load(this.#shared.header, DeviceWord.tunFd);
    this.#vnetHdr = Atomics.load(this.#shared.header, DeviceWord.tunVnetHdr) === 1;
    const bits = Atomics.load(this.#shared.header, DeviceWord.tunOffloadBits);
    this.#gro = this.#vnetHdr && (bits & (TUN_F_TSO4 | TUN_F_TSO6)) === (TUN_F_TSO4 | TUN_F_TSO6)
      ? new GroBatch(BATCH + SPLIT_BUFFERS, {
        udp: (bits & (TUN_F_USO4 | TUN_F_USO6)) === (TUN_F_USO4 | TUN_F_USO6),
      })
      : null;
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
    if (this.#handoffOuter) this.#pairedInner = other instanceof DecryptPath ? other : null;
    else this.#pairedOuter = other !== null;
  }

  /** Polls the device's current socket (turning UDP GRO on for a new one) and, unpaired aes0, the ring. */
  arm(poll: PollSet, at: number): void {
    const fd = Atomics.load(this.#shared.header, DeviceWord.udpFd);
    if (fd !== this.#udpFd) {
      this.#udpFd = fd;
      if (this.#groSizes !== null && fd >= 0) enableUdpGro(fd); // refused: datagrams come one by one
    }
    poll.set(at + Entry.udp, fd, POLLIN);
    const unpairedInner = this.#handoff !== null && !this.#handoffOuter && !this.#pairedOuter;
    poll.set(
      at + Entry.handoff,
      unpairedInner ? this.#handoff!.wakeFd(HandoffDirection.receive) : -1,
      POLLIN,
    );
  }

  /** One turn: re-sync the shared state, then the hand-off ring and the socket when poll says so. */
  service(poll: PollSet, at: number, ready: boolean, now: number): boolean {
    this.#allowed.sync();
    this.#tables.sync();
    this.#handshakes.syncIdentity();
    if (now - this.#lastGc >= IDLE_POLL_MS) { // forget rate-limiter entries of sources gone quiet
      this.#handshakes.gc();
      this.#lastGc = now;
    }
    if (!ready) return true;
    if (poll.revents(at + Entry.handoff) & POLLIN) {
      this.#handoff!.clearWake(HandoffDirection.receive);
      this.#receiveHandedOff();
    }
    const udpFd = this.#udpFd;
    if (udpFd < 0 || poll.revents(at + Entry.udp) === 0) return true;
    for (let round = 0; round < ROUNDS_PER_WAKE; round++) {
      if (this.#receiveBatch(udpFd) < BATCH) break;
    }
    return true;
  }

  finish(): void {
    this.#ciphers.freeAll();
    this.#tables.close();
  }

  /** One recvmmsg and the dispatch of what it brought; returns how many datagrams (≤ 0: none). */
  #receiveBatch(udpFd: number): number {
    const got = this.#batch.recv(udpFd);
    if (got <= 0) return got;
    const now = Date.now();
    const groSizes = this.#groSizes;
    this.#splitUsed = 0;
    for (let i = 0; i < got; i++) {
      this.#from = i;
      const len = this.#batch.lens[i];
      if (groSizes !== null && groSizes[i] > 0 && groSizes[i] < len) {
        this.#dispatchSplit(i, len, groSizes[i], now);
      } else this.#dispatch(i, len, now);
    }
    if (this.#pending > 0) this.#flushCoalesced();
    this.#handshakes.flushReplies(udpFd);
    if (this.#handedOff > 0) {
      this.#handedOff = 0;
      if (this.#pairedInner !== null) this.#pairedInner.finishFromOuter();
      else this.#handoff!.wake(HandoffDirection.receive);
    }
    return got;
  }

  /**
   * aes0's end of the hand-off, called by wg0's path in the same worker (no ring): dispatches the
   * datagram `src[at, at + len)` from the sockaddr `source[0, sourceLen)` as if `recvmmsg` had brought
   * it, in the next of the batch slots; {@link finishFromOuter} ends the batch.
   */
  receiveFromOuter(
    src: Uint8Array,
    at: number,
    len: number,
    source: Uint8Array,
    sourceLen: number,
    now: number,
  ): void {
    if (this.#fromOuter === BATCH) this.finishFromOuter();
    const k = this.#fromOuter++;
    const batch = this.#batch;
    this.#msgBufs[k].set(src.subarray(at, at + len));
    const addr = batch.addrs[k];
    for (let b = 0; b < sourceLen; b++) addr[b] = source[b];
    batch.addrLens[k] = sourceLen;
    this.#from = k;
    this.#dispatch(k, len, now);
  }

  /** Ends a batch of {@link receiveFromOuter}: coalesced TUN writes and cookie replies go out, the slots are free. */
  finishFromOuter(): void {
    if (this.#pending > 0) this.#flushCoalesced();
    this.#handshakes.flushReplies(this.#udpFd);
    this.#fromOuter = 0;
  }

  /**
   * aes0's end of the hand-off through the ring (wg0's path in another worker): dispatches the
   * datagrams on the receive ring a batch at a time (up to {@link ROUNDS_PER_WAKE} batches), as if
   * `recvmmsg` had brought them. True when the ring is empty; a ring left non-empty wakes us again
   * after the socket's turn.
   */
  #receiveHandedOff(): boolean {
    const ch = this.#handoff!;
    const udpFd = this.#udpFd;
    const batch = this.#batch;
    const entry = this.#handoffEntry;
    const now = Date.now();
    for (let round = 0; round < ROUNDS_PER_WAKE; round++) {
      let got = 0;
      while (
        got < BATCH && ch.take(HandoffDirection.receive, this.#msgBufs[got], 0, batch.addrs[got], entry)
      ) {
        batch.addrLens[got] = entry.addrLen;
        this.#from = got;
        this.#dispatch(got, entry.len, now);
        got++;
      }
      ch.notifyRoom(HandoffDirection.receive);
      if (this.#pending > 0) this.#flushCoalesced();
      this.#handshakes.flushReplies(udpFd);
      if (got < BATCH) return true;
    }
    ch.wake(HandoffDirection.receive);
    return false;
  }

  /**
   * wg0's end of the hand-off: when the packet at batch slot `i` is a UDP datagram the kernel would
   * deliver to aes0's socket, it goes to aes0's receive path instead — by a call when that runs in this
   * worker, else on the receive ring (true: handed off, or dropped as the kernel would drop it; false:
   * it goes to the TUN, also when the ring is full).
   */
  #handOff(i: number, pktLen: number, now: number): boolean {
    const ch = this.#handoff!;
    if (!ch.attached) return false;
    const buf = this.#msgBufs[i];
    const dg = this.#handoffDatagram;
    switch (readHandoffDatagram(buf, HEADER, pktLen, ch.local(), dg, this.#handoffSource, 0)) {
      case HandoffReceive.notForAes0:
        return false;
      case HandoffReceive.dropped:
        this.#shared.stats[StatIndex.rxBadInnerPacket]++;
        return true;
      case HandoffReceive.datagram:
        if (this.#pairedInner !== null) {
          this.#pairedInner.receiveFromOuter(
            buf,
            dg.payloadAt,
            dg.payloadLen,
            this.#handoffSource,
            dg.sourceLen,
            now,
          );
        } else if (!this.#push(buf, dg)) return false; // still full: the kernel's path
        this.#shared.stats[StatIndex.rxPackets]++;
        this.#handedOff++;
        return true;
    }
  }

  /**
   * Puts an opened datagram for aes0 on the receive ring, waking aes0's worker and waiting while it
   * is full. False when there is still no room.
   */
  #push(buf: Uint8Array, dg: HandoffDatagram): boolean {
    const source = this.#handoffSource;
    return this.#handoff!.pushOrWait(
      HandoffDirection.receive,
      source,
      dg.sourceLen,
      buf,
      dg.payloadAt,
      dg.payloadLen,
    );
  }

  /**
   * Dispatches the datagrams UDP GRO put end to end in batch slot `slot` (`size` bytes each, the
   * last maybe shorter), each copied into a split buffer of its own first.
   */
  #dispatchSplit(slot: number, len: number, size: number, now: number): void {
    const src = this.#msgBufs[slot];
    for (let off = 0; off < len; off += size) {
      if (this.#splitUsed === SPLIT_BUFFERS) {
        if (this.#pending > 0) this.#flushCoalesced();
        this.#splitUsed = 0;
      }
      const m = BATCH + this.#splitUsed++;
      const msgLen = Math.min(size, len - off);
      copyBytes(src, off, msgLen, this.#msgBufs[m], 0);
      this.#dispatch(m, msgLen, now);
    }
  }

  /** Sends datagram `i` of the batch to the handler of its message type (or counts it malformed). */
  #dispatch(i: number, len: number, now: number): void {
    const stats = this.#shared.stats;
    const buf = this.#msgBufs[i];
    const type = buf[0];
    if (len < 4 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) {
      stats[StatIndex.rxMalformed]++;
    } else if (type === 4) {
      if (len >= HEADER + TAG) this.#receiveTransport(i, len, now);
      else stats[StatIndex.rxMalformed]++;
    } else if (type >= 1 && type <= 3) {
      const from = this.#from;
      this.#handshakes.handle(buf, len, type, this.#batch.addrs[from], this.#batch.addrLens[from]);
    } else {
      stats[StatIndex.rxMalformed]++;
    }
  }

  /** A transport message: open it, check its inner packet, and write that to the TUN. */
  #receiveTransport(i: number, len: number, now: number): void {
    const peer = this.#openTransport(i, len, now);
    if (peer < 0) return;
    const plainLen = len - HEADER - TAG;
    if (plainLen === 0) {
      this.#shared.stats[StatIndex.rxKeepalives]++;
      return;
    }
    const pktLen = this.#innerPacketLength(this.#msgBufs[i], plainLen, peer);
    if (pktLen < 0) return;
    if (!this.#filterInbound(this.#msgBufs[i], pktLen, peer, now)) return;
    this.#shared.peerF64[this.#shared.pf(peer, PeerTraffic.lastDataReceived)] = now;
    if (this.#handoffOuter && this.#handOff(i, pktLen, now)) return;
    if (this.#gro !== null) this.#holdForCoalescing(i, pktLen);
    else this.#writeTun(i, pktLen);
  }

  /**
   * Finds the keypair of transport message `i`, opens it in place, checks the replay window, roams
   * the peer's endpoint and updates the receive counters. Returns the peer, or -1 (dropped, counted).
   */
  #openTransport(i: number, len: number, now: number): number {
    const shared = this.#shared;
    const batch = this.#batch;
    const buf = this.#msgBufs[i];
    const receiver = transportReceiver(buf);
    const slot = receiver & SLOT_MASK;
    if (
      shared.kpGet(slot, KeypairWord.state) !== SlotState.valid ||
      (shared.kpGet(slot, KeypairWord.localIndex) >>> 0) !== receiver
    ) {
      shared.stats[StatIndex.rxUnknownIndex]++;
      return -1;
    }
    const counter = transportCounter(buf);
    const created = shared.kpF64[shared.kf(slot, KeypairUsage.created)];
    if (counter < 0 || counter >= REJECT_AFTER_MESSAGES || now - created >= REJECT_AFTER_TIME) {
      shared.stats[StatIndex.rxExpiredKey]++;
      return -1;
    }
    if (!openTransport(this.#ciphers.get(slot), buf, len, counter)) {
      shared.stats[StatIndex.rxAuthFailed]++;
      return -1;
    }
    if (!this.#replay[slot].validateCounter(counter, REJECT_AFTER_MESSAGES)) {
      shared.stats[StatIndex.rxReplay]++;
      return -1;
    }
    const peer = shared.kpGet(slot, KeypairWord.peer);
    const from = this.#from;
    const alen = batch.addrLens[from];
    if (!shared.endpointEquals(peer, batch.addrs[from], 0, alen)) {
      shared.writeEndpoint(peer, batch.addrs[from], 0, alen);
    }
    if (shared.peerGet(peer, PeerWord.next) === slot && shared.kpGet(slot, KeypairWord.confirmPosted) === 0) {
      shared.kpSet(slot, KeypairWord.confirmPosted, 1);
      this.#post({ t: "confirm", peer, slot });
    }
    const pf = shared.pf(peer, 0);
    shared.peerF64[pf + PeerTraffic.rxBytes] += len;
    shared.peerF64[pf + PeerTraffic.lastAuthReceived] = now;
    if (shared.kpGet(slot, KeypairWord.isInitiator) === 1 && now - created >= REKEY_AFTER_TIME_RECEIVING) {
      if (shared.peerCas(peer, PeerWord.needHandshake, 0, 1) === 0) {
        this.#post({ t: "handshake", peer });
      }
    }
    return peer;
  }

  /**
   * The length of the IP packet at `buf[HEADER…]` (from its own header) when it is well formed and
   * its source lies in `peer`'s allowed IPs; else -1 (dropped, counted).
   */
  #innerPacketLength(buf: Uint8Array, plainLen: number, peer: number): number {
    const stats = this.#shared.stats;
    const version = buf[HEADER] >> 4;
    let pktLen: number;
    let src: number;
    if (version === 4 && plainLen >= 20) {
      pktLen = (buf[HEADER + 2] << 8) | buf[HEADER + 3];
      if (pktLen < 20) pktLen = 0;
      src = this.#allowed.table.lookup(buf, HEADER + 12, 4);
    } else if (version === 6 && plainLen >= 40) {
      pktLen = 40 + ((buf[HEADER + 4] << 8) | buf[HEADER + 5]);
      src = this.#allowed.table.lookup(buf, HEADER + 8, 6);
    } else {
      stats[StatIndex.rxBadInnerPacket]++;
      return -1;
    }
    if (pktLen === 0 || pktLen > plainLen) {
      stats[StatIndex.rxBadInnerPacket]++;
      return -1;
    }
    if (src !== peer || !this.#allowed.routesTo(src)) {
      stats[StatIndex.rxSourceNotAllowed]++;
      return -1;
    }
    return pktLen;
  }

  /** The packet filter's inbound decision (always true without a filter); a drop is counted and reported. */
  #filterInbound(buf: Uint8Array, pktLen: number, peer: number, now: number): boolean {
    if (!this.#filterOn) return true;
    const verdict = this.#filter.decideInbound(buf, HEADER, pktLen, peer, now);
    if (verdict.accept) return true;
    const shared = this.#shared;
    shared.stats[DROP_REASON_STATS[verdict.reason]]++;
    const gen = shared.peerGet(peer, PeerWord.generation);
    if (this.#eventGenerations[peer] !== gen) {
      this.#dropEvents.resetSlot(peer);
      this.#eventGenerations[peer] = gen;
    }
    const count = this.#dropEvents.note(peer, verdict.reason, now);
    if (count > 0) this.#post({ t: "filter-drop", peer, reason: verdict.reason, count });
    return false;
  }

  /** Writes the packet at batch slot `i` (from HEADER, `pktLen` bytes) to the TUN, behind an all-zero header with offloads. */
  #writeTun(i: number, pktLen: number): void {
    const stats = this.#shared.stats;
    let written: number;
    if (this.#vnetHdr) {
      writePlainVirtioNetHdr(this.#msgBufs[i], HEADER - VIRTIO_NET_HDR_LEN);
      written = libc.write(this.#tunFd, this.#vnetViews[i], bigLen(VIRTIO_NET_HDR_LEN + pktLen));
    } else {
      written = libc.write(this.#tunFd, this.#tunViews[i], bigLen(pktLen));
    }
    if (written < 0) stats[StatIndex.tunWriteErrors]++;
    else stats[StatIndex.rxPackets]++;
  }

  /** Keeps the packet at batch slot `i` for {@link flushCoalesced} at the end of the receive batch. */
  #holdForCoalescing(i: number, pktLen: number): void {
    const k = this.#pending++;
    this.#pendingSlots[k] = i;
    this.#pendingBufs[k] = this.#msgBufs[i];
    this.#pendingLens[k] = pktLen;
  }

  /**
   * Coalesces the packets held from this receive batch and writes them, each behind its
   * virtio_net_hdr; the counters count the original packets.
   */
  #flushCoalesced(): void {
    const gro = this.#gro!;
    const stats = this.#shared.stats;
    const writes = gro.coalesce(this.#pendingBufs, HEADER, this.#pendingLens, this.#pending);
    for (let w = 0; w < writes; w++) {
      const k = gro.writeOrder[w];
      const view = this.#vnetViews[this.#pendingSlots[k]];
      const packets = gro.segmentsPerSlot[w];
      if (libc.write(this.#tunFd, view, bigLen(VIRTIO_NET_HDR_LEN + this.#pendingLens[k])) < 0) {
        stats[StatIndex.tunWriteErrors] += packets;
      } else {
        stats[StatIndex.rxPackets] += packets;
      }
    }
    this.#pending = 0;
  }
}

hostDevicePaths((init, post) => new DecryptPath(init, post));
