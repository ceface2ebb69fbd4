/**
 * The aes0 → wg0 hand-off packets (src/wireguard/dataplane/handoff-packet.ts) against packets built field by
 * field with the tests' own RFC 1071 code (offload_packets.ts): the header the hand-off writes is
 * the one the kernel's UDP stack would have sent, and only what the kernel would deliver to aes0's
 * socket is taken from wg0's receive path.
 */

import assert from "node:assert/strict";
import { encodeSockaddr } from "../../ffi/udp.ts";
import {
  HANDOFF_HEADER_V4,
  HANDOFF_HEADER_V6,
  HandoffDatagram,
  type HandoffLocal,
  HandoffReceive,
  HandoffSendError,
  readHandoffDatagram,
  writeHandoffHeader,
} from "../../src/wireguard/dataplane/handoff-packet.ts";
import { buildPacket, payloadOf } from "./offload_packets.ts";

const AES0_PORT = 51830;
const LOCAL_V4: HandoffLocal = { address: new Uint8Array([10, 99, 0, 1]), port: AES0_PORT };
const PEER_V4 = [10, 99, 0, 2];
const LOCAL_V6: HandoffLocal = {
  address: new Uint8Array([0xfd, 0x99, ...new Array(13).fill(0), 1]),
  port: AES0_PORT,
};
const PEER_V6 = [0xfd, 0x99, ...new Array(13).fill(0), 2];
const WG0_MTU = 1420;

function endpoint(ip: string, port: number, v4Mapped = false): Uint8Array {
  const out = new Uint8Array(32);
  return out.subarray(0, encodeSockaddr(ip, port, out, 0, v4Mapped));
}

/** Sends `payload` through writeHandoffHeader with the payload placed at `at + header`. */
function handOff(local: HandoffLocal, ep: Uint8Array, payload: Uint8Array, at = 3, maxPacket = WG0_MTU) {
  const header = local.address.length === 4 ? HANDOFF_HEADER_V4 : HANDOFF_HEADER_V6;
  const buf = new Uint8Array(at + header + payload.length + 5);
  buf.set(payload, at + header);
  const got = writeHandoffHeader(buf, at, local, ep, 0, payload.length, 0x1234, maxPacket);
  return { got, packet: buf.slice(at, at + header + payload.length) };
}

Deno.test("the hand-off builds the IPv4+UDP packet the kernel would send, without a UDP checksum", () => {
  for (const len of [0, 1, 32, 33, 148, 1391]) { // empty, odd, handshake-sized, and a full aes0 datagram
    const payload = payloadOf(len, len + 3);
    for (const ep of [endpoint("10.99.0.2", AES0_PORT), endpoint("10.99.0.2", AES0_PORT, true)]) {
      const { got, packet } = handOff(LOCAL_V4, ep, payload);
      assert.equal(got, HANDOFF_HEADER_V4);
      const want = buildPacket({
        udp: true,
        src: [...LOCAL_V4.address],
        dst: PEER_V4,
        sport: AES0_PORT,
        dport: AES0_PORT,
        id: 0x1234,
        ttl: 64,
        payload,
      });
      want[26] = want[27] = 0; // UDP checksum 0: "none" (wg0's AEAD authenticates the packet)
      assert.deepEqual(packet, want, `payload ${len}`);
    }
  }
});

Deno.test("the hand-off builds the IPv6+UDP packet the kernel would send", () => {
  for (const len of [0, 7, 92, 1371]) {
    const payload = payloadOf(len, len + 11);
    const { got, packet } = handOff(LOCAL_V6, endpoint("fd99::2", 40000), payload);
    assert.equal(got, HANDOFF_HEADER_V6);
    const want = buildPacket({
      v6: true,
      udp: true,
      src: [...LOCAL_V6.address],
      dst: PEER_V6,
      sport: AES0_PORT,
      dport: 40000,
      ttl: 64,
      payload,
    });
    assert.deepEqual(packet, want, `payload ${len}`);
  }
});

Deno.test("the hand-off refuses an endpoint of the other family and a packet over wg0's MTU", () => {
  const payload = payloadOf(100);
  assert.equal(handOff(LOCAL_V4, endpoint("fd99::2", AES0_PORT), payload).got, HandoffSendError.family);
  assert.equal(handOff(LOCAL_V6, endpoint("10.99.0.2", AES0_PORT), payload).got, HandoffSendError.family);
  assert.equal(handOff(LOCAL_V6, endpoint("10.99.0.2", 1, true), payload).got, HandoffSendError.family);
  const unknownFamily = new Uint8Array(16);
  assert.equal(handOff(LOCAL_V4, unknownFamily, payload).got, HandoffSendError.family);
  const ep = endpoint("10.99.0.2", AES0_PORT);
  assert.equal(handOff(LOCAL_V4, ep, payloadOf(WG0_MTU - HANDOFF_HEADER_V4)).got, HANDOFF_HEADER_V4);
  assert.equal(
    handOff(LOCAL_V4, ep, payloadOf(WG0_MTU - HANDOFF_HEADER_V4 + 1)).got,
    HandoffSendError.tooBig,
  );
});

/** Runs readHandoffDatagram on `packet` placed at offset 5 of a larger buffer. */
function receive(local: HandoffLocal, packet: Uint8Array) {
  const at = 5;
  const buf = new Uint8Array(at + packet.length + 7);
  buf.set(packet, at);
  const out = new HandoffDatagram();
  const source = new Uint8Array(32);
  const verdict = readHandoffDatagram(buf, at, packet.length, local, out, source, 2);
  return {
    verdict,
    payload: buf.slice(out.payloadAt, out.payloadAt + out.payloadLen),
    source: source.slice(2, 2 + out.sourceLen),
  };
}

Deno.test("a datagram for aes0's address and port is handed to aes0 with its source sockaddr", () => {
  const payload = payloadOf(148, 5);
  const v4 = receive(
    LOCAL_V4,
    buildPacket({
      udp: true,
      src: PEER_V4,
      dst: [...LOCAL_V4.address],
      sport: 41000,
      dport: AES0_PORT,
      payload,
    }),
  );
  assert.equal(v4.verdict, HandoffReceive.datagram);
  assert.deepEqual(v4.payload, payload);
  assert.deepEqual(v4.source, endpoint("10.99.0.2", 41000));
  const v6 = receive(
    LOCAL_V6,
    buildPacket({
      v6: true,
      udp: true,
      src: PEER_V6,
      dst: [...LOCAL_V6.address],
      sport: AES0_PORT,
      dport: AES0_PORT,
      payload,
    }),
  );
  assert.equal(v6.verdict, HandoffReceive.datagram);
  assert.deepEqual(v6.payload, payload);
  assert.deepEqual(v6.source, endpoint("fd99::2", AES0_PORT));
});

Deno.test("what a sender hands off, a receiver takes back intact", () => {
  const payload = payloadOf(1391, 9);
  const { packet } = handOff(LOCAL_V4, endpoint("10.99.0.2", AES0_PORT), payload);
  const peer: HandoffLocal = { address: new Uint8Array(PEER_V4), port: AES0_PORT };
  const got = receive(peer, packet);
  assert.equal(got.verdict, HandoffReceive.datagram);
  assert.deepEqual(got.payload, payload);
  assert.deepEqual(got.source, endpoint("10.99.0.1", AES0_PORT));
});

Deno.test("other traffic goes to the TUN: another port, address, protocol, family, or a fragment", () => {
  const payload = payloadOf(64);
  const toUs = { udp: true, src: PEER_V4, dst: [...LOCAL_V4.address], sport: 1, dport: AES0_PORT, payload };
  const notForAes0: Uint8Array[] = [
    buildPacket({ ...toUs, dport: AES0_PORT + 1 }),
    buildPacket({ ...toUs, dst: [10, 99, 0, 3] }),
    buildPacket({ ...toUs, udp: false }),
    buildPacket({ ...toUs, v6: true, src: PEER_V6, dst: [...LOCAL_V6.address] }),
  ];
  const fragment = buildPacket(toUs);
  fragment[6] |= 0x20; // more fragments
  notForAes0.push(fragment);
  for (const [k, p] of notForAes0.entries()) {
    assert.equal(receive(LOCAL_V4, p).verdict, HandoffReceive.notForAes0, `case ${k}`);
  }
  assert.equal(
    receive(
      LOCAL_V6,
      buildPacket({ ...toUs, v6: true, src: PEER_V6, dst: [...LOCAL_V6.address], udp: false }),
    )
      .verdict,
    HandoffReceive.notForAes0,
  );
});

Deno.test("a datagram for aes0 that the kernel would drop is dropped", () => {
  const payload = payloadOf(64, 4);
  const toUs = { udp: true, src: PEER_V4, dst: [...LOCAL_V4.address], sport: 1, dport: AES0_PORT, payload };
  const badIp = buildPacket(toUs);
  badIp[8] ^= 1; // TTL changed, header checksum not
  const shortUdpLength = buildPacket(toUs);
  shortUdpLength[20 + 5] = 4; // UDP length below its header
  const longUdpLength = buildPacket(toUs);
  longUdpLength[20 + 4] = 0x10; // UDP length past the packet
  for (const [k, p] of [badIp, shortUdpLength, longUdpLength].entries()) {
    assert.equal(receive(LOCAL_V4, p).verdict, HandoffReceive.dropped, `case ${k}`);
  }
  const noChecksumV4 = buildPacket(toUs);
  noChecksumV4[26] = noChecksumV4[27] = 0; // IPv4 allows "no checksum"
  assert.equal(receive(LOCAL_V4, noChecksumV4).verdict, HandoffReceive.datagram);
  const v6 = { ...toUs, v6: true, src: PEER_V6, dst: [...LOCAL_V6.address] };
  const noChecksumV6 = buildPacket(v6);
  noChecksumV6[46] = noChecksumV6[47] = 0; // IPv6 does not
  assert.equal(receive(LOCAL_V6, noChecksumV6).verdict, HandoffReceive.dropped);
});

Deno.test("a UDP checksum that does not match is not checked: wg0's AEAD authenticated the packet", () => {
  const payload = payloadOf(64, 4);
  const toUs = { udp: true, src: PEER_V4, dst: [...LOCAL_V4.address], sport: 1, dport: AES0_PORT, payload };
  const v6 = { ...toUs, v6: true, src: PEER_V6, dst: [...LOCAL_V6.address] };
  const v4Got = receive(LOCAL_V4, buildPacket({ ...toUs, checksum: "bad" }));
  const v6Got = receive(LOCAL_V6, buildPacket({ ...v6, checksum: "bad" }));
  assert.equal(v4Got.verdict, HandoffReceive.datagram);
  assert.deepEqual(v4Got.payload, payload);
  assert.equal(v6Got.verdict, HandoffReceive.datagram);
  assert.deepEqual(v6Got.payload, payload);
});
