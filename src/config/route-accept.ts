/**
 * Which advertised networks a node accepts (`routes.accept` in the node config): `"none"` (the
 * default, so adding a route to the map never silently diverts anyone's traffic), `"all"`, a list of
 * CIDRs (a route is accepted when one of them covers all of it), or `{ "groups": [...] }` (the routes of
 * peers in one of those map groups). An accepted network is steered like its peer's own traffic (aes0
 * for an AES peer, wg0 for an AES-exempt one); a network overlapping this node's own advertised networks
 * is never accepted (the node routes it itself). Pure.
 * @module
 */
import { z } from "zod";
import type { Cidr } from "../wireguard/allowedips.ts";
import { cidrCovers, cidrsOverlap, parseRoutedNetwork } from "./routed-network.ts";
import { DNS_LABEL, FieldProblem, quote } from "./zod-errors.ts";

/** The resolved accept policy. */
export type RouteAccept =
  | { kind: "none" }
  | { kind: "all" }
  | { kind: "networks"; networks: Cidr[] }
  | { kind: "groups"; groups: string[] };

/** The default: accept nothing. */
export const ACCEPT_NONE: RouteAccept = { kind: "none" };

/** Schema of the `routes` section of the node config. */
export const routesSection = z.strictObject({
  accept: z.union([
    z.enum(["none", "all"]),
    z.array(z.string()),
    z.strictObject({ groups: z.array(z.string()) }),
  ]).default("none"),
});

/** `routes.accept` resolved: CIDRs strict, group names DNS labels (a map's groups decide membership). */
export function resolveRouteAccept(raw: z.output<typeof routesSection>): RouteAccept {
  const accept = raw.accept;
  if (accept === "none") return ACCEPT_NONE;
  if (accept === "all") return { kind: "all" };
  if (Array.isArray(accept)) {
    const networks = accept.map((text, i) => {
      const parsed = parseRoutedNetwork(text);
      if ("problem" in parsed) {
        throw new FieldProblem(`routes.accept[${i}]`, `${quote(text)} ${parsed.problem}`);
      }
      return parsed;
    });
    return { kind: "networks", networks };
  }
  accept.groups.forEach((g, i) => {
    if (!DNS_LABEL.test(g)) {
      throw new FieldProblem(
        `routes.accept.groups[${i}]`,
        `${quote(g)} is not a group name; name a group of the network map`,
      );
    }
  });
  return { kind: "groups", groups: accept.groups.map((g) => g.toLowerCase()) };
}

/** Whether `policy` accepts `route` advertised by a peer in `peerGroups`. */
export function acceptsRoute(policy: RouteAccept, route: Cidr, peerGroups: readonly string[]): boolean {
  switch (policy.kind) {
    case "none":
      return false;
    case "all":
      return true;
    case "networks":
      return policy.networks.some((n) => cidrCovers(n, route));
    case "groups":
      return peerGroups.some((g) => policy.groups.includes(g.toLowerCase()));
  }
}

/**
 * The routes of one peer this node accepts: those `policy` accepts, minus any overlapping the node's
 * own advertised networks (`ownNetworks`, which it routes itself).
 */
export function acceptedRoutesOf(
  policy: RouteAccept,
  peer: { routes: readonly Cidr[]; groups: readonly string[] },
  ownNetworks: readonly Cidr[],
): Cidr[] {
  return peer.routes.filter((r) =>
    acceptsRoute(policy, r, peer.groups) && !ownNetworks.some((own) => cidrsOverlap(own, r))
  );
}

/** The policy as text for the status and messages: `none`, `all`, `192.168.0.0/16, …`, `groups sites`. */
export function describeRouteAccept(policy: RouteAccept, format: (c: Cidr) => string): string {
  switch (policy.kind) {
    case "none":
    case "all":
      return policy.kind;
    case "networks":
      return policy.networks.map(format).join(", ") || "none";
    case "groups":
      return `groups ${policy.groups.join(", ")}`;
  }
}
