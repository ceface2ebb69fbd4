/**
 * Access policies in the node config (`policies`): named groups of peers and accept rules between
 * groups or single peers, e.g.
 *
 * ```jsonc
 * "policies": {
 *   "groups": { "ops": ["alice", "bob"], "servers": ["db1", "web1"] },
 *   "rules": [
 *     { "from": "ops", "to": "servers", "proto": "tcp", "ports": ["22", "8000-8100"], "action": "accept" },
 *     { "from": "servers", "to": "servers", "proto": "any" }
 *   ]
 * }
 * ```
 *
 * Model: an **accept-list**. A packet is delivered when at least one rule accepts it and dropped when
 * none does; rule order never changes what passes (so there is no deny action to shadow it), and the
 * rule reported as deciding (by `twofold trace`, in counters) is the first accepting one in file order.
 * `from` is the peer that opens the connection, `to` the one that receives it — or, as `to`, a network
 * this node routes for others (`"192.168.20.0/24"`, inside node.advertise): such a rule applies to
 * traffic forwarded into that network, which rules naming the node itself do not cover (traffic from
 * the networks behind a peer is that peer's). Replies flow through
 * the connection tracker. `proto` is `tcp`, `udp`, `icmp` or `any` (default); `ports` (destination,
 * `"22"` or `"8000-8100"`) only for tcp/udp/any — none means every port; with ports, `any` means TCP
 * and UDP. Without a `policies` section everything is allowed (all-to-all); with one, only what its
 * rules accept.
 *
 * Names: a group name and a peer name (a `peers[].name` or this node's `node.name`) are DNS labels and
 * must not collide. Every problem is one line naming the field and the fix.
 * @module
 */
import { z } from "zod";
import { parsePortRange, PortSpecError } from "./lockdown-ports.ts";
import { DNS_LABEL, formatPath } from "./zod-errors.ts";
import { cidrCovers, parseRoutedNetwork } from "./routed-network.ts";
import { type Cidr, formatCidr } from "../wireguard/allowedips.ts";

/** Protocols a rule may name. */
export const POLICY_PROTOCOLS = ["tcp", "udp", "icmp", "any"] as const;
/** A rule's protocol. */
export type PolicyProto = typeof POLICY_PROTOCOLS[number];

/** One end of a rule as written: a group, a single peer, or (as `to`) a network this node routes. */
export interface PolicyEndpoint {
  /** What the name refers to. */
  kind: "group" | "peer" | "network";
  /** The group or peer name, or the network as written (canonical CIDR). */
  name: string;
  /** The peer names it stands for (none for a network). */
  peers: string[];
  /** The network, for kind "network". */
  network?: Cidr;
}

/** One resolved rule. */
export interface PolicyRule {
  /** The peers that may open the connection. */
  from: PolicyEndpoint;
  /** The peers that receive it. */
  to: PolicyEndpoint;
  /** Protocol. */
  proto: PolicyProto;
  /** Destination port ranges (inclusive); empty = every port. */
  ports: { from: number; to: number }[];
  /** Always "accept" (see the module doc). */
  action: "accept";
}

/** The resolved `policies` section. */
export interface PolicyConfig {
  /** Group name → member peer names (file order, without duplicates). */
  groups: Map<string, string[]>;
  /** Rules in file order; the index is the rule number that traces and counters report. */
  rules: PolicyRule[];
}

/** A problem with the `policies` section: one line, `<field>: <what is wrong>; <fix>`. */
export class PolicyConfigError extends Error {
  /** The field path, e.g. `policies.rules[2].ports[0]`. */
  readonly field: string;
  /** Creates the error for `field`. */
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = "PolicyConfigError";
    this.field = field;
  }
}

const ruleEntry = z.strictObject({
  from: z.string(),
  to: z.string(),
  proto: z.enum(POLICY_PROTOCOLS).default("any"),
  ports: z.array(z.union([z.string(), z.int()])).default([]),
  action: z.string().default("accept"),
});

/** Schema of the `policies` section (shape and types; names and ports are checked after). */
export const policiesSection = z.strictObject({
  groups: z.record(z.string(), z.array(z.string())).default({}),
  rules: z.array(ruleEntry).default([]),
});

function issueProblem(base: string, issue: z.core.$ZodIssue): PolicyConfigError {
  switch (issue.code) {
    case "unrecognized_keys":
      return new PolicyConfigError(
        formatPath([...issue.path, issue.keys[0]], base),
        `unknown key; remove it or fix the spelling (allowed here: ${
          issue.path.length === 0 ? "groups, rules" : "from, to, proto, ports, action"
        })`,
      );
    case "invalid_value":
      return new PolicyConfigError(
        formatPath(issue.path, base),
        `${JSON.stringify(issue.input)} is not allowed; use one of ${
          issue.values.map((v) => JSON.stringify(v)).join(", ")
        }`,
      );
    case "invalid_type":
      return new PolicyConfigError(
        formatPath(issue.path, base),
        issue.input === undefined
          ? `missing; add it (${issue.expected})`
          : `expected ${issue.expected}; see the policies example in docs/filter.md`,
      );
    default:
      return new PolicyConfigError(formatPath(issue.path, base), issue.message);
  }
}

/**
 * A rule's `to` written as a network (`192.168.20.0/24`): one of the networks this node routes for
 * others (`advertised`, node.advertise) or a part of one. Null when `name` is not CIDR text.
 */
function networkEndpoint(
  name: string,
  at: string,
  advertised: readonly Cidr[] | null,
): PolicyEndpoint | null {
  if (!name.includes("/")) return null;
  const parsed = parseRoutedNetwork(name);
  if ("problem" in parsed) throw new PolicyConfigError(at, `${JSON.stringify(name)} ${parsed.problem}`);
  if (!(advertised ?? []).some((n) => cidrCovers(n, parsed))) {
    throw new PolicyConfigError(
      at,
      `${formatCidr(parsed)} is not inside a network this node routes; a rule names a network of ` +
        `node.advertise (${(advertised ?? []).map(formatCidr).join(", ") || "none"}) or a part of one`,
    );
  }
  return { kind: "network", name: formatCidr(parsed), peers: [], network: parsed };
}

/**
 * Checks and resolves a `policies` section. `knownPeers` are the names a group or rule may use as a
 * peer: every `peers[].name` and this node's `node.name`; null for a map-driven node, whose peers are
 * known only from its map (any name is then taken as a peer's, checked against the map by
 * {@link unknownPolicyPeer} when the map is read). `advertised` are the networks this node
 * routes for others (`node.advertise`), which a rule's `to` may name. `field` names the section in
 * messages. Throws a {@link PolicyConfigError} (one line) for the first problem.
 */
export function parsePolicyConfig(
  raw: unknown,
  knownPeers: readonly string[] | null,
  field = "policies",
  advertised: readonly Cidr[] | null = [],
): PolicyConfig {
  const parsed = policiesSection.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw issueProblem(field, parsed.error.issues[0]);
  const known = knownPeers === null ? null : new Set(knownPeers);
  const peers = { has: (name: string) => known === null ? DNS_LABEL.test(name) : known.has(name) };
  const knownText = () => known === null ? "names of the network map" : [...known].join(", ");
  const groups = new Map<string, string[]>();
  for (const [name, members] of Object.entries(parsed.data.groups)) {
    const at = `${field}.groups.${name}`;
    if (!DNS_LABEL.test(name)) {
      throw new PolicyConfigError(
        at,
        "a group name must be 1-63 letters, digits or hyphens; rename the group",
      );
    }
    if (known?.has(name)) {
      throw new PolicyConfigError(
        at,
        `"${name}" is also a peer name, so rules could not tell them apart; rename the group`,
      );
    }
    if (members.length === 0) {
      throw new PolicyConfigError(at, "is empty; list at least one peer name, or remove the group");
    }
    members.forEach((m, i) => {
      if (!peers.has(m)) {
        throw new PolicyConfigError(
          `${at}[${i}]`,
          `${JSON.stringify(m)} is not a peer; use a peers[].name or node.name (known: ${knownText()})`,
        );
      }
    });
    groups.set(name, [...new Set(members)]);
  }
  const endpoint = (name: string, at: string): PolicyEndpoint => {
    const group = groups.get(name);
    if (group) return { kind: "group", name, peers: group };
    if (peers.has(name)) return { kind: "peer", name, peers: [name] };
    throw new PolicyConfigError(
      at,
      `${
        JSON.stringify(name)
      } is neither a group nor a peer; define it under ${field}.groups or use a peer name`,
    );
  };
  const rules = parsed.data.rules.map((r, i): PolicyRule => {
    const at = `${field}.rules[${i}]`;
    if (r.action !== "accept") {
      throw new PolicyConfigError(
        `${at}.action`,
        `${
          JSON.stringify(r.action)
        } is not supported: rules are an accept-list (what no rule accepts is dropped); ` +
          'write "accept", or narrow or remove the rules that accept the traffic',
      );
    }
    if (r.proto === "icmp" && r.ports.length > 0) {
      throw new PolicyConfigError(
        `${at}.ports`,
        "ICMP has no ports; remove ports, or set proto to tcp, udp or any",
      );
    }
    const ports = r.ports.map((spec, j) => {
      try {
        return parsePortRange(spec);
      } catch (e) {
        if (e instanceof PortSpecError) throw new PolicyConfigError(`${at}.ports[${j}]`, e.message);
        throw e;
      }
    });
    if (r.from.includes("/")) {
      throw new PolicyConfigError(
        `${at}.from`,
        "a network is a destination only: traffic from the networks behind a peer is that peer's traffic; name the peer",
      );
    }
    return {
      from: endpoint(r.from, `${at}.from`),
      to: networkEndpoint(r.to, `${at}.to`, advertised) ?? endpoint(r.to, `${at}.to`),
      proto: r.proto,
      ports,
      action: "accept",
    };
  });
  return { groups, rules };
}

/**
 * The first peer name `policy` uses that is not in `names` (a map-driven node's check once its map is
 * read): the field and the problem; null when every name is known.
 */
export function unknownPolicyPeer(
  policy: PolicyConfig,
  names: readonly string[],
  field = "policies",
): { field: string; problem: string } | null {
  const known = new Set(names);
  const problem = (at: string, name: string) => ({
    field: at,
    problem: `${JSON.stringify(name)} is not a node of the network map; fix the name or add the node`,
  });
  for (const [group, members] of policy.groups) {
    const bad = members.find((m) => !known.has(m));
    if (bad !== undefined) return problem(`${field}.groups.${group}`, bad);
  }
  for (const [i, r] of policy.rules.entries()) {
    for (const side of ["from", "to"] as const) {
      if (r[side].kind === "peer" && !known.has(r[side].name)) {
        return problem(`${field}.rules[${i}].${side}`, r[side].name);
      }
    }
  }
  return null;
}
