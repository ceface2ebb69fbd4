/** The `policies` config section: schema, resolution, one-line errors (src/config/policy-config.ts). */
import assert from "node:assert/strict";
import { parsePolicyConfig, PolicyConfigError } from "../../src/config/policy-config.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";

const PEERS = ["alpha", "bravo", "charlie", "hub1"];

function problem(raw: unknown): string {
  try {
    parsePolicyConfig(raw, PEERS);
  } catch (e) {
    assert.ok(e instanceof PolicyConfigError, `expected a PolicyConfigError, got ${e}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  assert.fail("expected the section to be refused");
}

Deno.test("policy config: groups and rules resolve to peer names, with defaults", () => {
  const cfg = parsePolicyConfig({
    groups: { ops: ["alpha", "bravo", "alpha"], servers: ["charlie"] },
    rules: [
      { from: "ops", to: "servers", proto: "tcp", ports: ["22", "8000-8100", 443] },
      { from: "charlie", to: "ops" },
    ],
  }, PEERS);
  assert.deepEqual(cfg.groups.get("ops"), ["alpha", "bravo"]);
  assert.equal(cfg.rules.length, 2);
  assert.deepEqual(cfg.rules[0].from, { kind: "group", name: "ops", peers: ["alpha", "bravo"] });
  assert.deepEqual(cfg.rules[0].ports, [{ from: 22, to: 22 }, { from: 8000, to: 8100 }, {
    from: 443,
    to: 443,
  }]);
  assert.equal(cfg.rules[1].proto, "any");
  assert.equal(cfg.rules[1].action, "accept");
  assert.deepEqual(cfg.rules[1].from, { kind: "peer", name: "charlie", peers: ["charlie"] });
  assert.deepEqual(cfg.rules[1].ports, []);
});

Deno.test("policy config: an empty section is valid (no rules: nothing is accepted by policy)", () => {
  const cfg = parsePolicyConfig({}, PEERS);
  assert.equal(cfg.rules.length, 0);
  assert.equal(cfg.groups.size, 0);
});

Deno.test("policy config: each mistake is one line naming the field and the fix", () => {
  const cases: [unknown, RegExp][] = [
    [
      { rules: [{ from: "opz", to: "alpha" }] },
      /^policies\.rules\[0\]\.from: "opz" is neither a group nor a peer; define it/,
    ],
    [{ rules: [{ from: "alpha", to: "nobody" }] }, /^policies\.rules\[0\]\.to: "nobody" is neither/],
    [
      { groups: { ops: [] } },
      /^policies\.groups\.ops: is empty; list at least one peer name, or remove the group$/,
    ],
    [
      { groups: { ops: ["alpha", "zulu"] } },
      /^policies\.groups\.ops\[1\]: "zulu" is not a peer; use a peers\[\]\.name or node\.name/,
    ],
    [
      { groups: { alpha: ["bravo"] } },
      /^policies\.groups\.alpha: "alpha" is also a peer name.*rename the group$/,
    ],
    [{ groups: { "-bad": ["bravo"] } }, /^policies\.groups\.-bad: a group name must be/],
    [
      { rules: [{ from: "alpha", to: "bravo", proto: "tcp", ports: ["8100-8000"] }] },
      /^policies\.rules\[0\]\.ports\[0\]: the range 8100-8000 is reversed: write 8000-8100$/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", ports: ["0"] }] },
      /^policies\.rules\[0\]\.ports\[0\]: 0 is outside 1\.\.65535$/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", ports: ["http"] }] },
      /^policies\.rules\[0\]\.ports\[0\]: "http" is not a port or a range/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", proto: "icmp", ports: ["1"] }] },
      /^policies\.rules\[0\]\.ports: ICMP has no ports; remove ports/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", proto: "sctp" }] },
      /^policies\.rules\[0\]\.proto: "sctp" is not allowed; use one of "tcp", "udp", "icmp", "any"$/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", action: "drop" }] },
      /^policies\.rules\[0\]\.action: "drop" is not supported: rules are an accept-list/,
    ],
    [
      { rules: [{ from: "alpha", to: "bravo", port: "22" }] },
      /^policies\.rules\[0\]\.port: unknown key; remove it or fix the spelling/,
    ],
    [{ rules: [{ to: "bravo" }] }, /^policies\.rules\[0\]\.from: missing; add it/],
    [{ grups: {} }, /^policies\.grups: unknown key/],
    [{ rules: {} }, /^policies\.rules: expected array/],
  ];
  for (const [raw, want] of cases) {
    const msg = problem(raw);
    assert.match(msg, want, `for ${JSON.stringify(raw)}: ${msg}`);
  }
});

Deno.test("policy config: a rule's `to` may name a network this node routes (node.advertise), never `from`", () => {
  const lans = [parseCidr("192.168.20.0/24"), parseCidr("fd00:20::/64")];
  const cfg = parsePolicyConfig(
    {
      rules: [
        { from: "bravo", to: "192.168.20.0/24", proto: "tcp", ports: ["1-5200", "5202-65535"] },
        { from: "bravo", to: "192.168.20.128/25", proto: "icmp" },
        { from: "bravo", to: "fd00:20::/64" },
      ],
    },
    PEERS,
    "policies",
    lans,
  );
  assert.deepEqual(cfg.rules.map((r) => [r.to.kind, r.to.name, r.to.peers]), [
    ["network", "192.168.20.0/24", []],
    ["network", "192.168.20.128/25", []],
    ["network", "fd00:20::/64", []],
  ]);
  const refused = (
    rule: Record<string, unknown>,
    advertised: ReturnType<typeof parseCidr>[] | null = lans,
  ) => {
    try {
      parsePolicyConfig({ rules: [rule] }, PEERS, "policies", advertised);
    } catch (e) {
      assert.ok(e instanceof PolicyConfigError);
      return e.message;
    }
    assert.fail("accepted");
  };
  assert.equal(
    refused({ from: "bravo", to: "192.168.21.0/24" }),
    "policies.rules[0].to: 192.168.21.0/24 is not inside a network this node routes; a rule names a network " +
      "of node.advertise (192.168.20.0/24, fd00:20::/64) or a part of one",
  );
  assert.match(refused({ from: "bravo", to: "192.168.20.0/24" }, null), /node\.advertise \(none\)/);
  assert.match(
    refused({ from: "bravo", to: "192.168.20.1/24" }),
    /^policies\.rules\[0\]\.to: .*host bits set/,
  );
  assert.match(
    refused({ from: "192.168.20.0/24", to: "alpha" }),
    /^policies\.rules\[0\]\.from: a network is a destination only/,
  );
});
