/**
 * Data-plane worker: UDP → decrypt → TUN. Blocks in `poll` on the UDP socket, receives a batch with
 * one `recvmmsg`, and for each transport message finds the keypair from the receiver index, opens it
 * in place, checks the replay window and the inner source address against the sending peer's
 * allowed IPs, roams the endpoint, and writes the packet to the TUN. Handshake messages are admitted
 * here (admission.ts: mac1, and under load mac2 with cookie replies sent from this worker, a
 * per-source rate limit and a bounded queue) before the few that deserve Noise work are passed to the
 * control plane, so a handshake flood never reaches its event loop. Every rejected packet is dropped
 * and counted, never thrown.
 * @module
 */
/// <reference lib="deno.worker" />
import { bigLen, libc, POLLIN } from "../../ffi/libc.ts";
import { MsgBatch, sockaddrIpPort } from "../../ffi/udp.ts";
import "../crypto/aead-libcrypto.ts";
import { getAead } from "../crypto/backend.ts";
import type { AeadName } from "../crypto/aead.ts";
import { ReplayFilter } from "../wireguard/replay.ts";
import { HANDSHAKE_QUEUE_SIZE, HandshakeAdmission } from "../wireguard/admission.ts";
import { SlotState } from "../wireguard/keypair-slots.ts";
import {
  MessageCookieReplySize,
  MessageCookieReplyType,
  MessageInitiationSize,
  MessageInitiationType,
  MessageResponseSize,
  MessageResponseType,
} from "../wireguard/messages.ts";
import {
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME_RECEIVING,
} from "../wireguard/constants.ts";
import { H, K, KF, MAX_KEYPAIRS, MAX_PEERS, P, PF, S, SharedState, SLOT_MASK } from "./shared-state.ts";
import { ConnTracker } from "../filter/conn-tracker.ts";
import { DropEventLimiter } from "../filter/drop-events.ts";
import { FragmentTable } from "../filter/fragment-table.ts";
import { PacketFilter } from "../filter/packet-filter.ts";
import { TableReader } from "../filter/table-exchange.ts";
import { DropReason } from "../filter/verdict.ts";
import { FILTER_TABLE_READER, type WorkerInit } from "./worker-protocol.ts";
import { AllowedIpsMirror, SlotCiphers, startWorker } from "./worker-common.ts";

const HEADER = 16;
const TAG = 16;
const BATCH = 32;
const BUF_SIZE = 65536;
const ONE = bigLen(1);
/** Bytes of a cookie source: IPv6 address and port. */
const SOURCE_BYTES = 18;
/** The stats counter of each filter drop reason (indexed by DropReason code; `none` never counts). */
const DROP_REASON_STATS = new Int32Array(5);
DROP_REASON_STATS[DropReason.lockdown] = S.filterLockdown;
DROP_REASON_STATS[DropReason.policy] = S.filterPolicy;
DROP_REASON_STATS[DropReason.malformed] = S.filterMalformed;
DROP_REASON_STATS[DropReason.fragment] = S.filterFragment;

function run(init: WorkerInit): void {
  const shared = new SharedState(init.sab);
  const aead = getAead(init.aead as AeadName);
  const batch = new MsgBatch(BATCH, BUF_SIZE);
  const tunViews = batch.bufs.map((b) => b.subarray(HEADER));
  const replay: ReplayFilter[] = Array.from({ length: MAX_KEYPAIRS }, () => new ReplayFilter());
  const ciphers = new SlotCiphers(shared, aead, "receive", (slot) => replay[slot].reset());
  const allowed = new AllowedIpsMirror(shared);
  const tables = new TableReader(init.filterTables, FILTER_TABLE_READER.decrypt);
  const filter = new PacketFilter({
    rules: tables,
    tracker: new ConnTracker(init.tracker, init.trackerBuckets),
    fragments: new FragmentTable(undefined, crypto.getRandomValues(new Int32Array(1))[0]),
  });
  const dropEvents = new DropEventLimiter();
  const filterOn = init.packetFilter;
  /** Slot generations the drop-event limiter counted for (a new peer in a slot starts fresh). */
  const eventGenerations = new Int32Array(MAX_PEERS);
  const pollFds = new Uint8Array(8);
  const pollView = new DataView(pollFds.buffer);
  const { poll, write } = libc;
  const tunFd = Atomics.load(shared.header, H.tunFd);
  const replies = new MsgBatch(BATCH, MessageCookieReplySize);
  let replyCount = 0;
  const source = new Uint8Array(SOURCE_BYTES);
  let admission = null as HandshakeAdmission | null; // set by syncIdentity
  let identityVersion = 0;

  /** Follows the control plane's private key: a new key gets a new mac1 key and cookie secret. */
  function syncIdentity(): void {
    const v = Atomics.load(shared.header, H.identityVersion);
    if (v === identityVersion) return;
    const id = shared.readLocalPublic();
    if (id) {
      admission = new HandshakeAdmission(id.publicKey, Date.now);
      identityVersion = id.version;
    } else if ((v & 1) === 0 && Atomics.load(shared.header, H.hasIdentity) === 0) {
      admission = null;
      identityVersion = v;
    }
  }

  /** True when `index` is the local index of a handshake we have in flight (responses, cookies). */
  function isHandshakeIndex(buf: Uint8Array, at: number): boolean {
    const index = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
    const slot = index & SLOT_MASK;
    return shared.kpGet(slot, K.state) === SlotState.reserved &&
      (shared.kpGet(slot, K.localIndex) >>> 0) === index;
  }

  function handleTransport(i: number, len: number, now: number): void {
    const buf = batch.bufs[i];
    const receiver = (buf[4] | (buf[5] << 8) | (buf[6] << 16) | (buf[7] << 24)) >>> 0;
    const slot = receiver & SLOT_MASK;
    if (shared.kpGet(slot, K.state) !== 1 || (shared.kpGet(slot, K.localIndex) >>> 0) !== receiver) {
      shared.stats[S.rxUnknownIndex]++;
      return;
    }
    const lo = (buf[8] | (buf[9] << 8) | (buf[10] << 16) | (buf[11] << 24)) >>> 0;
    const hi = (buf[12] | (buf[13] << 8) | (buf[14] << 16) | (buf[15] << 24)) >>> 0;
    const counter = hi * 4294967296 + lo;
    const created = shared.kpF64[shared.kf(slot, KF.created)];
    if (hi >= 0x200000 || counter >= REJECT_AFTER_MESSAGES || now - created >= REJECT_AFTER_TIME) {
      shared.stats[S.rxExpiredKey]++;
      return;
    }
    const key = ciphers.get(slot);
    if (!key.openInPlace(counter, buf, HEADER, len - HEADER)) {
      shared.stats[S.rxAuthFailed]++;
      return;
    }
    if (!replay[slot].validateCounter(counter, REJECT_AFTER_MESSAGES)) {
      shared.stats[S.rxReplay]++;
      return;
    }
    const peer = shared.kpGet(slot, K.peer);
    const alen = batch.addrLens[i];
    if (!shared.endpointEquals(peer, batch.addrs[i], 0, alen)) {
      shared.writeEndpoint(peer, batch.addrs[i], 0, alen);
    }
    if (shared.peerGet(peer, P.next) === slot && shared.kpGet(slot, K.confirmPosted) === 0) {
      shared.kpSet(slot, K.confirmPosted, 1);
      self.postMessage({ t: "confirm", peer, slot });
    }
    const pf = shared.pf(peer, 0);
    shared.peerF64[pf + PF.rxBytes] += len;
    shared.peerF64[pf + PF.lastAuthReceived] = now;
    if (shared.kpGet(slot, K.isInitiator) === 1 && now - created >= REKEY_AFTER_TIME_RECEIVING) {
      if (shared.peerCas(peer, P.needHandshake, 0, 1) === 0) self.postMessage({ t: "handshake", peer });
    }
    const plainLen = len - HEADER - TAG;
    if (plainLen === 0) {
      shared.stats[S.rxKeepalives]++;
      return;
    }
    const version = buf[HEADER] >> 4;
    let pktLen: number;
    let src: number;
    if (version === 4 && plainLen >= 20) {
      pktLen = (buf[HEADER + 2] << 8) | buf[HEADER + 3];
      if (pktLen < 20) pktLen = 0;
      src = allowed.table.lookup(buf, HEADER + 12, 4);
    } else if (version === 6 && plainLen >= 40) {
      pktLen = 40 + ((buf[HEADER + 4] << 8) | buf[HEADER + 5]);
      src = allowed.table.lookup(buf, HEADER + 8, 6);
    } else {
      shared.stats[S.rxBadInnerPacket]++;
      return;
    }
    if (pktLen === 0 || pktLen > plainLen) {
      shared.stats[S.rxBadInnerPacket]++;
      return;
    }
    if (src !== peer || !allowed.routesTo(src)) {
      shared.stats[S.rxSourceNotAllowed]++;
      return;
    }
    const verdict = filterOn ? filter.decideInbound(buf, HEADER, pktLen, peer, now) : null;
    if (verdict !== null && !verdict.accept) {
      shared.stats[DROP_REASON_STATS[verdict.reason]]++;
      const gen = shared.peerGet(peer, P.generation);
      if (eventGenerations[peer] !== gen) {
        dropEvents.resetSlot(peer);
        eventGenerations[peer] = gen;
      }
      const count = dropEvents.note(peer, verdict.reason, now);
      if (count > 0) self.postMessage({ t: "filter-drop", peer, reason: verdict.reason, count });
      return;
    }
    shared.peerF64[pf + PF.lastDataReceived] = now;
    if (write(tunFd, tunViews[i], bigLen(pktLen)) < 0) shared.stats[S.tunWriteErrors]++;
    else shared.stats[S.rxPackets]++;
  }

  function queueHandshake(i: number, len: number): void {
    Atomics.add(shared.header, H.pendingHandshakes, 1);
    const alen = batch.addrLens[i];
    self.postMessage({ t: "hs", data: batch.bufs[i].slice(0, len), addr: batch.addrs[i].slice(0, alen) });
  }

  function handleHandshake(i: number, len: number, type: number): void {
    const expected = type === MessageInitiationType
      ? MessageInitiationSize
      : type === MessageResponseType
      ? MessageResponseSize
      : MessageCookieReplySize;
    if (len !== expected) {
      shared.stats[S.rxMalformed]++;
      return;
    }
    const buf = batch.bufs[i];
    if (type !== MessageInitiationType && !isHandshakeIndex(buf, type === MessageResponseType ? 8 : 4)) {
      shared.stats[S.rxUnknownIndex]++;
      return;
    }
    const depth = Atomics.load(shared.header, H.pendingHandshakes);
    if (type === MessageCookieReplyType) {
      if (depth >= HANDSHAKE_QUEUE_SIZE) shared.stats[S.rxHandshakeQueueFull]++;
      else queueHandshake(i, len);
      return;
    }
    const srcLen = sockaddrIpPort(batch.addrs[i], 0, source);
    if (admission === null || srcLen === 0) {
      shared.stats[S.rxHandshakeBadMac1]++;
      return;
    }
    const verdict = admission.admit(buf.subarray(0, len), source.subarray(0, srcLen), depth);
    switch (verdict.verdict) {
      case "queue":
        queueHandshake(i, len);
        return;
      case "cookie":
        replies.bufs[replyCount].set(verdict.reply);
        replies.lens[replyCount] = verdict.reply.length;
        replies.setAddr(replyCount, batch, i);
        replyCount++;
        return;
      case "drop":
        if (verdict.reason === "invalid-mac1") shared.stats[S.rxHandshakeBadMac1]++;
        else if (verdict.reason === "rate-limited") shared.stats[S.rxHandshakeRateLimited]++;
        else shared.stats[S.rxHandshakeQueueFull]++;
        return;
    }
  }

  /** Sends the cookie replies made for one receive batch (one sendmmsg; a full socket drops them). */
  function flushReplies(fd: number): void {
    let sent = 0;
    while (sent < replyCount) {
      const n = replies.send(fd, replyCount - sent, sent);
      if (n <= 0) break;
      sent += n;
    }
    shared.stats[S.txCookieReplies] += sent;
    if (sent < replyCount) shared.stats[S.txSendErrors] += replyCount - sent;
    replyCount = 0;
  }

  let udpFd = -1;
  while (Atomics.load(shared.header, H.stop) === 0) {
    const fd = Atomics.load(shared.header, H.udpFd);
    if (fd !== udpFd) {
      udpFd = fd;
      pollView.setInt32(0, fd, true);
      pollView.setInt16(4, POLLIN, true);
    }
    const r = poll(pollFds, ONE, 100);
    allowed.sync();
    tables.sync();
    syncIdentity();
    if (r <= 0) admission?.gc(); // idle: forget rate-limiter entries of sources gone quiet
    if (r <= 0 || udpFd < 0) continue;
    for (let round = 0; round < 8; round++) {
      const got = batch.recv(udpFd);
      if (got <= 0) break;
      const now = Date.now();
      for (let i = 0; i < got; i++) {
        const len = batch.lens[i];
        const buf = batch.bufs[i];
        const type = buf[0];
        if (len < 4 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) {
          shared.stats[S.rxMalformed]++;
        } else if (type === 4) {
          if (len >= HEADER + TAG) handleTransport(i, len, now);
          else shared.stats[S.rxMalformed]++;
        } else if (type >= 1 && type <= 3) {
          handleHandshake(i, len, type);
        } else {
          shared.stats[S.rxMalformed]++;
        }
      }
      if (replyCount > 0) flushReplies(udpFd);
      if (got < BATCH) break;
    }
  }
  ciphers.freeAll();
  tables.close();
  self.postMessage({ t: "stopped" });
  self.close();
}

startWorker(run);
