/**
 * Cryptokey routing table: longest-prefix match from IPv4/IPv6 addresses to peer ids, plus the CIDR and
 * IP text helpers the configuration layers need.
 *
 * Each family is a path-compressed binary trie. A node holds a masked prefix and the peer that owns it,
 * or -1 for a pure branching node. Lookups walk the trie reading the address straight from the packet
 * buffer and allocate nothing. Inserting a prefix that another peer owns moves it to the new peer,
 * as wireguard-go does.
 * @module
 */
import { formatIp, parseIp } from "../../ffi/ip-text.ts";

/** An IP prefix. `addr` has 4 (family 4) or 16 (family 6) bytes; `bits` is the prefix length. */
export interface Cidr {
  /** Address family. */
  family: 4 | 6;
  /** Address bytes in network order. Host bits are zero in values produced by this module. */
  addr: Uint8Array;
  /** Prefix length, 0..32 or 0..128. */
  bits: number;
}

/** Peer id returned by lookups that match nothing. */
export const NO_PEER: number = -1;

/** Mask selecting the first `bits` bits (clamped to 0..32) of a 32-bit word, as an int32. */
function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return -1 << (32 - bits);
}

/** Big-endian 32-bit word `i` of `bytes[off..]`, as an int32. */
function wordAt(bytes: Uint8Array, off: number, i: number): number {
  const o = off + 4 * i;
  return (bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3];
}

/**
 * One trie node. Besides the byte key used by updates, it keeps the prefix as four 32-bit words and
 * masks so a lookup compares a whole prefix with a few integer operations.
 */
class TrieNode {
  /** Child taken when the bit right after this prefix is 0 / 1. */
  zero: TrieNode | null = null;
  one: TrieNode | null = null;
  /** Prefix as big-endian int32 words (w1..w3 are 0 for IPv4). */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  /** Per-word masks of the prefix bits (0 for words past the prefix). */
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  constructor(
    /** Masked prefix bytes (full address length). */
    readonly key: Uint8Array,
    /** Prefix length. */
    readonly bits: number,
    /** Owning peer, or NO_PEER for a branching node. */
    public peer: number,
  ) {
    const words = key.length >>> 2;
    this.w0 = wordAt(key, 0, 0);
    this.w1 = words > 1 ? wordAt(key, 0, 1) : 0;
    this.w2 = words > 2 ? wordAt(key, 0, 2) : 0;
    this.w3 = words > 3 ? wordAt(key, 0, 3) : 0;
    this.m0 = wordMask(bits);
    this.m1 = wordMask(bits - 32);
    this.m2 = wordMask(bits - 64);
    this.m3 = wordMask(bits - 96);
  }
}

/** Returns bit `i` (0 = most significant bit of byte 0) of `bytes[off..]`. */
function bitAt(bytes: Uint8Array, off: number, i: number): number {
  return (bytes[off + (i >>> 3)] >>> (7 - (i & 7))) & 1;
}

/** True when the first `node.bits` bits of `buf[off..]` equal the node's prefix. */
function prefixMatches(node: TrieNode, buf: Uint8Array, off: number): boolean {
  const key = node.key;
  const whole = node.bits >>> 3;
  for (let i = 0; i < whole; i++) {
    if (key[i] !== buf[off + i]) return false;
  }
  const rest = node.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((key[whole] ^ buf[off + whole]) & mask) === 0;
}

/** Number of leading bits on which `a` and `b` agree, capped at `max`. */
function commonBits(a: Uint8Array, b: Uint8Array, max: number): number {
  let n = 0;
  for (let i = 0; i < a.length && n < max; i++) {
    const x = a[i] ^ b[i];
    if (x === 0) {
      n += 8;
      continue;
    }
    n += Math.clz32(x) - 24;
    break;
  }
  return n < max ? n : max;
}

/** Returns a copy of `addr` with every bit after the first `bits` cleared. */
function masked(addr: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(addr.length);
  const whole = bits >>> 3;
  out.set(addr.subarray(0, whole));
  const rest = bits & 7;
  if (rest !== 0) out[whole] = addr[whole] & ((0xff << (8 - rest)) & 0xff);
  return out;
}

function addrLength(family: 4 | 6): number {
  return family === 4 ? 4 : 16;
}

function checkCidr(cidr: Cidr): void {
  if (cidr.family !== 4 && cidr.family !== 6) throw new Error(`invalid CIDR: unknown family ${cidr.family}`);
  const len = addrLength(cidr.family);
  if (!(cidr.addr instanceof Uint8Array) || cidr.addr.length !== len) {
    throw new Error(`invalid CIDR: IPv${cidr.family} address must be ${len} bytes`);
  }
  if (!Number.isInteger(cidr.bits) || cidr.bits < 0 || cidr.bits > len * 8) {
    throw new Error(`invalid CIDR: prefix length ${cidr.bits} out of range 0..${len * 8}`);
  }
}

function checkPeer(peer: number): void {
  if (!Number.isInteger(peer) || peer < 0) {
    throw new Error(`invalid peer id ${peer}: must be an integer >= 0`);
  }
}

/** Longest-prefix-match table from addresses to peer ids (non-negative integers). */
export class AllowedIps {
  #root4: TrieNode | null = null;
  #root6: TrieNode | null = null;
  /** Nodes owned by each peer, in insertion order. */
  readonly #byPeer = new Map<number, Set<TrieNode>>();
  /** Set by #removeFrom when it cleared a node. */
  #removed = false;

  /** Maps `cidr` (host bits ignored) to `peer`, taking it over if another peer owned it. */
  insert(cidr: Cidr, peer: number): void {
    checkCidr(cidr);
    checkPeer(peer);
    const key = masked(cidr.addr, cidr.bits);
    const bits = cidr.bits;
    const isV4 = cidr.family === 4;
    const root = isV4 ? this.#root4 : this.#root6;
    if (root === null) {
      const leaf = new TrieNode(key, bits, peer);
      if (isV4) this.#root4 = leaf;
      else this.#root6 = leaf;
      this.#own(leaf, peer);
      return;
    }
    let parent: TrieNode | null = null;
    let node: TrieNode = root;
    for (;;) {
      const common = commonBits(node.key, key, node.bits < bits ? node.bits : bits);
      if (common === node.bits && common === bits) {
        // Exact prefix already present (as an owned or branching node).
        if (node.peer !== peer) {
          if (node.peer !== NO_PEER) this.#disown(node);
          node.peer = peer;
          this.#own(node, peer);
        }
        return;
      }
      if (common === node.bits) {
        // The node's prefix contains the new one: descend.
        const next = bitAt(key, 0, node.bits) === 0 ? node.zero : node.one;
        if (next === null) {
          const leaf = new TrieNode(key, bits, peer);
          if (bitAt(key, 0, node.bits) === 0) node.zero = leaf;
          else node.one = leaf;
          this.#own(leaf, peer);
          return;
        }
        parent = node;
        node = next;
        continue;
      }
      let replacement: TrieNode;
      if (common === bits) {
        // The new prefix contains the node's: insert above it.
        replacement = new TrieNode(key, bits, peer);
        this.#own(replacement, peer);
        if (bitAt(node.key, 0, bits) === 0) replacement.zero = node;
        else replacement.one = node;
      } else {
        // Diverge below both prefixes: add a branching node at the common prefix.
        replacement = new TrieNode(masked(key, common), common, NO_PEER);
        const leaf = new TrieNode(key, bits, peer);
        this.#own(leaf, peer);
        if (bitAt(key, 0, common) === 0) {
          replacement.zero = leaf;
          replacement.one = node;
        } else {
          replacement.zero = node;
          replacement.one = leaf;
        }
      }
      if (parent === null) {
        if (isV4) this.#root4 = replacement;
        else this.#root6 = replacement;
      } else if (parent.zero === node) parent.zero = replacement;
      else parent.one = replacement;
      return;
    }
  }

  /** Removes `cidr` if `peer` owns exactly that prefix; returns whether something was removed. */
  remove(cidr: Cidr, peer: number): boolean {
    checkCidr(cidr);
    return this.#removeKey(cidr.family, masked(cidr.addr, cidr.bits), cidr.bits, peer);
  }

  /** Removes every prefix owned by `peer`. */
  removePeer(peer: number): void {
    const nodes = this.#byPeer.get(peer);
    if (nodes === undefined) return;
    for (const node of [...nodes]) {
      this.#removeKey(node.key.length === 4 ? 4 : 6, node.key, node.bits, peer);
    }
    this.#byPeer.delete(peer);
  }

  /**
   * Returns the peer owning the longest prefix that contains the address at `buf[off..]` (4 bytes
   * for family 4, 16 for family 6), or -1. Allocates nothing.
   */
  lookup(buf: Uint8Array, off: number, family: 4 | 6): number {
    let node: TrieNode | null;
    let maxBits: number;
    let a0: number, a1 = 0, a2 = 0, a3 = 0;
    if (family === 4) {
      if (!(off >= 0 && off + 4 <= buf.length)) return NO_PEER;
      node = this.#root4;
      maxBits = 32;
      a0 = wordAt(buf, off, 0);
    } else {
      if (!(off >= 0 && off + 16 <= buf.length)) return NO_PEER;
      node = this.#root6;
      maxBits = 128;
      a0 = wordAt(buf, off, 0);
      a1 = wordAt(buf, off, 1);
      a2 = wordAt(buf, off, 2);
      a3 = wordAt(buf, off, 3);
    }
    let best = NO_PEER;
    while (node !== null) {
      const differs = ((a0 ^ node.w0) & node.m0) | ((a1 ^ node.w1) & node.m1) |
        ((a2 ^ node.w2) & node.m2) | ((a3 ^ node.w3) & node.m3);
      if (differs !== 0) break;
      if (node.peer !== NO_PEER) best = node.peer;
      const b = node.bits;
      if (b === maxBits) break;
      const word = b < 64 ? (b < 32 ? a0 : a1) : (b < 96 ? a2 : a3);
      node = ((word >>> (31 - (b & 31))) & 1) === 0 ? node.zero : node.one;
    }
    return best;
  }

  /**
   * Looks up the destination address of the IPv4/IPv6 packet at `pkt[off, off+len)` (outbound
   * routing). Returns -1 if the packet is too short or not IPv4/IPv6. Allocates nothing.
   */
  lookupPacketDestination(pkt: Uint8Array, off: number, len: number): number {
    return this.#lookupPacketField(pkt, off, len, 16, 24);
  }

  /**
   * Looks up the source address of the IPv4/IPv6 packet at `pkt[off, off+len)` (inbound
   * cryptokey-routing check). Returns -1 if the packet is too short or not IPv4/IPv6.
   */
  lookupPacketSource(pkt: Uint8Array, off: number, len: number): number {
    return this.#lookupPacketField(pkt, off, len, 12, 8);
  }

  /** Prefixes owned by `peer`, in insertion order, as fresh copies. */
  entriesFor(peer: number): Cidr[] {
    const nodes = this.#byPeer.get(peer);
    if (nodes === undefined) return [];
    const out: Cidr[] = [];
    for (const node of nodes) {
      out.push({ family: node.key.length === 4 ? 4 : 6, addr: node.key.slice(), bits: node.bits });
    }
    return out;
  }

  /** Number of prefixes in the table (over all peers and both families). */
  get size(): number {
    let n = 0;
    for (const nodes of this.#byPeer.values()) n += nodes.size;
    return n;
  }

  /** An independent copy with the same prefixes and owners (each peer's prefixes in the same order). */
  clone(): AllowedIps {
    const copy = new AllowedIps();
    for (const [peer, nodes] of this.#byPeer) {
      for (const node of nodes) {
        copy.insert({ family: node.key.length === 4 ? 4 : 6, addr: node.key, bits: node.bits }, peer);
      }
    }
    return copy;
  }

  /** Removes every entry. */
  clear(): void {
    this.#root4 = null;
    this.#root6 = null;
    this.#byPeer.clear();
  }

  #lookupPacketField(pkt: Uint8Array, off: number, len: number, v4Offset: number, v6Offset: number): number {
    if (!(off >= 0 && len >= 1 && off + len <= pkt.length)) return NO_PEER;
    const version = pkt[off] >>> 4;
    if (version === 4) {
      if (len < 20) return NO_PEER;
      return this.lookup(pkt, off + v4Offset, 4);
    }
    if (version === 6) {
      if (len < 40) return NO_PEER;
      return this.lookup(pkt, off + v6Offset, 6);
    }
    return NO_PEER;
  }

  #own(node: TrieNode, peer: number): void {
    let set = this.#byPeer.get(peer);
    if (set === undefined) {
      set = new Set();
      this.#byPeer.set(peer, set);
    }
    set.add(node);
  }

  #disown(node: TrieNode): void {
    const set = this.#byPeer.get(node.peer);
    if (set === undefined) return;
    set.delete(node);
    if (set.size === 0) this.#byPeer.delete(node.peer);
  }

  #removeKey(family: 4 | 6, key: Uint8Array, bits: number, peer: number): boolean {
    this.#removed = false;
    if (family === 4) this.#root4 = this.#removeFrom(this.#root4, key, bits, peer);
    else this.#root6 = this.#removeFrom(this.#root6, key, bits, peer);
    return this.#removed;
  }

  /** Removes the exact prefix from the subtree if `peer` owns it; returns the compacted subtree. */
  #removeFrom(node: TrieNode | null, key: Uint8Array, bits: number, peer: number): TrieNode | null {
    if (node === null || node.bits > bits || !prefixMatches(node, key, 0)) return node;
    if (node.bits === bits) {
      if (node.peer !== peer) return node;
      this.#disown(node);
      node.peer = NO_PEER;
      this.#removed = true;
    } else if (bitAt(key, 0, node.bits) === 0) {
      node.zero = this.#removeFrom(node.zero, key, bits, peer);
    } else {
      node.one = this.#removeFrom(node.one, key, bits, peer);
    }
    if (node.peer !== NO_PEER) return node;
    // A branching node is only worth keeping while it has two children.
    if (node.zero === null) return node.one;
    if (node.one === null) return node.zero;
    return node;
  }
}

/** IP text helpers live with the FFI layer (one implementation); re-exported for the engine. */
export { formatIp, parseIp } from "../../ffi/ip-text.ts";

/**
 * Parses `addr/bits` (or a bare address, meaning /32 or /128). Host bits are cleared, as `wg` does.
 * Throws an Error naming the input and the problem.
 */
export function parseCidr(s: string): Cidr {
  const text = s.trim();
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let addr: Uint8Array;
  try {
    addr = parseIp(addrText);
  } catch {
    throw new Error(`invalid CIDR ${JSON.stringify(s)}: bad address`);
  }
  const family: 4 | 6 = addr.length === 4 ? 4 : 6;
  const maxBits = addr.length * 8;
  let bits = maxBits;
  if (slash >= 0) {
    const bitsText = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > maxBits) {
      throw new Error(`invalid CIDR ${JSON.stringify(s)}: prefix length must be 0..${maxBits}`);
    }
    bits = Number(bitsText);
  }
  return { family, addr: masked(addr, bits), bits };
}

/** Formats a prefix as `addr/bits`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.addr)}/${c.bits}`;
}
