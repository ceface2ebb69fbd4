/**
 * Compiles the lockdown list and the access policies into the {@link RuleTable} of one interface: for
 * every remote-peer slot, the rule set {@link enforcementFor} says applies (the lockdown set on wg0
 * between AES peers, else that slot's policy set), with port ranges painted so that each port maps to
 * the first accepting rule (lowest index) — a lookup, not a scan, in the packet path. With policies,
 * each routed network this node advertises (and each network a rule names) is a destination class
 * with a set per slot of its own, from the rules naming it.
 *
 * The lockdown set takes only packets addressed to this node's wg0 address (everything on it is this
 * node's infrastructure): LAN-to-LAN traffic an AES peer forces onto wg0 is dropped, never forwarded.
 * The lockdown set's entries are numbered as {@link lockdownEntries} lists them: ICMP, UDP on the aes0
 * port, TCP on the key-plane port, then the extra ports in list order, then (a map-driven node) UDP and
 * TCP on the map's DNS port. Those always-allowed ports are
 * the ones `isAlwaysAllowed` (admin/lockdown-schema.ts) names; the key-plane port is DSKE_TCP_PORT.
 * @module
 */
import type { LockdownPort } from "../admin/model.ts";
import { DSKE_TCP_PORT, formatEntry } from "../admin/lockdown-schema.ts";
import type { PolicyConfig, PolicyRule } from "../config/policy-config.ts";
import { cidrCovers } from "../config/routed-network.ts";
import { type Cidr, formatCidr } from "../wireguard/allowedips.ts";
import { MAX_PEERS } from "../wireguard/dataplane/shared-state.ts";
import { enforcementFor, type FilterInterface } from "./placement.ts";
import {
  DEFAULT_ALLOW_RULE,
  encodeRuleTable,
  KEY_PLANE_RULE,
  NO_RULE,
  type PortRule,
  type RuleSetSpec,
  SetKind,
} from "./rule-table.ts";

/** Every port. */
const ALL_PORTS = { from: 0, to: 65535 } as const;

/** A remote peer as the filter of one interface sees it. */
export interface FilterPeer {
  /** The peer's slot in this interface's data plane. */
  slot: number;
  /** Its name in the config (what policies refer to). */
  name: string;
  /** Whether it runs aes0 (an edge peer with an AES IP; hubs and AES-exempt peers do not). */
  aesCapable: boolean;
  /** Whether it is a DSKE security hub. */
  hub: boolean;
}

/** The lockdown inputs. */
export interface LockdownRules {
  /** aes0's UDP port (51830 by default). */
  aesUdpPort: number;
  /** The extra ports of the lockdown list. */
  extraPorts: readonly LockdownPort[];
  /**
   * The network map's DNS port on the wg0 address (`dns.port`, 53 by default) of a map-driven node:
   * infrastructure like the aes0 and key-plane ports, so TCP and UDP to it pass; absent without a map.
   */
  dnsPort?: number;
}

/** Everything a table is compiled from. */
export interface CompileInput {
  /** The interface whose inbound filter uses the table. */
  iface: FilterInterface;
  /**
   * This node; `wgAddress` (its wg0 IPv4 address) limits the wg0 lockdown to packets addressed to it
   * (absent: the lockdown takes any destination).
   */
  local: { name: string; aesCapable: boolean; wgAddress?: Uint8Array };
  /** Remote peers with their slots. */
  peers: readonly FilterPeer[];
  /** The lockdown list. */
  lockdown: LockdownRules;
  /** The access policies, or null when none are configured (all-to-all). */
  policy: PolicyConfig | null;
  /**
   * The networks this node routes for others (node.advertise): with policies, traffic into them is
   * decided by the rules naming them (a destination class each), not by the rules naming this node.
   */
  networks?: readonly Cidr[];
  /** Slots in the table (default MAX_PEERS). */
  slotCount?: number;
}

/** One lockdown entry, as ruleIndex values of a lockdown verdict refer to it. */
export interface LockdownEntryInfo {
  /** "icmp", "tcp" or "udp". */
  proto: "icmp" | "tcp" | "udp";
  /** Port range (ICMP: 0..65535, meaning all). */
  from: number;
  to: number;
  /** Readable, e.g. "udp/51830 (aes0)" or "tcp/8080 (extra)". */
  label: string;
}

/** The lockdown entries in ruleIndex order: ICMP, the aes0 UDP port, the key-plane TCP port, the extras. */
export function lockdownEntries(lockdown: LockdownRules): LockdownEntryInfo[] {
  return [
    { proto: "icmp", ...ALL_PORTS, label: "icmp (always)" },
    {
      proto: "udp",
      from: lockdown.aesUdpPort,
      to: lockdown.aesUdpPort,
      label: `udp/${lockdown.aesUdpPort} (aes0)`,
    },
    { proto: "tcp", from: DSKE_TCP_PORT, to: DSKE_TCP_PORT, label: `tcp/${DSKE_TCP_PORT} (key plane)` },
    ...lockdown.extraPorts.map((p) => ({
      proto: p.proto,
      from: p.from,
      to: p.to,
      label: `${formatEntry(p)} (extra)`,
    })),
    // Last, so that the extras keep their numbers with or without a map.
    ...(lockdown.dnsPort === undefined ? [] : (["udp", "tcp"] as const).map((proto) => ({
      proto,
      from: lockdown.dnsPort!,
      to: lockdown.dnsPort!,
      label: `${proto}/${lockdown.dnsPort} (DNS)`,
    }))),
  ];
}

/**
 * Paints prioritised ranges into sorted disjoint ranges: each port gets the rule of the first item (in
 * `items` order) covering it; adjacent ranges with one rule merge.
 */
export function paintRanges(items: readonly PortRule[]): PortRule[] {
  const points = [...new Set(items.flatMap((i) => [i.from, i.to + 1]))].sort((a, b) => a - b);
  const out: PortRule[] = [];
  for (let k = 0; k + 1 < points.length; k++) {
    const from = points[k], to = points[k + 1] - 1;
    const hit = items.find((i) => i.from <= from && to <= i.to);
    if (!hit) continue;
    const last = out[out.length - 1];
    if (last && last.rule === hit.rule && last.to + 1 === from) last.to = to;
    else out.push({ from, to, rule: hit.rule });
  }
  return out;
}

function lockdownSet(lockdown: LockdownRules, onlyTo: Uint8Array | undefined): RuleSetSpec {
  const entries = lockdownEntries(lockdown);
  const ranges = (proto: "tcp" | "udp") =>
    paintRanges(entries.flatMap((e, i) => (e.proto === proto ? [{ from: e.from, to: e.to, rule: i }] : [])));
  const set: RuleSetSpec = {
    kind: SetKind.lockdown,
    icmp: 0,
    other: NO_RULE,
    tcp: ranges("tcp"),
    udp: ranges("udp"),
  };
  return onlyTo ? { ...set, onlyTo } : set;
}

function defaultAllowSet(): RuleSetSpec {
  const all = [{ ...ALL_PORTS, rule: DEFAULT_ALLOW_RULE }];
  return {
    kind: SetKind.policy,
    icmp: DEFAULT_ALLOW_RULE,
    other: DEFAULT_ALLOW_RULE,
    tcp: all,
    udp: [...all],
  };
}

/** Where a policy set's packets go: this node itself (rules naming it) or one routed network class. */
type PolicyDestination = { node: string } | { network: Cidr };

/** Whether rule `r` is about packets to `dest`. */
function ruleReaches(r: PolicyRule, dest: PolicyDestination): boolean {
  if ("node" in dest) return r.to.peers.includes(dest.node);
  return r.to.kind === "network" && cidrCovers(r.to.network!, dest.network);
}

function policySet(
  policy: PolicyConfig,
  remote: FilterPeer,
  dest: PolicyDestination,
  keyPlane: boolean,
): RuleSetSpec {
  const tcp: PortRule[] = [];
  const udp: PortRule[] = [];
  let icmp = NO_RULE;
  let other = NO_RULE;
  policy.rules.forEach((r, i) => {
    if (!r.from.peers.includes(remote.name) || !ruleReaches(r, dest)) return;
    const ports = r.ports.length > 0 ? r.ports : [ALL_PORTS];
    if (r.proto === "tcp" || r.proto === "any") {
      for (const p of ports) tcp.push({ from: p.from, to: p.to, rule: i });
    }
    if (r.proto === "udp" || r.proto === "any") {
      for (const p of ports) udp.push({ from: p.from, to: p.to, rule: i });
    }
    if (icmp === NO_RULE && (r.proto === "icmp" || (r.proto === "any" && r.ports.length === 0))) icmp = i;
    if (other === NO_RULE && r.proto === "any" && r.ports.length === 0) other = i;
  });
  if (keyPlane) tcp.push({ from: DSKE_TCP_PORT, to: DSKE_TCP_PORT, rule: KEY_PLANE_RULE });
  return { kind: SetKind.policy, icmp, other, tcp: paintRanges(tcp), udp: paintRanges(udp) };
}

/**
 * The destination classes of a table: with policies, every network this node routes (`networks`) and
 * every network a rule names, longest prefix first (a packet's class is the most specific holding its
 * destination, and every rule naming a network that holds it covers that class); none without.
 */
function destinationClasses(input: CompileInput): Cidr[] {
  if (input.policy === null) return [];
  const named = input.policy.rules.flatMap((r) => r.to.network ? [r.to.network] : []);
  const unique = new Map([...(input.networks ?? []), ...named].map((n) => [formatCidr(n), n]));
  return [...unique.values()].sort((a, b) => b.bits - a.bits);
}

/** Compiles the table of one interface (see the module doc). Slots without a peer drop everything. */
export function compileRuleTable(input: CompileInput): Int32Array {
  const slotCount = input.slotCount ?? MAX_PEERS;
  const classes = destinationClasses(input);
  const slots: number[] = new Array(slotCount).fill(-1);
  const classSlots: number[][] = classes.map(() => new Array(slotCount).fill(-1));
  const sets: RuleSetSpec[] = [];
  const index = new Map<string, number>();
  const intern = (s: RuleSetSpec) => {
    const key = JSON.stringify(s);
    let i = index.get(key);
    if (i === undefined) {
      i = sets.push(s) - 1;
      index.set(key, i);
    }
    return i;
  };
  for (const peer of input.peers) {
    if (!Number.isInteger(peer.slot) || peer.slot < 0 || peer.slot >= slotCount) {
      throw new RangeError(`peer ${peer.name}: slot ${peer.slot} is outside 0..${slotCount - 1}`);
    }
    const where = enforcementFor(input.local.aesCapable, peer.aesCapable, input.iface);
    const setFor = (dest: PolicyDestination): RuleSetSpec => {
      if (where === "lockdown") return lockdownSet(input.lockdown, input.local.wgAddress);
      if (input.policy === null) return defaultAllowSet();
      const keyPlane = "node" in dest && peer.hub && input.iface === "wg0";
      return policySet(input.policy, peer, dest, keyPlane);
    };
    slots[peer.slot] = intern(setFor({ node: input.local.name }));
    classes.forEach((network, c) => classSlots[c][peer.slot] = intern(setFor({ network })));
  }
  const destinations = classes.map((prefix, c) => ({ prefix, slots: classSlots[c] }));
  return encodeRuleTable({ slots, sets, destinations });
}

/** Words an interface's rule-table exchange reserves per table (256 slots and thousands of ranges). */
export const RULE_TABLE_CAPACITY_WORDS = 64 * 1024;

/**
 * The table of a device nobody configured a filter for: every slot accepts everything (a plain
 * WireGuard device, and a node's interfaces until their first compiled table is published).
 */
export function allowAllRuleTable(slotCount: number = MAX_PEERS): Int32Array {
  return encodeRuleTable({ slots: new Array(slotCount).fill(0), sets: [defaultAllowSet()] });
}
