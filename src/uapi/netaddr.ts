/**
 * Numeric IP addresses, CIDR prefixes and UDP endpoints in the text forms the UAPI uses.
 *
 * Parsing is strict in the way Go's `net/netip` (used by wireguard-go) is strict: IPv4 octets without
 * leading zeros, IPv6 with at most one `::`, an optional dotted IPv4 tail and an optional `%zone`.
 * Formatting follows `netip` too: RFC 5952 for IPv6, `::ffff:a.b.c.d` for IPv4-mapped IPv6.
 * No name resolution ever happens here. Address and prefix arithmetic come from allowedips.ts.
 * @module
 */
import { formatCidr, formatIp, parseCidr, parseIp } from "../wireguard/allowedips.ts";

/** A parsed IP address: 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
  /** IPv6 scope zone (e.g. "eth0"); only for IPv6. */
  zone?: string;
}

/** A numeric UDP endpoint; `ip` is in canonical text form (IPv6 without brackets, zone kept). */
export interface Endpoint {
  ip: string;
  port: number;
}

/** Parses a numeric IPv4 or IPv6 address (IPv6 may carry `%zone`); null when invalid. */
export function parseIpAddress(text: string): IpAddress | null {
  let zone: string | undefined;
  const pct = text.indexOf("%");
  if (pct >= 0) {
    zone = text.slice(pct + 1);
    text = text.slice(0, pct);
    if (zone === "" || !text.includes(":")) return null;
  }
  let bytes: Uint8Array;
  try {
    bytes = parseIp(text);
  } catch {
    return null;
  }
  if (bytes.length === 4) return { family: 4, bytes };
  return zone === undefined ? { family: 6, bytes } : { family: 6, bytes, zone };
}

/** Canonical text of an address: dotted quad, or RFC 5952 IPv6 (plus `%zone`), as Go's netip prints. */
export function formatIpAddress(address: IpAddress): string {
  return formatIp(address.bytes) + (address.zone ? `%${address.zone}` : "");
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Canonical form of `address/length` (host bits cleared, canonical address), or null when invalid.
 * Stricter than `parseCidr` from allowedips.ts, as Go's `netip.ParsePrefix` is: the length is required
 * and has no leading zeros, no zone, no surrounding whitespace.
 */
export function canonicalCidr(text: string): string | null {
  const slash = text.indexOf("/");
  if (slash < 0 || !PREFIX_LENGTH.test(text.slice(slash + 1))) return null;
  const address = parseIpAddress(text.slice(0, slash));
  if (!address || address.zone !== undefined) return null;
  try {
    return formatCidr(parseCidr(text));
  } catch {
    return null;
  }
}

/**
 * Parses a decimal unsigned integer the way Go's `strconv.ParseUint(s, 10, bits)` does: digits only,
 * leading zeros allowed, at most `max`. Null when invalid.
 */
export function parseDecimal(text: string, max: number): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const value = Number(text);
  return value <= max ? value : null;
}

/**
 * Parses a numeric endpoint `a.b.c.d:port` or `[v6]:port` (Go's `netip.ParseAddrPort`): IPv6 needs
 * brackets, IPv4 must not have them; the port is 0–65535. Null when invalid.
 */
export function parseEndpoint(text: string): Endpoint | null {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return null;
  let host = text.slice(0, colon);
  const port = parseDecimal(text.slice(colon + 1), 0xffff);
  if (port === null) return null;
  const bracketed = host.startsWith("[");
  if (bracketed) {
    if (host.length < 2 || !host.endsWith("]")) return null;
    host = host.slice(1, -1);
  }
  const address = parseIpAddress(host);
  if (!address || (address.family === 6) !== bracketed) return null;
  return { ip: formatIpAddress(address), port };
}

/** Text form of an endpoint: `a.b.c.d:port` or `[v6]:port`. */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.ip.includes(":") ? `[${endpoint.ip}]:${endpoint.port}` : `${endpoint.ip}:${endpoint.port}`;
}
