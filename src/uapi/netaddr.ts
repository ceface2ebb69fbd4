/**
 * Numeric IP addresses, CIDR prefixes and UDP endpoints in the text forms the UAPI uses.
 *
 * Parsing is strict in the way Go's `net/netip` (used by wireguard-go) is strict: IPv4 octets without
 * leading zeros, IPv6 with at most one `::`, an optional dotted IPv4 tail and an optional `%zone`.
 * Formatting follows `netip` too: RFC 5952 for IPv6, `::ffff:a.b.c.d` for IPv4-mapped IPv6.
 * No name resolution ever happens here.
 * @module
 */

/** A parsed IP address: 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
  /** IPv6 scope zone (e.g. "eth0"); only for IPv6. */
  zone?: string;
}

/** A parsed CIDR prefix with the host bits cleared. */
export interface Cidr {
  address: IpAddress;
  prefixLength: number;
}

/** A numeric UDP endpoint; `ip` is in canonical text form (IPv6 without brackets, zone kept). */
export interface Endpoint {
  ip: string;
  port: number;
}

function parseIpv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let field = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return null;
      digits++;
    } else if (c === 46 /* . */) {
      if (digits === 0 || field === 3) return null;
      out[field++] = value;
      value = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  if (field !== 3 || digits === 0) return null;
  out[3] = value;
  return out;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses colon-separated groups; the last one may be a dotted IPv4 address when `allowIpv4Tail`. */
function parseIpv6Groups(part: string, allowIpv4Tail: boolean): number[] | null {
  if (part === "") return [];
  const fields = part.split(":");
  const groups: number[] = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (allowIpv4Tail && i === fields.length - 1 && f.includes(".")) {
      const v4 = parseIpv4(f);
      if (!v4) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (HEX_GROUP.test(f)) {
      groups.push(parseInt(f, 16));
    } else {
      return null;
    }
  }
  return groups;
}

function parseIpv6(text: string): IpAddress | null {
  let zone: string | undefined;
  const pct = text.indexOf("%");
  if (pct >= 0) {
    zone = text.slice(pct + 1);
    if (zone === "") return null;
    text = text.slice(0, pct);
  }
  const ellipsis = text.indexOf("::");
  if (ellipsis >= 0 && text.indexOf("::", ellipsis + 1) >= 0) return null;
  let groups: number[];
  if (ellipsis < 0) {
    const all = parseIpv6Groups(text, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  } else {
    const head = parseIpv6Groups(text.slice(0, ellipsis), false);
    const tail = parseIpv6Groups(text.slice(ellipsis + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return zone === undefined ? { family: 6, bytes } : { family: 6, bytes, zone };
}

/** Parses a numeric IPv4 or IPv6 address (IPv6 may carry `%zone`); null when invalid. */
export function parseIpAddress(text: string): IpAddress | null {
  if (text.includes(":")) return parseIpv6(text);
  const v4 = parseIpv4(text);
  return v4 ? { family: 4, bytes: v4 } : null;
}

function isIpv4MappedIpv6(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Canonical text of an address: dotted quad, or RFC 5952 IPv6 (plus `%zone`), as Go's netip prints. */
export function formatIpAddress(address: IpAddress): string {
  const b = address.bytes;
  if (address.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const zone = address.zone ? `%${address.zone}` : "";
  if (isIpv4MappedIpv6(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}${zone}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i] << 8) | b[2 * i + 1]);
  // Longest run of at least two zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8) + zone;
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}${zone}`;
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses `address/length` (no zone) and clears the host bits, so `10.1.2.3/8` yields `10.0.0.0/8`.
 * Null when invalid.
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return null;
  const address = parseIpAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || address.zone !== undefined || !PREFIX_LENGTH.test(lengthText)) return null;
  const prefixLength = Number(lengthText);
  if (prefixLength > address.bytes.length * 8) return null;
  const masked = new Uint8Array(address.bytes.length);
  for (let i = 0; i < masked.length; i++) {
    const keep = Math.min(8, Math.max(0, prefixLength - 8 * i));
    masked[i] = address.bytes[i] & ((0xff00 >> keep) & 0xff);
  }
  return { address: { family: address.family, bytes: masked }, prefixLength };
}

/** Text form `address/length` of a CIDR. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIpAddress(cidr.address)}/${cidr.prefixLength}`;
}

/** Canonical form of a CIDR text (host bits cleared, canonical address), or null when invalid. */
export function canonicalCidr(text: string): string | null {
  const cidr = parseCidr(text);
  return cidr ? formatCidr(cidr) : null;
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
