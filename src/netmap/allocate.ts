/**
 * Address allocation for the network map (what the management server does in the product): the next
 * free wg0 IP in 100.64.0.0/10 (outside the aes subnet) and the next free AES IP in the map's aes subnet.
 * Never a network or broadcast address, never an address still in the map; "next" is the lowest free
 * address, so a removed node's address is handed out again only once it has left the map. Pure.
 * @module
 */
import { WG_NETWORK } from "../config/wg-network.ts";
import { formatPrefix, type Ipv4Prefix, prefixContains, prefixLast } from "./ipv4.ts";
import { isReservedInPrefix, type Netmap, WG_PREFIX } from "./schema.ts";

/** No free address is left in a subnet. */
export class SubnetFullError extends Error {
  constructor(readonly subnet: string, readonly what: string) {
    super(
      `no free ${what} address is left in ${subnet}; remove nodes that are gone (twofold netmap remove NAME)` +
        (what === "AES" ? " or add the node AES-exempt (--exempt)" : ""),
    );
    this.name = "SubnetFullError";
  }
}

/**
 * Lowest address of `prefix` that is not reserved (network/broadcast), not in `used` and not inside
 * `exclude`; null when there is none. Runs in O(|used| + size of exclude skipped), not O(subnet).
 */
export function lowestFree(
  prefix: Ipv4Prefix,
  used: ReadonlySet<number>,
  exclude?: Ipv4Prefix,
): number | null {
  const last = prefixLast(prefix);
  let ip = prefix.base;
  while (ip <= last) {
    if (exclude && prefixContains(exclude, ip)) {
      ip = prefixLast(exclude) + 1;
      continue;
    }
    if (!isReservedInPrefix(prefix, ip) && !used.has(ip)) return ip;
    ip++;
  }
  return null;
}

/** Every wg0 and AES address the map holds. */
export function usedAddresses(map: Netmap): Set<number> {
  const used = new Set<number>();
  for (const n of map.nodes) {
    used.add(n.wgIp);
    if (n.aesIp !== null) used.add(n.aesIp);
  }
  return used;
}

/** The next free wg0 address of `map` (in 100.64.0.0/10, outside its aes subnet). Throws SubnetFullError. */
export function nextWgIp(map: Netmap): number {
  const ip = lowestFree(WG_PREFIX, usedAddresses(map), map.aesSubnet);
  if (ip === null) throw new SubnetFullError(WG_NETWORK, "wg0");
  return ip;
}

/** The next free AES address in `map`'s aes subnet. Throws SubnetFullError. */
export function nextAesIp(map: Netmap): number {
  const ip = lowestFree(map.aesSubnet, usedAddresses(map));
  if (ip === null) throw new SubnetFullError(formatPrefix(map.aesSubnet), "AES");
  return ip;
}
