/**
 * Helper process for tests/integration/ffi_test.ts, run inside a test namespace with
 * `ip netns exec NS <deno> run -A ffi_ns_agent.ts <mode> ...` (a Deno test cannot enter a namespace
 * itself). It exercises ffi/ from inside and reports observations as JSON lines on stdout:
 * `{"event": ..., ...}`; a failure is reported as `{"event":"error","message":...}` with exit code 1.
 *
 * Modes:
 * - `tun NAME`: TUN + netlink configuration, ICMP echo via the TUN, UDP (v4/v6) delivery by TUN
 *   write, multi-queue + deleteLink, then a link watcher that reports when the test deletes NAME.
 * - `udp`: recvmmsg/sendmmsg batches on loopback (IPv4, IPv6, dual stack, SharedArrayBuffer) and a
 *   timing of the batch calls.
 *
 * @module
 */

import { EAGAIN, errno, libc, MSG_DONTWAIT, POLLIN } from "../../ffi/libc.ts";
import { pollOne } from "../../ffi/poll.ts";
import { openTun, openTunQueue, tunRead, tunWrite } from "../../ffi/tun.ts";
import * as netlink from "../../ffi/netlink.ts";
import { parseIp } from "../../ffi/ip-text.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  MsgBatch,
  openUdp,
  recvFrom,
  sendTo,
  type UdpFamily,
} from "../../ffi/udp.ts";

/** Writes one JSON event line to stdout. */
function report(event: string, data: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...data }));
}

function fail(message: string): never {
  throw new Error(message);
}

// ---- packet crafting ----

function checksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) sum += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function finish(sum: number): number {
  const v = ~sum & 0xffff;
  return v === 0 ? 0xffff : v;
}

function ipv4Header(
  pkt: Uint8Array,
  totalLen: number,
  proto: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  const dv = new DataView(pkt.buffer, pkt.byteOffset);
  pkt[0] = 0x45;
  pkt[1] = 0;
  dv.setUint16(2, totalLen);
  dv.setUint16(4, 0x1234);
  dv.setUint16(6, 0x4000);
  pkt[8] = 64;
  pkt[9] = proto;
  dv.setUint16(10, 0);
  pkt.set(src, 12);
  pkt.set(dst, 16);
  dv.setUint16(10, finish(checksum(pkt, 0, 20)) & 0xffff);
}

/** IPv4/UDP packet with a correct UDP checksum. */
function udp4Packet(src: string, sport: number, dst: string, dport: number, payload: Uint8Array): Uint8Array {
  const pkt = new Uint8Array(28 + payload.length);
  const s = parseIp(src);
  const d = parseIp(dst);
  ipv4Header(pkt, pkt.length, 17, s, d);
  const dv = new DataView(pkt.buffer);
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint16(24, 8 + payload.length);
  pkt.set(payload, 28);
  const pseudo = new Uint8Array(12);
  pseudo.set(s, 0);
  pseudo.set(d, 4);
  pseudo[9] = 17;
  new DataView(pseudo.buffer).setUint16(10, 8 + payload.length);
  dv.setUint16(26, finish(checksum(pkt, 20, pkt.length, checksum(pseudo, 0, 12))));
  return pkt;
}

/** IPv6/UDP packet with the mandatory UDP checksum. */
function udp6Packet(src: string, sport: number, dst: string, dport: number, payload: Uint8Array): Uint8Array {
  const pkt = new Uint8Array(48 + payload.length);
  const dv = new DataView(pkt.buffer);
  const s = parseIp(src);
  const d = parseIp(dst);
  pkt[0] = 0x60;
  dv.setUint16(4, 8 + payload.length);
  pkt[6] = 17;
  pkt[7] = 64;
  pkt.set(s, 8);
  pkt.set(d, 24);
  dv.setUint16(40, sport);
  dv.setUint16(42, dport);
  dv.setUint16(44, 8 + payload.length);
  pkt.set(payload, 48);
  const pseudo = new Uint8Array(40);
  pseudo.set(s, 0);
  pseudo.set(d, 16);
  new DataView(pseudo.buffer).setUint32(32, 8 + payload.length);
  pseudo[39] = 17;
  dv.setUint16(46, finish(checksum(pkt, 40, pkt.length, checksum(pseudo, 0, 40))));
  return pkt;
}

/** Turns the IPv4 ICMP echo request in `pkt[0,len)` into the matching echo reply, in place. */
function echoReplyInPlace(pkt: Uint8Array, len: number): void {
  const ihl = (pkt[0] & 0x0f) * 4;
  const src = pkt.slice(12, 16);
  pkt.copyWithin(12, 16, 20);
  pkt.set(src, 16);
  const dv = new DataView(pkt.buffer, pkt.byteOffset);
  dv.setUint16(10, 0);
  dv.setUint16(10, finish(checksum(pkt, 0, ihl)) & 0xffff);
  pkt[ihl] = 0; // type: echo reply
  dv.setUint16(ihl + 2, 0);
  dv.setUint16(ihl + 2, finish(checksum(pkt, ihl, len)) & 0xffff);
}

function waitReadable(fd: number, ms: number, what: string): void {
  const r = pollOne(fd, POLLIN, ms);
  if (r <= 0) fail(`timed out after ${ms} ms waiting for ${what}`);
}

// ---- mode: tun ----

/** Datagrams sent into an unread TUN: well above its default queue of 500. */
const QUEUE_FLOOD = 2000;

async function tunMode(name: string): Promise<void> {
  netlink.setLinkUp("lo");
  const tun = openTun(name);
  netlink.disableIpv6AutoAddresses(tun.name);
  netlink.setMtu(tun.name, 1380);
  netlink.setLinkUp(tun.name);
  netlink.addAddress(tun.name, "100.64.0.1/10");
  netlink.addAddress(tun.name, "fd64::1/64");
  netlink.addRoute("100.100.0.0/16", tun.name);
  netlink.addRoute("fd65::/64", tun.name);
  let duplicateAddress = "";
  try {
    netlink.addAddress(tun.name, "100.64.0.1/10");
  } catch (e) {
    duplicateAddress = String(e);
  }
  netlink.addRoute("100.101.0.0/16", tun.name);
  netlink.addRoute("100.101.0.0/16", tun.name, { replace: true });
  netlink.delRoute("100.101.0.0/16", tun.name);
  netlink.addAddress(tun.name, "fd66::1/64");
  netlink.delAddress(tun.name, "fd66::1/64");
  report("configured", {
    name: tun.name,
    index: netlink.linkIndex(tun.name),
    mtu: netlink.getMtu(tun.name),
    up: ((netlink.getLink(tun.name)?.flags ?? 0) & 1) === 1,
    addresses: netlink.listAddresses(tun.name),
    routes: netlink.listRoutes(tun.name),
    duplicateAddress,
    missingIndex: netlink.linkIndex("tfffi-nope"),
  });

  // The test now pings 100.100.0.7; answer the echo request through the TUN.
  const buf = new Uint8Array(2048);
  const deadline = Date.now() + 10000;
  for (;;) {
    if (Date.now() > deadline) fail("no ICMP echo request arrived on the TUN");
    waitReadable(tun.fd, 10000, "a packet on the TUN");
    const n = tunRead(tun.fd, buf, 0, buf.length);
    if (n < 0) fail(`TUN read failed: errno ${errno()}`);
    const isEcho = (buf[0] >> 4) === 4 && buf[9] === 1 && buf[(buf[0] & 15) * 4] === 8;
    if (!isEcho) continue; // e.g. IPv6 router solicitations
    const ihl = (buf[0] & 15) * 4;
    report("echo-request", {
      len: n,
      src: `${buf[12]}.${buf[13]}.${buf[14]}.${buf[15]}`,
      dst: `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`,
      id: (buf[ihl + 4] << 8) | buf[ihl + 5],
    });
    echoReplyInPlace(buf, n);
    if (tunWrite(tun.fd, buf, 0, n) !== n) fail(`TUN write of echo reply failed: errno ${errno()}`);
    break;
  }

  // A crafted UDP datagram written to the TUN must reach a local socket (IPv4, then IPv6).
  for (
    const [family, local, remote] of [[4, "100.64.0.1", "100.100.0.7"], [6, "fd64::1", "fd65::7"]] as const
  ) {
    const sock = openUdp(0, { family, bindAddress: local });
    const payload = new TextEncoder().encode(`hello-via-tun-v${family}`);
    const pkt = family === 4
      ? udp4Packet(remote, 4444, local, sock.port, payload)
      : udp6Packet(remote, 4444, local, sock.port, payload);
    const wrote = tunWrite(tun.fd, pkt, 0, pkt.length);
    waitReadable(sock.fd, 3000, `the IPv${family} UDP datagram written to the TUN`);
    const rx = new Uint8Array(256);
    const addr = new Uint8Array(28);
    const got = recvFrom(sock.fd, rx, 0, rx.length, addr);
    report("udp-via-tun", {
      family,
      wrote,
      payload: new TextDecoder().decode(rx.subarray(0, Math.max(0, got))),
      from: decodeSockaddr(addr, 0),
    });
    libc.close(sock.fd);
  }

  // TUN queue full: datagrams routed into the TUN while nobody reads it are dropped by the kernel once
  // the queue (txqueuelen) is full, and getLink reports them as txDropped.
  const flood = openUdp(0, { family: 4, bindAddress: "100.64.0.1", nonBlocking: true });
  const floodAddr = new Uint8Array(28);
  const floodAddrLen = encodeSockaddr("100.100.0.9", 9, floodAddr, 0);
  const before = netlink.getLink(tun.name)?.txDropped ?? -1;
  let sent = 0;
  for (let i = 0; i < QUEUE_FLOOD; i++) {
    if (sendTo(flood.fd, buf, 0, 64, floodAddr, floodAddrLen) === 64) sent++;
  }
  libc.close(flood.fd);
  const after = netlink.getLink(tun.name)?.txDropped ?? -1;
  let drained = 0;
  while (pollOne(tun.fd, POLLIN, 0) > 0 && tunRead(tun.fd, buf, 0, buf.length) > 0) drained++;
  report("tun-queue-full", { sent, before, after, drained });

  // Multi-queue: two queues on one device, then deleteLink removes it while the fds are open.
  const mqName = "tfffimq0";
  const q0 = openTun(mqName, { multiQueue: true, nonBlocking: true });
  const q1 = openTunQueue(mqName);
  let singleQueueOnMq = "";
  try {
    openTun(mqName);
  } catch (e) {
    singleQueueOnMq = String(e);
  }
  const emptyRead = tunRead(q0.fd, buf, 0, buf.length);
  const emptyErrno = errno();
  netlink.deleteLink(mqName);
  report("multiqueue", {
    fds: [q0.fd, q1.fd].filter((fd) => fd >= 0).length,
    singleQueueOnMq,
    emptyRead,
    emptyErrnoIsEagain: emptyErrno === EAGAIN,
    existsAfterDelete: netlink.linkExists(mqName),
  });
  libc.close(q0.fd);
  libc.close(q1.fd);

  // Link watcher: the test deletes the TUN with `ip link del`.
  await new Promise<void>((resolve) => {
    const started = Date.now();
    netlink.watchLinkDeleted(tun.name, () => {
      report("deleted", { afterMs: Date.now() - started, exists: netlink.linkExists(tun.name) });
      resolve();
    }, { intervalMs: 50 });
    report("watching", { name: tun.name });
  });
  libc.close(tun.fd);
}

// ---- mode: udp ----

const BATCH = 40;

function fillPayload(b: Uint8Array, len: number, tag: number): void {
  for (let k = 0; k < len; k++) b[k] = (tag * 31 + k) & 0xff;
}

function payloadOk(b: Uint8Array, len: number, tag: number): boolean {
  for (let k = 0; k < len; k++) if (b[k] !== ((tag * 31 + k) & 0xff)) return false;
  return true;
}

/** Sends all `n` slots of `batch`, retrying partial sends. */
function sendAll(fd: number, batch: MsgBatch, n: number): void {
  let done = 0;
  while (done < n) {
    const r = batch.send(fd, n - done, done);
    if (r < 0) fail(`sendmmsg failed: errno ${errno()}`);
    done += r;
  }
}

/** Receives until `n` datagrams arrived (concatenating results into `out` arrays). */
function recvAll(fd: number, batch: MsgBatch, n: number, onMsg: (i: number) => void): number {
  let got = 0;
  let calls = 0;
  while (got < n) {
    waitReadable(fd, 3000, "UDP datagrams");
    const r = batch.recv(fd, MSG_DONTWAIT);
    if (r < 0) {
      if (errno() === EAGAIN) continue;
      fail(`recvmmsg failed: errno ${errno()}`);
    }
    calls++;
    for (let i = 0; i < r; i++) onMsg(i);
    got += r;
  }
  return calls;
}

function batchRoundTrip(
  label: string,
  family: UdpFamily,
  serverIp: string,
  clientFamily: UdpFamily,
  clientIp: string,
  sab: boolean,
) {
  const server = openUdp(0, { family, bindAddress: family === "dual" ? undefined : serverIp });
  const client = openUdp(0, { family: clientFamily, bindAddress: clientIp });
  const mapped = clientFamily !== 4;
  const shared = sab ? new SharedArrayBuffer(MsgBatch.byteLength(BATCH, 2048) * 2 + 8) : undefined;
  const tx = new MsgBatch(BATCH, 2048, shared, 0);
  const rx = new MsgBatch(BATCH, 2048, shared, shared ? (MsgBatch.byteLength(BATCH, 2048) + 7) & ~7 : 0);
  const sentLens: number[] = [];
  for (let i = 0; i < BATCH; i++) {
    const len = 1 + i * 37;
    tx.lens[i] = len;
    fillPayload(tx.bufs[i], len, i);
    tx.setAddrIp(i, serverIp, server.port, mapped);
    sentLens.push(len);
  }
  sendAll(client.fd, tx, BATCH);
  const gotLens: number[] = [];
  const sources = new Set<string>();
  let payloadsOk = true;
  const echo = new MsgBatch(BATCH, 2048);
  let echoed = 0;
  const calls = recvAll(server.fd, rx, BATCH, (i) => {
    const tag = gotLens.length;
    gotLens.push(rx.lens[i]);
    if (!payloadOk(rx.bufs[i], rx.lens[i], tag)) payloadsOk = false;
    const src = decodeSockaddr(rx.addrs[i], 0);
    sources.add(`${src.ip}|${src.port}`);
    // Queue an echo back to the source exactly as received.
    echo.setAddr(echoed, rx, i);
    echo.lens[echoed] = rx.lens[i];
    echo.bufs[echoed].set(rx.bufs[i].subarray(0, rx.lens[i]));
    echoed++;
  });
  sendAll(server.fd, echo, echoed);
  const echoLens: number[] = [];
  recvAll(client.fd, rx, BATCH, (i) => echoLens.push(rx.lens[i]));
  libc.close(server.fd);
  libc.close(client.fd);
  report("batch", {
    label,
    count: BATCH,
    sentLens,
    gotLens,
    echoLens,
    payloadsOk,
    sources: [...sources],
    expectedSource: `${clientIp}|${client.port}`,
    recvCalls: calls,
  });
}

function timing(): void {
  const server = openUdp(0, { family: 4, bindAddress: "127.0.0.1", rcvbuf: 4 << 20 });
  const client = openUdp(0, { family: 4, bindAddress: "127.0.0.1", sndbuf: 4 << 20 });
  const tx = new MsgBatch(32, 1500);
  const rx = new MsgBatch(32, 1500);
  for (let i = 0; i < 32; i++) {
    tx.lens[i] = 1400;
    tx.setAddrIp(i, "127.0.0.1", server.port);
  }
  const rounds = 3000;
  let sendMs = 0;
  let recvMs = 0;
  let received = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const s = tx.send(client.fd, 32);
    const t1 = performance.now();
    if (s !== 32) fail(`timing: sendmmsg sent ${s}`);
    let got = 0;
    let t2 = 0;
    while (got < 32) {
      const a = performance.now();
      const n = rx.recv(server.fd, MSG_DONTWAIT);
      t2 += performance.now() - a;
      if (n < 0) {
        if (errno() !== EAGAIN) fail(`timing: recvmmsg errno ${errno()}`);
        continue;
      }
      got += n;
    }
    received += got;
    sendMs += t1 - t0;
    recvMs += t2;
  }
  // Empty-queue recvmmsg: FFI + syscall overhead with no data to copy.
  const emptyRounds = 100000;
  const t3 = performance.now();
  for (let r = 0; r < emptyRounds; r++) rx.recv(server.fd, MSG_DONTWAIT);
  const emptyUs = (performance.now() - t3) * 1000 / emptyRounds;
  // Single sendto/recvfrom of 1400 B for comparison.
  const addr = new Uint8Array(28);
  const alen = encodeSockaddr("127.0.0.1", server.port, addr, 0);
  const one = new Uint8Array(1500);
  const single = 20000;
  const t4 = performance.now();
  for (let r = 0; r < single; r++) {
    if (libc.sendto(client.fd, one, 1400n, 0, addr, alen) !== 1400) fail("timing: sendto failed");
    if (libc.recvfrom(server.fd, one, 1500n, 0, null, null) !== 1400) fail("timing: recvfrom failed");
  }
  const singlePairUs = (performance.now() - t4) * 1000 / single;
  libc.close(server.fd);
  libc.close(client.fd);
  report("timing", {
    rounds,
    received,
    sendmmsgUsPer32x1400: (sendMs * 1000) / rounds,
    recvmmsgUsPer32x1400: (recvMs * 1000) / rounds,
    emptyRecvmmsgUs: emptyUs,
    sendtoPlusRecvfromUsPer1400: singlePairUs,
  });
}

function udpMode(): void {
  netlink.setLinkUp("lo");
  batchRoundTrip("ipv4", 4, "127.0.0.1", 4, "127.0.0.1", false);
  batchRoundTrip("ipv6", 6, "::1", 6, "::1", true);
  batchRoundTrip("dual-v4-client", "dual", "127.0.0.1", 4, "127.0.0.1", false);
  batchRoundTrip("dual-both", "dual", "127.0.0.1", "dual", "127.0.0.1", true);
  timing();
}

// ---- main ----

const watchdog = setTimeout(() => {
  report("error", { message: "agent watchdog: took longer than 30 s" });
  Deno.exit(2);
}, 30000);

try {
  const [mode, arg] = Deno.args;
  if (mode === "tun") await tunMode(arg ?? fail("tun mode needs an interface name"));
  else if (mode === "udp") udpMode();
  else fail(`unknown mode "${mode}"`);
  report("done");
  clearTimeout(watchdog);
} catch (e) {
  report("error", { message: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) });
  Deno.exit(1);
}
