/**
 * Fuzz of the packet filter's inbound decision against a separately written REFERENCE: over ≥ 1 000 000
 * random and mutated inbound packets (valid TCP/UDP/ICMP/ICMPv6 and other protocols, IPv4 and IPv6,
 * fragments, IPv6 extension-header chains, ICMP errors quoting flows, then truncations, bogus IHL and
 * lengths, bit flips, random bytes), interleaved with outbound packets that open flows and a clock that
 * moves (sometimes past the timeouts), `decideInbound` must never throw and never accept a packet the
 * reference rejects. The reference keeps unbounded state and scans the rules as written (policy config
 * and lockdown list, not the compiled table); the tracker and fragment tables are sized so that nothing
 * is evicted in this run, so the verdicts (reason, match and rule) must in fact be identical.
 *
 * A second loop feeds 200 000 mutated packets to `observeOutbound` (never throws).
 * Reproduce a run with FUZZ_SEED=<seed printed in the failure message>.
 */
import assert from "node:assert/strict";
import { parsePolicyConfig, type PolicyConfig } from "../../src/config/policy-config.ts";
import { ConnTracker, connTrackerBytes } from "../../src/filter/conn-tracker.ts";
import { FragmentTable } from "../../src/filter/fragment-table.ts";
import { PacketFilter } from "../../src/filter/packet-filter.ts";
import type { FilterInterface } from "../../src/filter/placement.ts";
import { compileRuleTable } from "../../src/filter/rule-compiler.ts";
import { RuleTable } from "../../src/filter/rule-table.ts";
import { addr, icmp, ipv4, ipv6, tcp, udp } from "./filter_packets.ts";

/** Tracker and fragment-table buckets: large enough that this run never evicts (see the module doc). */
const TRACKER_BUCKETS = 16384;
const FRAGMENT_BUCKETS = 4096;
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? (Date.now() >>> 0));

/** mulberry32: small, fast, reproducible. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

// ------------------------------------------------------------------------------------------------
// The world: this node "alpha" (AES) and four peers.

interface RefPeer {
  slot: number;
  name: string;
  aes: boolean;
  hub: boolean;
  v4: string;
  v6: string;
}
const LOCAL = { name: "alpha", v4: "100.64.0.1", v6: "fd00::1" };
const PEERS: RefPeer[] = [
  { slot: 0, name: "bravo", aes: true, hub: false, v4: "100.64.0.2", v6: "fd00::2" },
  { slot: 1, name: "charlie", aes: false, hub: false, v4: "100.64.0.3", v6: "fd00::3" },
  { slot: 2, name: "hub1", aes: false, hub: true, v4: "100.64.0.9", v6: "fd00::9" },
  { slot: 3, name: "delta", aes: true, hub: false, v4: "100.64.0.4", v6: "fd00::4" },
];
const AES_PORT = 51830;
const DSKE = 51831;
const EXTRA = [{ proto: "tcp" as const, from: 8080, to: 8080 }, {
  proto: "udp" as const,
  from: 6000,
  to: 6010,
}];
const POLICY_RAW = {
  groups: { edge: ["bravo", "charlie", "delta"], all: ["alpha", "bravo", "charlie", "delta", "hub1"] },
  rules: [
    { from: "edge", to: "alpha", proto: "tcp", ports: ["22", "8000-8100"] },
    { from: "charlie", to: "all", proto: "udp", ports: ["53", "6005-7000"] },
    { from: "delta", to: "alpha", proto: "icmp" },
    { from: "bravo", to: "alpha", proto: "any" },
    { from: "charlie", to: "alpha", proto: "any", ports: ["443"] },
    { from: "alpha", to: "charlie", proto: "any" },
  ],
};
/** The lockdown entries as the issue lists them: ICMP, UDP 51830, TCP 51831, then the extra ports. */
const LOCKDOWN_ENTRIES: [string, number, number][] = [
  ["icmp", 0, 65535],
  ["udp", AES_PORT, AES_PORT],
  ["tcp", DSKE, DSKE],
  ...EXTRA.map((e) => [e.proto, e.from, e.to] as [string, number, number]),
];
const PORTS = [22, 53, 80, 443, 6000, 6005, 8080, 8100, 40000, 40001, AES_PORT, DSKE];
const FLAGS = [0x02, 0x12, 0x10, 0x11, 0x04, 0x14, 0x18, 0x03];

// ------------------------------------------------------------------------------------------------
// REFERENCE: straightforward parse with DataView, unbounded Maps, rules scanned as written.

interface RefPacket {
  family: 4 | 6;
  proto: number;
  src: string;
  dst: string;
  hasL4: boolean;
  sport: number;
  dport: number;
  flags: number;
  icmpType: number;
  icmpId: number;
  frag: "none" | "first" | "later";
  fragId: number;
  fragOffset: number;
  fragProto: number;
  partStart: number;
  l4Start: number;
  l4End: number;
  end: number;
}
type RefParse = RefPacket | "malformed" | "tiny";

function hex(b: Uint8Array, from: number, n: number): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

function refParse(b: Uint8Array, quoted: boolean): RefParse {
  if (b.length === 0) return "malformed";
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const v = b[0] >> 4;
  const p: RefPacket = {
    family: 4,
    proto: 0,
    src: "",
    dst: "",
    hasL4: false,
    sport: 0,
    dport: 0,
    flags: 0,
    icmpType: 0,
    icmpId: 0,
    frag: "none",
    fragId: 0,
    fragOffset: 0,
    fragProto: 0,
    partStart: 0,
    l4Start: 0,
    l4End: 0,
    end: 0,
  };
  if (v === 4) {
    if (b.length < 20) return "malformed";
    const ihl = (b[0] & 15) * 4;
    const total = dv.getUint16(2);
    if (ihl < 20 || ihl > b.length || total < ihl) return "malformed";
    if (!quoted && total > b.length) return "malformed";
    p.end = Math.min(total, b.length);
    const ff = dv.getUint16(6);
    p.fragOffset = (ff & 0x1fff) * 8;
    if (p.fragOffset + total - ihl > 65535) return "malformed";
    p.family = 4;
    p.proto = b[9];
    p.fragProto = b[9];
    p.fragId = dv.getUint16(4);
    p.src = hex(b, 12, 4);
    p.dst = hex(b, 16, 4);
    p.l4Start = p.partStart = p.l4End = ihl;
    if (p.fragOffset > 0) {
      p.frag = "later"; // no transport header: what was read ends with the IP header
      return p;
    }
    if (ff & 0x2000) p.frag = "first";
  } else if (v === 6) {
    if (b.length < 40) return "malformed";
    const total = 40 + dv.getUint16(4);
    if (!quoted && total > b.length) return "malformed";
    p.end = Math.min(total, b.length);
    p.family = 6;
    p.src = hex(b, 8, 16);
    p.dst = hex(b, 24, 16);
    let next = b[6];
    let at = 40;
    let headers = 0;
    let sawFragment = false;
    p.partStart = 40;
    p.fragProto = next;
    while ([0, 43, 60, 44].includes(next)) {
      headers++;
      if (headers > 8) return "malformed";
      if (next === 0 && headers !== 1) return "malformed";
      if (next === 44) {
        if (sawFragment || at + 8 > p.end) return "malformed";
        sawFragment = true;
        const field = dv.getUint16(at + 2);
        p.fragOffset = field & ~7;
        p.fragId = dv.getUint32(at + 4);
        p.fragProto = b[at];
        next = b[at];
        at += 8;
        p.partStart = at;
        if (p.fragOffset + (p.end - at) > 65535) return "malformed";
        if (p.fragOffset > 0) {
          p.frag = "later";
          p.proto = next;
          p.l4Start = p.l4End = at;
          return p;
        }
        if (field & 1) p.frag = "first";
        continue;
      }
      const len = at + 2 <= p.end ? (b[at + 1] + 1) * 8 : Infinity;
      if (at + len > p.end) return p.frag === "first" && !quoted ? "tiny" : "malformed";
      next = b[at];
      at += len;
    }
    if (!sawFragment) p.fragProto = next;
    p.proto = next;
    p.l4Start = at;
  } else {
    return "malformed";
  }
  // transport header
  const at = p.l4Start;
  const avail = p.end - at;
  const short = p.frag === "first" && !quoted ? "tiny" : "malformed";
  p.l4End = at;
  if (p.proto === 6) {
    if (quoted) {
      if (avail < 8) return "malformed";
      p.l4End = at + 8;
    } else {
      if (avail < 20) return short;
      const doff = (b[at + 12] >> 4) * 4;
      if (doff < 20) return "malformed";
      if (doff > avail) return short;
      p.flags = b[at + 13];
      p.l4End = at + doff;
    }
    p.sport = dv.getUint16(at);
    p.dport = dv.getUint16(at + 2);
    p.hasL4 = true;
  } else if (p.proto === 17) {
    if (avail < 8) return short;
    p.sport = dv.getUint16(at);
    p.dport = dv.getUint16(at + 2);
    p.l4End = at + 8;
    p.hasL4 = true;
  } else if (p.proto === (p.family === 4 ? 1 : 58)) {
    if (avail < 8) return short;
    p.icmpType = b[at];
    p.icmpId = dv.getUint16(at + 4);
    p.l4End = at + 8;
    p.hasL4 = true;
  }
  return p;
}

const TIMEOUT = { 6: 7_200_000, 17: 120_000, 1: 30_000, 58: 30_000 } as Record<number, number>;

class Reference {
  flows = new Map<string, { out: number; in: number }>();
  frags = new Map<string, { verdict: string; inspected: number; expires: number }>();
  /** Later fragments accepted by following their first (to show the fuzz reaches that path). */
  followedAccepts = 0;
  constructor(readonly iface: FilterInterface, readonly policy: PolicyConfig | null) {}

  static flowKey(p: RefPacket, outbound: boolean, localPort: number, remotePort: number): string {
    return [p.family, p.proto, localPort, remotePort, outbound ? p.src : p.dst, outbound ? p.dst : p.src]
      .join("|");
  }

  observe(bytes: Uint8Array, now: number): void {
    const p = refParse(bytes, false);
    if (typeof p === "string" || !p.hasL4 || p.frag === "later") return;
    let key: string;
    if (p.proto === 6) {
      key = Reference.flowKey(p, true, p.sport, p.dport);
      const bareSyn = (p.flags & 0x12) === 0x02;
      if (!bareSyn) {
        const f = this.flows.get(key);
        if (f && (f.out > now || f.in > now)) f.out = now + TIMEOUT[6];
        return;
      }
    } else if (p.proto === 17) key = Reference.flowKey(p, true, p.sport, p.dport);
    else if (p.icmpType === (p.family === 4 ? 8 : 128)) key = Reference.flowKey(p, true, p.icmpId, 0);
    else return;
    const f = this.flows.get(key) ?? { out: 0, in: 0 };
    f.out = now + TIMEOUT[p.proto];
    this.flows.set(key, f);
  }

  /** The first rule (or lockdown entry) accepting (proto class, port) from `peer`, as "kind #i" text, or null. */
  rules(peer: RefPeer, cls: "tcp" | "udp" | "icmp" | "other", port: number): string | null {
    if (this.iface === "wg0" && peer.aes) {
      const i = LOCKDOWN_ENTRIES.findIndex(([proto, from, to]) =>
        proto === cls && (cls === "icmp" || (from <= port && port <= to))
      );
      return i >= 0 ? `lockdown-entry #${i}` : null;
    }
    if (this.policy === null) return "default-allow";
    const i = this.policy.rules.findIndex((r) => {
      if (!r.from.peers.includes(peer.name) || !r.to.peers.includes(LOCAL.name)) return false;
      if (cls === "other") return r.proto === "any" && r.ports.length === 0;
      if (cls === "icmp") return r.proto === "icmp" || (r.proto === "any" && r.ports.length === 0);
      if (r.proto !== cls && r.proto !== "any") return false;
      return r.ports.length === 0 || r.ports.some((x) => x.from <= port && port <= x.to);
    });
    if (i >= 0) return `policy-rule #${i}`;
    if (peer.hub && this.iface === "wg0" && cls === "tcp" && port === DSKE) return "key-plane";
    return null;
  }

  decide(bytes: Uint8Array, slot: number, now: number): string {
    const p = refParse(bytes, false);
    if (p === "malformed") return "drop (malformed)";
    if (p === "tiny") return "drop (fragment)";
    const fragKey = [p.family, p.fragProto, p.fragId, p.src, p.dst].join("|");
    if (p.frag === "later") {
      const f = this.frags.get(fragKey);
      if (!f || f.expires <= now || p.fragOffset < f.inspected) return "drop (fragment)";
      if (f.verdict.startsWith("accept")) this.followedAccepts++;
      return f.verdict;
    }
    let inspected = p.l4End;
    const verdict = ((): string => {
      const peer = PEERS.find((x) => x.slot === slot);
      if (!peer) return "drop (policy)";
      const locked = this.iface === "wg0" && peer.aes;
      const cls = p.proto === 6
        ? "tcp"
        : p.proto === 17
        ? "udp"
        : p.proto === (p.family === 4 ? 1 : 58)
        ? "icmp"
        : "other";
      const byRule = this.rules(peer, cls, p.dport);
      if (byRule) return `accept (${byRule})`;
      // replies
      let key: string | null = null;
      if (p.proto === 6 && (p.flags & 0x12) !== 0x02) key = Reference.flowKey(p, false, p.dport, p.sport);
      if (p.proto === 17) key = Reference.flowKey(p, false, p.dport, p.sport);
      if (cls === "icmp" && p.icmpType === (p.family === 4 ? 0 : 129)) {
        key = Reference.flowKey(p, false, p.icmpId, 0);
      }
      const flow = key === null ? undefined : this.flows.get(key);
      if (flow && (flow.out > now || flow.in > now)) {
        flow.in = now + TIMEOUT[p.proto];
        return "accept (established)";
      }
      // ICMP errors
      const errors = p.family === 4 ? [3, 11, 12] : [1, 2, 3, 4];
      if (cls === "icmp" && errors.includes(p.icmpType) && p.l4Start + 8 < p.end) {
        const q = refParse(bytes.subarray(p.l4Start + 8, p.end), true);
        if (typeof q !== "string") {
          inspected = Math.max(inspected, p.l4Start + 8 + q.l4End);
          if (q.family === p.family && q.hasL4 && q.src === p.dst) {
            let qkey: string | null = null;
            if (q.proto === 6 || q.proto === 17) qkey = Reference.flowKey(q, true, q.sport, q.dport);
            else if (q.icmpType === (q.family === 4 ? 8 : 128)) {
              qkey = Reference.flowKey(q, true, q.icmpId, 0);
            }
            const qf = qkey === null ? undefined : this.flows.get(qkey);
            if (qf && (qf.out > now || qf.in > now)) return "accept (related)";
            if (q.proto === 6 || q.proto === 17) {
              const r = this.rules(peer, q.proto === 6 ? "tcp" : "udp", q.sport);
              if (r) return r.includes("#") ? `accept (related #${r.split("#")[1]})` : "accept (related)";
            }
          }
        }
      }
      return locked ? "drop (lockdown)" : "drop (policy)";
    })();
    if (p.frag === "first") {
      this.frags.set(fragKey, { verdict, inspected: inspected - p.partStart, expires: now + 30_000 });
    }
    return verdict;
  }
}

// ------------------------------------------------------------------------------------------------
// Packet generator.

function family(rng: Rng): 4 | 6 {
  return rng.chance(0.5) ? 4 : 6;
}

function transport(rng: Rng, fam: 4 | 6, outbound: boolean): { proto: number; body: Uint8Array } {
  const port = () => (rng.chance(0.05) ? rng.int(65536) : rng.pick(PORTS));
  const k = rng.int(outbound ? 3 : 6);
  const icmpProto = fam === 4 ? 1 : 58;
  switch (k) {
    case 0:
      return {
        proto: 6,
        body: tcp(port(), port(), outbound ? rng.pick([0x02, 0x02, 0x10, 0x12]) : rng.pick(FLAGS), {
          payload: rng.int(40),
        }),
      };
    case 1:
      return { proto: 17, body: udp(port(), port(), rng.int(40)) };
    case 2: {
      const type = outbound ? (fam === 4 ? 8 : 128) : rng.pick(fam === 4 ? [0, 8, 5] : [129, 128, 135]);
      return {
        proto: icmpProto,
        body: icmp(type, 0, 1 + rng.int(3), rng.int(100), new Uint8Array(rng.int(24))),
      };
    }
    case 3: {
      // an ICMP error quoting a packet from us to the peer
      const inner = transport(rng, fam, true);
      const peer = rng.pick(PEERS);
      let q = fam === 4
        ? ipv4(LOCAL.v4, peer.v4, inner.proto, inner.body)
        : ipv6(LOCAL.v6, peer.v6, inner.proto, inner.body);
      if (rng.chance(0.3)) q = q.subarray(0, rng.int(q.length + 1));
      const type = rng.pick(fam === 4 ? [3, 11, 12, 4] : [1, 2, 3, 4, 5]);
      return { proto: icmpProto, body: icmp(type, rng.int(5), 0, 1280, q) };
    }
    case 4:
      return { proto: rng.pick([47, 132, fam === 4 ? 58 : 1, 59]), body: new Uint8Array(rng.int(30)) };
    default:
      return { proto: rng.pick([6, 17]), body: new Uint8Array(rng.int(24)) };
  }
}

function packet(rng: Rng, src: string, dst: string, fam: 4 | 6, outbound: boolean): Uint8Array {
  const { proto, body } = transport(rng, fam, outbound);
  const fragmented = !outbound && rng.chance(0.25);
  const later = fragmented && rng.chance(0.5);
  const id = 1 + rng.int(4);
  const offset = rng.pick([8, 16, 24, 32, 64, 128]);
  if (fam === 4) {
    return ipv4(src, dst, proto, later ? new Uint8Array(8 + rng.int(40)) : body, {
      id,
      more: fragmented && (!later || rng.chance(0.5)),
      fragOffset: later ? offset : 0,
      ihl: rng.chance(0.05) ? 6 + rng.int(4) : 5,
    });
  }
  const exts: { type: 0 | 43 | 60 | 44; len?: number; fragOffset?: number; more?: boolean; id?: number }[] =
    [];
  if (!outbound) {
    const n = rng.chance(0.6) ? 0 : rng.int(4);
    for (let i = 0; i < n; i++) exts.push({ type: rng.pick([0, 43, 60] as const), len: rng.int(3) });
  }
  if (fragmented) {
    exts.splice(rng.int(exts.length + 1), 0, {
      type: 44,
      fragOffset: later ? offset : 0,
      more: !later || rng.chance(0.5),
      id,
    });
  }
  return ipv6(
    src,
    dst,
    later ? (rng.chance(0.5) ? proto : 60) : proto,
    later ? new Uint8Array(8 + rng.int(40)) : body,
    exts,
  );
}

function mutate(rng: Rng, p: Uint8Array): Uint8Array {
  const m = p.slice();
  switch (rng.int(7)) {
    case 0:
      return m.subarray(0, rng.int(m.length + 1));
    case 1: // bogus IHL / version nibble
      if (m.length > 0) m[0] = (m[0] & 0xf0) | rng.int(16);
      return m;
    case 2: // total / payload length
      if (m.length > 5) {
        m[m[0] >> 4 === 6 ? 4 : 2] = rng.int(256);
        m[m[0] >> 4 === 6 ? 5 : 3] = rng.int(256);
      }
      return m;
    case 3: // flags / fragment offset / next header
      if (m.length > 7) m[rng.pick([6, 7, 9])] = rng.int(256);
      return m;
    case 4: {
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips && m.length > 0; i++) m[rng.int(Math.min(m.length, 80))] ^= 1 << rng.int(8);
      return m;
    }
    case 5: {
      const r = new Uint8Array(rng.int(80));
      for (let i = 0; i < r.length; i++) r[i] = rng.int(256);
      if (r.length > 0 && rng.chance(0.7)) r[0] = rng.pick([0x45, 0x46, 0x60, 0x4f]);
      return r;
    }
    default: { // extra trailing bytes
      const longer = new Uint8Array(m.length + rng.int(20)).fill(0xaa);
      longer.set(m);
      return longer;
    }
  }
}

// ------------------------------------------------------------------------------------------------

interface Scenario {
  iface: FilterInterface;
  policy: boolean;
  inbound: number;
}

/** Verdicts seen, by kind ("accept (policy-rule)", "drop (fragment)", …; rule numbers left out). */
const seen = new Map<string, number>();

function runScenario(
  s: Scenario,
  seed: number,
): { checked: number; accepted: number; outbound: number; followed: number } {
  const rng = prng(seed);
  const policy = s.policy ? parsePolicyConfig(POLICY_RAW, ["alpha", ...PEERS.map((p) => p.name)]) : null;
  const table = new RuleTable(compileRuleTable({
    iface: s.iface,
    local: { name: LOCAL.name, aesCapable: true },
    peers: PEERS.map((p) => ({ slot: p.slot, name: p.name, aesCapable: p.aes, hub: p.hub })),
    lockdown: { aesUdpPort: AES_PORT, extraPorts: EXTRA },
    policy,
  }));
  // 16 384 buckets (131 072 flows, ~8 MiB): thousands of live flows never fill a bucket, so nothing is evicted
  const sab = new SharedArrayBuffer(connTrackerBytes(TRACKER_BUCKETS));
  const encrypt = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab, TRACKER_BUCKETS, seed),
    fragments: new FragmentTable(1),
  });
  const decrypt = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab, TRACKER_BUCKETS),
    fragments: new FragmentTable(FRAGMENT_BUCKETS, seed ^ 1),
  });
  const ref = new Reference(s.iface, policy);
  const buf = new Uint8Array(4096);
  const OFF = 16;
  let now = 1_700_000_000_000;
  let checked = 0, accepted = 0, outbound = 0;
  while (checked < s.inbound) {
    now += rng.int(50);
    if (rng.chance(0.001)) now += 200_000;
    if (rng.chance(0.00005)) now += 8_000_000;
    const peer = rng.pick(PEERS);
    const fam = family(rng);
    if (rng.chance(0.25)) {
      const p = packet(rng, fam === 4 ? LOCAL.v4 : LOCAL.v6, fam === 4 ? peer.v4 : peer.v6, fam, true);
      buf.set(p, OFF);
      encrypt.observeOutbound(buf, OFF, p.length, now);
      ref.observe(p, now);
      outbound++;
      continue;
    }
    let p = packet(rng, fam === 4 ? peer.v4 : peer.v6, fam === 4 ? LOCAL.v4 : LOCAL.v6, fam, false);
    if (rng.chance(0.3)) p = mutate(rng, p);
    const slot = rng.chance(0.05) ? rng.int(6) : peer.slot;
    buf.set(p, OFF);
    let got: string;
    try {
      got = decrypt.decideInbound(buf, OFF, p.length, slot, now).toString();
    } catch (e) {
      throw new Error(`decideInbound threw on ${hex(p, 0, p.length)} (FUZZ_SEED=${seed}): ${e}`);
    }
    const want = ref.decide(p, slot, now);
    if (got !== want) {
      assert.fail(
        `${s.iface}${
          s.policy ? "+policy" : ""
        } packet ${checked}: filter says ${got}, reference ${want}; slot ${slot}; ` +
          `bytes ${hex(p, 0, Math.min(p.length, 120))} (FUZZ_SEED=${seed})`,
      );
    }
    if (got.startsWith("accept")) accepted++;
    const kind = got.replace(/ #\d+/, "");
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
    checked++;
  }
  return { checked, accepted, outbound, followed: ref.followedAccepts };
}

Deno.test("filter fuzz: ≥ 1 000 000 random and mutated packets never throw and match the reference rules", () => {
  const scenarios: Scenario[] = [
    { iface: "wg0", policy: true, inbound: 500_000 },
    { iface: "aes0", policy: true, inbound: 250_000 },
    { iface: "wg0", policy: false, inbound: 250_000 },
  ];
  const t0 = performance.now();
  let total = 0, accepted = 0, outbound = 0, followed = 0;
  scenarios.forEach((s, i) => {
    const r = runScenario(s, (SEED + i) >>> 0);
    total += r.checked;
    accepted += r.accepted;
    outbound += r.outbound;
    assert.ok(
      r.accepted > r.checked / 20 && r.accepted < r.checked * 0.95,
      `${s.iface}: a useful mix of verdicts (${r.accepted}/${r.checked})`,
    );
    assert.ok(r.followed > 0, `${s.iface}: later fragments were accepted by following their first`);
    followed += r.followed;
  });
  const ms = performance.now() - t0;
  console.log(
    `filter fuzz: ${total} inbound packets (${accepted} accepted, ${followed} later fragments followed), ${outbound} outbound, ${
      (ms / 1000).toFixed(1)
    } s, FUZZ_SEED=${SEED}`,
  );
  console.log([...seen].sort().map(([k, n]) => `  ${k}: ${n}`).join("\n"));
  assert.ok(total >= 1_000_000);
  for (
    const kind of ["lockdown-entry", "policy-rule", "default-allow", "key-plane", "established", "related"]
  ) {
    assert.ok((seen.get(`accept (${kind})`) ?? 0) > 0, `the fuzz reached accept (${kind})`);
  }
  for (const reason of ["lockdown", "policy", "malformed", "fragment"]) {
    assert.ok((seen.get(`drop (${reason})`) ?? 0) > 0, `the fuzz reached drop (${reason})`);
  }
});

Deno.test("filter fuzz: observeOutbound never throws on 200 000 mutated packets", () => {
  const rng = prng(SEED ^ 0x5a5a);
  const sab = new SharedArrayBuffer(connTrackerBytes(64));
  const table = new RuleTable(compileRuleTable({
    iface: "wg0",
    local: { name: "alpha", aesCapable: true },
    peers: [],
    lockdown: { aesUdpPort: AES_PORT, extraPorts: [] },
    policy: null,
  }));
  const f = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab, 64, 1),
    fragments: new FragmentTable(1),
  });
  const buf = new Uint8Array(4096);
  for (let i = 0; i < 200_000; i++) {
    const fam = family(rng);
    const peer = rng.pick(PEERS);
    const p = mutate(
      rng,
      packet(rng, fam === 4 ? LOCAL.v4 : LOCAL.v6, fam === 4 ? peer.v4 : peer.v6, fam, rng.chance(0.5)),
    );
    buf.set(p, 8);
    try {
      f.observeOutbound(buf, 8, p.length, i);
    } catch (e) {
      throw new Error(`observeOutbound threw on ${hex(p, 0, p.length)} (FUZZ_SEED=${SEED}): ${e}`);
    }
  }
  assert.ok(new ConnTracker(sab, 64).liveCount(200_000) > 0, "valid packets among them opened flows");
});

Deno.test("filter fuzz: the reference itself is not vacuous", () => {
  const ref = new Reference("wg0", null);
  const a = addr(PEERS[0].v4);
  assert.equal(a.length, 4);
  assert.equal(ref.decide(ipv4(PEERS[0].v4, LOCAL.v4, 6, tcp(1, 22, 0x02)), 0, 0), "drop (lockdown)");
  assert.equal(
    ref.decide(ipv4(PEERS[0].v4, LOCAL.v4, 6, tcp(1, 8080, 0x02)), 0, 0),
    "accept (lockdown-entry #3)",
  );
  ref.observe(ipv4(LOCAL.v4, PEERS[0].v4, 17, udp(5, 6)), 0);
  assert.equal(ref.decide(ipv4(PEERS[0].v4, LOCAL.v4, 17, udp(6, 5)), 0, 1), "accept (established)");
  assert.equal(
    ref.decide(ipv4(PEERS[1].v4, LOCAL.v4, 47, new Uint8Array(4)), 1, 1),
    "accept (default-allow)",
  );
});
