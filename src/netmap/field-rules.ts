/**
 * The network map's field rules shared by the map's validation and the editing tool: the error type,
 * the domain, node names, public keys, the wg0 network and the aes subnet. Pure.
 * @module
 */
import { MAX_PEERS } from "../wireguard/dataplane/shared-state.ts";
import { WG_NETWORK } from "../config/wg-network.ts";
import { DNS_LABEL, DNS_LABEL_RULE, quote } from "../config/zod-errors.ts";
import { decodeBase64 } from "../encoding.ts";
import { formatPrefix, type Ipv4Prefix, parseIpv4Prefix, prefixesOverlap, prefixLast } from "./ipv4.ts";

/** Label reserved for the AES names: `NAME.aes.DOM`. */
export const AES_LABEL = "aes";
/** Most nodes one map holds: every node's peers must fit one interface. */
export const MAX_NETMAP_NODES = MAX_PEERS + 1;
/** Longest domain name in text form (RFC 1035: 255 octets on the wire). */
export const MAX_DOMAIN_LENGTH = 253;
/** Prefix lengths from which a subnet has a network and a broadcast address that are never handed out. */
export const MAX_BITS_WITH_BROADCAST = 30;
/** The rule a DNS label follows, in words. */
export const LABEL_RULE = DNS_LABEL_RULE;

/** A bad map: one line `field: problem; fix` (never key material). */
export class NetmapError extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
    this.name = "NetmapError";
  }
}

/** Lower-case domain without a trailing dot, or a NetmapError naming the rule. */
export function normalizeDomain(field: string, text: string): string {
  const domain = text.endsWith(".") ? text.slice(0, -1) : text;
  const labels = domain.split(".");
  const fix =
    `write a domain such as "fabric.example" (labels of ${LABEL_RULE}, at most ${MAX_DOMAIN_LENGTH} characters)`;
  if (domain.length === 0 || domain.length > MAX_DOMAIN_LENGTH || !labels.every((l) => DNS_LABEL.test(l))) {
    throw new NetmapError(field, `${quote(text)} is not a valid domain; ${fix}`);
  }
  return domain.toLowerCase();
}

/** Checks a node name (one DNS label, not the reserved `aes`). */
export function checkNodeName(field: string, name: string): void {
  if (!DNS_LABEL.test(name)) {
    throw new NetmapError(field, `${quote(name)} is not a valid name; use ${LABEL_RULE}`);
  }
  if (name.toLowerCase() === AES_LABEL) {
    throw new NetmapError(
      field,
      `"${name}" is reserved (NAME.${AES_LABEL}.DOMAIN holds the AES names); pick another name`,
    );
  }
}

/** Parses a base64 WireGuard public key (32 bytes) or throws a NetmapError. */
export function parseNetmapPublicKey(field: string, text: string): Uint8Array {
  let key: Uint8Array | null;
  try {
    key = decodeBase64(text.trim());
  } catch {
    key = null;
  }
  if (key === null || key.length !== 32) {
    throw new NetmapError(
      field,
      "is not a base64 WireGuard public key (32 bytes, 44 characters); print it on that node with `twofold pubkey < node.key`",
    );
  }
  return key;
}

/** The wg0 network as a prefix. */
export const WG_PREFIX: Ipv4Prefix = parseIpv4Prefix(WG_NETWORK) as Ipv4Prefix;

/** Whether `ip` is the network or broadcast address of `prefix` (only for prefixes of /30 and wider). */
export function isReservedInPrefix(prefix: Ipv4Prefix, ip: number): boolean {
  return prefix.bits <= MAX_BITS_WITH_BROADCAST && (ip === prefix.base || ip === prefixLast(prefix));
}

/** Parses and checks the aes subnet: IPv4, no host bits, not covering all of wg0's network. */
export function parseAesSubnet(field: string, text: string): Ipv4Prefix {
  const parsed = parseIpv4Prefix(text);
  if ("problem" in parsed) {
    throw new NetmapError(
      field,
      `${quote(text)} ${parsed.problem}; write an IPv4 subnet such as 100.127.0.0/16`,
    );
  }
  if (parsed.bits > MAX_BITS_WITH_BROADCAST) {
    throw new NetmapError(
      field,
      `/${parsed.bits} holds no usable address; use /${MAX_BITS_WITH_BROADCAST} or wider`,
    );
  }
  if (prefixesOverlap(parsed, WG_PREFIX) && parsed.bits <= WG_PREFIX.bits) {
    throw new NetmapError(
      field,
      `${
        formatPrefix(parsed)
      } covers all of ${WG_NETWORK}, leaving no wg0 address; use a smaller subnet such as 100.127.0.0/16`,
    );
  }
  return parsed;
}
