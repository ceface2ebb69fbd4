import assert from "node:assert/strict";
import {
  AllowedIps,
  type Cidr,
  formatCidr,
  formatIp,
  NO_PEER,
  parseCidr,
  parseIp,
} from "../../src/wireguard/allowedips.ts";

/** Looks up a textual address. */
function lookup(table: AllowedIps, ip: string): number {
  const addr = parseIp(ip);
  return table.lookup(addr, 0, addr.length === 4 ? 4 : 6);
}

/** Deterministic PRNG (xorshift32) so failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Naive reference: list of (cidr, peer), longest matching prefix wins. */
class LinearTable {
  entries: { cidr: Cidr; peer: number }[] = [];
  #same(a: Cidr, b: Cidr): boolean {
    return a.family === b.family && a.bits === b.bits && a.addr.every((x, i) => x === b.addr[i]);
  }
  insert(cidr: Cidr, peer: number): void {
    const e = this.entries.find((x) => this.#same(x.cidr, cidr));
    if (e) e.peer = peer;
    else this.entries.push({ cidr, peer });
  }
  remove(cidr: Cidr, peer: number): boolean {
    const i = this.entries.findIndex((x) => this.#same(x.cidr, cidr) && x.peer === peer);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }
  removePeer(peer: number): void {
    this.entries = this.entries.filter((x) => x.peer !== peer);
  }
  lookup(addr: Uint8Array): number {
    let best = -1;
    let bestBits = -1;
    for (const { cidr, peer } of this.entries) {
      if (cidr.addr.length !== addr.length || cidr.bits <= bestBits) continue;
      let ok = true;
      for (let b = 0; b < cidr.bits && ok; b++) {
        const bit = 7 - (b & 7);
        ok = ((addr[b >> 3] >> bit) & 1) === ((cidr.addr[b >> 3] >> bit) & 1);
      }
      if (ok) {
        best = peer;
        bestBits = cidr.bits;
      }
    }
    return best;
  }
}

function sortedStrings(cs: Cidr[]): string[] {
  return cs.map(formatCidr).sort();
}

Deno.test("IP and CIDR text", async (t) => {
  await t.step("parseIp / formatIp round-trip IPv4", () => {
    assert.deepEqual([...parseIp("192.168.1.254")], [192, 168, 1, 254]);
    assert.equal(formatIp(parseIp("0.0.0.0")), "0.0.0.0");
    assert.equal(formatIp(parseIp("255.255.255.255")), "255.255.255.255");
  });

  await t.step("parseIp IPv6 forms and RFC 5952 formatting", () => {
    assert.equal(formatIp(parseIp("::")), "::");
    assert.equal(formatIp(parseIp("::1")), "::1");
    assert.equal(formatIp(parseIp("2001:DB8:0:0:0:0:0:1")), "2001:db8::1");
    assert.equal(formatIp(parseIp("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
    assert.equal(formatIp(parseIp("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
    assert.equal(formatIp(parseIp("fe80::")), "fe80::");
    assert.equal(formatIp(parseIp("::ffff:10.1.2.3")), "::ffff:10.1.2.3");
    assert.equal(formatIp(parseIp("64:ff9b::192.0.2.33")), "64:ff9b::c000:221");
    const b = parseIp("1:2:3:4:5:6:7:8");
    assert.deepEqual([...b], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  });

  await t.step("parseIp rejects malformed input", () => {
    for (
      const bad of [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.-4",
        " 1.2.3.4",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        ":1::",
        "12345::",
        "g::1",
        "fe80::1%eth0",
        "1.2.3.4::",
      ]
    ) {
      assert.throws(() => parseIp(bad), /invalid IP address/, `should reject ${JSON.stringify(bad)}`);
    }
  });

  await t.step("parseCidr masks host bits and defaults to a host prefix", () => {
    assert.equal(formatCidr(parseCidr("10.1.2.3/8")), "10.0.0.0/8");
    assert.equal(formatCidr(parseCidr("10.1.2.255/25")), "10.1.2.128/25");
    assert.equal(formatCidr(parseCidr("10.1.2.3")), "10.1.2.3/32");
    assert.equal(formatCidr(parseCidr(" 0.0.0.0/0 ")), "0.0.0.0/0");
    assert.equal(formatCidr(parseCidr("2001:db8:abcd::1/33")), "2001:db8:8000::/33");
    assert.equal(formatCidr(parseCidr("::/0")), "::/0");
    assert.equal(formatCidr(parseCidr("fd00::7")), "fd00::7/128");
    const c = parseCidr("172.16.5.4/12");
    assert.equal(c.family, 4);
    assert.equal(c.bits, 12);
  });

  await t.step("parseCidr rejects bad prefixes with a clear error", () => {
    for (
      const bad of [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "10.0.0.0/1a",
        "10.0.0/8",
        "x/8",
        "/8",
      ]
    ) {
      assert.throws(() => parseCidr(bad), /invalid CIDR/, `should reject ${JSON.stringify(bad)}`);
    }
  });
});

Deno.test("AllowedIps", async (t) => {
  await t.step("empty table matches nothing", () => {
    const a = new AllowedIps();
    assert.equal(lookup(a, "1.2.3.4"), NO_PEER);
    assert.equal(lookup(a, "::1"), NO_PEER);
  });

  await t.step("exact /32 and /128 matches", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.1/32"), 1);
    a.insert(parseCidr("fd00::1/128"), 2);
    assert.equal(lookup(a, "10.0.0.1"), 1);
    assert.equal(lookup(a, "10.0.0.2"), -1);
    assert.equal(lookup(a, "10.0.0.0"), -1);
    assert.equal(lookup(a, "fd00::1"), 2);
    assert.equal(lookup(a, "fd00::"), -1);
    assert.equal(lookup(a, "fd00::1:1"), -1);
  });

  await t.step("families are separate", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("0.0.0.0/0"), 1);
    assert.equal(lookup(a, "::"), -1);
    a.insert(parseCidr("::/0"), 2);
    assert.equal(lookup(a, "0.0.0.0"), 1);
    assert.equal(lookup(a, "::"), 2);
  });

  await t.step("longest prefix wins, including /0", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("0.0.0.0/0"), 0);
    a.insert(parseCidr("10.0.0.0/8"), 1);
    a.insert(parseCidr("10.1.0.0/16"), 2);
    a.insert(parseCidr("10.1.1.0/24"), 3);
    a.insert(parseCidr("10.1.1.7/32"), 4);
    a.insert(parseCidr("10.1.1.128/25"), 5);
    assert.equal(lookup(a, "8.8.8.8"), 0);
    assert.equal(lookup(a, "10.200.0.1"), 1);
    assert.equal(lookup(a, "10.1.200.1"), 2);
    assert.equal(lookup(a, "10.1.1.1"), 3);
    assert.equal(lookup(a, "10.1.1.7"), 4);
    assert.equal(lookup(a, "10.1.1.200"), 5);
    assert.equal(lookup(a, "255.255.255.255"), 0);
  });

  await t.step("insertion order does not matter (shorter after longer, siblings)", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("192.168.1.1/32"), 1);
    a.insert(parseCidr("192.168.1.2/32"), 2);
    a.insert(parseCidr("192.168.0.0/16"), 3);
    a.insert(parseCidr("192.168.1.0/24"), 4);
    a.insert(parseCidr("192.0.0.0/8"), 5);
    assert.equal(lookup(a, "192.168.1.1"), 1);
    assert.equal(lookup(a, "192.168.1.2"), 2);
    assert.equal(lookup(a, "192.168.1.3"), 4);
    assert.equal(lookup(a, "192.168.2.3"), 3);
    assert.equal(lookup(a, "192.1.2.3"), 5);
    assert.equal(lookup(a, "193.1.2.3"), -1);
  });

  await t.step("overlapping IPv6 prefixes", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("2001:db8::/32"), 1);
    a.insert(parseCidr("2001:db8:1::/48"), 2);
    a.insert(parseCidr("2001:db8:1:2::/64"), 3);
    a.insert(parseCidr("2001:db8:1:2::99/128"), 4);
    a.insert(parseCidr("2001:db8:8000::/33"), 5);
    assert.equal(lookup(a, "2001:db8::1"), 1);
    assert.equal(lookup(a, "2001:db8:1:3::1"), 2);
    assert.equal(lookup(a, "2001:db8:1:2::1"), 3);
    assert.equal(lookup(a, "2001:db8:1:2::99"), 4);
    assert.equal(lookup(a, "2001:db8:ffff::1"), 5);
    assert.equal(lookup(a, "2001:db9::1"), -1);
  });

  await t.step("insert masks host bits of the given address", () => {
    const a = new AllowedIps();
    a.insert({ family: 4, addr: new Uint8Array([10, 9, 9, 9]), bits: 8 }, 7);
    assert.equal(lookup(a, "10.0.0.1"), 7);
    assert.deepEqual(sortedStrings(a.entriesFor(7)), ["10.0.0.0/8"]);
  });

  await t.step("inserting a prefix owned by another peer moves it", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/24"), 1);
    a.insert(parseCidr("10.0.1.0/24"), 1);
    a.insert(parseCidr("10.0.0.0/24"), 2);
    assert.equal(lookup(a, "10.0.0.5"), 2);
    assert.equal(lookup(a, "10.0.1.5"), 1);
    assert.deepEqual(sortedStrings(a.entriesFor(1)), ["10.0.1.0/24"]);
    assert.deepEqual(sortedStrings(a.entriesFor(2)), ["10.0.0.0/24"]);
    // The old owner can no longer remove it.
    assert.equal(a.remove(parseCidr("10.0.0.0/24"), 1), false);
    assert.equal(lookup(a, "10.0.0.5"), 2);
  });

  await t.step("remove only the exact prefix of the given peer", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/8"), 1);
    a.insert(parseCidr("10.1.0.0/16"), 2);
    a.insert(parseCidr("10.1.1.0/24"), 1);
    assert.equal(a.remove(parseCidr("10.1.0.0/16"), 1), false, "wrong peer");
    assert.equal(a.remove(parseCidr("10.1.0.0/17"), 2), false, "no such prefix");
    assert.equal(a.remove(parseCidr("10.1.0.0/16"), 2), true);
    assert.equal(a.remove(parseCidr("10.1.0.0/16"), 2), false, "already gone");
    assert.equal(lookup(a, "10.1.2.3"), 1, "falls back to /8");
    assert.equal(lookup(a, "10.1.1.3"), 1);
    assert.equal(a.remove(parseCidr("10.0.0.0/8"), 1), true);
    assert.equal(lookup(a, "10.1.2.3"), -1);
    assert.equal(lookup(a, "10.1.1.3"), 1, "more specific prefix survives");
    assert.deepEqual(a.entriesFor(2), []);
  });

  await t.step("removePeer removes all of a peer's prefixes and nothing else", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/8"), 1);
    a.insert(parseCidr("10.1.0.0/16"), 2);
    a.insert(parseCidr("10.1.1.0/24"), 1);
    a.insert(parseCidr("fd00::/8"), 1);
    a.insert(parseCidr("fd00:1::/32"), 2);
    a.removePeer(1);
    assert.deepEqual(a.entriesFor(1), []);
    assert.deepEqual(sortedStrings(a.entriesFor(2)), ["10.1.0.0/16", "fd00:1::/32"]);
    assert.equal(lookup(a, "10.1.1.1"), 2);
    assert.equal(lookup(a, "10.2.0.1"), -1);
    assert.equal(lookup(a, "fd00:1::5"), 2);
    assert.equal(lookup(a, "fd00:2::5"), -1);
    a.removePeer(42); // unknown peer: no-op
    assert.equal(lookup(a, "10.1.1.1"), 2);
  });

  await t.step("entriesFor returns copies in insertion order", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/8"), 1);
    a.insert(parseCidr("fd00::/8"), 1);
    a.insert(parseCidr("192.168.0.0/16"), 1);
    const e = a.entriesFor(1);
    assert.deepEqual(e.map(formatCidr), ["10.0.0.0/8", "fd00::/8", "192.168.0.0/16"]);
    e[0].addr[0] = 99;
    assert.equal(lookup(a, "10.0.0.1"), 1);
    assert.equal(lookup(a, "99.0.0.1"), -1);
  });

  await t.step("clear empties both families", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("0.0.0.0/0"), 1);
    a.insert(parseCidr("::/0"), 1);
    a.clear();
    assert.equal(lookup(a, "1.1.1.1"), -1);
    assert.equal(lookup(a, "::1"), -1);
    assert.deepEqual(a.entriesFor(1), []);
  });

  await t.step("invalid arguments throw", () => {
    const a = new AllowedIps();
    assert.throws(() => a.insert({ family: 4, addr: new Uint8Array(16), bits: 8 }, 1), /invalid CIDR/);
    assert.throws(() => a.insert({ family: 4, addr: new Uint8Array(4), bits: 33 }, 1), /invalid CIDR/);
    assert.throws(() => a.insert(parseCidr("10.0.0.0/8"), -1), /invalid peer/);
    assert.throws(() => a.insert(parseCidr("10.0.0.0/8"), 1.5), /invalid peer/);
  });

  await t.step("lookup at an offset and out-of-bounds reads", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/8"), 3);
    const buf = new Uint8Array([0xff, 0xff, 10, 1, 2, 3]);
    assert.equal(a.lookup(buf, 2, 4), 3);
    assert.equal(a.lookup(buf, 3, 4), -1, "would read past the end");
    assert.equal(a.lookup(buf, -1, 4), -1);
  });

  await t.step("lookupPacketDestination / lookupPacketSource read IP headers in place", () => {
    const a = new AllowedIps();
    a.insert(parseCidr("10.0.0.0/24"), 1);
    a.insert(parseCidr("10.0.1.0/24"), 2);
    a.insert(parseCidr("fd00::/64"), 3);
    a.insert(parseCidr("fd00:0:0:1::/64"), 4);

    const pad = 5;
    const v4 = new Uint8Array(pad + 28);
    v4[pad] = 0x45;
    v4.set([10, 0, 0, 9], pad + 12); // source
    v4.set([10, 0, 1, 9], pad + 16); // destination
    assert.equal(a.lookupPacketDestination(v4, pad, 28), 2);
    assert.equal(a.lookupPacketSource(v4, pad, 28), 1);
    assert.equal(a.lookupPacketDestination(v4, pad, 19), -1, "shorter than an IPv4 header");
    assert.equal(a.lookupPacketDestination(v4, pad, 40), -1, "len beyond the buffer");

    const v6 = new Uint8Array(pad + 48);
    v6[pad] = 0x60;
    v6.set(parseIp("fd00::5"), pad + 8); // source
    v6.set(parseIp("fd00:0:0:1::5"), pad + 24); // destination
    assert.equal(a.lookupPacketDestination(v6, pad, 48), 4);
    assert.equal(a.lookupPacketSource(v6, pad, 48), 3);
    assert.equal(a.lookupPacketSource(v6, pad, 39), -1, "shorter than an IPv6 header");

    const other = new Uint8Array(60);
    other[0] = 0x55;
    assert.equal(a.lookupPacketDestination(other, 0, 60), -1, "version 5");
    assert.equal(a.lookupPacketDestination(other, 0, 0), -1, "empty");
  });

  await t.step("randomized against a linear reference (IPv4 and IPv6, inserts, moves, removals)", () => {
    const rnd = prng(0xc0ffee);
    const a = new AllowedIps();
    const ref = new LinearTable();
    // Addresses drawn from a few bases so prefixes overlap heavily.
    const bases = [parseIp("10.0.0.0"), parseIp("10.128.0.0"), parseIp("192.168.0.0"), parseIp("0.0.0.0")];
    const bases6 = [parseIp("fd00::"), parseIp("fd00:8000::"), parseIp("2001:db8::")];
    const randomAddr = (family: 4 | 6): Uint8Array => {
      const base = family === 4 ? bases[rnd() % bases.length] : bases6[rnd() % bases6.length];
      const out = base.slice();
      // Randomize a random-length tail, so neighbours share long prefixes.
      const from = rnd() % out.length;
      for (let i = from; i < out.length; i++) out[i] = rnd() & 0xff;
      return out;
    };
    const randomCidr = (): Cidr => {
      const family: 4 | 6 = rnd() % 3 === 0 ? 6 : 4;
      const addr = randomAddr(family);
      const max = addr.length * 8;
      // Mostly long prefixes; a few short ones (down to /0) that cover much of the space.
      const r = rnd() % 16;
      const bits = r < 3 ? max : r === 3 ? rnd() % (max + 1) : max / 4 + (rnd() % ((3 * max) / 4 + 1));
      return parseCidr(`${formatIp(addr)}/${bits}`);
    };
    const inserted: Cidr[] = [];
    let lookups = 0;
    let hits = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 60; i++) {
        const op = rnd() % 50;
        if (op < 35 || inserted.length === 0) {
          const c = randomCidr();
          const peer = rnd() % 8;
          a.insert(c, peer);
          ref.insert(c, peer);
          inserted.push(c);
        } else if (op < 49) {
          const c = inserted[rnd() % inserted.length];
          const peer = rnd() % 8;
          assert.equal(a.remove(c, peer), ref.remove(c, peer), `remove ${formatCidr(c)} peer ${peer}`);
        } else {
          const peer = rnd() % 8;
          a.removePeer(peer);
          ref.removePeer(peer);
        }
      }
      for (let i = 0; i < 300; i++) {
        const family: 4 | 6 = rnd() % 3 === 0 ? 6 : 4;
        const addr = randomAddr(family);
        if (rnd() % 4 === 0) { for (let j = 0; j < addr.length; j++) addr[j] = rnd() & 0xff; }
        const want = ref.lookup(addr);
        assert.equal(a.lookup(addr, 0, family), want, `lookup ${formatIp(addr)} in round ${round}`);
        lookups++;
        if (want !== -1) hits++;
      }
      for (let peer = 0; peer < 8; peer++) {
        const want = ref.entries.filter((e) => e.peer === peer).map((e) => e.cidr);
        assert.deepEqual(sortedStrings(a.entriesFor(peer)), sortedStrings(want), `entries of ${peer}`);
      }
    }
    assert.ok(lookups >= 10_000);
    // The comparison is only meaningful if both matches and misses occur often.
    assert.ok(hits > lookups / 5 && hits < lookups * 0.95, `hits ${hits} of ${lookups}`);
  });
});
