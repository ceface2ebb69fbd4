/**
 * Routed networks (site-to-site): the networks a node advertises for others (a LAN behind a router
 * node), as written in the network map (`routes` on a node entry), in the inline `peers` form and in a
 * node's own `node.advertise`. One home for their rules, shared by the map and the node config:
 * - strict CIDR text (a prefix length, no host bits), IPv4 or IPv6;
 * - never overlapping the tunnel ranges (the wg0 network and the aes subnet): a route there would
 *   capture tunnel traffic;
 * - no two advertisements overlap (two peers claiming the same addresses would make the steering
 *   depend on which one wins the longest-prefix match); the problem names both.
 * Pure.
 * @module
 */
import { type Cidr, formatCidr, parseCidr, parseIp } from "../wireguard/allowedips.ts";
import { WG_NETWORK } from "./wg-network.ts";

/** The wg0 network as a prefix. */
const WG_CIDR: Cidr = parseCidr(WG_NETWORK);

/**
 * Parses strict route text (`a.b.c.d/n` or `x::/n`, prefix length required, host bits clear). Returns
 * the prefix, or a short reason that also says how to write it.
 */
export function parseRoutedNetwork(text: string): Cidr | { problem: string } {
  const example = 'write a network such as "192.168.10.0/24" or "fd00:10::/64"';
  const slash = text.indexOf("/");
  if (slash < 0) return { problem: `needs a prefix length; ${example}` };
  let written: Uint8Array;
  try {
    written = parseIp(text.slice(0, slash));
  } catch {
    return { problem: `is not an IP network; ${example}` };
  }
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > written.length * 8) {
    return { problem: `has an invalid prefix length (0 to ${written.length * 8})` };
  }
  const cidr = parseCidr(text);
  if (!sameAddress(written, cidr.addr)) {
    return { problem: `has host bits set (the network is ${formatCidr(cidr)})` };
  }
  return cidr;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The first `bits` bits of `addr` are those of `prefix.addr` (same family). */
function matchesPrefix(addr: Uint8Array, prefix: Cidr): boolean {
  if (addr.length !== prefix.addr.length) return false;
  const full = Math.floor(prefix.bits / 8);
  for (let i = 0; i < full; i++) if (addr[i] !== prefix.addr[i]) return false;
  const rest = prefix.bits % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[full] & mask) === (prefix.addr[full] & mask);
}

/** Whether two prefixes share any address (never across families). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return a.bits <= b.bits ? matchesPrefix(b.addr, a) : matchesPrefix(a.addr, b);
}

/** Whether `outer` contains all of `inner`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.bits <= inner.bits && matchesPrefix(inner.addr, outer);
}

/** Whether `ip` (4 or 16 bytes) lies in `prefix`. */
export function cidrContainsIp(prefix: Cidr, ip: Uint8Array): boolean {
  return matchesPrefix(ip, prefix);
}

/** Whether two lists hold the same prefixes (order and duplicates aside). */
export function sameNetworks(a: readonly Cidr[], b: readonly Cidr[]): boolean {
  const text = (l: readonly Cidr[]) => [...new Set(l.map(formatCidr))].sort().join(",");
  return text(a) === text(b);
}

/**
 * Why `route` may not be advertised because it overlaps a tunnel range (the wg0 network, the aes
 * subnet), or null when it does not.
 */
export function tunnelOverlap(route: Cidr, aesSubnet: Cidr): string | null {
  const fix = "a routed network must lie outside the tunnel ranges; advertise the LAN behind the node";
  if (cidrsOverlap(route, WG_CIDR)) {
    return `${formatCidr(route)} overlaps the wg0 network ${WG_NETWORK}; ${fix}`;
  }
  if (cidrsOverlap(route, aesSubnet)) {
    return `${formatCidr(route)} overlaps the aes subnet ${formatCidr(aesSubnet)}; ${fix}`;
  }
  return null;
}

/** One advertised network with where it was written, for messages. */
export interface Advertisement {
  /** The network. */
  route: Cidr;
  /** The field that holds it, e.g. `nodes[1] ("site-a").routes[0]`. */
  field: string;
  /** Who advertises it (a node or peer name, or "this node"). */
  owner: string;
}

/** The first pair of overlapping advertisements (in list order: the later one first), or null. */
export function findOverlap(ads: readonly Advertisement[]): [Advertisement, Advertisement] | null {
  for (let j = 1; j < ads.length; j++) {
    for (let i = 0; i < j; i++) {
      if (cidrsOverlap(ads[i].route, ads[j].route)) return [ads[j], ads[i]];
    }
  }
  return null;
}

/** The one-line problem for an overlapping pair found by {@link findOverlap} (later, earlier). */
export function overlapProblem(later: Advertisement, earlier: Advertisement): string {
  const same = later.owner === earlier.owner;
  return `${formatCidr(later.route)} (advertised by ${later.owner}) overlaps ${
    formatCidr(earlier.route)
  } at ${earlier.field} (advertised by ${earlier.owner}); ${
    same ? "merge them into one network" : "one network has one router: remove or narrow one of them"
  }`;
}
