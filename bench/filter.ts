/**
 * Packet-filter micro-benchmark: nanoseconds per inbound decision (`decideInbound`) and per outbound
 * observation (`observeOutbound`), with the wg0 lockdown and a 50-rule access policy compiled in, over
 * a mix of IPv4/IPv6 TCP/UDP/ICMP packets (accepted by rule, by the connection tracker, and dropped).
 * Packets sit in one buffer at the data plane's offset, as the decrypt worker hands them over.
 *
 *   deno run --allow-env bench/filter.ts      (ITER=2000000 sets the number of packets)
 * @module
 */
import { parsePolicyConfig } from "../src/config/policy-config.ts";
import { ConnTracker, connTrackerBytes } from "../src/filter/conn-tracker.ts";
import { FragmentTable } from "../src/filter/fragment-table.ts";
import { PacketFilter } from "../src/filter/packet-filter.ts";
import { compileRuleTable, type FilterPeer } from "../src/filter/rule-compiler.ts";
import { RuleTable } from "../src/filter/rule-table.ts";

const RULES = 50;
const PEER_COUNT = 20;
const OFFSET = 16;
const SLOT_BYTES = 1600;

function ip4(a: number): number[] {
  return [100, 64, 0, a];
}

/** An IPv4 or IPv6 packet of `size` bytes with a TCP/UDP/ICMP header (checksums zero). */
function build(
  v6: boolean,
  src: number,
  dst: number,
  proto: number,
  sport: number,
  dport: number,
  flags: number,
  size: number,
) {
  const ipLen = v6 ? 40 : 20;
  const b = new Uint8Array(size);
  if (v6) {
    b[0] = 0x60;
    b[4] = (size - 40) >> 8;
    b[5] = (size - 40) & 0xff;
    b[6] = proto;
    b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src], 8);
    b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst], 24);
  } else {
    b[0] = 0x45;
    b[2] = size >> 8;
    b[3] = size & 0xff;
    b[9] = proto;
    b.set(ip4(src), 12);
    b.set(ip4(dst), 16);
  }
  b[ipLen] = sport >> 8;
  b[ipLen + 1] = sport & 0xff;
  b[ipLen + 2] = dport >> 8;
  b[ipLen + 3] = dport & 0xff;
  if (proto === 6) {
    b[ipLen + 12] = 0x50;
    b[ipLen + 13] = flags;
  }
  return b;
}

/** Runs the benchmark; returns the lines to print. */
export function filterMicroBench(iterations = 2_000_000): string {
  const names = ["local", ...Array.from({ length: PEER_COUNT }, (_, i) => `peer${i}`)];
  const rules = Array.from({ length: RULES }, (_, i) => ({
    from: i % 3 === 0 ? "evens" : `peer${i % PEER_COUNT}`,
    to: i % 5 === 0 ? "servers" : "local",
    proto: ["tcp", "udp", "any"][i % 3],
    ports: [`${1000 + 40 * i}-${1020 + 40 * i}`, `${20000 + i}`],
  }));
  const policy = parsePolicyConfig({
    groups: {
      evens: names.filter((_, i) => i > 0 && i % 2 === 0),
      servers: ["local", "peer1"],
    },
    rules,
  }, names);
  const peers: FilterPeer[] = Array.from({ length: PEER_COUNT }, (_, i) => ({
    slot: i,
    name: `peer${i}`,
    aesCapable: i % 2 === 1,
    hub: false,
  }));
  const table = new RuleTable(compileRuleTable({
    iface: "wg0",
    local: { name: "local", aesCapable: true },
    peers,
    lockdown: {
      aesUdpPort: 51830,
      extraPorts: [{ proto: "tcp", from: 8080, to: 8080 }, { proto: "udp", from: 6000, to: 6010 }],
    },
    policy,
  }));
  const sab = new SharedArrayBuffer(connTrackerBytes());
  const encrypt = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab, undefined, 7),
    fragments: new FragmentTable(1),
  });
  const decrypt = new PacketFilter({
    rules: { table },
    tracker: new ConnTracker(sab),
    fragments: new FragmentTable(),
  });

  // Inbound mix: peer slot i has address i + 2; even slots are exempt (policy), odd ones AES (lockdown).
  const inbound: { pkt: Uint8Array; slot: number }[] = [];
  for (let k = 0; k < 64; k++) {
    const slot = k % PEER_COUNT;
    const v6 = k % 4 === 3;
    const kind = k % 6;
    let pkt: Uint8Array;
    if (kind === 0) pkt = build(v6, slot + 2, 1, 6, 40000 + k, 1000 + 40 * (k % RULES) + 5, 0x10, 1400); // policy/lockdown TCP data
    else if (kind === 1) pkt = build(v6, slot + 2, 1, 17, 51830, 51830, 0, 1400); // aes0 inside wg0
    else if (kind === 2) pkt = build(v6, slot + 2, 1, 6, 443, 50000 + k, 0x10, 1400); // reply to our connection
    else if (kind === 3) pkt = build(v6, slot + 2, 1, 17, 53, 30000 + k, 0, 200); // UDP reply
    else if (kind === 4) pkt = build(v6, slot + 2, 1, 6, 40000, 9999, 0x02, 60); // unsolicited: dropped
    else pkt = build(v6, slot + 2, 1, 6, 40000, 8080, 0x10, 1400);
    inbound.push({ pkt, slot });
    // open the flows the replies belong to
    if (kind === 2) encrypt.observeOutbound(build(v6, 1, slot + 2, 6, 50000 + k, 443, 0x02, 60), 0, 60, 0);
    if (kind === 3) encrypt.observeOutbound(build(v6, 1, slot + 2, 17, 30000 + k, 53, 0, 60), 0, 60, 0);
  }
  const buf = new Uint8Array(inbound.length * SLOT_BYTES);
  inbound.forEach((x, i) => buf.set(x.pkt, i * SLOT_BYTES + OFFSET));
  const lens = inbound.map((x) => x.pkt.length);
  const slots = inbound.map((x) => x.slot);
  const n = inbound.length;

  let accepted = 0;
  const run = (count: number) => {
    for (let i = 0; i < count; i++) {
      const j = i % n;
      if (decrypt.decideInbound(buf, j * SLOT_BYTES + OFFSET, lens[j], slots[j], 1000 + (i >> 10)).accept) {
        accepted++;
      }
    }
  };
  run(200_000); // warm-up
  accepted = 0;
  const t0 = performance.now();
  run(iterations);
  const inNs = ((performance.now() - t0) * 1e6) / iterations;

  const outBuf = new Uint8Array(n * SLOT_BYTES);
  inbound.forEach((x, i) => {
    const p = x.pkt.slice();
    // swap addresses so the packets go from us to the peer
    const v6 = (p[0] >> 4) === 6;
    const [s, d, len] = v6 ? [8, 24, 16] : [12, 16, 4];
    const src = p.slice(s, s + len);
    p.copyWithin(s, d, d + len);
    p.set(src, d);
    outBuf.set(p, i * SLOT_BYTES + OFFSET);
  });
  const t1 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const j = i % n;
    encrypt.observeOutbound(outBuf, j * SLOT_BYTES + OFFSET, lens[j], 1000 + (i >> 10));
  }
  const outNs = ((performance.now() - t1) * 1e6) / iterations;
  return [
    `packet filter (${RULES} policy rules, lockdown with 2 extra entries, ${PEER_COUNT} peers, ${iterations} packets)`,
    `  decideInbound    ${inNs.toFixed(0).padStart(5)} ns/packet  (${
      ((100 * accepted) / iterations).toFixed(0)
    }% accepted)`,
    `  observeOutbound  ${outNs.toFixed(0).padStart(5)} ns/packet`,
  ].join("\n");
}

if (import.meta.main) {
  console.log(filterMicroBench(Number(Deno.env.get("ITER") ?? 2_000_000)));
}
