/**
 * Routed networks in the node config (site-to-site, docs/site-to-site.md): `node.advertise` (the
 * networks this node routes for others), the inline peers' `routes` and `routes.accept` (which of the
 * peers' networks this node takes). The rules: strict CIDRs outside the tunnel ranges, no two
 * advertisements overlapping (this node's and its peers', naming both), hubs and brokers advertise
 * nothing, and `{ "groups": [...] }` only with a network map (inline peers have no groups). With inline
 * peers the accepted routes are decided here; a map-driven node decides them per map (netmap/view.ts).
 * @module
 */
import type { z } from "zod";
import type { Cidr } from "../../wireguard/allowedips.ts";
import { acceptedRoutesOf, resolveRouteAccept, type RouteAccept, routesSection } from "../route-accept.ts";
import {
  type Advertisement,
  findOverlap,
  overlapProblem,
  parseRoutedNetwork,
  tunnelOverlap,
} from "../routed-network.ts";
import { FieldProblem, quote } from "../zod-errors.ts";
import type { PeerConfig } from "../node-config.ts";
import type { RawPeer } from "./peers.ts";

export { routesSection };

/** The networks of `texts` at `field[i]`: strict, outside the tunnel ranges. */
function parseNetworks(field: string, texts: readonly string[], aesSubnet: Cidr): Cidr[] {
  return texts.map((text, i) => {
    const parsed = parseRoutedNetwork(text);
    if ("problem" in parsed) throw new FieldProblem(`${field}[${i}]`, `${quote(text)} ${parsed.problem}`);
    const tunnel = tunnelOverlap(parsed, aesSubnet);
    if (tunnel !== null) throw new FieldProblem(`${field}[${i}]`, tunnel);
    return parsed;
  });
}

/** `node.advertise`: null when the config does not say (a map-driven node then takes its map entry). */
export function resolveAdvertise(raw: readonly string[] | undefined, aesSubnet: Cidr): Cidr[] | null {
  return raw === undefined ? null : parseNetworks("node.advertise", raw, aesSubnet);
}

/**
 * The inline peers with their `routes` and `acceptedRoutes` filled in: each peer's networks checked,
 * then no overlap among them and this node's own; `accept` applied.
 */
export function resolvePeerRoutes(
  raw: readonly RawPeer[],
  peers: readonly PeerConfig[],
  advertise: readonly Cidr[],
  accept: RouteAccept,
  aesSubnet: Cidr,
): PeerConfig[] {
  const ads: Advertisement[] = advertise.map((route, i) => ({
    route,
    field: `node.advertise[${i}]`,
    owner: "this node",
  }));
  const withRoutes = peers.map((p, i) => {
    const field = `peers[${i}].routes`;
    if (raw[i].routes.length && p.role !== "peer") {
      throw new FieldProblem(
        field,
        `a ${p.role} carries no application traffic, so it routes no network; remove it`,
      );
    }
    const routes = parseNetworks(field, raw[i].routes, aesSubnet);
    routes.forEach((route, j) => ads.push({ route, field: `${field}[${j}]`, owner: quote(p.name) }));
    return { ...p, routes };
  });
  const overlap = findOverlap(ads);
  if (overlap) throw new FieldProblem(overlap[0].field, overlapProblem(...overlap));
  return withRoutes.map((p) => ({
    ...p,
    acceptedRoutes: acceptedRoutesOf(accept, { ...p, groups: [] }, advertise),
  }));
}

/** `routes.accept`; `{ groups }` needs a network map (inline peers have no groups). */
export function resolveAccept(raw: z.output<typeof routesSection>, mapDriven: boolean): RouteAccept {
  const accept = resolveRouteAccept(raw);
  if (accept.kind === "groups" && !mapDriven) {
    throw new FieldProblem(
      "routes.accept.groups",
      "groups come from the network map; with inline peers list the networks to accept instead",
    );
  }
  return accept;
}
