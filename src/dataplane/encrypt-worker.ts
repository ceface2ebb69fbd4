/**
 * Data-plane worker: TUN → encrypt → UDP. Runs in its own thread and blocks in `poll` on the TUN fd
 * and a wake eventfd; reads packets until the TUN is empty (up to one batch), seals them in place
 * with each peer's current keypair and sends the batch with one `sendmmsg`. No allocation per packet
 * in steady state. Packets for a peer without a usable keypair are staged (up to 128 per peer) and a
 * handshake is requested from the control plane.
 * @module
 */
/// <reference lib="deno.worker" />
import { bigLen, EAGAIN, EINTR, errno, libc, POLLIN, pollOne, POLLOUT } from "../../ffi/libc.ts";
import { MsgBatch } from "../../ffi/udp.ts";
import "../crypto/aead-libcrypto.ts";
import { getAead } from "../crypto/backend.ts";
import type { AeadName } from "../crypto/aead.ts";
import {
  MAX_STAGED_PACKETS,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
} from "../wireguard/constants.ts";
import { H, K, KF, MAX_PEERS, P, PF, S, SharedState } from "./shared-state.ts";
import { ConnTracker } from "../filter/conn-tracker.ts";
import { ParsedPacket, ParseMode, parsePacket, ParseStatus } from "../filter/packet-parse.ts";
import type { WorkerInit } from "./worker-protocol.ts";
import { AllowedIpsMirror, SlotCiphers, startWorker } from "./worker-common.ts";

const HEADER = 16;
const TAG = 16;
const BATCH = 32;
/** Consecutive EAGAIN waits (5 ms each) before a batch is dropped. */
const MAX_SEND_STALLS = 20;
const BUF_SIZE = HEADER + 65535 + TAG + 16;
const READ_MAX = bigLen(BUF_SIZE - HEADER - TAG - 16);
const EIGHT = bigLen(8);
const TWO = bigLen(2);

interface Staged {
  /** The peer-slot generation the packets were routed to (see SharedState). */
  generation: number;
  bufs: Uint8Array[];
  lens: Int32Array;
  head: number;
  count: number;
}

function run(init: WorkerInit): void {
  const shared = new SharedState(init.sab);
  const aead = getAead(init.aead as AeadName);
  const batch = new MsgBatch(BATCH, BUF_SIZE);
  const readViews = batch.bufs.map((b) => b.subarray(HEADER));
  const ciphers = new SlotCiphers(shared, aead, "send");
  const staged: (Staged | null)[] = new Array(MAX_PEERS).fill(null);
  const allowed = new AllowedIpsMirror(shared);
  // The packet filter's outbound side: flows we open, so that the decrypt worker lets their replies in.
  const tracker = new ConnTracker(init.tracker, init.trackerBuckets);
  const outbound = new ParsedPacket();
  const filterOn = init.packetFilter;
  const pollFds = new Uint8Array(16); // two struct pollfd {int fd; short events; short revents}
  const pollView = new DataView(pollFds.buffer);
  const wakeBuf = new Uint8Array(8);
  const { poll, read } = libc;
  let n = 0; // messages in the batch

  const tunFd = Atomics.load(shared.header, H.tunFd);
  const wakeFd = Atomics.load(shared.header, H.wakeFd);
  pollView.setInt32(0, tunFd, true);
  pollView.setInt16(4, POLLIN, true);
  pollView.setInt32(8, wakeFd, true);
  pollView.setInt16(12, POLLIN, true);

  function requestHandshake(peer: number): void {
    if (shared.peerCas(peer, P.needHandshake, 0, 1) === 0) self.postMessage({ t: "handshake", peer });
  }

  /** The peer's usable sending keypair slot, or -1 (and a handshake is requested). */
  function sendingSlot(peer: number, now: number): number {
    const slot = shared.peerGet(peer, P.current);
    if (slot < 0 || shared.kpGet(slot, K.state) !== 1) {
      requestHandshake(peer);
      return -1;
    }
    const age = now - shared.kpF64[shared.kf(slot, KF.created)];
    const counter = shared.kpF64[shared.kf(slot, KF.sendCounter)];
    if (age >= REJECT_AFTER_TIME || counter >= REJECT_AFTER_MESSAGES) {
      requestHandshake(peer);
      return -1;
    }
    if (
      (shared.kpGet(slot, K.isInitiator) === 1 && age >= init.rekeyAfterMs) || counter >= REKEY_AFTER_MESSAGES
    ) requestHandshake(peer);
    return slot;
  }

  /** Seals the packet in batch slot `i` (plaintext at HEADER, `len` bytes) for `peer`; false if not sent. */
  function seal(i: number, peer: number, len: number, now: number): boolean {
    const slot = sendingSlot(peer, now);
    if (slot < 0) return false;
    const buf = batch.bufs[i];
    const mtu = Atomics.load(shared.header, H.mtu);
    let last = len;
    if (mtu > 0 && last > mtu) last %= mtu;
    let padded = (last + 15) & ~15;
    if (mtu > 0 && padded > mtu) padded = mtu;
    const padding = padded - last;
    if (padding > 0) buf.fill(0, HEADER + len, HEADER + len + padding);
    const bodyLen = len + padding;
    const ci = shared.kf(slot, KF.sendCounter);
    const counter = shared.kpF64[ci];
    shared.kpF64[ci] = counter + 1;
    const remote = shared.kpGet(slot, K.remoteIndex);
    buf[0] = 4;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = remote & 0xff;
    buf[5] = (remote >>> 8) & 0xff;
    buf[6] = (remote >>> 16) & 0xff;
    buf[7] = remote >>> 24;
    const lo = counter >>> 0;
    const hi = Math.floor(counter / 4294967296);
    buf[8] = lo & 0xff;
    buf[9] = (lo >>> 8) & 0xff;
    buf[10] = (lo >>> 16) & 0xff;
    buf[11] = lo >>> 24;
    buf[12] = hi & 0xff;
    buf[13] = (hi >>> 8) & 0xff;
    buf[14] = (hi >>> 16) & 0xff;
    buf[15] = hi >>> 24;
    ciphers.get(slot).sealInPlace(counter, buf, HEADER, bodyLen);
    const total = HEADER + bodyLen + TAG;
    const alen = shared.readEndpoint(peer, batch.addrs[i], 0);
    if (alen === 0) {
      shared.stats[S.txNoEndpoint]++;
      return false;
    }
    batch.addrLens[i] = alen;
    batch.lens[i] = total;
    const pf = shared.pf(peer, 0);
    shared.peerF64[pf + PF.txBytes] += total;
    shared.peerF64[pf + PF.lastAuthSent] = now;
    if (len > 0) shared.peerF64[pf + PF.lastDataSent] = now;
    return true;
  }

  function flush(): void {
    if (n === 0) return;
    const udpFd = Atomics.load(shared.header, H.udpFd);
    let off = 0;
    let stalls = 0;
    while (off < n) {
      const sent = batch.send(udpFd, n - off, off);
      if (sent <= 0) {
        // A full socket buffer is back-pressure, not loss: wait briefly for room, then retry.
        const e = errno();
        if (sent < 0 && (e === EAGAIN || e === EINTR) && ++stalls <= MAX_SEND_STALLS) {
          pollOne(udpFd, POLLOUT, 5);
          continue;
        }
        shared.stats[S.txSendErrors] += n - off;
        break;
      }
      stalls = 0;
      shared.stats[S.txPackets] += sent;
      off += sent;
    }
    n = 0;
  }

  function stage(peer: number, src: Uint8Array, len: number): void {
    let q = staged[peer];
    const generation = allowed.generationOf(peer);
    if (!q) {
      q = { generation, bufs: [], lens: new Int32Array(MAX_STAGED_PACKETS), head: 0, count: 0 };
      staged[peer] = q;
    } else if (q.generation !== generation) { // the slot has a new peer: the old one's packets go
      q.generation = generation;
      q.head = 0;
      q.count = 0;
    }
    if (q.count === MAX_STAGED_PACKETS) { // drop the oldest, like wireguard-go
      q.head = (q.head + 1) % MAX_STAGED_PACKETS;
      q.count--;
      shared.stats[S.txStagedDropped]++;
    }
    const idx = (q.head + q.count) % MAX_STAGED_PACKETS;
    if (!q.bufs[idx] || q.bufs[idx].length < len) q.bufs[idx] = new Uint8Array(Math.max(len, 2048));
    q.bufs[idx].set(src.subarray(HEADER, HEADER + len));
    q.lens[idx] = len;
    q.count++;
  }

  /** Sends staged packets and pending keepalives for peers that now have keys. */
  function serviceControl(now: number): void {
    for (let peer = 0; peer < MAX_PEERS; peer++) {
      if (shared.peerGet(peer, P.active) !== 1) {
        if (staged[peer]) staged[peer] = null;
        continue;
      }
      if (staged[peer]?.generation !== shared.peerGet(peer, P.generation)) staged[peer] = null; // new peer
      const q = staged[peer];
      if (q && q.count > 0 && shared.peerGet(peer, P.current) >= 0) {
        while (q.count > 0) {
          if (n === BATCH) flush();
          const idx = q.head;
          const len = q.lens[idx];
          batch.bufs[n].set(q.bufs[idx].subarray(0, len), HEADER);
          if (!seal(n, peer, len, now)) break;
          n++;
          q.head = (q.head + 1) % MAX_STAGED_PACKETS;
          q.count--;
        }
      }
      if (shared.peerCas(peer, P.keepalivePending, 1, 0) === 1) {
        if (n === BATCH) flush();
        if (seal(n, peer, 0, now)) n++;
      }
    }
    flush();
  }

  let lastControl = 0;
  while (Atomics.load(shared.header, H.stop) === 0) {
    const r = poll(pollFds, TWO, 100);
    const now = Date.now();
    allowed.sync();
    if (r <= 0) {
      if (now - lastControl >= 100) {
        serviceControl(now);
        lastControl = now;
      }
      continue;
    }
    if (pollView.getInt16(14, true) & POLLIN) {
      read(wakeFd, wakeBuf, EIGHT);
      serviceControl(now);
      lastControl = now;
    }
    const tunRevents = pollView.getInt16(6, true);
    if (tunRevents & ~POLLIN) { // POLLERR/POLLHUP/POLLNVAL: the interface is gone
      Atomics.store(shared.header, H.tunClosed, 1);
      self.postMessage({ t: "tun-closed" });
      break;
    }
    if (!(tunRevents & POLLIN)) continue;
    for (let k = 0; k < 4 * BATCH; k++) {
      const len = read(tunFd, readViews[n], READ_MAX);
      if (len <= 0) {
        if (len < 0 && errno() !== EAGAIN && errno() !== EINTR) {
          Atomics.store(shared.header, H.tunClosed, 1);
          self.postMessage({ t: "tun-closed" });
          return;
        }
        break;
      }
      const buf = batch.bufs[n];
      if (filterOn && parsePacket(buf, HEADER, len, outbound, ParseMode.strict) === ParseStatus.ok) {
        tracker.observeOutbound(buf, outbound, now);
      }
      const version = buf[HEADER] >> 4;
      let peer = -1;
      if (version === 4 && len >= 20) peer = allowed.table.lookup(buf, HEADER + 16, 4);
      else if (version === 6 && len >= 40) peer = allowed.table.lookup(buf, HEADER + 24, 6);
      if (peer < 0 || !allowed.routesTo(peer)) {
        shared.stats[S.txNoRoute]++;
        continue;
      }
      if (!seal(n, peer, len, now)) {
        if (
          shared.peerGet(peer, P.current) < 0 || shared.kpGet(shared.peerGet(peer, P.current), K.state) !== 1
        ) {
          stage(peer, buf, len);
        }
        continue;
      }
      n++;
      if (n === BATCH) flush();
    }
    flush();
  }
  flush();
  ciphers.freeAll();
  self.postMessage({ t: "stopped" });
  self.close();
}

startWorker(run);
