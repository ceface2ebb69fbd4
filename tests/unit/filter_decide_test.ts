/**
 * The inbound decision and outbound observation (src/filter/packet-filter.ts) with the connection
 * tracker (conn-tracker.ts) and fragment table (fragment-table.ts): lockdown and policy verdicts,
 * replies, timeouts with an injected clock, the LRU bound, fragments following their first.
 */
import assert from "node:assert/strict";
import { parsePolicyConfig } from "../../src/config/policy-config.ts";
import {
  ConnTracker,
  connTrackerBytes,
  ICMP_FLOW_TIMEOUT_MS,
  TCP_FLOW_TIMEOUT_MS,
  UDP_FLOW_TIMEOUT_MS,
} from "../../src/filter/conn-tracker.ts";
import { FRAGMENT_TIMEOUT_MS, FragmentTable } from "../../src/filter/fragment-table.ts";
import { PacketFilter } from "../../src/filter/packet-filter.ts";
import { compileRuleTable, type FilterPeer } from "../../src/filter/rule-compiler.ts";
import { RuleTable } from "../../src/filter/rule-table.ts";
import { TableReader, TableWriter } from "../../src/filter/table-exchange.ts";
import { DROP_REASONS, MATCH_KINDS } from "../../src/filter/verdict.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";
import { ACK, addr, at, FIN, icmp, ipv4, ipv6, RST, SYN, tcp, udp } from "./filter_packets.ts";

const A = "100.64.0.1"; // this node (wg0)
const B = "100.64.0.2"; // AES peer, slot 0
const C = "100.64.0.3"; // AES-exempt peer, slot 1
const H = "100.64.0.9"; // hub, slot 2
const A6 = "fd00::1", C6 = "fd00::3";
const PEERS: FilterPeer[] = [
  { slot: 0, name: "bravo", aesCapable: true, hub: false },
  { slot: 1, name: "charlie", aesCapable: false, hub: false },
  { slot: 2, name: "hub1", aesCapable: false, hub: true },
];
const NAMES = ["alpha", "bravo", "charlie", "hub1"];
const T0 = 1_700_000_000_000;

function setup(policyRaw: unknown | null = null, buckets = 64, wgAddress?: Uint8Array) {
  const policy = policyRaw === null ? null : parsePolicyConfig(policyRaw, NAMES);
  const table = new RuleTable(compileRuleTable({
    iface: "wg0",
    local: { name: "alpha", aesCapable: true, wgAddress },
    peers: PEERS,
    lockdown: { aesUdpPort: 51830, extraPorts: [{ proto: "tcp", from: 8080, to: 8080 }] },
    policy,
  }));
  const sab = new SharedArrayBuffer(connTrackerBytes(buckets));
  const outTracker = new ConnTracker(sab, buckets, 0x1234567); // the encrypt worker creates it
  const inTracker = new ConnTracker(sab, buckets); // the decrypt worker views it
  const decrypt = new PacketFilter({
    rules: { table },
    tracker: inTracker,
    fragments: new FragmentTable(16, 99),
  });
  const encrypt = new PacketFilter({
    rules: { table },
    tracker: outTracker,
    fragments: new FragmentTable(1),
  });
  return {
    inbound: (p: Uint8Array, slot: number, now = T0) =>
      decrypt.decideInbound(at(p, 16), 16, p.length, slot, now).toString(),
    outbound: (p: Uint8Array, now = T0) => encrypt.observeOutbound(at(p, 16), 16, p.length, now),
    decrypt,
    outTracker,
  };
}

Deno.test("decide: wg0 lockdown between AES peers: ICMP, aes0 UDP, key plane and extra ports only", () => {
  const f = setup();
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(40000, 8080, SYN)), 0), "accept (lockdown-entry #3)");
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(40000, 8081, SYN)), 0), "drop (lockdown)");
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(40000, 51831, SYN)), 0), "accept (lockdown-entry #2)");
  assert.equal(f.inbound(ipv4(B, A, 17, udp(51830, 51830)), 0), "accept (lockdown-entry #1)");
  assert.equal(f.inbound(ipv4(B, A, 17, udp(51830, 51831)), 0), "drop (lockdown)");
  assert.equal(f.inbound(ipv4(B, A, 1, icmp(8, 0, 1, 1)), 0), "accept (lockdown-entry #0)");
  assert.equal(f.inbound(ipv4(B, A, 47, new Uint8Array(8)), 0), "drop (lockdown)");
  // no policy: all-to-all for the AES-exempt peer
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(1, 22, SYN)), 1), "accept (default-allow)");
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(1, 22, SYN)), 7), "drop (policy)", "slot without a peer");
});

Deno.test("decide: the wg0 lockdown takes only packets to this node's wg0 address (routed traffic forced onto wg0)", () => {
  const f = setup(null, 64, addr(A));
  const lanB = "192.168.20.5", lanA = "192.168.10.7";
  assert.equal(
    f.inbound(ipv4(B, A, 1, icmp(8, 0, 1, 1)), 0),
    "accept (lockdown-entry #0)",
    "to us: as before",
  );
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(40000, 8080, SYN)), 0), "accept (lockdown-entry #3)");
  assert.equal(f.inbound(ipv4(lanA, lanB, 1, icmp(8, 0, 1, 1)), 0), "drop (lockdown)", "even ICMP, to a LAN");
  assert.equal(
    f.inbound(ipv4(B, lanB, 6, tcp(40000, 8080, SYN)), 0),
    "drop (lockdown)",
    "even a listed port",
  );
  assert.equal(f.inbound(ipv4(lanA, lanB, 17, udp(51830, 51830)), 0), "drop (lockdown)");
  assert.equal(
    f.inbound(ipv6(C6, A6, 58, icmp(128, 0)), 0),
    "drop (lockdown)",
    "IPv6 is never to our wg0 address",
  );
  // The AES-exempt peer's wg0 traffic is under the policies (none: all-to-all), routed or not.
  assert.equal(f.inbound(ipv4(lanA, lanB, 6, tcp(1, 22, SYN)), 1), "accept (default-allow)");
});

Deno.test("decide: policies name routed networks; traffic into them is apart from traffic to the node", () => {
  const lans = [parseCidr("192.168.20.0/24"), parseCidr("192.168.30.0/24")];
  const policy = parsePolicyConfig(
    {
      rules: [
        { from: "charlie", to: "192.168.20.0/24", proto: "tcp", ports: ["1-5200", "5202-65535"] },
        { from: "charlie", to: "alpha", proto: "tcp" },
        { from: "charlie", to: "192.168.20.128/25", proto: "icmp" },
      ],
    },
    NAMES,
    "policies",
    lans,
  );
  const table = new RuleTable(compileRuleTable({
    iface: "wg0",
    local: { name: "alpha", aesCapable: true, wgAddress: addr(A) },
    peers: PEERS,
    lockdown: { aesUdpPort: 51830, extraPorts: [] },
    policy,
    networks: lans,
  }));
  const sab = new SharedArrayBuffer(connTrackerBytes(64));
  const f = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab, 64),
    fragments: new FragmentTable(),
  });
  const inbound = (p: Uint8Array, slot: number) =>
    f.decideInbound(at(p, 16), 16, p.length, slot, T0).toString();
  assert.equal(inbound(ipv4(C, "192.168.20.5", 6, tcp(1, 80, SYN)), 1), "accept (policy-rule #0)");
  assert.equal(inbound(ipv4(C, "192.168.20.5", 6, tcp(1, 5201, SYN)), 1), "drop (policy)", "the denied port");
  assert.equal(
    inbound(ipv4(C, A, 6, tcp(1, 5201, SYN)), 1),
    "accept (policy-rule #1)",
    "to the node: its rule",
  );
  assert.equal(
    inbound(ipv4(C, "192.168.30.5", 6, tcp(1, 80, SYN)), 1),
    "drop (policy)",
    "a LAN no rule names",
  );
  assert.equal(inbound(ipv4(C, "192.168.20.5", 1, icmp(8, 0)), 1), "drop (policy)");
  assert.equal(inbound(ipv4(C, "192.168.20.200", 1, icmp(8, 0)), 1), "accept (policy-rule #2)", "the /25");
  assert.equal(
    inbound(ipv4(C, "192.168.20.200", 6, tcp(1, 80, SYN)), 1),
    "accept (policy-rule #0)",
    "/24 covers it",
  );
  assert.equal(inbound(ipv4(B, "192.168.20.5", 6, tcp(1, 80, SYN)), 0), "drop (lockdown)", "AES peer on wg0");
  assert.equal(
    inbound(ipv4(C, "192.168.20.5", 6, tcp(1, 80, SYN)), 9),
    "drop (policy)",
    "slot without a peer",
  );
});

Deno.test("decide: malformed headers and tiny fragments are dropped with their reasons", () => {
  const f = setup();
  const bogusIhl = ipv4(B, A, 6, tcp(1, 8080, SYN));
  bogusIhl[0] = 0x43;
  assert.equal(f.inbound(bogusIhl, 0), "drop (malformed)");
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(1, 8080, SYN)).subarray(0, 30), 0), "drop (malformed)");
  assert.equal(
    f.inbound(ipv4(B, A, 6, tcp(1, 8080, SYN).subarray(0, 8), { more: true }), 0),
    "drop (fragment)",
  );
});

Deno.test("decide: policy on wg0 for an exempt peer; the hub always reaches the key plane", () => {
  const f = setup({
    groups: { exempt: ["charlie"] },
    rules: [{ from: "exempt", to: "alpha", proto: "tcp", ports: ["1-21", "23-65535"] }],
  });
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(1, 80, SYN)), 1), "accept (policy-rule #0)");
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(1, 22, SYN)), 1), "drop (policy)");
  assert.equal(f.inbound(ipv4(C, A, 17, udp(1, 80)), 1), "drop (policy)");
  assert.equal(f.inbound(ipv4(H, A, 6, tcp(1, 51831, SYN)), 2), "accept (key-plane)");
  assert.equal(f.inbound(ipv4(H, A, 6, tcp(1, 22, SYN)), 2), "drop (policy)");
});

Deno.test("tracker: replies to flows we opened pass; unsolicited packets and new connections do not", () => {
  const f = setup({ rules: [] });
  // TCP: we open to C:22; C's SYN-ACK and later segments come back
  assert.equal(
    f.inbound(ipv4(C, A, 6, tcp(22, 40000, SYN | ACK)), 1),
    "drop (policy)",
    "before we opened it",
  );
  f.outbound(ipv4(A, C, 6, tcp(40000, 22, SYN)));
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40000, SYN | ACK)), 1), "accept (established)");
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40000, ACK | FIN)), 1), "accept (established)");
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40000, RST)), 1), "accept (established)");
  assert.equal(
    f.inbound(ipv4(C, A, 6, tcp(22, 40000, SYN)), 1),
    "drop (policy)",
    "a bare SYN is a new connection",
  );
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40001, ACK)), 1), "drop (policy)", "another port");
  assert.equal(f.inbound(ipv4(B, A, 6, tcp(22, 40000, ACK)), 0), "drop (lockdown)", "another source address");
  // TCP segments we send without a SYN do not open a flow
  f.outbound(ipv4(A, C, 6, tcp(40002, 22, ACK)));
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40002, ACK)), 1), "drop (policy)");
  // UDP: the reverse tuple of what went out
  f.outbound(ipv4(A, C, 17, udp(5000, 53)));
  assert.equal(f.inbound(ipv4(C, A, 17, udp(53, 5000)), 1), "accept (established)");
  assert.equal(f.inbound(ipv4(C, A, 17, udp(53, 5001)), 1), "drop (policy)");
  assert.equal(f.inbound(ipv4(C, A, 17, udp(54, 5000)), 1), "drop (policy)");
  // ICMP echo: replies to our requests (by identifier), not requests
  f.outbound(ipv4(A, C, 1, icmp(8, 0, 777, 1)));
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(0, 0, 777, 1)), 1), "accept (established)");
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(0, 0, 778, 1)), 1), "drop (policy)");
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(8, 0, 777, 1)), 1), "drop (policy)");
  // IPv6 too
  f.outbound(ipv6(A6, C6, 58, icmp(128, 0, 9, 1)));
  assert.equal(f.inbound(ipv6(C6, A6, 58, icmp(129, 0, 9, 1)), 1), "accept (established)");
  f.outbound(ipv6(A6, C6, 17, udp(7000, 7001), [{ type: 60 }]));
  assert.equal(f.inbound(ipv6(C6, A6, 17, udp(7001, 7000)), 1), "accept (established)");
  // replies under lockdown too (wg0 between AES peers): our UDP to B on a closed port
  f.outbound(ipv4(A, B, 17, udp(6000, 9999)));
  assert.equal(f.inbound(ipv4(B, A, 17, udp(9999, 6000)), 0), "accept (established)");
  assert.equal(f.inbound(ipv4(B, A, 17, udp(9999, 6001)), 0), "drop (lockdown)");
});

Deno.test("tracker: ICMP errors quoting our flows (or flows the rules allow) are related; others are not", () => {
  const f = setup({ rules: [{ from: "charlie", to: "alpha", proto: "tcp", ports: ["443"] }] });
  f.outbound(ipv4(A, C, 17, udp(5000, 53)));
  const quoteOurs = ipv4(A, C, 17, udp(5000, 53, 20)).subarray(0, 28);
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(3, 3, 0, 0, quoteOurs)), 1), "accept (related)");
  const quoteOther = ipv4(A, C, 17, udp(5001, 53)).subarray(0, 28);
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(3, 3, 0, 0, quoteOther)), 1), "drop (policy)");
  // "fragmentation needed" about our reply in a connection C opened to our allowed port 443
  const ourReply = ipv4(A, C, 6, tcp(443, 50000, ACK, { payload: 1000 })).subarray(0, 28);
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(3, 4, 0, 1400, ourReply)), 1), "accept (related #0)");
  // a quoted packet that was not sent by us (source is not our address)
  const notOurs = ipv4(B, C, 17, udp(5000, 53)).subarray(0, 28);
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(3, 3, 0, 0, notOurs)), 1), "drop (policy)");
  // a truncated quote
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(11, 0, 0, 0, quoteOurs.subarray(0, 24))), 1), "drop (policy)");
  // ICMPv6 packet too big quoting our echo request
  f.outbound(ipv6(A6, C6, 58, icmp(128, 0, 4, 1)));
  const quotedEcho = ipv6(A6, C6, 58, icmp(128, 0, 4, 1, new Uint8Array(64)));
  assert.equal(f.inbound(ipv6(C6, A6, 58, icmp(2, 0, 0, 1280, quotedEcho)), 1), "accept (related)");
});

Deno.test("tracker: flows expire after their idle timeout (injected clock); traffic refreshes them", () => {
  const f = setup({ rules: [] });
  f.outbound(ipv4(A, C, 17, udp(5000, 53)), T0);
  assert.equal(
    f.inbound(ipv4(C, A, 17, udp(53, 5000)), 1, T0 + UDP_FLOW_TIMEOUT_MS - 1),
    "accept (established)",
  );
  // that reply refreshed the flow
  assert.equal(
    f.inbound(ipv4(C, A, 17, udp(53, 5000)), 1, T0 + 2 * UDP_FLOW_TIMEOUT_MS - 2),
    "accept (established)",
  );
  assert.equal(f.inbound(ipv4(C, A, 17, udp(53, 5000)), 1, T0 + 3 * UDP_FLOW_TIMEOUT_MS), "drop (policy)");
  f.outbound(ipv4(A, C, 1, icmp(8, 0, 1, 1)), T0);
  assert.equal(f.inbound(ipv4(C, A, 1, icmp(0, 0, 1, 1)), 1, T0 + ICMP_FLOW_TIMEOUT_MS), "drop (policy)");
  f.outbound(ipv4(A, C, 6, tcp(40000, 22, SYN)), T0);
  f.outbound(ipv4(A, C, 6, tcp(40000, 22, ACK)), T0 + TCP_FLOW_TIMEOUT_MS - 10); // keeps it alive
  assert.equal(
    f.inbound(ipv4(C, A, 6, tcp(22, 40000, ACK)), 1, T0 + TCP_FLOW_TIMEOUT_MS + 10),
    "accept (established)",
  );
  assert.equal(
    f.inbound(ipv4(C, A, 6, tcp(22, 40000, ACK)), 1, T0 + 3 * TCP_FLOW_TIMEOUT_MS),
    "drop (policy)",
  );
});

Deno.test("tracker: the table is bounded; when full, the flow closest to expiry gives way", () => {
  const buckets = 4; // 32 flows
  const f = setup({ rules: [] }, buckets);
  const cap = f.outTracker.capacity;
  assert.equal(cap, 32);
  const n = 1000;
  for (let i = 0; i < n; i++) f.outbound(ipv4(A, C, 17, udp(10000 + i, 53)), T0 + i);
  const now = T0 + n;
  assert.ok(f.outTracker.liveCount(now) <= cap);
  assert.equal(f.outTracker.liveCount(now), cap, "a full table keeps exactly its capacity");
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (f.inbound(ipv4(C, A, 17, udp(53, 10000 + i)), 1, now) === "accept (established)") kept++;
  }
  assert.equal(kept, cap);
  // the newest flow always survives; the oldest ones were evicted
  assert.equal(f.inbound(ipv4(C, A, 17, udp(53, 10000 + n - 1)), 1, now), "accept (established)");
  assert.equal(f.inbound(ipv4(C, A, 17, udp(53, 10000)), 1, now), "drop (policy)");
  // a TCP flow (long timeout) outlives a burst of UDP flows hashed anywhere
  f.outbound(ipv4(A, C, 6, tcp(40000, 22, SYN)), now);
  for (let i = 0; i < 200; i++) f.outbound(ipv4(A, C, 17, udp(20000 + i, 53)), now + 1 + i);
  assert.equal(f.inbound(ipv4(C, A, 6, tcp(22, 40000, ACK)), 1, now + 300), "accept (established)");
});

Deno.test("fragments: later fragments follow their first; unknown, overlapping and expired ones are dropped", () => {
  const f = setup();
  const first = ipv4(B, A, 17, udp(1000, 51830, 24), { id: 42, more: true });
  const later = ipv4(B, A, 17, new Uint8Array(24), { id: 42, fragOffset: 32 });
  assert.equal(f.inbound(later, 0), "drop (fragment)", "before its first");
  assert.equal(f.inbound(first, 0), "accept (lockdown-entry #1)");
  assert.equal(f.inbound(later, 0), "accept (lockdown-entry #1)");
  assert.equal(f.inbound(later, 0, T0 + FRAGMENT_TIMEOUT_MS), "drop (fragment)", "expired");
  // another id, or another protocol, or another source: unknown
  assert.equal(
    f.inbound(ipv4(B, A, 17, new Uint8Array(24), { id: 43, fragOffset: 32 }), 0),
    "drop (fragment)",
  );
  assert.equal(
    f.inbound(ipv4(B, A, 6, new Uint8Array(24), { id: 42, fragOffset: 32 }), 0),
    "drop (fragment)",
  );
  assert.equal(
    f.inbound(ipv4(C, A, 17, new Uint8Array(24), { id: 42, fragOffset: 32 }), 1),
    "drop (fragment)",
  );
  // a first fragment that was dropped takes its later fragments with it
  assert.equal(
    f.inbound(ipv4(B, A, 6, tcp(1, 22, SYN, { payload: 8 }), { id: 50, more: true }), 0),
    "drop (lockdown)",
  );
  assert.equal(
    f.inbound(ipv4(B, A, 6, new Uint8Array(24), { id: 50, fragOffset: 32 }), 0),
    "drop (lockdown)",
  );
  // an overlap into the inspected TCP header (RFC 1858): offset 8 rewrites flags after the check
  assert.equal(
    f.inbound(ipv4(B, A, 6, tcp(1, 8080, ACK, { payload: 8 }), { id: 60, more: true }), 0),
    "accept (lockdown-entry #3)",
  );
  assert.equal(f.inbound(ipv4(B, A, 6, new Uint8Array(16), { id: 60, fragOffset: 8 }), 0), "drop (fragment)");
  assert.equal(
    f.inbound(ipv4(B, A, 6, new Uint8Array(16), { id: 60, fragOffset: 24 }), 0),
    "accept (lockdown-entry #3)",
  );
  // IPv6: keyed by the fragment header; extension headers after it count as inspected
  const f6 = setup();
  const first6 = ipv6(C6, A6, 17, udp(1, 53, 16), [{ type: 44, more: true, id: 7 }, { type: 60, len: 1 }]);
  assert.equal(f6.inbound(first6, 1), "accept (default-allow)");
  assert.equal(
    f6.inbound(ipv6(C6, A6, 60, new Uint8Array(16), [{ type: 44, fragOffset: 16, id: 7 }]), 1),
    "drop (fragment)",
    "overlaps the UDP header",
  );
  assert.equal(
    f6.inbound(ipv6(C6, A6, 60, new Uint8Array(16), [{ type: 44, fragOffset: 24, id: 7 }]), 1),
    "accept (default-allow)",
  );
  assert.equal(
    f6.inbound(ipv6(C6, A6, 60, new Uint8Array(16), [{ type: 44, fragOffset: 24, id: 8 }]), 1),
    "drop (fragment)",
  );
});

Deno.test("decide: a dry run (trace) neither remembers fragments nor refreshes flows", () => {
  const f = setup({ rules: [] });
  const first = ipv4(C, A, 17, udp(1, 2, 16), { id: 9, more: true });
  const v = f.decrypt.decideInbound(at(first, 0), 0, first.length, 1, T0, false);
  assert.equal(v.toString(), "drop (policy)");
  f.outbound(ipv4(A, C, 17, udp(5000, 53)), T0);
  const reply = ipv4(C, A, 17, udp(53, 5000));
  const late = T0 + UDP_FLOW_TIMEOUT_MS - 1;
  assert.equal(
    f.decrypt.decideInbound(at(reply, 0), 0, reply.length, 1, late, false).toString(),
    "accept (established)",
  );
  assert.equal(
    f.inbound(reply, 1, T0 + UDP_FLOW_TIMEOUT_MS + 1),
    "drop (policy)",
    "the dry run did not refresh",
  );
});

Deno.test("verdict names are the counter/event names of the issue", () => {
  assert.deepEqual(DROP_REASONS.slice(1), ["lockdown", "policy", "malformed", "fragment"]);
  assert.deepEqual(MATCH_KINDS.slice(1), [
    "lockdown-entry",
    "policy-rule",
    "default-allow",
    "key-plane",
    "established",
    "related",
  ]);
});

Deno.test("decide: a lockdown change swapped in applies to the next packet and keeps our flows", () => {
  const compile = (extra: { proto: "tcp" | "udp"; from: number; to: number }[]) =>
    compileRuleTable({
      iface: "wg0",
      local: { name: "alpha", aesCapable: true },
      peers: PEERS,
      lockdown: { aesUdpPort: 51830, extraPorts: extra },
      policy: null,
    });
  const writer = new TableWriter(compile([]), 1 << 16);
  const reader = new TableReader(writer.sab, 0);
  const sab = new SharedArrayBuffer(connTrackerBytes(64));
  const out = new PacketFilter({
    rules: reader,
    tracker: new ConnTracker(sab, 64, 5),
    fragments: new FragmentTable(1),
  });
  const dec = new PacketFilter({
    rules: reader,
    tracker: new ConnTracker(sab, 64),
    fragments: new FragmentTable(4),
  });
  const inbound = (p: Uint8Array) => dec.decideInbound(p, 0, p.length, 0, T0).toString();
  const syn8080 = ipv4(B, A, 6, tcp(50000, 8080, SYN));
  const data8080 = ipv4(B, A, 6, tcp(50000, 8080, ACK));
  out.observeOutbound(...withLength(ipv4(A, B, 6, tcp(40000, 5201, SYN))), T0); // our own iperf client to B
  const reply = ipv4(B, A, 6, tcp(5201, 40000, ACK));
  assert.equal(inbound(syn8080), "drop (lockdown)");
  assert.equal(inbound(reply), "accept (established)");
  // twofold lockdown add tcp/8080
  assert.ok(writer.publish(compile([{ proto: "tcp", from: 8080, to: 8080 }])));
  assert.equal(inbound(syn8080), "drop (lockdown)", "not before the worker syncs");
  reader.sync();
  assert.equal(inbound(syn8080), "accept (lockdown-entry #3)");
  assert.equal(inbound(data8080), "accept (lockdown-entry #3)");
  assert.equal(inbound(reply), "accept (established)");
  // twofold lockdown remove tcp/8080: a connection B opened to us is no longer allowed; ours still is
  assert.ok(writer.publish(compile([])));
  reader.sync();
  assert.equal(inbound(syn8080), "drop (lockdown)");
  assert.equal(inbound(data8080), "drop (lockdown)");
  assert.equal(inbound(reply), "accept (established)");
});

function withLength(p: Uint8Array): [Uint8Array, number, number] {
  return [p, 0, p.length];
}
