/**
 * IPv4 arithmetic for the network map: addresses as unsigned 32-bit numbers, so that allocation can
 * walk a subnet and subnet membership is one mask. Text parsing and formatting stay with the one IP text
 * implementation (allowedips.ts / ffi).
 * @module
 */
import { type Cidr, formatIp, parseCidr, parseIp } from "../wireguard/allowedips.ts";

/** An IPv4 prefix as numbers: `base` (host bits clear) and `bits`. */
export interface Ipv4Prefix {
  /** First address of the prefix, as an unsigned 32-bit number. */
  base: number;
  /** Prefix length, 0..32. */
  bits: number;
}

/** The 4 bytes of an IPv4 address as an unsigned 32-bit number. */
export function ipv4ToNumber(bytes: Uint8Array): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

/** An unsigned 32-bit number as 4 address bytes. */
export function numberToIpv4(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** Dotted-quad text of an unsigned 32-bit address. */
export function formatIpv4Number(n: number): string {
  return formatIp(numberToIpv4(n));
}

/** Parses a dotted quad into a number; null when `text` is not one IPv4 address. */
export function parseIpv4Number(text: string): number | null {
  try {
    const bytes = parseIp(text);
    return bytes.length === 4 ? ipv4ToNumber(bytes) : null;
  } catch {
    return null;
  }
}

/** Number of addresses in a prefix (2^(32 − bits)). */
export function prefixSize(prefix: Ipv4Prefix): number {
  return 2 ** (32 - prefix.bits);
}

/** Last address of a prefix. */
export function prefixLast(prefix: Ipv4Prefix): number {
  return prefix.base + prefixSize(prefix) - 1;
}

/** Whether `ip` lies inside `prefix`. */
export function prefixContains(prefix: Ipv4Prefix, ip: number): boolean {
  return ip >= prefix.base && ip <= prefixLast(prefix);
}

/** Whether two prefixes share any address. */
export function prefixesOverlap(a: Ipv4Prefix, b: Ipv4Prefix): boolean {
  return a.base <= prefixLast(b) && b.base <= prefixLast(a);
}

/** An IPv4 Cidr as numbers; null for IPv6. */
export function cidrToPrefix(cidr: Cidr): Ipv4Prefix | null {
  return cidr.family === 4 ? { base: ipv4ToNumber(cidr.addr), bits: cidr.bits } : null;
}

/** Canonical `a.b.c.d/n` text of a prefix. */
export function formatPrefix(prefix: Ipv4Prefix): string {
  return `${formatIpv4Number(prefix.base)}/${prefix.bits}`;
}

/**
 * Parses strict IPv4 CIDR text (`a.b.c.d/n`, prefix length required, host bits clear). Returns the
 * prefix, or a short reason why not (for an error message that also says how to fix it).
 */
export function parseIpv4Prefix(text: string): Ipv4Prefix | { problem: string } {
  const slash = text.indexOf("/");
  if (slash < 0) return { problem: "needs a prefix length" };
  const ip = parseIpv4Number(text.slice(0, slash));
  if (ip === null) return { problem: "is not an IPv4 subnet" };
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(bitsText) || Number(bitsText) > 32) {
    return { problem: "has an invalid prefix length (0 to 32)" };
  }
  const bits = Number(bitsText);
  const canonical = cidrToPrefix(parseCidr(text))!;
  if (canonical.base !== ip) {
    return { problem: `has host bits set (the subnet is ${formatPrefix(canonical)})` };
  }
  return { base: ip, bits };
}
