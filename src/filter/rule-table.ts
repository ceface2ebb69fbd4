/**
 * The compiled rule table: what the inbound filter of one interface consults, as one flat Int32Array
 * (so it can live in a SharedArrayBuffer, see `table-exchange.ts`). Lookups are a slot index, a set
 * descriptor and, for TCP/UDP, a binary search over sorted disjoint port ranges — never a rule scan,
 * never an allocation.
 *
 * Layout (Int32 words):
 * - header: magic, slot count, set count, offset of the set descriptors, offset of the ranges, total
 *   words, destination-class count, offset of the destination classes;
 * - per remote-peer slot: the index of the rule set that applies to it, or -1 (no peer: drop);
 * - per rule set ({@link SET_WORDS} words): kind (lockdown or policy), the rule accepting ICMP, the
 *   rule accepting any other protocol, start and count of its TCP ranges and of its UDP ranges, then
 *   the only IPv4 destination it accepts anything for (0: any);
 * - ranges: triples (first port, last port, rule), sorted and disjoint within one set and protocol;
 * - destination classes (routed networks): family, prefix length, 4 address words, then a set index per
 *   slot, used instead of the slot's own for a destination inside the prefix (the first class holding
 *   it decides; the compiler puts longer prefixes first).
 *
 * A "rule" is the index of the deciding entry — of the policy's rules for a policy set, of the
 * lockdown entries for a lockdown set — or one of {@link NO_RULE}, {@link DEFAULT_ALLOW_RULE},
 * {@link KEY_PLANE_RULE}. Several slots may share one set.
 * @module
 */
import { IPPROTO } from "./ip-constants.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import { MatchKind, type MatchKindCode } from "./verdict.ts";

/** First word of every table ("tfRT"). */
export const RULE_TABLE_MAGIC = 0x74665254;
/** No rule accepts. */
export const NO_RULE = -1;
/** Accepted because no policy is configured (all-to-all). */
export const DEFAULT_ALLOW_RULE = -2;
/** Accepted because the key plane (TCP to the DSKE port from a hub) is never blocked by a policy. */
export const KEY_PLANE_RULE = -3;

/** Which rules a set holds. */
export const SetKind = { lockdown: 1, policy: 2 } as const;
/** A set kind code. */
export type SetKindCode = typeof SetKind[keyof typeof SetKind];

/** Protocol classes a set distinguishes. */
export const ProtoClass = { tcp: 0, udp: 1, icmp: 2, other: 3 } as const;

/** The protocol class of an IP protocol number in a family (ICMP is 1 in IPv4, 58 in IPv6). */
export function protoClassOf(family: 4 | 6, proto: number): number {
  if (proto === IPPROTO.tcp) return ProtoClass.tcp;
  if (proto === IPPROTO.udp) return ProtoClass.udp;
  if ((family === 4 && proto === IPPROTO.icmp) || (family === 6 && proto === IPPROTO.icmpv6)) {
    return ProtoClass.icmp;
  }
  return ProtoClass.other;
}

/** One port range of a set, with the rule that accepts it. */
export interface PortRule {
  /** First port (0..65535). */
  from: number;
  /** Last port (inclusive). */
  to: number;
  /** Deciding rule. */
  rule: number;
}

/** One rule set before encoding. */
export interface RuleSetSpec {
  /** Lockdown or policy. */
  kind: SetKindCode;
  /** Rule accepting ICMP/ICMPv6 (any type), or NO_RULE. */
  icmp: number;
  /** Rule accepting protocols other than TCP, UDP and ICMP, or NO_RULE. */
  other: number;
  /** TCP destination-port ranges: sorted, disjoint. */
  tcp: PortRule[];
  /** UDP destination-port ranges: sorted, disjoint. */
  udp: PortRule[];
  /**
   * The only IPv4 destination (4 bytes) the set accepts anything for, or absent: any destination. The
   * wg0 lockdown names this node's wg0 address: its entries are infrastructure of this node, so
   * nothing an AES peer sends over wg0 is forwarded (routed networks travel aes0).
   */
  onlyTo?: Uint8Array;
}

/**
 * A destination class: packets to an address in `prefix` use their slot's entry in `slots` instead of
 * the table's own (routed networks, which policies name apart from the node itself).
 */
export interface DestinationClassSpec {
  /** The destination prefix. */
  prefix: Cidr;
  /** Per remote-peer slot: index into `sets`, or -1 (as {@link RuleTableSpec.slots}). */
  slots: readonly number[];
}

/** A whole table before encoding. */
export interface RuleTableSpec {
  /** Per remote-peer slot: index into `sets`, or -1. */
  slots: readonly number[];
  /** The rule sets. */
  sets: readonly RuleSetSpec[];
  /**
   * Destination classes, tried in order (put longer prefixes first: the first holding the destination
   * decides); a destination in none of them uses `slots`. Absent: none.
   */
  destinations?: readonly DestinationClassSpec[];
}

const HEADER_WORDS = 8;
/** Words of a destination class before its slot entries: family, prefix length, 4 address words. */
const CLASS_WORDS = 6;
/** Words per set descriptor. */
export const SET_WORDS = 8;
const D_KIND = 0, D_ICMP = 1, D_OTHER = 2, D_TCP_START = 3, D_TCP_COUNT = 4, D_UDP_START = 5, D_UDP_COUNT = 6;
const D_ONLY_TO = 7;

/** Four address bytes at `off` as one int32 word. */
function ipv4Word(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}

/** Encodes a table; throws RangeError when ranges are unsorted, overlapping or out of 0..65535. */
export function encodeRuleTable(spec: RuleTableSpec): Int32Array {
  let rangeCount = 0;
  for (const s of spec.sets) rangeCount += s.tcp.length + s.udp.length;
  const classes = spec.destinations ?? [];
  const setsOff = HEADER_WORDS + spec.slots.length;
  const rangesOff = setsOff + spec.sets.length * SET_WORDS;
  const classesOff = rangesOff + rangeCount * 3;
  const total = classesOff + classes.length * (CLASS_WORDS + spec.slots.length);
  const w = new Int32Array(total);
  w.set([
    RULE_TABLE_MAGIC,
    spec.slots.length,
    spec.sets.length,
    setsOff,
    rangesOff,
    total,
    classes.length,
    classesOff,
  ]);
  const putSlots = (slots: readonly number[], at: number, what: string) => {
    if (slots.length !== spec.slots.length) throw new RangeError(`${what}: ${slots.length} slots`);
    slots.forEach((s, i) => {
      if (!Number.isInteger(s) || s < -1 || s >= spec.sets.length) {
        throw new RangeError(`${what} slot ${i}: no set ${s}`);
      }
      w[at + i] = s;
    });
  };
  putSlots(spec.slots, HEADER_WORDS, "table");
  classes.forEach((c, i) => {
    const at = classesOff + i * (CLASS_WORDS + spec.slots.length);
    w[at] = c.prefix.family;
    w[at + 1] = c.prefix.bits;
    for (let k = 0; k < c.prefix.addr.length / 4; k++) w[at + 2 + k] = ipv4Word(c.prefix.addr, 4 * k);
    putSlots(c.slots, at + CLASS_WORDS, `destination class ${i}`);
  });
  let r = 0; // ranges written
  spec.sets.forEach((s, i) => {
    const d = setsOff + i * SET_WORDS;
    w[d + D_KIND] = s.kind;
    w[d + D_ICMP] = s.icmp;
    w[d + D_OTHER] = s.other;
    w[d + D_ONLY_TO] = s.onlyTo ? ipv4Word(s.onlyTo, 0) : 0;
    for (
      const [list, start, count] of [[s.tcp, D_TCP_START, D_TCP_COUNT], [
        s.udp,
        D_UDP_START,
        D_UDP_COUNT,
      ]] as const
    ) {
      w[d + start] = r;
      w[d + count] = list.length;
      let prevTo = -1;
      for (const p of list) {
        if (!(p.from >= 0 && p.from <= p.to && p.to <= 65535 && p.from > prevTo)) {
          throw new RangeError(`set ${i}: port ranges must be sorted, disjoint and within 0..65535`);
        }
        prevTo = p.to;
        w[rangesOff + 3 * r] = p.from;
        w[rangesOff + 3 * r + 1] = p.to;
        w[rangesOff + 3 * r + 2] = p.rule;
        r++;
      }
    }
  });
  return w;
}

/** A read-only view of an encoded table (validated once, then looked up without checks or allocation). */
export class RuleTable {
  readonly #w: Int32Array;
  /** Remote-peer slots the table covers. */
  readonly slotCount: number;
  readonly #setsOff: number;
  readonly #rangesOff: number;
  readonly #classes: number;
  readonly #classesOff: number;

  /** Views `words` (e.g. a region of a SharedArrayBuffer); throws RangeError when it is not a valid table. */
  constructor(words: Int32Array) {
    const bad = (why: string) => new RangeError(`not a rule table: ${why}`);
    if (words.length < HEADER_WORDS || words[0] !== RULE_TABLE_MAGIC) throw bad("magic");
    const [, slots, sets, setsOff, rangesOff, total, classes, classesOff] = words;
    if (
      total > words.length || slots < 0 || sets < 0 || classes < 0 || setsOff !== HEADER_WORDS + slots ||
      rangesOff !== setsOff + sets * SET_WORDS || rangesOff > classesOff ||
      classesOff + classes * (CLASS_WORDS + slots) !== total
    ) throw bad("header");
    const ranges = (classesOff - rangesOff) / 3;
    if (!Number.isInteger(ranges)) throw bad("ranges");
    const slotEntries = [HEADER_WORDS];
    for (let c = 0; c < classes; c++) {
      const at = classesOff + c * (CLASS_WORDS + slots);
      const family = words[at], bits = words[at + 1];
      if ((family !== 4 && family !== 6) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
        throw bad(`destination class ${c}`);
      }
      slotEntries.push(at + CLASS_WORDS);
    }
    for (const at of slotEntries) {
      for (let i = 0; i < slots; i++) {
        const s = words[at + i];
        if (s < -1 || s >= sets) throw bad(`slot ${i}`);
      }
    }
    for (let i = 0; i < sets; i++) {
      const d = setsOff + i * SET_WORDS;
      if (words[d] !== SetKind.lockdown && words[d] !== SetKind.policy) throw bad(`set ${i} kind`);
      for (const [a, b] of [[D_TCP_START, D_TCP_COUNT], [D_UDP_START, D_UDP_COUNT]]) {
        if (words[d + a] < 0 || words[d + b] < 0 || words[d + a] + words[d + b] > ranges) {
          throw bad(`set ${i} ranges`);
        }
      }
    }
    this.#w = words.subarray(0, total);
    this.slotCount = slots;
    this.#setsOff = setsOff;
    this.#rangesOff = rangesOff;
    this.#classes = classes;
    this.#classesOff = classesOff;
  }

  /** The set that applies to a remote-peer slot for destinations in no destination class, or -1. */
  setOf(slot: number): number {
    return slot >= 0 && slot < this.slotCount ? this.#w[HEADER_WORDS + slot] : -1;
  }

  /**
   * The set that applies to a packet from `slot` to the destination address at `buf[dstOff]` of
   * `family`: the first destination class holding it, else the slot's own; -1 when none.
   */
  setFor(slot: number, buf: Uint8Array, dstOff: number, family: 4 | 6): number {
    if (slot < 0 || slot >= this.slotCount) return -1;
    const w = this.#w;
    const stride = CLASS_WORDS + this.slotCount;
    for (let c = 0, at = this.#classesOff; c < this.#classes; c++, at += stride) {
      if (w[at] !== family) continue;
      let inside = true;
      for (let k = 0, bits = w[at + 1]; bits > 0; k++, bits -= 32) {
        const mask = bits >= 32 ? -1 : -1 << (32 - bits);
        if ((ipv4Word(buf, dstOff + 4 * k) & mask) !== (w[at + 2 + k] & mask)) {
          inside = false;
          break;
        }
      }
      if (inside) return w[at + CLASS_WORDS + slot];
    }
    return w[HEADER_WORDS + slot];
  }

  /** The kind ({@link SetKind}) of a set. */
  kindOf(set: number): SetKindCode {
    return this.#w[this.#setsOff + set * SET_WORDS + D_KIND] as SetKindCode;
  }

  /**
   * Whether `set` takes packets to the destination address at `buf[dstOff]` of `family` at all: every
   * set does, except one limited to a single IPv4 destination ({@link RuleSetSpec.onlyTo}).
   */
  takesDestination(set: number, buf: Uint8Array, dstOff: number, family: 4 | 6): boolean {
    const only = this.#w[this.#setsOff + set * SET_WORDS + D_ONLY_TO];
    return only === 0 || (family === 4 && ipv4Word(buf, dstOff) === only);
  }

  /** The rule of `set` that accepts a packet of `protoClass` to destination `port`, or NO_RULE. */
  lookup(set: number, protoClass: number, port: number): number {
    const d = this.#setsOff + set * SET_WORDS;
    const w = this.#w;
    if (protoClass === ProtoClass.icmp) return w[d + D_ICMP];
    if (protoClass === ProtoClass.other) return w[d + D_OTHER];
    const udp = protoClass === ProtoClass.udp;
    let lo = w[d + (udp ? D_UDP_START : D_TCP_START)];
    let hi = lo + w[d + (udp ? D_UDP_COUNT : D_TCP_COUNT)] - 1;
    const base = this.#rangesOff;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = base + 3 * mid;
      if (port < w[at]) hi = mid - 1;
      else if (port > w[at + 1]) lo = mid + 1;
      else return w[at + 2];
    }
    return NO_RULE;
  }

  /** What a rule of a set means for a verdict ({@link MatchKind}). */
  matchKindOf(set: number, rule: number): MatchKindCode {
    if (this.kindOf(set) === SetKind.lockdown) return MatchKind.lockdownEntry;
    if (rule === DEFAULT_ALLOW_RULE) return MatchKind.defaultAllow;
    if (rule === KEY_PLANE_RULE) return MatchKind.keyPlane;
    return MatchKind.policyRule;
  }
}
