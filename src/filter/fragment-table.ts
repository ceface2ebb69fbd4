/**
 * Fragments follow their first fragment. The filter decides a first fragment (offset 0, the one that
 * carries the transport header) like any packet and remembers the verdict here, keyed by (family,
 * source, destination, identification, protocol), for {@link FRAGMENT_TIMEOUT_MS}. A later fragment
 * gets exactly that verdict — never its own — and is dropped (reason `fragment`) when no first
 * fragment is remembered (lost, evicted, expired or reordered behind it) or when it starts inside the
 * bytes the first fragment's verdict was based on (an overlap that could rewrite ports or flags after
 * the check, RFC 1858). So a fragment is never a way around the rules.
 *
 * Fixed size ({@link DEFAULT_FRAGMENT_BUCKETS} × 8 entries by default), plain memory (only the decrypt
 * worker uses it), no allocation per packet; a full bucket evicts the entry that expires first.
 * @module
 */
import { writeAddress } from "./flow-key.ts";
import { FlowTable, flowTableBytes, type FlowTableLayout } from "./flow-table.ts";
import type { ParsedPacket } from "./packet-parse.ts";
import type { Verdict } from "./verdict.ts";

/** How long a first fragment's verdict is remembered (ms), as Linux keeps a reassembly queue. */
export const FRAGMENT_TIMEOUT_MS = 30 * 1000;
/** Default buckets (× 8 = 1 024 fragmented datagrams in flight). */
export const DEFAULT_FRAGMENT_BUCKETS = 128;

const KEY_WORDS = 10;
const V_DECISION = 0; // accept | reason << 8 | match << 16
const V_RULE = 1;
const V_INSPECTED = 2;

/** Outcome of {@link FragmentTable.follow}. */
export const FollowResult = {
  /** The verdict was copied from the first fragment. */
  followed: 0,
  /** No first fragment remembered. */
  unknown: 1,
  /** The fragment overlaps the inspected headers. */
  overlap: 2,
} as const;

/** The remembered first-fragment verdicts of one interface. */
export class FragmentTable {
  readonly #table: FlowTable;
  readonly #key = new Int32Array(KEY_WORDS);

  /** An empty table with `buckets` buckets (a power of two); `seed` keys its hash. */
  constructor(buckets: number = DEFAULT_FRAGMENT_BUCKETS, seed: number = 0) {
    const layout: FlowTableLayout = { buckets, keyWords: KEY_WORDS, valueWords: 3 };
    this.#table = new FlowTable(new ArrayBuffer(flowTableBytes(layout)), layout, seed);
  }

  /** Entries the table can hold. */
  get capacity(): number {
    return this.#table.capacity;
  }

  #writeKey(buf: Uint8Array, pkt: ParsedPacket): Int32Array {
    const key = this.#key;
    key[0] = (pkt.family << 16) | (pkt.fragProto << 8);
    key[1] = pkt.fragId;
    writeAddress(key, 2, buf, pkt.srcOff, pkt.family);
    writeAddress(key, 6, buf, pkt.dstOff, pkt.family);
    return key;
  }

  /**
   * Remembers the verdict of a first fragment (`pkt` parsed from `buf`, decided as `verdict`);
   * `inspectedEnd` is the offset one past the last byte the decision read (later fragments must start
   * at or after it).
   */
  recordFirst(buf: Uint8Array, pkt: ParsedPacket, verdict: Verdict, inspectedEnd: number, now: number): void {
    const e = this.#table.upsert(this.#writeKey(buf, pkt));
    this.#table.setValue(
      e,
      V_DECISION,
      (verdict.accept ? 1 : 0) | (verdict.reason << 8) | (verdict.match << 16),
    );
    this.#table.setValue(e, V_RULE, verdict.ruleIndex);
    this.#table.setValue(e, V_INSPECTED, inspectedEnd - pkt.fragPartOff);
    this.#table.setExpiresOut(e, now + FRAGMENT_TIMEOUT_MS);
  }

  /**
   * Gives a later fragment its first fragment's verdict (written into `out`, with the first's match
   * and rule), or says why it cannot ({@link FollowResult}); `out` is untouched then.
   */
  follow(buf: Uint8Array, pkt: ParsedPacket, now: number, out: Verdict): number {
    const e = this.#table.find(this.#writeKey(buf, pkt), now);
    if (e < 0) return FollowResult.unknown;
    if (pkt.fragOffset < this.#table.value(e, V_INSPECTED)) return FollowResult.overlap;
    const d = this.#table.value(e, V_DECISION);
    if (d & 1) out.accepted(((d >> 16) & 0xff) as Verdict["match"], this.#table.value(e, V_RULE));
    else out.dropped(((d >> 8) & 0xff) as Verdict["reason"]);
    return FollowResult.followed;
  }
}
