/**
 * Pieces the next round wires into trace and events: probe packets (src/filter/probe-packet.ts) decided
 * by the real filter, and the packet-dropped event rate limit (src/filter/drop-events.ts).
 */
import assert from "node:assert/strict";
import { ConnTracker, connTrackerBytes } from "../../src/filter/conn-tracker.ts";
import { DROP_EVENT_INTERVAL_MS, DropEventLimiter } from "../../src/filter/drop-events.ts";
import { FragmentTable } from "../../src/filter/fragment-table.ts";
import { PacketFilter } from "../../src/filter/packet-filter.ts";
import { ParsedPacket, parsePacket, ParseStatus } from "../../src/filter/packet-parse.ts";
import { buildProbePacket } from "../../src/filter/probe-packet.ts";
import { compileRuleTable } from "../../src/filter/rule-compiler.ts";
import { RuleTable } from "../../src/filter/rule-table.ts";
import { DropReason } from "../../src/filter/verdict.ts";
import { addr } from "./filter_packets.ts";

Deno.test("probe packets parse as what they describe, in both families", () => {
  const p = new ParsedPacket();
  const tcp = buildProbePacket({
    src: addr("100.64.0.2"),
    dst: addr("100.64.0.1"),
    proto: "tcp",
    dstPort: 8080,
  });
  assert.equal(parsePacket(tcp, 0, tcp.length, p), ParseStatus.ok);
  assert.deepEqual([p.family, p.proto, p.srcPort, p.dstPort, p.tcpFlags], [4, 6, 40000, 8080, 0x02]);
  const udp = buildProbePacket({
    src: addr("fd00::2"),
    dst: addr("fd00::1"),
    proto: "udp",
    dstPort: 53,
    srcPort: 5353,
  });
  assert.equal(parsePacket(udp, 0, udp.length, p), ParseStatus.ok);
  assert.deepEqual([p.family, p.proto, p.srcPort, p.dstPort], [6, 17, 5353, 53]);
  const ping6 = buildProbePacket({ src: addr("fd00::2"), dst: addr("fd00::1"), proto: "icmp" });
  assert.equal(parsePacket(ping6, 0, ping6.length, p), ParseStatus.ok);
  assert.deepEqual([p.proto, p.icmpType], [58, 128]);
  assert.throws(
    () => buildProbePacket({ src: addr("fd00::2"), dst: addr("100.64.0.1"), proto: "icmp" }),
    RangeError,
  );
  assert.throws(
    () => buildProbePacket({ src: addr("1.2.3.4"), dst: addr("1.2.3.5"), proto: "tcp", dstPort: 70000 }),
    RangeError,
  );
});

Deno.test("a probe decided as a dry run gives the data plane's verdict and changes nothing", () => {
  const table = new RuleTable(compileRuleTable({
    iface: "wg0",
    local: { name: "b", aesCapable: true },
    peers: [{ slot: 0, name: "a", aesCapable: true, hub: false }],
    lockdown: { aesUdpPort: 51830, extraPorts: [] },
    policy: null,
  }));
  const f = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(new SharedArrayBuffer(connTrackerBytes(1)), 1, 1),
    fragments: new FragmentTable(1),
  });
  const probe = (port: number) =>
    f.decideInbound(
      buildProbePacket({ src: addr("100.64.0.2"), dst: addr("100.64.0.1"), proto: "tcp", dstPort: port }),
      0,
      40,
      0,
      0,
      false,
    )
      .toString();
  assert.equal(probe(8080), "drop (lockdown)");
  assert.equal(probe(51831), "accept (lockdown-entry #2)");
});

Deno.test("packet-dropped events: at most one per (peer, reason) per second, counting what was held back", () => {
  const lim = new DropEventLimiter(4);
  assert.equal(lim.note(1, DropReason.lockdown, 0), 1);
  assert.equal(lim.note(1, DropReason.lockdown, 10), 0);
  assert.equal(lim.note(1, DropReason.lockdown, 500), 0);
  assert.equal(lim.note(1, DropReason.policy, 500), 1, "another reason has its own budget");
  assert.equal(lim.note(2, DropReason.lockdown, 500), 1, "another peer too");
  assert.equal(lim.note(1, DropReason.lockdown, DROP_EVENT_INTERVAL_MS - 1), 0);
  assert.equal(
    lim.note(1, DropReason.lockdown, DROP_EVENT_INTERVAL_MS),
    4,
    "this drop and the three held back",
  );
  assert.equal(lim.note(1, DropReason.lockdown, DROP_EVENT_INTERVAL_MS + 1), 0);
  lim.resetSlot(1);
  assert.equal(
    lim.note(1, DropReason.lockdown, DROP_EVENT_INTERVAL_MS + 2),
    1,
    "a new peer in the slot starts fresh",
  );
  assert.equal(lim.note(9, DropReason.lockdown, 0), 0, "slot out of range");
  assert.equal(lim.note(0, DropReason.none, 0), 0, "not a drop");
});
