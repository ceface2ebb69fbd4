/**
 * The change set between two views of one node (the running map's and a new map's), for the guarded
 * live apply: peers added, removed and changed (with the fields that changed), the node's own entry
 * changes, and map-wide changes (domain, aes subnet). Peers are matched by public key, their identity:
 * a new key under an old name is one peer removed and one added. Pure.
 * @module
 */
import { encodeBase64 } from "../encoding.ts";
import { formatCidr } from "../wireguard/allowedips.ts";
import { formatEndpoint } from "../uapi/netaddr.ts";
import type { NetmapBroker, NetmapPeer, NetmapView } from "./view.ts";

/** A peer field that can change in place. */
export type PeerField =
  | "name"
  | "wgIp"
  | "aesIp"
  | "endpoint"
  | "role"
  | "keySource"
  | "persistentKeepalive"
  | "groups"
  | "routes"
  | "acceptedRoutes";

/** A field of the node's own entry that can change. */
export type SelfField = "name" | "role" | "wgAddress" | "aesAddress" | "keySource" | "groups" | "routes";

/** One peer present in both views with different fields. */
export interface ChangedPeer {
  /** The peer in the old view. */
  before: NetmapPeer | NetmapBroker;
  /** The peer in the new view. */
  after: NetmapPeer | NetmapBroker;
  /** Which fields differ, in {@link PEER_FIELDS} order. */
  fields: PeerField[];
}

/** What applying `next` over `current` changes. */
export interface ViewDiff {
  /** Serial before and after. */
  serial: { from: number; to: number };
  /** Peers (and brokers) only in the new view. */
  added: (NetmapPeer | NetmapBroker)[];
  /** Peers (and brokers) only in the old view. */
  removed: (NetmapPeer | NetmapBroker)[];
  /** Peers in both with different fields. */
  changed: ChangedPeer[];
  /** Fields of the node's own entry that differ (a readdress needs the interfaces changed). */
  self: SelfField[];
  /** Whether the DNS domain changed. */
  domainChanged: boolean;
  /** Whether the aes subnet changed. */
  aesSubnetChanged: boolean;
}

/** Every peer field, in the order a diff lists them. */
export const PEER_FIELDS: readonly PeerField[] = [
  "name",
  "wgIp",
  "aesIp",
  "endpoint",
  "role",
  "keySource",
  "persistentKeepalive",
  "groups",
  "routes",
  "acceptedRoutes",
];

/** A comparable text of one peer field. */
function peerFieldText(p: NetmapPeer | NetmapBroker, field: PeerField): string {
  switch (field) {
    case "wgIp":
      return formatCidr(p.wgIp);
    case "aesIp":
      return p.aesIp ? formatCidr(p.aesIp) : "";
    case "endpoint":
      return p.endpoint ? formatEndpoint(p.endpoint) : "";
    case "groups":
      return p.groups.join(",");
    case "routes":
    case "acceptedRoutes":
      return p[field].map(formatCidr).join(",");
    default:
      return String(p[field]);
  }
}

function selfFieldText(v: NetmapView, field: SelfField): string {
  const s = v.self;
  switch (field) {
    case "wgAddress":
      return s.wgAddress.text;
    case "aesAddress":
      return s.aesAddress?.text ?? "";
    case "groups":
      return s.groups.join(",");
    case "routes":
      return s.routes.map(formatCidr).join(",");
    default:
      return String(s[field]);
  }
}

/** Whether a diff changes nothing (the same document, or a re-signed one with a new serial only). */
export function isEmptyDiff(d: ViewDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0 && d.self.length === 0 &&
    !d.domainChanged && !d.aesSubnetChanged;
}

/** The change set from `current` to `next` (both views of the same node). */
export function diffViews(current: NetmapView, next: NetmapView): ViewDiff {
  const all = (v: NetmapView) => [...v.peers, ...v.brokers];
  const before = new Map(all(current).map((p) => [encodeBase64(p.publicKey), p]));
  const after = new Map(all(next).map((p) => [encodeBase64(p.publicKey), p]));
  const added = all(next).filter((p) => !before.has(encodeBase64(p.publicKey)));
  const removed = all(current).filter((p) => !after.has(encodeBase64(p.publicKey)));
  const changed: ChangedPeer[] = [];
  for (const p of all(next)) {
    const old = before.get(encodeBase64(p.publicKey));
    if (!old) continue;
    const fields = PEER_FIELDS.filter((f) => peerFieldText(old, f) !== peerFieldText(p, f));
    if (fields.length) changed.push({ before: old, after: p, fields });
  }
  const selfFields: SelfField[] = [
    "name",
    "role",
    "wgAddress",
    "aesAddress",
    "keySource",
    "groups",
    "routes",
  ];
  return {
    serial: { from: current.serial, to: next.serial },
    added,
    removed,
    changed,
    self: selfFields.filter((f) => selfFieldText(current, f) !== selfFieldText(next, f)),
    domainChanged: current.domain !== next.domain,
    aesSubnetChanged: formatCidr(current.aesSubnet) !== formatCidr(next.aesSubnet),
  };
}
