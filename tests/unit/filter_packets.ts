/**
 * Hand-built IPv4/IPv6 packets for the packet-filter tests: byte-by-byte from the RFC layouts (791,
 * 8200, 793, 768, 792, 4443), independent of the parser under test. Checksums are left zero (the filter
 * does not read them).
 * @module
 */

/** A transport header + payload. */
export type L4 = Uint8Array;

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

const parsed = new Map<string, Uint8Array>();

/** Parses "a.b.c.d" or a simple IPv6 text ("fd00::1", with at most one "::"); a fresh copy each call. */
export function addr(text: string): Uint8Array {
  let a = parsed.get(text);
  if (a === undefined) {
    a = parseAddr(text);
    parsed.set(text, a);
  }
  return a.slice();
}

function parseAddr(text: string): Uint8Array {
  if (text.includes(".")) return Uint8Array.from(text.split(".").map(Number));
  const [head, tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => put16(out, 2 * i, parseInt(g, 16)));
  return out;
}

/** A TCP header (no options unless `doff` > 5, zero-filled) + payload. */
export function tcp(
  sport: number,
  dport: number,
  flags: number,
  opts: { doff?: number; payload?: number } = {},
): L4 {
  const doff = opts.doff ?? 5;
  const b = new Uint8Array(Math.max(20, doff * 4) + (opts.payload ?? 0));
  put16(b, 0, sport);
  put16(b, 2, dport);
  b[12] = (doff & 0xf) << 4;
  b[13] = flags;
  put16(b, 14, 65535);
  return b;
}

/** A UDP header + payload. */
export function udp(sport: number, dport: number, payload = 0): L4 {
  const b = new Uint8Array(8 + payload);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put16(b, 4, b.length);
  return b;
}

/** An ICMP/ICMPv6 message: type, code, then identifier/sequence (or the unused word) and `body`. */
export function icmp(type: number, code: number, id = 0, seq = 0, body: Uint8Array = new Uint8Array(0)): L4 {
  const b = new Uint8Array(8 + body.length);
  b[0] = type;
  b[1] = code;
  put16(b, 4, id);
  put16(b, 6, seq);
  b.set(body, 8);
  return b;
}

/** TCP flag bits. */
export const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

/** Options of {@link ipv4}. */
export interface V4Options {
  id?: number;
  more?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  /** Header length in 32-bit words (default 5; > 5 adds zero option bytes). */
  ihl?: number;
  /** Overrides the total-length field. */
  totalLength?: number;
}

/** An IPv4 packet `src → dst` carrying `payload` with protocol `proto`. */
export function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: Uint8Array,
  o: V4Options = {},
): Uint8Array {
  const ihl = o.ihl ?? 5;
  const hlen = Math.max(20, ihl * 4);
  const b = new Uint8Array(hlen + payload.length);
  b[0] = 0x40 | (ihl & 0xf);
  put16(b, 2, o.totalLength ?? b.length);
  put16(b, 4, o.id ?? 1);
  put16(b, 6, (o.more ? 0x2000 : 0) | ((o.fragOffset ?? 0) >> 3));
  b[8] = 64;
  b[9] = proto;
  b.set(addr(src), 12);
  b.set(addr(dst), 16);
  b.set(payload, hlen);
  return b;
}

/** An IPv6 extension header: hop-by-hop (0), routing (43), destination options (60) or fragment (44). */
export interface Ext {
  type: 0 | 43 | 60 | 44;
  /** Length in 8-byte units beyond the first (hop-by-hop/routing/dest-options). */
  len?: number;
  /** Fragment header fields. */
  fragOffset?: number;
  more?: boolean;
  id?: number;
}

/** An IPv6 packet with extension headers `exts` (in order), then `proto` and `payload`. */
export function ipv6(
  src: string,
  dst: string,
  proto: number,
  payload: Uint8Array,
  exts: Ext[] = [],
  payloadLength?: number,
): Uint8Array {
  const parts: Uint8Array[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1].type : proto;
    if (e.type === 44) {
      const h = new Uint8Array(8);
      h[0] = next;
      put16(h, 2, (e.fragOffset ?? 0) | (e.more ? 1 : 0));
      const id = e.id ?? 7;
      h[4] = id >>> 24;
      h[5] = (id >>> 16) & 0xff;
      h[6] = (id >>> 8) & 0xff;
      h[7] = id & 0xff;
      parts.push(h);
    } else {
      const h = new Uint8Array(8 * ((e.len ?? 0) + 1));
      h[0] = next;
      h[1] = e.len ?? 0;
      parts.push(h);
    }
  });
  parts.push(payload);
  const body = parts.reduce((n, p) => n + p.length, 0);
  const b = new Uint8Array(40 + body);
  b[0] = 0x60;
  put16(b, 4, payloadLength ?? body);
  b[6] = exts.length > 0 ? exts[0].type : proto;
  b[7] = 64;
  b.set(addr(src), 8);
  b.set(addr(dst), 24);
  let o = 40;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return b;
}

/** `packet` placed at `offset` inside a larger buffer (as the data plane hands it over). */
export function at(packet: Uint8Array, offset: number, slack = 16): Uint8Array {
  const b = new Uint8Array(offset + packet.length + slack);
  b.fill(0xee);
  b.set(packet, offset);
  return b;
}
