/**
 * Helper process for tests/integration/offload_test.ts, run inside the test's namespaces with
 * `ip netns exec NS <deno> run -A offload_ns_agent.ts <mode> ...`. Reports JSON lines on stdout
 * (`{"event": ...}`); a failure is `{"event":"error","message":...}` with exit code 1.
 *
 * Modes:
 * - `tun NAME`: a TUN with IFF_VNET_HDR + TSO. Plays the remote TCP peer by hand: accepts a local
 *   TCP sender's connection and reads its super-packets, splits one with segmentPacket and checks
 *   the segments with the tests' own checksum code; then connects to a local TCP listener and writes
 *   a coalesced super-packet (GroBatch) with its virtio_net_hdr, and checks the listener got the data.
 * - `udp-recv ADDR PORT GRO BYTES`: receives until BYTES arrived, with or without UDP_GRO.
 * - `udp-send ADDR PORT COUNT SIZE`: one UDP_SEGMENT send of COUNT datagrams of SIZE bytes.
 *
 * @module
 */

import { libc, MSG_DONTWAIT, POLLIN } from "../../ffi/libc.ts";
import { pollOne } from "../../ffi/poll.ts";
import {
  enableTunOffloads,
  openTun,
  setTunVnetHdrSize,
  TUN_F_TSO4,
  tunRead,
  tunWrite,
} from "../../ffi/tun.ts";
import { encodeSockaddr, openUdp } from "../../ffi/udp.ts";
import { enableUdpGro, isGsoRefusal, OffloadMsgBatch, udpSegmentSupported } from "../../ffi/udp-offload.ts";
import { errno } from "../../ffi/libc.ts";
import { GroBatch } from "../../src/wireguard/offload/coalesce.ts";
import { segmentPacket } from "../../src/wireguard/offload/segment.ts";
import {
  emptyVirtioNetHdr,
  readVirtioNetHdr,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_LEN,
} from "../../src/wireguard/offload/virtio-net-hdr.ts";
import { buildPacket, concat, parsePacket, payloadOf } from "../unit/offload_packets.ts";

function report(event: string, data: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...data }));
}

async function run(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const LOCAL = [10, 77, 0, 1];
const REMOTE = [10, 77, 0, 2];
const MTU = 1420;
const MSS = MTU - 40;
const MSS_OPTION = [2, 4, MSS >> 8, MSS & 0xff];
const SEND_PORT = 5001;
const LISTEN_PORT = 5002;
const REMOTE_SRC_PORT = 40000;

async function tunMode(name: string): Promise<void> {
  const tun = openTun(name, { vnetHdr: true });
  setTunVnetHdrSize(tun.fd, VIRTIO_NET_HDR_LEN);
  const flags = enableTunOffloads(tun.fd, { uso: true });
  report("offload", { flags });
  if ((flags & TUN_F_TSO4) === 0) throw new Error("the kernel refused TSO on the TUN");
  await run("ip", "addr", "add", "10.77.0.1/32", "dev", name);
  await run("ip", "link", "set", name, "mtu", String(MTU), "up");
  await run("ip", "route", "add", "10.77.0.2/32", "dev", name);

  const readBuf = new Uint8Array(VIRTIO_NET_HDR_LEN + 65536);
  const hdr = emptyVirtioNetHdr();
  const writeTun = (pkt: Uint8Array) => {
    const b = new Uint8Array(VIRTIO_NET_HDR_LEN + pkt.length); // plain header: all zero
    b.set(pkt, VIRTIO_NET_HDR_LEN);
    if (tunWrite(tun.fd, b, 0, b.length) !== b.length) throw new Error(`TUN write failed (errno ${errno()})`);
  };
  /** Next packet from the TUN (header decoded into `hdr`), yielding to the event loop while waiting. */
  const readTun = async (deadline: number): Promise<Uint8Array> => {
    while (Date.now() < deadline) {
      if (pollOne(tun.fd, POLLIN, 0) > 0) {
        const n = tunRead(tun.fd, readBuf, 0, readBuf.length);
        if (n > VIRTIO_NET_HDR_LEN) {
          readVirtioNetHdr(readBuf, 0, hdr);
          return readBuf.slice(VIRTIO_NET_HDR_LEN, n);
        }
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error("timed out reading the TUN");
  };
  const isTcpTo = (p: Uint8Array, dport: number) =>
    p[0] >> 4 === 4 && p[9] === 6 && ((p[22] << 8) | p[23]) === dport;
  const seqOf = (p: Uint8Array) => ((p[24] << 24) | (p[25] << 16) | (p[26] << 8) | p[27]) >>> 0;

  // ---- 1: a local sender's super-packets, read from the TUN and split ----
  const data = payloadOf(256 * 1024, 11);
  const connecting = Deno.connect({ hostname: "10.77.0.2", port: SEND_PORT });
  const deadline = Date.now() + 15000;
  let syn: Uint8Array;
  do syn = await readTun(deadline); while (!(isTcpTo(syn, SEND_PORT) && (syn[33] & 0x02) !== 0));
  const senderPort = (syn[20] << 8) | syn[21];
  const senderIsn = seqOf(syn);
  const ours = { src: REMOTE, dst: LOCAL, sport: SEND_PORT, dport: senderPort };
  writeTun(
    buildPacket({
      ...ours,
      seq: 1000,
      ack: senderIsn + 1,
      flags: 0x12,
      options: MSS_OPTION,
      payload: new Uint8Array(),
    }),
  );
  const conn = await connecting;
  const writing = conn.write(data).catch(() => 0);
  let nextExpected = (senderIsn + 1) >>> 0;
  let superPacket: Record<string, unknown> | null = null;
  while (superPacket === null) {
    const p = await readTun(deadline);
    if (!isTcpTo(p, SEND_PORT)) continue;
    const payloadLen = p.length - 20 - (p[32] >> 4) * 4;
    if (payloadLen > 0 && seqOf(p) === nextExpected) nextExpected = (nextExpected + payloadLen) >>> 0;
    writeTun(buildPacket({ ...ours, seq: 1001, ack: nextExpected, flags: 0x10, payload: new Uint8Array() }));
    if (hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE || p.length <= MTU) continue;
    const outs = Array.from({ length: 64 }, () => new Uint8Array(2048));
    const lens = new Int32Array(64);
    const n = segmentPacket(hdr, p, 0, p.length, outs, 0, lens, 0, 64);
    const segments = outs.slice(0, Math.max(n, 0)).map((b, i) => parsePacket(b.slice(0, lens[i])));
    const offset = (seqOf(p) - senderIsn - 1) >>> 0;
    const joined = concat(segments.map((s) => s.payload));
    superPacket = {
      length: p.length,
      gsoType: hdr.gsoType,
      gsoSize: hdr.gsoSize,
      segments: n,
      largestSegment: Math.max(...lens.slice(0, Math.max(n, 0))),
      checksumsValid: segments.every((s) => s.ipHeaderOk && s.l4ChecksumOk),
      sequential: segments.every((s, i) => s.seq === ((seqOf(p) + i * hdr.gsoSize) >>> 0)),
      payloadMatchesSource: joined.length === p.length - 40 &&
        joined.every((b, i) => b === data[offset + i]),
    };
  }
  report("superpacket", superPacket);
  conn.close();
  await writing;

  // ---- 2: a coalesced super-packet written to the TUN reaches a local receiver ----
  const listener = Deno.listen({ hostname: "10.77.0.1", port: LISTEN_PORT });
  const accepting = listener.accept();
  const peer = { src: REMOTE, dst: LOCAL, sport: REMOTE_SRC_PORT, dport: LISTEN_PORT };
  writeTun(
    buildPacket({ ...peer, seq: 5000, ack: 0, flags: 0x02, options: MSS_OPTION, payload: new Uint8Array() }),
  );
  let synAck: Uint8Array;
  do synAck = await readTun(deadline); while (
    !(((synAck[20] << 8) | synAck[21]) === LISTEN_PORT && (synAck[33] & 0x12) === 0x12)
  );
  const serverAck = (seqOf(synAck) + 1) >>> 0;
  writeTun(buildPacket({ ...peer, seq: 5001, ack: serverAck, flags: 0x10, payload: new Uint8Array() }));
  const accepted = await accepting;
  const SEGMENTS = 30;
  const SEG = 1000;
  const sent = payloadOf(SEGMENTS * SEG, 12);
  const OFF = 16;
  const bufs = Array.from({ length: SEGMENTS }, (_, k) => {
    const b = new Uint8Array(OFF + 65535);
    b.set(
      buildPacket({
        ...peer,
        seq: 5001 + k * SEG,
        ack: serverAck,
        flags: k === SEGMENTS - 1 ? 0x18 : 0x10,
        id: 100 + k,
        payload: sent.slice(k * SEG, (k + 1) * SEG),
      }),
      OFF,
    );
    return b;
  });
  const lens = Int32Array.from(bufs.map(() => 40 + SEG));
  const gro = new GroBatch(SEGMENTS, { udp: false });
  const writes = gro.coalesce(bufs, OFF, lens, SEGMENTS);
  for (let w = 0; w < writes; w++) {
    const i = gro.writeOrder[w];
    const len = VIRTIO_NET_HDR_LEN + lens[i];
    if (tunWrite(tun.fd, bufs[i], OFF - VIRTIO_NET_HDR_LEN, len) !== len) {
      throw new Error(`TUN write of the super-packet failed (errno ${errno()})`);
    }
  }
  const got = new Uint8Array(sent.length);
  let have = 0;
  const readDeadline = Date.now() + 10000;
  while (have < sent.length && Date.now() < readDeadline) {
    const chunk = new Uint8Array(65536);
    const n = await Promise.race([
      accepted.read(chunk),
      new Promise<null>((r) => setTimeout(() => r(null), 500)),
    ]);
    if (n === null) continue;
    if (n === null || n === 0) break;
    got.set(chunk.subarray(0, Math.min(n, sent.length - have)), have);
    have += n;
  }
  report("gro-delivered", {
    writes,
    superPacketLength: lens[gro.writeOrder[0]],
    received: have,
    equal: have === sent.length && got.every((b, i) => b === sent[i]),
  });
  accepted.close();
  listener.close();
  libc.close(tun.fd);
}

function udpRecvMode(addr: string, port: number, gro: boolean, bytes: number): void {
  const sock = openUdp(port, { family: 4, bindAddress: addr });
  const groOn = gro ? enableUdpGro(sock.fd) : false;
  report("ready", { gro: groOn });
  const batch = new OffloadMsgBatch(8, 65536);
  const sizes: number[] = [];
  const segSizes: number[] = [];
  let total = 0;
  const deadline = Date.now() + 10000;
  while (total < bytes && Date.now() < deadline) {
    if (pollOne(sock.fd, POLLIN, 200) <= 0) continue;
    const n = batch.recv(sock.fd, MSG_DONTWAIT);
    for (let i = 0; i < n; i++) {
      sizes.push(batch.lens[i]);
      segSizes.push(batch.segSizes[i]);
      total += batch.lens[i];
    }
  }
  report("received", { messages: sizes.length, sizes, segSizes, total });
  libc.close(sock.fd);
}

/**
 * One UDP_SEGMENT send of `count` datagrams of `size` bytes; when the kernel refuses it with EIO the
 * socket's GSO is given up and the datagrams go out one per message (the fallback under test).
 */
function sendSegmented(fd: number, addr: string, port: number, count: number, size: number) {
  const supported = udpSegmentSupported(fd);
  const data = payloadOf(count * size, 13);
  const batch = new OffloadMsgBatch(count, count * size);
  const dest = new Uint8Array(28);
  const destLen = encodeSockaddr(addr, port, dest, 0);
  batch.setAddr(0, dest, destLen);
  batch.bufs[0].set(data);
  batch.lens[0] = count * size;
  batch.segSizes[0] = supported ? size : 0;
  let sent = batch.send(fd, 1);
  const firstErrno = sent < 0 ? errno() : 0;
  let fallback = false;
  if (sent < 0 && isGsoRefusal(firstErrno)) {
    fallback = true;
    for (let k = 0; k < count; k++) {
      batch.setAddr(k, dest, destLen);
      batch.bufs[k].set(data.subarray(k * size, (k + 1) * size));
      batch.lens[k] = size;
      batch.segSizes[k] = 0;
    }
    sent = batch.send(fd, count);
  }
  return { supported, sent, fallback, firstErrno, errno: sent < 0 ? errno() : 0 };
}

function udpSendMode(addr: string, port: number, count: number, size: number): void {
  const sock = openUdp(0, { family: 4 });
  report("sent", sendSegmented(sock.fd, addr, port, count, size));
  libc.close(sock.fd);
}

const [mode, ...args] = Deno.args;
try {
  if (mode === "tun") await tunMode(args[0]);
  else if (mode === "udp-recv") udpRecvMode(args[0], Number(args[1]), args[2] === "1", Number(args[3]));
  else if (mode === "udp-send") udpSendMode(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
  else throw new Error(`unknown mode ${mode}`);
  Deno.exit(0);
} catch (e) {
  report("error", { message: e instanceof Error ? e.message : String(e) });
  Deno.exit(1);
}
