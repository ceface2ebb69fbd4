/**
 * Text ⇄ bytes for IPv4/IPv6 addresses and CIDR prefixes, as the FFI layer needs them
 * (sockaddr encoding, netlink attributes). IPv6 output follows RFC 5952 (lowercase, longest zero
 * run compressed).
 *
 * @module
 */

/** Parses dotted-quad IPv4 text into 4 bytes (decimal, no leading zeros), or returns null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    // Decimal only, no leading zeros (they are octal in some parsers).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses RFC 4291 IPv6 text ("::" and an optional trailing dotted IPv4) into 16 bytes, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parseSide = (side: string, allowV4Tail: boolean): number[] | null => {
    if (side === "") return [];
    const out: number[] = [];
    const parts = side.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (allowV4Tail && i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIPv4(p);
        if (v4 === null) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const groups: number[] = [];
  if (halves.length === 1) {
    const all = parseSide(halves[0], true);
    if (all === null || all.length !== 8) return null;
    groups.push(...all);
  } else {
    const head = parseSide(halves[0], false);
    const tail = parseSide(halves[1], true);
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups.push(...head);
    for (let i = head.length + tail.length; i < 8; i++) groups.push(0);
    groups.push(...tail);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >>> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  return out;
}

/** Parses IPv4 or IPv6 text into 4 or 16 bytes; throws on malformed input. */
export function parseIp(text: string): Uint8Array {
  const b = parseIPv4(text) ?? parseIPv6(text);
  if (b === null) throw new Error(`invalid IP address ${JSON.stringify(text)}`);
  return b;
}

/**
 * Formats 4 or 16 address bytes starting at `off` (length `len`): dotted-quad, or RFC 5952 IPv6
 * (lowercase, longest run of two or more zero groups as "::", IPv4-mapped as `::ffff:a.b.c.d`).
 */
export function formatIp(bytes: Uint8Array, off = 0, len: 4 | 16 = bytes.length === 4 ? 4 : 16): string {
  if (len === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  if (off + 16 > bytes.length) throw new Error(`invalid IP address: ${bytes.length - off} bytes`);
  if (isV4Mapped(bytes, off)) {
    return `::ffff:${bytes[off + 12]}.${bytes[off + 13]}.${bytes[off + 14]}.${bytes[off + 15]}`;
  }
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[off + 2 * i] << 8) | bytes[off + 2 * i + 1]);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** True when 16 bytes at `off` are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isV4Mapped(bytes: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[off + i] !== 0) return false;
  return bytes[off + 10] === 0xff && bytes[off + 11] === 0xff;
}

/** A parsed CIDR prefix. */
export interface Cidr {
  /** 4 (IPv4) or 6 (IPv6). */
  family: 4 | 6;
  /** Address bytes (4 or 16), exactly as written (host bits are kept). */
  address: Uint8Array;
  /** Prefix length in bits. */
  prefixLength: number;
}

/** Parses "a.b.c.d/n" or "x::y/n" (a bare address means a host prefix); throws on bad input. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = address.length * 8;
  let prefixLength = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new Error(`invalid prefix length in "${text}"`);
    prefixLength = Number(p);
  }
  return { family: address.length === 4 ? 4 : 6, address, prefixLength };
}

/** True when every bit of `address` beyond `prefixLength` is zero. */
export function hostBitsZero(address: Uint8Array, prefixLength: number): boolean {
  for (let bit = prefixLength; bit < address.length * 8; bit++) {
    if ((address[bit >> 3] >> (7 - (bit & 7))) & 1) return false;
  }
  return true;
}
