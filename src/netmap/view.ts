/**
 * One node's view of the network map: its own entry and its peers, converted to the shape the node
 * config's `peers` has (PeerConfig), so the node can run from a map exactly as from inline peers.
 *
 * Rules of the conversion:
 * - The node is found by its public key; every other node is a peer (groups are carried along for
 *   policies, they do not restrict who peers with whom).
 * - Only an AES node (role peer with an AES IP) uses aes0: for it, the peers with an AES IP are aes0
 *   peers. An AES-exempt node, a hub or a broker reaches everyone over wg0 only, so in its view no
 *   peer has an AES IP.
 * - A peer's endpoint is the first of its map endpoints; pskFile and psk stay null (manual PSKs are
 *   local: they come from the node config or `wg set`, never from the map).
 * - Brokers are listed apart: the node config has no broker role yet.
 * - Routed networks: every peer carries what it advertises (`routes`) and what this node accepts of it
 *   (`acceptedRoutes`, by the node's `routes.accept`); a peer's route overlapping this node's own
 *   networks is never accepted. When the node config says what the node advertises itself
 *   (`node.advertise`), the map's entry for it must agree.
 * Pure.
 * @module
 */
import type { InterfaceAddress, KeySource, PeerConfig } from "../config/node-config.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import { numberToIpv4 } from "./ipv4.ts";
import {
  type Netmap,
  NetmapError,
  type NetmapKeySource,
  type NetmapNode,
  type NetmapRole,
  WG_PREFIX,
} from "./schema.ts";
import { formatIpv4Number } from "./ipv4.ts";
import { encodeBase64 } from "../encoding.ts";
import { ACCEPT_NONE, acceptedRoutesOf, type RouteAccept } from "../config/route-accept.ts";
import { sameNetworks } from "../config/routed-network.ts";
import { formatCidr } from "../wireguard/allowedips.ts";

/** A peer as the node config has it, plus its groups from the map. */
export interface NetmapPeer extends PeerConfig {
  /** The peer's groups. */
  groups: string[];
  /** The networks it advertises. */
  routes: Cidr[];
  /** The part of them this node accepts. */
  acceptedRoutes: Cidr[];
}

/** A broker (SKA) in a node's view: a wg0 peer the node config cannot express yet. */
export interface NetmapBroker extends Omit<NetmapPeer, "role"> {
  /** Always "broker". */
  role: "broker";
}

/** The node's own entry, in the node config's terms. */
export interface NetmapSelf {
  /** Its name. */
  name: string;
  /** Its public key. */
  publicKey: Uint8Array;
  /** Its role. */
  role: NetmapRole;
  /** wg0 address with the wg0 network's prefix (100.64.x.y/10), as `wg0.address`. */
  wgAddress: InterfaceAddress;
  /** aes0 address with the aes subnet's prefix, as `aes0.address`; null when it has no aes0. */
  aesAddress: InterfaceAddress | null;
  /** Its aes0 PSK source; null when it has no aes0. */
  keySource: NetmapKeySource | null;
  /** Its groups. */
  groups: string[];
  /** The networks it routes for others (its map entry's `routes`). */
  routes: Cidr[];
}

/** How this node takes routed networks: what it accepts, and what its config says it advertises. */
export interface RouteSettings {
  /** `routes.accept`. */
  accept: RouteAccept;
  /** `node.advertise`; null: not said in the config (the map's entry is taken as it is). */
  advertise: Cidr[] | null;
}

/** No routes accepted, nothing checked. */
export const DEFAULT_ROUTE_SETTINGS: RouteSettings = { accept: ACCEPT_NONE, advertise: null };

/** The route settings of a node config. */
export function routeSettingsOf(
  cfg: { node: { advertise: Cidr[] | null }; routes: { accept: RouteAccept } },
): RouteSettings {
  return { accept: cfg.routes.accept, advertise: cfg.node.advertise };
}

/** What a node runs from the map. */
export interface NetmapView {
  /** The map's serial. */
  serial: number;
  /** The map's DNS domain. */
  domain: string;
  /** The aes0 subnet, as `aes0.subnet`. */
  aesSubnet: Cidr;
  /** The node itself. */
  self: NetmapSelf;
  /** Its peers (edge nodes and hubs), in map order. */
  peers: NetmapPeer[];
  /** Brokers, in map order. */
  brokers: NetmapBroker[];
}

function hostCidr(ip: number): Cidr {
  return { family: 4, addr: numberToIpv4(ip), bits: 32 };
}

function interfaceAddress(ip: number, prefixLength: number): InterfaceAddress {
  return { family: 4, ip: numberToIpv4(ip), prefixLength, text: `${formatIpv4Number(ip)}/${prefixLength}` };
}

/** Whether a map node uses aes0. */
export function usesAes(node: NetmapNode): boolean {
  return node.role === "peer" && node.aesIp !== null;
}

/**
 * The view of the node whose public key is `ownPublicKey`. Throws a NetmapError when the key is not in
 * the map (the node cannot run from a map that does not list it).
 */
export function viewFor(
  map: Netmap,
  ownPublicKey: Uint8Array,
  routing: RouteSettings = DEFAULT_ROUTE_SETTINGS,
): NetmapView {
  const ownText = encodeBase64(ownPublicKey);
  const own = map.nodes.find((n) => n.publicKeyText === ownText);
  if (!own) {
    throw new NetmapError(
      "nodes",
      `this node's public key ${ownText} is not in the map; add it with \`twofold netmap add NAME --public-key ${ownText}\``,
    );
  }
  const selfAes = usesAes(own);
  const self: NetmapSelf = {
    name: own.name,
    publicKey: own.publicKey,
    role: own.role,
    wgAddress: interfaceAddress(own.wgIp, WG_PREFIX.bits),
    aesAddress: selfAes ? interfaceAddress(own.aesIp!, map.aesSubnet.bits) : null,
    keySource: selfAes ? own.keySource : null,
    groups: [...own.groups],
    routes: [...own.routes],
  };
  if (routing.advertise !== null && !sameNetworks(routing.advertise, own.routes)) {
    const list = (l: readonly Cidr[]) => `[${l.map(formatCidr).join(", ")}]`;
    throw new NetmapError(
      `nodes[${map.nodes.indexOf(own)}] ("${own.name}").routes`,
      `${list(own.routes)} differs from node.advertise ${
        list(routing.advertise)
      } in this node's config; make the map entry and the config agree`,
    );
  }
  const peers: NetmapPeer[] = [];
  const brokers: NetmapBroker[] = [];
  for (const n of map.nodes) {
    if (n === own) continue;
    const aes = selfAes && usesAes(n);
    const keySource: KeySource = aes ? n.keySource! : "manual";
    const common = {
      name: n.name,
      publicKey: n.publicKey,
      wgIp: hostCidr(n.wgIp),
      aesIp: aes ? hostCidr(n.aesIp!) : null,
      endpoint: n.endpoints.length ? { ...n.endpoints[0] } : null,
      keySource,
      pskFile: null,
      psk: null,
      persistentKeepalive: n.persistentKeepalive,
      groups: [...n.groups],
      routes: [...n.routes],
      acceptedRoutes: n.role === "peer" ? acceptedRoutesOf(routing.accept, n, own.routes) : [],
    };
    if (n.role === "broker") brokers.push({ ...common, role: "broker" });
    else peers.push({ ...common, role: n.role });
  }
  return {
    serial: map.serial,
    domain: map.domain,
    aesSubnet: { family: 4, addr: numberToIpv4(map.aesSubnet.base), bits: map.aesSubnet.bits },
    self,
    peers,
    brokers,
  };
}
