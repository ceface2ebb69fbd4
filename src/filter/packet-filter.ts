/**
 * The packet filter's decisions, pure over the packet bytes, the compiled rule table in force, the
 * connection tracker and the fragment table (time comes in as `now`, ms):
 *
 * - {@link PacketFilter.decideInbound} for a packet decrypted from the peer in `remotePeerSlot`, before
 *   it is written to the TUN:
 *   1. parse; a malformed header → drop `malformed`; a first fragment without its whole transport
 *      header → drop `fragment`;
 *   2. a later fragment gets its first fragment's verdict, or drop `fragment` (see fragment-table.ts);
 *   3. the slot's rule set (lockdown or policy, per placement.ts; for a destination in a routed network
 *      this node advertises, the set of that network's destination class): a set limited to one destination
 *      (the wg0 lockdown: this node's wg0 address) drops anything else, e.g. routed traffic forced onto
 *      wg0; then the first rule accepting the protocol and destination port → accept;
 *   4. a reply in a flow this node opened (conn-tracker.ts) → accept `established`;
 *   5. an ICMP error quoting a packet this node sent, of a flow it opened or one the rules accept in
 *      the other direction (e.g. "packet too big" about our reply on an allowed port) → accept
 *      `related`;
 *   6. otherwise drop, reason `lockdown` or `policy` after the slot's rule set; a slot without a peer
 *      drops `policy`.
 *   A first fragment's verdict is remembered for its later fragments.
 * - {@link PacketFilter.observeOutbound} for a packet read from the TUN, before it is sealed: registers
 *   the flows whose replies step 4 lets in. Outbound packets are never dropped by the filter.
 *
 * Nothing allocates or throws per packet; one PacketFilter per thread (it owns scratch state).
 * @module
 */
import type { ConnTracker } from "./conn-tracker.ts";
import type { FragmentTable } from "./fragment-table.ts";
import { FollowResult } from "./fragment-table.ts";
import { ICMP_HEADER, isIcmpError } from "./ip-constants.ts";
import { Fragment, ParsedPacket, ParseMode, parsePacket, ParseStatus, sameAddress } from "./packet-parse.ts";
import { NO_RULE, ProtoClass, protoClassOf, type RuleTable, SetKind } from "./rule-table.ts";
import { DropReason, MatchKind, Verdict } from "./verdict.ts";

/** Where the filter reads the rule table in force (a TableReader, or a fixed table in tests). */
export interface RuleTableSource {
  /** The table to decide with. */
  readonly table: RuleTable;
}

/** What a PacketFilter works with. */
export interface PacketFilterParts {
  /** The rule table in force. */
  rules: RuleTableSource;
  /** The interface's connection tracker. */
  tracker: ConnTracker;
  /** The interface's fragment table (inbound side only). */
  fragments: FragmentTable;
}

/** The inbound decision and outbound observation of one interface, for one thread. */
export class PacketFilter {
  /** The verdict of the latest decideInbound, overwritten by the next. */
  readonly verdict = new Verdict();
  /** The packet the latest decideInbound parsed (for trace and events). */
  readonly packet = new ParsedPacket();
  /** The packet quoted by an ICMP error, when the latest decision read one. */
  readonly quoted = new ParsedPacket();
  readonly #outbound = new ParsedPacket();
  readonly #parts: PacketFilterParts;
  #inspectedEnd = 0;

  /** A filter over the given table source, tracker and fragment table. */
  constructor(parts: PacketFilterParts) {
    this.#parts = parts;
  }

  /**
   * Decides a packet from the peer in `remotePeerSlot` (the IP packet at `buf[offset, offset+length)`).
   * With `record` false (a dry run, e.g. a trace) nothing is remembered (first fragments) or refreshed
   * (flows). Returns the filter's {@link Verdict} object, overwritten by the next call.
   */
  decideInbound(
    buf: Uint8Array,
    offset: number,
    length: number,
    remotePeerSlot: number,
    now: number,
    record = true,
  ): Verdict {
    const v = this.verdict;
    const pkt = this.packet;
    const status = parsePacket(buf, offset, length, pkt, ParseMode.strict);
    if (status === ParseStatus.malformed) return v.dropped(DropReason.malformed);
    if (status === ParseStatus.tinyFragment) return v.dropped(DropReason.fragment);
    if (pkt.fragment === Fragment.later) {
      if (this.#parts.fragments.follow(buf, pkt, now, v) !== FollowResult.followed) {
        v.dropped(DropReason.fragment);
      }
      return v;
    }
    this.#inspectedEnd = pkt.l4End;
    this.#decide(buf, remotePeerSlot, now, record);
    if (record && pkt.fragment === Fragment.first) {
      this.#parts.fragments.recordFirst(buf, pkt, v, this.#inspectedEnd, now);
    }
    return v;
  }

  #decide(buf: Uint8Array, slot: number, now: number, record: boolean): void {
    const v = this.verdict;
    const pkt = this.packet;
    const table = this.#parts.rules.table;
    const set = table.setFor(slot, buf, pkt.dstOff, pkt.family);
    if (set < 0) {
      v.dropped(DropReason.policy);
      return;
    }
    if (!table.takesDestination(set, buf, pkt.dstOff, pkt.family)) {
      v.dropped(table.kindOf(set) === SetKind.lockdown ? DropReason.lockdown : DropReason.policy);
      return;
    }
    const cls = protoClassOf(pkt.family, pkt.proto);
    const rule = table.lookup(set, cls, pkt.dstPort);
    if (rule !== NO_RULE) {
      v.accepted(table.matchKindOf(set, rule), rule >= 0 ? rule : -1);
      return;
    }
    const tracker = this.#parts.tracker;
    if (tracker.isReply(buf, pkt, now, record)) {
      v.accepted(MatchKind.established, -1);
      return;
    }
    if (
      cls === ProtoClass.icmp && isIcmpError(pkt.family, pkt.icmpType) &&
      this.#relatedError(buf, table, set, now)
    ) {
      return;
    }
    v.dropped(table.kindOf(set) === SetKind.lockdown ? DropReason.lockdown : DropReason.policy);
  }

  /** Step 5: an ICMP error about a packet this node sent in a flow that is ours or allowed. */
  #relatedError(buf: Uint8Array, table: RuleTable, set: number, now: number): boolean {
    const pkt = this.packet;
    const q = this.quoted;
    const at = pkt.l4Off + ICMP_HEADER;
    if (at >= pkt.end) return false;
    if (parsePacket(buf, at, pkt.end - at, q, ParseMode.quoted) !== ParseStatus.ok) return false;
    if (q.l4End > this.#inspectedEnd) this.#inspectedEnd = q.l4End;
    if (q.family !== pkt.family || !q.hasL4 || q.fragment === Fragment.later) return false;
    if (!sameAddress(buf, q.srcOff, buf, pkt.dstOff, pkt.family)) return false;
    if (this.#parts.tracker.hasOutboundFlow(buf, q, now)) {
      this.verdict.accepted(MatchKind.related, -1);
      return true;
    }
    const qcls = protoClassOf(q.family, q.proto);
    if (qcls !== ProtoClass.tcp && qcls !== ProtoClass.udp) return false;
    const rule = table.lookup(set, qcls, q.srcPort);
    if (rule === NO_RULE) return false;
    this.verdict.accepted(MatchKind.related, rule >= 0 ? rule : -1);
    return true;
  }

  /** Registers the flow of a packet this node sends (the IP packet at `buf[offset, offset+length)`). */
  observeOutbound(buf: Uint8Array, offset: number, length: number, now: number): void {
    const pkt = this.#outbound;
    if (parsePacket(buf, offset, length, pkt, ParseMode.strict) !== ParseStatus.ok) return;
    this.#parts.tracker.observeOutbound(buf, pkt, now);
  }
}
