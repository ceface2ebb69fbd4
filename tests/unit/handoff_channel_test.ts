/**
 * The hand-off rings (src/wireguard/dataplane/handoff-channel.ts) in memory: order, sockaddrs, full and empty
 * rings, oversized datagrams, and the attach state the workers follow.
 */

import assert from "node:assert/strict";
import {
  HANDOFF_MAX_DATAGRAM,
  HANDOFF_RING_SLOTS,
  HandoffChannel,
  HandoffDirection,
  type HandoffEntry,
} from "../../src/wireguard/dataplane/handoff-channel.ts";
import { payloadOf } from "./offload_packets.ts";

const SEND = HandoffDirection.send;
const RECEIVE = HandoffDirection.receive;

function take(ch: HandoffChannel, direction: HandoffDirection) {
  const data = new Uint8Array(4 + HANDOFF_MAX_DATAGRAM);
  const addr = new Uint8Array(32);
  const entry: HandoffEntry = { len: -1, addrLen: -1 };
  if (!ch.take(direction, data, 4, addr, entry)) return null;
  return { data: data.slice(4, 4 + entry.len), addr: addr.slice(0, entry.addrLen) };
}

Deno.test("datagrams come out of each ring in order with their sockaddrs, through a view of the same memory", () => {
  const owner = new HandoffChannel();
  const other = new HandoffChannel(owner.sab);
  for (let round = 0; round < 3; round++) { // wraps the ring
    for (let k = 0; k < HANDOFF_RING_SLOTS; k++) {
      const data = payloadOf(1 + (k * 7) % 1400, k + round);
      assert.ok(owner.push(SEND, new Uint8Array([2, 0, k, round]), 4, data, 0, data.length));
    }
    assert.equal(owner.push(SEND, new Uint8Array(16), 16, new Uint8Array(1), 0, 1), false, "full");
    assert.equal(take(other, RECEIVE), null, "the other ring stays empty");
    for (let k = 0; k < HANDOFF_RING_SLOTS; k++) {
      const got = take(other, SEND);
      assert.deepEqual(got?.data, payloadOf(1 + (k * 7) % 1400, k + round));
      assert.deepEqual(got?.addr, new Uint8Array([2, 0, k, round]));
    }
    assert.equal(take(other, SEND), null, "empty");
  }
});

Deno.test("a datagram larger than a slot is refused; part of a buffer can be pushed", () => {
  const ch = new HandoffChannel();
  const big = payloadOf(HANDOFF_MAX_DATAGRAM + 1);
  assert.equal(ch.push(RECEIVE, new Uint8Array(16), 16, big, 0, big.length), false);
  assert.ok(ch.push(RECEIVE, new Uint8Array(16), 16, big, 1, HANDOFF_MAX_DATAGRAM));
  assert.deepEqual(take(ch, RECEIVE)?.data, big.slice(1));
  assert.ok(ch.push(RECEIVE, new Uint8Array(16), 16, big, 0, 10));
  ch.discard(RECEIVE);
  assert.equal(take(ch, RECEIVE), null);
});

Deno.test("attach publishes aes0's address and port; detach withdraws it", () => {
  const ch = new HandoffChannel();
  const view = new HandoffChannel(ch.sab);
  assert.equal(view.attached, false);
  const v0 = view.localVersion;
  ch.attach(new Uint8Array([10, 99, 0, 1]), 51830);
  assert.equal(view.attached, true);
  assert.notEqual(view.localVersion, v0);
  assert.deepEqual(view.local(), { address: new Uint8Array([10, 99, 0, 1]), port: 51830 });
  ch.setOuterMtu(1420);
  assert.equal(view.outerMtu, 1420);
  ch.detach();
  assert.equal(view.attached, false);
});
