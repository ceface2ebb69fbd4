/**
 * Compiling lockdown and policies into the rule table, looking rules up, placement, and swapping tables
 * between a writer and readers (src/filter/rule-compiler.ts, rule-table.ts, placement.ts,
 * table-exchange.ts).
 */
import assert from "node:assert/strict";
import { parsePolicyConfig } from "../../src/config/policy-config.ts";
import { DSKE_TCP_PORT, isAlwaysAllowed } from "../../src/admin/lockdown-schema.ts";
import { enforcementFor } from "../../src/filter/placement.ts";
import {
  type CompileInput,
  compileRuleTable,
  type FilterPeer,
  lockdownEntries,
  paintRanges,
} from "../../src/filter/rule-compiler.ts";
import {
  DEFAULT_ALLOW_RULE,
  encodeRuleTable,
  KEY_PLANE_RULE,
  NO_RULE,
  ProtoClass,
  RuleTable,
  SetKind,
} from "../../src/filter/rule-table.ts";
import { MAX_TABLE_READERS, TableReader, TableWriter } from "../../src/filter/table-exchange.ts";
import { MatchKind } from "../../src/filter/verdict.ts";

const AES_PORT = 51830;
const PEERS: FilterPeer[] = [
  { slot: 0, name: "bravo", aesCapable: true, hub: false },
  { slot: 1, name: "charlie", aesCapable: false, hub: false },
  { slot: 5, name: "hub1", aesCapable: false, hub: true },
];
const NAMES = ["alpha", "bravo", "charlie", "hub1"];

function input(over: Partial<CompileInput> = {}): CompileInput {
  return {
    iface: "wg0",
    local: { name: "alpha", aesCapable: true },
    peers: PEERS,
    lockdown: { aesUdpPort: AES_PORT, extraPorts: [{ proto: "tcp", from: 8080, to: 8080 }] },
    policy: null,
    ...over,
  };
}

Deno.test("placement: the issue's table", () => {
  assert.equal(enforcementFor(true, true, "aes0"), "policy");
  assert.equal(enforcementFor(true, true, "wg0"), "lockdown");
  assert.equal(enforcementFor(true, false, "wg0"), "policy");
  assert.equal(enforcementFor(false, true, "wg0"), "policy");
  assert.equal(enforcementFor(false, false, "wg0"), "policy");
  assert.equal(enforcementFor(true, false, "aes0"), "policy", "a cell without traffic still filters");
});

Deno.test("paintRanges: the first item covering a port wins; output sorted, disjoint, merged", () => {
  assert.deepEqual(
    paintRanges([
      { from: 100, to: 200, rule: 0 },
      { from: 150, to: 300, rule: 1 },
      { from: 50, to: 120, rule: 2 },
      { from: 301, to: 310, rule: 1 },
    ]),
    [
      { from: 50, to: 99, rule: 2 },
      { from: 100, to: 200, rule: 0 },
      { from: 201, to: 310, rule: 1 },
    ],
  );
  assert.deepEqual(paintRanges([]), []);
});

Deno.test("lockdown entries: ICMP, aes0 UDP, key-plane TCP (the ports isAlwaysAllowed names), then extras", () => {
  const e = lockdownEntries({ aesUdpPort: AES_PORT, extraPorts: [{ proto: "udp", from: 6000, to: 6010 }] });
  assert.deepEqual(e.map((x) => x.label), [
    "icmp (always)",
    "udp/51830 (aes0)",
    "tcp/51831 (key plane)",
    "udp/6000-6010 (extra)",
  ]);
  const always = { aesUdpPort: AES_PORT, dskeTcpPort: DSKE_TCP_PORT };
  assert.ok(isAlwaysAllowed({ proto: "udp", from: e[1].from, to: e[1].to }, always));
  assert.ok(isAlwaysAllowed({ proto: "tcp", from: e[2].from, to: e[2].to }, always));
});

Deno.test("compile: wg0 between AES peers is locked down; exempt peers and hubs get the policy set", () => {
  const t = new RuleTable(compileRuleTable(input()));
  const bravo = t.setOf(0), charlie = t.setOf(1), hub = t.setOf(5);
  assert.equal(t.kindOf(bravo), SetKind.lockdown);
  assert.equal(t.lookup(bravo, ProtoClass.icmp, 0), 0);
  assert.equal(t.lookup(bravo, ProtoClass.udp, AES_PORT), 1);
  assert.equal(t.lookup(bravo, ProtoClass.tcp, DSKE_TCP_PORT), 2);
  assert.equal(t.lookup(bravo, ProtoClass.tcp, 8080), 3);
  assert.equal(t.lookup(bravo, ProtoClass.tcp, 8081), NO_RULE);
  assert.equal(t.lookup(bravo, ProtoClass.udp, 8080), NO_RULE);
  assert.equal(t.lookup(bravo, ProtoClass.tcp, AES_PORT), NO_RULE);
  assert.equal(t.lookup(bravo, ProtoClass.other, 0), NO_RULE);
  assert.equal(t.matchKindOf(bravo, 3), MatchKind.lockdownEntry);
  // no policy configured: all-to-all for the others
  assert.equal(t.kindOf(charlie), SetKind.policy);
  assert.equal(charlie, hub, "identical sets are shared");
  for (const c of [ProtoClass.tcp, ProtoClass.udp, ProtoClass.icmp, ProtoClass.other]) {
    assert.equal(t.lookup(charlie, c, 22), DEFAULT_ALLOW_RULE);
  }
  assert.equal(t.matchKindOf(charlie, DEFAULT_ALLOW_RULE), MatchKind.defaultAllow);
  assert.equal(t.setOf(2), -1, "a slot without a peer has no set");
  assert.equal(t.setOf(9999), -1);
});

Deno.test("compile: on aes0 the policy applies between AES peers", () => {
  const policy = parsePolicyConfig(
    { rules: [{ from: "bravo", to: "alpha", proto: "tcp", ports: ["22"] }] },
    NAMES,
  );
  const t = new RuleTable(compileRuleTable(input({ iface: "aes0", policy, peers: [PEERS[0]] })));
  const s = t.setOf(0);
  assert.equal(t.kindOf(s), SetKind.policy);
  assert.equal(t.lookup(s, ProtoClass.tcp, 22), 0);
  assert.equal(t.lookup(s, ProtoClass.tcp, 8080), NO_RULE, "the lockdown list is not the aes0 policy");
  assert.equal(t.lookup(s, ProtoClass.icmp, 0), NO_RULE);
});

Deno.test("compile: policies by direction, group, protocol and port; lowest accepting rule reported", () => {
  const policy = parsePolicyConfig({
    groups: { edge: ["charlie", "bravo"], me: ["alpha"] },
    rules: [
      { from: "alpha", to: "charlie", proto: "any" }, // other direction: never for inbound at alpha
      { from: "edge", to: "me", proto: "tcp", ports: ["8000-8100"] },
      { from: "charlie", to: "alpha", proto: "tcp", ports: ["22", "8050-9000"] },
      { from: "charlie", to: "me", proto: "icmp" },
      { from: "edge", to: "alpha", proto: "any", ports: ["53"] },
    ],
  }, NAMES);
  const t = new RuleTable(compileRuleTable(input({ policy })));
  const c = t.setOf(1);
  assert.equal(t.lookup(c, ProtoClass.tcp, 22), 2);
  assert.equal(t.lookup(c, ProtoClass.tcp, 8000), 1);
  assert.equal(t.lookup(c, ProtoClass.tcp, 8075), 1, "overlap: the earlier rule is reported");
  assert.equal(t.lookup(c, ProtoClass.tcp, 8101), 2);
  assert.equal(t.lookup(c, ProtoClass.tcp, 9001), NO_RULE);
  assert.equal(t.lookup(c, ProtoClass.tcp, 21), NO_RULE);
  assert.equal(t.lookup(c, ProtoClass.udp, 53), 4);
  assert.equal(t.lookup(c, ProtoClass.tcp, 53), 4);
  assert.equal(t.lookup(c, ProtoClass.udp, 22), NO_RULE);
  assert.equal(t.lookup(c, ProtoClass.icmp, 0), 3);
  assert.equal(t.lookup(c, ProtoClass.other, 0), NO_RULE, "any with ports does not cover other protocols");
  // the hub is in no rule: only the key plane reaches us
  const h = t.setOf(5);
  assert.equal(t.lookup(h, ProtoClass.tcp, DSKE_TCP_PORT), KEY_PLANE_RULE);
  assert.equal(t.matchKindOf(h, KEY_PLANE_RULE), MatchKind.keyPlane);
  assert.equal(t.lookup(h, ProtoClass.tcp, 22), NO_RULE);
  assert.equal(t.lookup(h, ProtoClass.icmp, 0), NO_RULE);
  // bravo is AES: lockdown on wg0 whatever the policy says
  assert.equal(t.kindOf(t.setOf(0)), SetKind.lockdown);
});

Deno.test("compile: a rule for everything also covers ICMP and other protocols", () => {
  const policy = parsePolicyConfig({ rules: [{ from: "charlie", to: "alpha" }] }, NAMES);
  const t = new RuleTable(compileRuleTable(input({ policy })));
  const c = t.setOf(1);
  for (const cls of [ProtoClass.tcp, ProtoClass.udp, ProtoClass.icmp, ProtoClass.other]) {
    assert.equal(t.lookup(c, cls, 0), 0);
  }
});

Deno.test("compile: a peer slot outside the table is refused", () => {
  assert.throws(
    () => compileRuleTable(input({ peers: [{ slot: 256, name: "x", aesCapable: false, hub: false }] })),
    RangeError,
  );
});

Deno.test("rule table: encoder refuses overlapping ranges; decoder refuses a corrupt table", () => {
  const set = { kind: SetKind.policy, icmp: NO_RULE, other: NO_RULE, udp: [] };
  assert.throws(() =>
    encodeRuleTable({
      slots: [0],
      sets: [{ ...set, tcp: [{ from: 1, to: 10, rule: 0 }, { from: 10, to: 20, rule: 1 }] }],
    })
  );
  assert.throws(() => encodeRuleTable({ slots: [1], sets: [{ ...set, tcp: [] }] }));
  const ok = encodeRuleTable({ slots: [0], sets: [{ ...set, tcp: [{ from: 1, to: 10, rule: 0 }] }] });
  new RuleTable(ok);
  // header 8 words, 1 slot: the slot at 8, the set descriptor at 9
  for (const [i, v] of [[0, 1], [1, 5], [5, 999], [6, 1], [7, 0], [8, 3], [8 + 1 + 0, 7], [8 + 1 + 3, 5]]) {
    const bad = ok.slice();
    bad[i] = v;
    assert.throws(() => new RuleTable(bad), RangeError, `word ${i} = ${v}`);
  }
});

function tableAllowingTcp(port: number): Int32Array {
  return encodeRuleTable({
    slots: [0],
    sets: [{
      kind: SetKind.policy,
      icmp: NO_RULE,
      other: NO_RULE,
      tcp: [{ from: port, to: port, rule: 0 }],
      udp: [],
    }],
  });
}

Deno.test("table exchange: readers switch on sync, atomically; the writer never rewrites a table in use", () => {
  const w = new TableWriter(tableAllowingTcp(1), 4096);
  const r1 = new TableReader(w.sab, 0);
  const r2 = new TableReader(w.sab, 1);
  const allows = (r: TableReader, port: number) => r.table.lookup(0, ProtoClass.tcp, port) === 0;
  assert.ok(allows(r1, 1) && allows(r2, 1));
  assert.ok(w.publish(tableAllowingTcp(2)));
  assert.equal(w.generation, 1);
  // until they sync, readers keep the whole old table
  assert.ok(allows(r1, 1) && !allows(r1, 2));
  const held = r2.table;
  assert.ok(r1.sync());
  assert.ok(allows(r1, 2) && !allows(r1, 1));
  assert.equal(r1.sync(), false, "nothing new");
  // r2 still uses generation 0: the buffer it reads must not be rewritten
  assert.equal(w.publish(tableAllowingTcp(3)), false);
  assert.ok(held.lookup(0, ProtoClass.tcp, 1) === 0, "the held table is intact");
  r2.sync();
  assert.ok(w.publish(tableAllowingTcp(3)));
  r1.sync();
  r2.sync();
  assert.ok(allows(r1, 3) && allows(r2, 3));
  // a closed reader no longer holds tables back
  r2.close();
  assert.ok(w.publish(tableAllowingTcp(4)));
  r1.sync();
  assert.ok(w.publish(tableAllowingTcp(5)));
  // a reader that registers late sees the newest table
  const r3 = new TableReader(w.sab, 2);
  assert.ok(r3.table.lookup(0, ProtoClass.tcp, 5) === 0);
  assert.equal(r3.generation, w.generation);
});

Deno.test("table exchange: invalid or oversized tables are refused before anything changes", () => {
  const w = new TableWriter(tableAllowingTcp(1), 64);
  const r = new TableReader(w.sab, 0);
  assert.throws(() => w.publish(new Int32Array(10)), RangeError);
  assert.throws(() => w.publish(compileRuleTable(input())), RangeError);
  assert.equal(w.generation, 0);
  r.sync();
  assert.ok(r.table.lookup(0, ProtoClass.tcp, 1) === 0);
  assert.throws(() => new TableReader(w.sab, MAX_TABLE_READERS), RangeError);
});
