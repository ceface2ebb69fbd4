/**
 * Text ⇄ bytes for IPv4/IPv6 addresses and CIDR prefixes, as the FFI layer needs them
 * (sockaddr encoding, netlink attributes). IPv6 output follows RFC 5952 (lowercase, longest zero
 * run compressed).
 *
 * @module
 */

/** Parses dotted-quad IPv4 text into 4 bytes, or returns null if it is not one. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with "::" and an optional trailing dotted IPv4) into 16 bytes, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  const out = new Uint8Array(16);
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const res: number[] = [];
    const items = s.split(":");
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (i === items.length - 1 && it.includes(".")) {
        const v4 = parseIPv4(it);
        if (v4 === null) return null;
        res.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
        res.push(parseInt(it, 16));
      }
    }
    return res;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return null;
  const all = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}

/** Parses IPv4 or IPv6 text into 4 or 16 bytes; throws on malformed input. */
export function parseIp(text: string): Uint8Array {
  const b = text.includes(":") ? parseIPv6(text) : parseIPv4(text);
  if (b === null) throw new Error(`invalid IP address "${text}"`);
  return b;
}

/** Formats 4 or 16 address bytes starting at `off` (length `len`) as text. */
export function formatIp(bytes: Uint8Array, off = 0, len: 4 | 16 = bytes.length === 4 ? 4 : 16): string {
  if (len === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[off + 2 * i] << 8) | bytes[off + 2 * i + 1]);
  // Longest run of zero groups (length >= 2) becomes "::".
  let bestStart = -1;
  let bestLen = 0;
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
  if (bestLen < 2) return hex(g);
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
