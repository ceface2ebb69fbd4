import assert from "node:assert/strict";
import {
  canonicalCidr,
  formatEndpoint,
  formatIpAddress,
  parseDecimal,
  parseEndpoint,
  parseIpAddress,
} from "../../src/uapi/netaddr.ts";

function roundTrip(text: string): string | null {
  const a = parseIpAddress(text);
  return a ? formatIpAddress(a) : null;
}

Deno.test("IP address text forms follow Go's netip", async (t) => {
  await t.step("IPv4", () => {
    assert.equal(roundTrip("0.0.0.0"), "0.0.0.0");
    assert.equal(roundTrip("255.255.255.255"), "255.255.255.255");
    for (
      const bad of [
        "256.0.0.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1..2.3",
        "1.2.3.",
        "",
        "1.2.3.4%eth0",
        " 1.2.3.4",
      ]
    ) {
      assert.equal(parseIpAddress(bad), null, bad);
    }
  });

  await t.step("IPv6 is printed per RFC 5952", () => {
    assert.equal(roundTrip("::"), "::");
    assert.equal(roundTrip("::1"), "::1");
    assert.equal(roundTrip("1::"), "1::");
    assert.equal(roundTrip("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    assert.equal(roundTrip("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1"); // longest run wins
    assert.equal(roundTrip("2001:0:0:1:0:0:1:1"), "2001::1:0:0:1:1"); // first of equal runs
    assert.equal(roundTrip("2001:db8:1:1:1:1:0:1"), "2001:db8:1:1:1:1:0:1"); // single zero not compressed
    assert.equal(roundTrip("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    assert.equal(roundTrip("::ffff:c000:0201"), "::ffff:192.0.2.1");
    assert.equal(roundTrip("1:2:3:4:5:6:1.2.3.4"), "1:2:3:4:5:6:102:304");
    assert.equal(roundTrip("fe80::1%wg0"), "fe80::1%wg0");
  });

  await t.step("invalid IPv6", () => {
    for (
      const bad of [
        ":::",
        "1::2::3",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7::8",
        "12345::",
        ":1::",
        "1::%",
        "1.2.3.4::",
        "::1.2.3",
        "g::",
      ]
    ) {
      assert.equal(parseIpAddress(bad), null, bad);
    }
  });
});

Deno.test("CIDR canonicalisation", async (t) => {
  await t.step("host bits are masked", () => {
    assert.equal(canonicalCidr("10.1.2.3/8"), "10.0.0.0/8");
    assert.equal(canonicalCidr("10.1.2.3/13"), "10.0.0.0/13");
    assert.equal(canonicalCidr("10.15.2.3/13"), "10.8.0.0/13");
    assert.equal(canonicalCidr("10.1.2.3/32"), "10.1.2.3/32");
    assert.equal(canonicalCidr("10.1.2.3/0"), "0.0.0.0/0");
    assert.equal(canonicalCidr("2001:db8:ffff::1/33"), "2001:db8:8000::/33");
    assert.equal(canonicalCidr("::1/128"), "::1/128");
  });
  await t.step("invalid prefixes", () => {
    for (
      const bad of [
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "fe80::%a/64",
      ]
    ) {
      assert.equal(canonicalCidr(bad), null, bad);
    }
  });
});

Deno.test("endpoints and decimal numbers", async (t) => {
  await t.step("endpoints", () => {
    assert.deepEqual(parseEndpoint("192.0.2.1:51820"), { ip: "192.0.2.1", port: 51820 });
    assert.deepEqual(parseEndpoint("[::1]:0"), { ip: "::1", port: 0 });
    assert.equal(formatEndpoint({ ip: "::1", port: 5 }), "[::1]:5");
    assert.equal(formatEndpoint({ ip: "192.0.2.1", port: 5 }), "192.0.2.1:5");
    for (const bad of ["192.0.2.1", "[::1]", "::1:5", "[192.0.2.1]:5", "[]:5", "localhost:5", "1.2.3.4:-1"]) {
      assert.equal(parseEndpoint(bad), null, bad);
    }
  });
  await t.step("decimal numbers like strconv.ParseUint", () => {
    assert.equal(parseDecimal("0", 10), 0);
    assert.equal(parseDecimal("0010", 10), 10);
    assert.equal(parseDecimal("11", 10), null);
    assert.equal(parseDecimal("", 10), null);
    assert.equal(parseDecimal("1e1", 100), null);
    assert.equal(parseDecimal("99999999999999999999999", 0xffffffff), null);
  });
});
