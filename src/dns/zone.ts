/**
 * The DNS zone a node serves for the map's domain: `NAME.DOM` → the node's wg0 IP for every node of
 * the map (the serving node included), `NAME.aes.DOM` → its AES IP for nodes that have one (AES-exempt
 * nodes, hubs and brokers have no `.aes` name). The apex and `aes.DOM` exist without addresses (so a
 * query for them is "no data", not "no such name"). Built from the whole map, not one node's view: the
 * names are the network's, whoever asks. Pure; rebuilt whenever the map changes.
 * @module
 */
import { numberToIpv4 } from "../netmap/ipv4.ts";
import { AES_LABEL, type Netmap } from "../netmap/schema.ts";

/** One authoritative zone, ready for {@link answer} in answer.ts. */
export interface DnsZone {
  /** The domain (apex), lower case, no trailing dot. */
  domain: string;
  /** Serial for the SOA record (the map's serial, modulo 2^32). */
  serial: number;
  /** The serving node's own name under the domain, the SOA's and NS's name server. */
  nameServer: string;
  /** Lower-case fully qualified name (no trailing dot) → IPv4 address bytes. */
  addresses: ReadonlyMap<string, Uint8Array>;
  /** Names that exist without an address (the apex, `aes.DOM`). */
  emptyNames: ReadonlySet<string>;
}

/** The zone for `map`, served by the node called `selfName`. */
export function zoneFromMap(map: Netmap, selfName: string): DnsZone {
  const addresses = new Map<string, Uint8Array>();
  for (const n of map.nodes) {
    const name = n.name.toLowerCase();
    addresses.set(`${name}.${map.domain}`, numberToIpv4(n.wgIp));
    if (n.aesIp !== null) addresses.set(`${name}.${AES_LABEL}.${map.domain}`, numberToIpv4(n.aesIp));
  }
  return {
    domain: map.domain,
    serial: map.serial % 2 ** 32,
    nameServer: `${selfName.toLowerCase()}.${map.domain}`,
    addresses,
    emptyNames: new Set([map.domain, `${AES_LABEL}.${map.domain}`]),
  };
}
