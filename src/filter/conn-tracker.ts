/**
 * The stateful part of the packet filter: flows this node opened, so that their replies are let in
 * whatever the rules say. Outbound packets (TUN → peer) register flows, inbound packets (peer → TUN)
 * look them up:
 * - TCP: a bare SYN we send opens a flow; our later segments keep it alive; an inbound segment of it
 *   that is not a bare SYN (a new connection) is a reply.
 * - UDP: every datagram we send opens or refreshes the flow of its tuple; an inbound datagram on the
 *   reverse tuple is a reply.
 * - ICMP/ICMPv6 echo: a request we send opens (identifier, peer); the matching echo reply is a reply.
 * Flows live for an idle timeout per protocol, refreshed by traffic in either direction.
 *
 * The table is a {@link FlowTable} in a SharedArrayBuffer of fixed size (see {@link connTrackerBytes}):
 * the encrypt worker is its only key writer, the decrypt worker looks up and refreshes the inbound
 * stamp. Pure: time comes in as `now` (ms); nothing allocates per packet.
 * @module
 */
import { FLOW_KEY_WORDS, writeFlowKey } from "./flow-key.ts";
import { FlowTable, flowTableBytes, type FlowTableLayout } from "./flow-table.ts";
import { IPPROTO, isEchoReply, isEchoRequest, TCP_FLAG } from "./ip-constants.ts";
import { Fragment, type ParsedPacket } from "./packet-parse.ts";

/** Idle timeout of a TCP flow we opened (ms). */
export const TCP_FLOW_TIMEOUT_MS = 2 * 60 * 60 * 1000;
/** Idle timeout of a UDP flow (ms). */
export const UDP_FLOW_TIMEOUT_MS = 120 * 1000;
/** Idle timeout of an ICMP echo we sent (ms). */
export const ICMP_FLOW_TIMEOUT_MS = 30 * 1000;
/** Default buckets (× 8 ways = 16 384 flows, about 1 MiB). */
export const DEFAULT_TRACKER_BUCKETS = 2048;

/** The tracker's flow-table layout for `buckets` buckets. */
export function trackerLayout(buckets: number = DEFAULT_TRACKER_BUCKETS): FlowTableLayout {
  return { buckets, keyWords: FLOW_KEY_WORDS, valueWords: 0 };
}

/** Bytes of the SharedArrayBuffer a tracker with `buckets` buckets needs. */
export function connTrackerBytes(buckets: number = DEFAULT_TRACKER_BUCKETS): number {
  return flowTableBytes(trackerLayout(buckets));
}

/** Whether a TCP flags byte is a bare SYN (a new connection: SYN without ACK). */
export function isBareSyn(flags: number): boolean {
  return (flags & (TCP_FLAG.syn | TCP_FLAG.ack)) === TCP_FLAG.syn;
}

/** Idle timeout for a protocol (ms); 0 for protocols that are not tracked. */
export function flowTimeout(proto: number): number {
  if (proto === IPPROTO.tcp) return TCP_FLOW_TIMEOUT_MS;
  if (proto === IPPROTO.udp) return UDP_FLOW_TIMEOUT_MS;
  if (proto === IPPROTO.icmp || proto === IPPROTO.icmpv6) return ICMP_FLOW_TIMEOUT_MS;
  return 0;
}

/** One side's view of the shared connection table. */
export class ConnTracker {
  readonly #table: FlowTable;
  readonly #key = new Int32Array(FLOW_KEY_WORDS);

  /**
   * Views `buffer` (at least {@link connTrackerBytes}(buckets) bytes). The side that creates the table
   * passes `seed` (random) and so clears it; the other side omits it.
   */
  constructor(buffer: ArrayBufferLike, buckets: number = DEFAULT_TRACKER_BUCKETS, seed?: number) {
    this.#table = new FlowTable(buffer, trackerLayout(buckets), seed);
  }

  /** Flows the table can hold. */
  get capacity(): number {
    return this.#table.capacity;
  }

  /** Live flows at `now` (a scan; for tests and status). */
  liveCount(now: number): number {
    return this.#table.liveCount(now);
  }

  /**
   * Outbound side: registers or refreshes the flow of a packet this node sends (`pkt` parsed from
   * `buf`). A later fragment, an untracked protocol, a TCP segment of a flow we did not open with a
   * SYN, and ICMP other than an echo request change nothing.
   */
  observeOutbound(buf: Uint8Array, pkt: ParsedPacket, now: number): void {
    if (!pkt.hasL4 || pkt.fragment === Fragment.later) return;
    const proto = pkt.proto;
    const key = this.#key;
    if (proto === IPPROTO.tcp) {
      writeFlowKey(key, buf, pkt, true, pkt.srcPort, pkt.dstPort);
      if (!isBareSyn(pkt.tcpFlags)) {
        const e = this.#table.find(key, now);
        if (e >= 0) this.#table.setExpiresOut(e, now + TCP_FLOW_TIMEOUT_MS);
        return;
      }
    } else if (proto === IPPROTO.udp) {
      writeFlowKey(key, buf, pkt, true, pkt.srcPort, pkt.dstPort);
    } else if (isEchoRequest(pkt.family, pkt.icmpType)) {
      writeFlowKey(key, buf, pkt, true, pkt.icmpId, 0);
    } else {
      return;
    }
    const e = this.#table.upsert(key);
    this.#table.setExpiresOut(e, now + flowTimeout(proto));
  }

  /**
   * Inbound side: whether `pkt` is a reply in a live flow this node opened (see the module doc); a
   * reply refreshes the flow unless `refresh` is false (a dry run, e.g. a trace). A bare SYN is never a
   * reply.
   */
  isReply(buf: Uint8Array, pkt: ParsedPacket, now: number, refresh = true): boolean {
    if (!pkt.hasL4) return false;
    const proto = pkt.proto;
    const key = this.#key;
    if (proto === IPPROTO.tcp) {
      if (isBareSyn(pkt.tcpFlags)) return false;
      writeFlowKey(key, buf, pkt, false, pkt.dstPort, pkt.srcPort);
    } else if (proto === IPPROTO.udp) {
      writeFlowKey(key, buf, pkt, false, pkt.dstPort, pkt.srcPort);
    } else if (isEchoReply(pkt.family, pkt.icmpType)) {
      writeFlowKey(key, buf, pkt, false, pkt.icmpId, 0);
    } else {
      return false;
    }
    const e = this.#table.find(key, now);
    if (e < 0) return false;
    if (refresh) this.#table.setExpiresIn(e, now + flowTimeout(proto));
    return true;
  }

  /**
   * Inbound side: whether `quoted` — the packet an ICMP error quotes, i.e. one this node sent — belongs
   * to a live flow we opened (TCP, UDP, or an echo request). Does not refresh the flow.
   */
  hasOutboundFlow(buf: Uint8Array, quoted: ParsedPacket, now: number): boolean {
    if (!quoted.hasL4) return false;
    const proto = quoted.proto;
    const key = this.#key;
    if (proto === IPPROTO.tcp || proto === IPPROTO.udp) {
      writeFlowKey(key, buf, quoted, true, quoted.srcPort, quoted.dstPort);
    } else if (isEchoRequest(quoted.family, quoted.icmpType)) {
      writeFlowKey(key, buf, quoted, true, quoted.icmpId, 0);
    } else {
      return false;
    }
    return this.#table.find(key, now) >= 0;
  }
}
