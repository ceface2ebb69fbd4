/**
 * Interface, address and route configuration over rtnetlink (NETLINK_ROUTE), replacing `ip`.
 *
 * Each request opens a short-lived netlink socket, sends one message with a fresh sequence number
 * and reads replies until the kernel's ack (or NLMSG_DONE for dumps). A negative error in the ack
 * becomes a {@link SysError}, with the kernel's extended-ack text when it sends one. These are
 * control-plane calls: they block the calling thread for the (immediate) kernel reply only.
 *
 * @module
 */

import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNSPEC,
  cString,
  EAGAIN,
  EINTR,
  ENOBUFS,
  ENODEV,
  errno,
  libc,
  MSG_DONTWAIT,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SysError,
} from "./libc.ts";
import { pollOne } from "./poll.ts";
import { formatIp, hostBitsZero, parseCidr } from "./ip-text.ts";

const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

/** rtnetlink message types used here. */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
} as const;

/** Multicast group bit for link notifications (bind nl_groups). */
export const RTMGRP_LINK = 0x1;

const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_STATS64 = 23;
/** Byte offset of `tx_dropped` in struct rtnl_link_stats64 (the eighth u64). */
const STATS64_TX_DROPPED = 7 * 8;
const IFLA_AF_SPEC = 26;
const IFLA_INET6_ADDR_GEN_MODE = 8;
/** `IN6_ADDR_GEN_MODE_NONE`: the kernel adds no IPv6 link-local (or other automatic) address. */
const IN6_ADDR_GEN_MODE_NONE = 1;
const NLA_F_NESTED = 0x8000;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_TABLE = 15;
const IFF_UP = 0x1;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;

const REPLY_TIMEOUT_MS = 3000;
const RECV_SIZE = 65536;

let nextSeq = (Date.now() & 0x3fffffff) + 1;

type Attr = [type: number, data: Uint8Array];

/** One reply message: its type and the bytes after the 16-byte nlmsghdr. */
interface Reply {
  type: number;
  body: Uint8Array;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

const align4 = (n: number) => (n + 3) & ~3;

function encode(type: number, flags: number, seq: number, fixed: Uint8Array, attrs: Attr[]): Uint8Array {
  let len = 16 + align4(fixed.length);
  for (const [, data] of attrs) len += align4(4 + data.length);
  const msg = new Uint8Array(len);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  dv.setUint32(12, 0, true);
  msg.set(fixed, 16);
  let off = 16 + align4(fixed.length);
  for (const [t, data] of attrs) {
    dv.setUint16(off, 4 + data.length, true);
    dv.setUint16(off + 2, t, true);
    msg.set(data, off + 4);
    off += align4(4 + data.length);
  }
  return msg;
}

/** The attributes `attrs` encoded back to back, as the payload of a nested attribute. */
function nested(attrs: Attr[]): Uint8Array {
  return encode(0, 0, 0, new Uint8Array(0), attrs).subarray(16);
}

/** Parses rtattrs in `buf[off..]` into a map type → payload view (nested flag bits masked). */
function parseAttrs(buf: Uint8Array, off: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (off + 4 <= buf.length) {
    const len = dv.getUint16(off, true);
    const type = dv.getUint16(off + 2, true) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

function openNetlink(extraFlags = 0): number {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | extraFlags, NETLINK_ROUTE);
  if (fd < 0) throw new SysError(errno(), "socket(AF_NETLINK)");
  const one = u32(1);
  // Best effort: a readable reason with errors, and acks without a copy of our request.
  libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  libc.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
  return fd;
}

function kernelAddress(groups = 0): Uint8Array {
  const sa = new Uint8Array(12);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_NETLINK, true);
  dv.setUint32(8, groups, true);
  return sa;
}

/** Extended-ack text from an NLMSG_ERROR body (capped ack: error i32 + request nlmsghdr + TLVs). */
function extAckMessage(flags: number, body: Uint8Array): string | undefined {
  if ((flags & NLM_F_ACK_TLVS) === 0 || body.length <= 20) return undefined;
  const msg = parseAttrs(body, 20).get(NLMSGERR_ATTR_MSG);
  if (msg === undefined) return undefined;
  const end = msg.indexOf(0);
  return new TextDecoder().decode(end < 0 ? msg : msg.subarray(0, end));
}

/**
 * Sends one request and collects its replies. Non-dump requests ask for an ack and end there;
 * dumps end at NLMSG_DONE. Throws SysError on a negative ack.
 */
function request(op: string, type: number, flags: number, fixed: Uint8Array, attrs: Attr[]): Reply[] {
  const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
  const seq = nextSeq++;
  if (nextSeq > 0x7fffffff) nextSeq = 1;
  const msg = encode(type, flags | NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK), seq, fixed, attrs);
  const fd = openNetlink();
  try {
    if (libc.sendto(fd, msg, BigInt(msg.length), 0, kernelAddress(), 12) < 0) {
      throw new SysError(errno(), `${op}: sendto(netlink)`);
    }
    const buf = new Uint8Array(RECV_SIZE);
    const bufLen = BigInt(buf.length);
    const dv = new DataView(buf.buffer);
    const replies: Reply[] = [];
    for (;;) {
      const ready = pollOne(fd, POLLIN, REPLY_TIMEOUT_MS);
      if (ready === 0) throw new Error(`${op}: no netlink reply within ${REPLY_TIMEOUT_MS} ms`);
      if (ready < 0) throw new SysError(errno(), `${op}: poll(netlink)`);
      const n = libc.recvfrom(fd, buf, bufLen, MSG_DONTWAIT, null, null);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN || e === EINTR) continue;
        throw new SysError(e, `${op}: recv(netlink)`);
      }
      for (let off = 0; off + 16 <= n;) {
        const len = dv.getUint32(off, true);
        if (len < 16 || off + len > n) break;
        const rtype = dv.getUint16(off + 4, true);
        const rflags = dv.getUint16(off + 6, true);
        const rseq = dv.getUint32(off + 8, true);
        const body = buf.slice(off + 16, off + len);
        off += align4(len);
        if (rseq !== seq) continue;
        if (rtype === NLMSG_ERROR) {
          const code = new DataView(body.buffer).getInt32(0, true);
          if (code === 0) return replies;
          throw new SysError(-code, op, undefined, extAckMessage(rflags, body));
        }
        if (rtype === NLMSG_DONE) {
          const code = body.length >= 4 ? new DataView(body.buffer).getInt32(0, true) : 0;
          if (code < 0) throw new SysError(-code, op);
          return replies;
        }
        replies.push({ type: rtype, body });
      }
    }
  } finally {
    libc.close(fd);
  }
}

// ---- links ----

/** Kernel index of interface `name`, or null if there is no such interface. */
export function linkIndex(name: string): number | null {
  const idx = libc.if_nametoindex(cString(name));
  return idx === 0 ? null : idx;
}

/** True when an interface called `name` exists (in the caller's network namespace). */
export function linkExists(name: string): boolean {
  return linkIndex(name) !== null;
}

function requireIndex(name: string, op: string): number {
  const idx = linkIndex(name);
  if (idx === null) throw new SysError(ENODEV, op, `no interface named "${name}"`);
  return idx;
}

function ifinfomsg(index: number, flags = 0, change = 0, family = AF_UNSPEC): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, family);
  dv.setInt32(4, index, true);
  dv.setUint32(8, flags, true);
  dv.setUint32(12, change, true);
  return b;
}

/** Facts about one interface from RTM_GETLINK. */
export interface LinkInfo {
  /** Interface index. */
  index: number;
  /** Interface name. */
  name: string;
  /** IFF_* flags (bit 0 = IFF_UP). */
  flags: number;
  /** MTU in bytes. */
  mtu: number;
  /**
   * Packets the kernel dropped on their way out of the interface (`tx_dropped`); for a TUN, those it
   * could not queue for the reading process because the queue (txqueuelen) was full.
   */
  txDropped: number;
}

function parseLink(body: Uint8Array): LinkInfo {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const attrs = parseAttrs(body, 16);
  const nameAttr = attrs.get(IFLA_IFNAME);
  const mtuAttr = attrs.get(IFLA_MTU);
  const stats = attrs.get(IFLA_STATS64);
  let name = "";
  if (nameAttr) {
    const end = nameAttr.indexOf(0);
    name = new TextDecoder().decode(end < 0 ? nameAttr : nameAttr.subarray(0, end));
  }
  return {
    index: dv.getInt32(4, true),
    name,
    flags: dv.getUint32(8, true),
    mtu: mtuAttr ? new DataView(mtuAttr.buffer, mtuAttr.byteOffset, 4).getUint32(0, true) : 0,
    txDropped: stats && stats.length >= STATS64_TX_DROPPED + 8
      ? Number(
        new DataView(stats.buffer, stats.byteOffset, stats.length).getBigUint64(STATS64_TX_DROPPED, true),
      )
      : 0,
  };
}

/** Index, flags, MTU and drop count of interface `name`, or null when it does not exist. */
export function getLink(name: string): LinkInfo | null {
  try {
    const replies = request("getLink", RTM.GETLINK, 0, ifinfomsg(0), [[IFLA_IFNAME, cString(name)]]);
    const r = replies.find((x) => x.type === RTM.NEWLINK);
    return r ? parseLink(r.body) : null;
  } catch (e) {
    if (e instanceof SysError && e.errno === ENODEV) return null;
    throw e;
  }
}

/** Brings interface `name` up (like `ip link set NAME up`). */
export function setLinkUp(name: string): void {
  const op = `setLinkUp(${name})`;
  request(op, RTM.NEWLINK, 0, ifinfomsg(requireIndex(name, op), IFF_UP, IFF_UP), []);
}

/** Takes interface `name` down. */
export function setLinkDown(name: string): void {
  const op = `setLinkDown(${name})`;
  request(op, RTM.NEWLINK, 0, ifinfomsg(requireIndex(name, op), 0, IFF_UP), []);
}

/**
 * Stops the kernel from giving interface `name` automatic IPv6 addresses (the fe80:: link-local one
 * in particular), like `ip link set NAME addrgenmode none`; addresses added explicitly still work. Call
 * it before the link goes up. Throws a SysError (e.g. EAFNOSUPPORT) when the host has no IPv6.
 */
export function disableIpv6AutoAddresses(name: string): void {
  const op = `disableIpv6AutoAddresses(${name})`;
  const inet6: Attr[] = [[IFLA_INET6_ADDR_GEN_MODE, new Uint8Array([IN6_ADDR_GEN_MODE_NONE])]];
  const afSpec: Attr[] = [[AF_INET6 | NLA_F_NESTED, nested(inet6)]];
  request(op, RTM.NEWLINK, 0, ifinfomsg(requireIndex(name, op)), [[
    IFLA_AF_SPEC | NLA_F_NESTED,
    nested(afSpec),
  ]]);
}

/** Sets the MTU of interface `name`. */
export function setMtu(name: string, mtu: number): void {
  const op = `setMtu(${name}, ${mtu})`;
  request(op, RTM.NEWLINK, 0, ifinfomsg(requireIndex(name, op)), [[IFLA_MTU, u32(mtu)]]);
}

/** The MTU of interface `name`; throws SysError(ENODEV) when it does not exist. */
export function getMtu(name: string): number {
  const link = getLink(name);
  if (link === null) throw new SysError(ENODEV, `getMtu(${name})`, `no interface named "${name}"`);
  return link.mtu;
}

/** Deletes interface `name` (like `ip link del NAME`). */
export function deleteLink(name: string): void {
  const op = `deleteLink(${name})`;
  request(op, RTM.DELLINK, 0, ifinfomsg(requireIndex(name, op)), []);
}

// ---- addresses ----

function familyOf(v: 4 | 6): number {
  return v === 4 ? AF_INET : AF_INET6;
}

function addrRequest(op: string, type: number, flags: number, name: string, cidr: string): void {
  const c = parseCidr(cidr);
  const fixed = new Uint8Array(8); // struct ifaddrmsg
  fixed[0] = familyOf(c.family);
  fixed[1] = c.prefixLength;
  fixed[3] = RT_SCOPE_UNIVERSE;
  new DataView(fixed.buffer).setUint32(4, requireIndex(name, op), true);
  request(op, type, flags, fixed, [[IFA_LOCAL, c.address], [IFA_ADDRESS, c.address]]);
}

/**
 * Adds address `cidr` ("100.64.0.1/10", "fd00::1/64") to interface `name`. Throws SysError EEXIST
 * when it is already there, unless `replace` is set.
 */
export function addAddress(name: string, cidr: string, opts: { replace?: boolean } = {}): void {
  const flags = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  addrRequest(`addAddress(${name}, ${cidr})`, RTM.NEWADDR, flags, name, cidr);
}

/** Removes address `cidr` from interface `name`. */
export function delAddress(name: string, cidr: string): void {
  addrRequest(`delAddress(${name}, ${cidr})`, RTM.DELADDR, 0, name, cidr);
}

/** Addresses on interface `name` as "address/prefix" strings (IPv4 and IPv6, kernel order). */
export function listAddresses(name: string): string[] {
  const op = `listAddresses(${name})`;
  const index = requireIndex(name, op);
  const out: string[] = [];
  for (const r of request(op, RTM.GETADDR, NLM_F_DUMP, new Uint8Array(8), [])) {
    if (r.type !== RTM.NEWADDR) continue;
    const dv = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
    if (dv.getUint32(4, true) !== index) continue;
    const attrs = parseAttrs(r.body, 8);
    const a = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (a === undefined || (a.length !== 4 && a.length !== 16)) continue;
    out.push(`${formatIp(a, 0, a.length as 4 | 16)}/${r.body[1]}`);
  }
  return out;
}

// ---- routes ----

function routeRequest(op: string, type: number, flags: number, cidr: string, name: string): void {
  const c = parseCidr(cidr);
  if (!hostBitsZero(c.address, c.prefixLength)) {
    throw new Error(`${op}: "${cidr}" has host bits set beyond /${c.prefixLength}`);
  }
  const index = requireIndex(name, op);
  const fixed = new Uint8Array(12); // struct rtmsg
  fixed[0] = familyOf(c.family);
  fixed[1] = c.prefixLength;
  fixed[4] = RT_TABLE_MAIN;
  if (type === RTM.DELROUTE) {
    fixed[6] = RT_SCOPE_NOWHERE;
  } else {
    fixed[5] = RTPROT_BOOT;
    fixed[6] = c.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    fixed[7] = RTN_UNICAST;
  }
  const attrs: Attr[] = [[RTA_TABLE, u32(RT_TABLE_MAIN)], [RTA_OIF, u32(index)]];
  if (c.prefixLength > 0) attrs.unshift([RTA_DST, c.address]);
  request(op, type, flags, fixed, attrs);
}

/**
 * Routes `cidr` to interface `name` in the main table (device route, no gateway). Throws SysError
 * EEXIST when such a route exists, unless `replace` is set.
 */
export function addRoute(cidr: string, name: string, opts: { replace?: boolean } = {}): void {
  const flags = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  routeRequest(`addRoute(${cidr}, ${name})`, RTM.NEWROUTE, flags, cidr, name);
}

/** Removes the main-table route for `cidr` via interface `name`. */
export function delRoute(cidr: string, name: string): void {
  routeRequest(`delRoute(${cidr}, ${name})`, RTM.DELROUTE, 0, cidr, name);
}

/** Destinations ("prefix/len") of main-table routes whose output interface is `name`. */
export function listRoutes(name: string): string[] {
  const op = `listRoutes(${name})`;
  const index = requireIndex(name, op);
  const out: string[] = [];
  for (const r of request(op, RTM.GETROUTE, NLM_F_DUMP, new Uint8Array(12), [])) {
    if (r.type !== RTM.NEWROUTE) continue;
    const attrs = parseAttrs(r.body, 12);
    const tableAttr = attrs.get(RTA_TABLE);
    const table = tableAttr
      ? new DataView(tableAttr.buffer, tableAttr.byteOffset, 4).getUint32(0, true)
      : r.body[4];
    const oif = attrs.get(RTA_OIF);
    if (table !== RT_TABLE_MAIN || oif === undefined) continue;
    if (new DataView(oif.buffer, oif.byteOffset, 4).getUint32(0, true) !== index) continue;
    const len: 4 | 16 = r.body[0] === AF_INET ? 4 : 16;
    const dst = attrs.get(RTA_DST) ?? new Uint8Array(len);
    out.push(`${formatIp(dst, 0, len)}/${r.body[1]}`);
  }
  return out;
}

// ---- link watcher ----

/** Options for {@link watchLinkDeleted}. */
export interface LinkWatchOptions {
  /** How often the notification socket is drained, in ms (default 100). */
  intervalMs?: number;
  /** When true the polling timer does not keep the process alive (default false). */
  unref?: boolean;
}

/**
 * Calls `onDeleted` once when interface `name` is deleted (RTM_DELLINK for its index).
 *
 * Design: a non-blocking netlink socket subscribed to RTMGRP_LINK, drained by a short interval
 * timer with MSG_DONTWAIT recvs. This never blocks the event loop, costs one failed recv per tick
 * when idle, and closes cleanly. (A `nonblocking: true` FFI recv would park a blocking call on a
 * helper thread that closing the fd does not wake, and errno would live on that other thread.)
 * Deletion is noticed within `intervalMs`. If the socket overflows (ENOBUFS), the link is
 * re-checked by name. Throws SysError(ENODEV) when `name` does not exist at the start.
 */
export function watchLinkDeleted(
  name: string,
  onDeleted: () => void,
  opts: LinkWatchOptions = {},
): { close(): void } {
  const fd = openNetlink(SOCK_NONBLOCK);
  if (libc.bind(fd, kernelAddress(RTMGRP_LINK), 12) < 0) {
    const e = errno();
    libc.close(fd);
    throw new SysError(e, "bind(netlink RTMGRP_LINK)");
  }
  // Subscribe first, then resolve, so a deletion in between is not missed.
  const index = linkIndex(name);
  if (index === null) {
    libc.close(fd);
    throw new SysError(ENODEV, `watchLinkDeleted(${name})`, `no interface named "${name}"`);
  }
  const buf = new Uint8Array(32768);
  const bufLen = BigInt(buf.length);
  const dv = new DataView(buf.buffer);
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    clearInterval(timer);
    libc.close(fd);
  };
  const fire = () => {
    close();
    onDeleted();
  };
  const tick = () => {
    while (open) {
      const n = libc.recvfrom(fd, buf, bufLen, MSG_DONTWAIT, null, null);
      if (n < 0) {
        const e = errno();
        if (e === ENOBUFS) {
          if (linkIndex(name) !== index) return fire();
          continue;
        }
        return; // EAGAIN (drained) or a transient error: try again next tick
      }
      for (let off = 0; off + 16 <= n;) {
        const len = dv.getUint32(off, true);
        if (len < 16 || off + len > n) break;
        if (
          dv.getUint16(off + 4, true) === RTM.DELLINK && len >= 32 && dv.getInt32(off + 20, true) === index
        ) {
          return fire();
        }
        off += align4(len);
      }
    }
  };
  const timer = setInterval(tick, opts.intervalMs ?? 100);
  if (opts.unref) Deno.unrefTimer(timer);
  return { close };
}
