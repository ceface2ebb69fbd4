/**
 * Which interface carries a peer's traffic, as the allowed IPs of each layer (cryptokey routing both
 * ways: what may be sent to the peer and what it may send from):
 * - wg0 holds every peer's wg0 IP; for an AES-exempt peer also the routed networks this node accepts
 *   from it;
 * - aes0 holds an AES peer's AES IP and the routed networks this node accepts from it — never wg0, so
 *   a closed gate stops that traffic instead of letting it fall back to the outer layer.
 * Pure; used at start (wg0, aes0), for live map changes (netmap/apply-plan.ts) and for the kernel
 * routes (node/peer-routes.ts).
 * @module
 */
import { formatCidr } from "../wireguard/allowedips.ts";
import { isAesPeer, type PeerConfig } from "./node-config.ts";

/** The peer's allowed IPs on wg0 (canonical CIDR text). */
export function wg0AllowedIps(p: PeerConfig): string[] {
  const routed = isAesPeer(p) ? [] : (p.acceptedRoutes ?? []).map(formatCidr);
  return [formatCidr(p.wgIp), ...routed];
}

/** The peer's allowed IPs on aes0 (canonical CIDR text); empty for a peer without aes0. */
export function aes0AllowedIps(p: PeerConfig): string[] {
  if (!isAesPeer(p)) return [];
  return [formatCidr(p.aesIp!), ...(p.acceptedRoutes ?? []).map(formatCidr)];
}
