/**
 * What the packet filter decided about one packet: accept or drop, why it dropped (the counter the
 * drop lands in) and what accepted it (a policy rule, a lockdown entry, a flow of ours…), with the
 * index of the deciding rule or lockdown entry for `twofold trace`. One reusable object per caller, so
 * the per-packet path does not allocate.
 * @module
 */

/** Why a packet was dropped. Codes index {@link DROP_REASONS}. */
export const DropReason = {
  /** Not dropped. */
  none: 0,
  /** wg0 between two AES peers delivers only ICMP, the aes0 port, the key plane and the extra ports. */
  lockdown: 1,
  /** No access-policy rule accepts it (or the sending slot has no peer). */
  policy: 2,
  /** A malformed IP header or transport header. */
  malformed: 3,
  /** A non-first fragment whose first fragment was not seen, overlaps what was inspected, or a tiny first fragment. */
  fragment: 4,
} as const;
/** A drop reason code. */
export type DropReasonCode = typeof DropReason[keyof typeof DropReason];
/** Drop reason names, indexed by code (the names counters and events use). */
export const DROP_REASONS = ["none", "lockdown", "policy", "malformed", "fragment"] as const;

/** What decided an accept (or, for a drop, the rule set that did not accept). Codes index {@link MATCH_KINDS}. */
export const MatchKind = {
  /** Nothing matched (a drop). */
  none: 0,
  /** A lockdown entry; ruleIndex indexes the lockdown entries (see `lockdownEntries`). */
  lockdownEntry: 1,
  /** An access-policy rule; ruleIndex is its index in the policy's rules. */
  policyRule: 2,
  /** No policy is configured: all-to-all is allowed. */
  defaultAllow: 3,
  /** The key plane's TCP port from a security hub, which no policy may block. */
  keyPlane: 4,
  /** A reply in a flow this node opened (connection tracker). */
  established: 5,
  /** An ICMP error quoting a packet of a flow of ours or of a flow the rules allow. */
  related: 6,
} as const;
/** A match kind code. */
export type MatchKindCode = typeof MatchKind[keyof typeof MatchKind];
/** Match kind names, indexed by code. */
export const MATCH_KINDS = [
  "none",
  "lockdown-entry",
  "policy-rule",
  "default-allow",
  "key-plane",
  "established",
  "related",
] as const;

/** A decision, overwritten in place by each call. */
export class Verdict {
  /** Deliver the packet. */
  accept = false;
  /** Why it was dropped ({@link DropReason}); `none` when accepted. */
  reason: DropReasonCode = DropReason.none;
  /** What accepted it ({@link MatchKind}). */
  match: MatchKindCode = MatchKind.none;
  /** The deciding policy rule or lockdown entry, or -1. */
  ruleIndex = -1;

  /** Sets an accept. */
  accepted(match: MatchKindCode, ruleIndex: number): Verdict {
    this.accept = true;
    this.reason = DropReason.none;
    this.match = match;
    this.ruleIndex = ruleIndex;
    return this;
  }

  /** Sets a drop. */
  dropped(reason: DropReasonCode): Verdict {
    this.accept = false;
    this.reason = reason;
    this.match = MatchKind.none;
    this.ruleIndex = -1;
    return this;
  }

  /** A readable form for logs, trace and test messages, e.g. `accept (policy-rule #3)` or `drop (lockdown)`. */
  toString(): string {
    if (!this.accept) return `drop (${DROP_REASONS[this.reason]})`;
    const rule = this.ruleIndex >= 0 ? ` #${this.ruleIndex}` : "";
    return `accept (${MATCH_KINDS[this.match]}${rule})`;
  }
}
