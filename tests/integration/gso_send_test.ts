/**
 * The send path's UDP GSO stage (src/wireguard/dataplane/gso-send.ts) against the kernel on loopback: a batch
 * of messages to two endpoints, in runs of equal sizes with shorter last ones (more runs than the
 * sender has GSO slots), arrives as exactly the datagrams that were sealed, in order, each at its
 * endpoint. No namespace and no root needed.
 */
import assert from "node:assert/strict";
import { GsoSender } from "../../src/wireguard/dataplane/gso-send.ts";
import { encodeSockaddr, MsgBatch, openUdp } from "../../ffi/udp.ts";
import { libc, MSG_DONTWAIT, POLLIN } from "../../ffi/libc.ts";
import { pollOne } from "../../ffi/poll.ts";

/** One message: destination (0 or 1) and length; its bytes are derived from its index. */
const PLAN: [number, number][] = [
  [0, 148],
  [0, 148],
  [0, 148],
  [0, 64], // shorter: ends the run
  [0, 148],
  [1, 148],
  [1, 148],
  [0, 32],
  [0, 32],
  [1, 100], // more runs than GSO slots: the sender goes round again
  [0, 100],
  [1, 100],
  [1, 100],
  [1, 100],
  [0, 100],
];

function fillMessage(buf: Uint8Array, index: number, len: number): void {
  for (let k = 0; k < len; k++) buf[k] = (index * 31 + k * 7) & 0xff;
}

Deno.test("GsoSender: runs to two endpoints arrive as the datagrams that were queued, in order", () => {
  const receivers = [
    openUdp(0, { family: 4, bindAddress: "127.0.0.1" }),
    openUdp(0, { family: 4, bindAddress: "127.0.0.1" }),
  ];
  const sender = openUdp(0, { family: 4, bindAddress: "127.0.0.1" });
  try {
    const gso = new GsoSender(16, 2048);
    const b = gso.batch;
    const addr = new Uint8Array(28);
    PLAN.forEach(([dest, len], i) => {
      fillMessage(b.bufs[i], i, len);
      b.lens[i] = len;
      b.addrLens[i] = encodeSockaddr("127.0.0.1", receivers[dest].port, addr, 0);
      b.addrs[i].set(addr.subarray(0, b.addrLens[i]));
    });
    const usable = gso.usable(sender.fd);
    if (!usable) {
      console.log("UDP_SEGMENT not supported by this kernel: nothing to test");
      return;
    }
    const out = gso.send(sender.fd, PLAN.length);
    assert.equal(out.refused, false);
    assert.equal(out.sent, PLAN.length, "every message was handed to the kernel");
    const rx = new MsgBatch(16, 2048);
    for (const dest of [0, 1]) {
      const want = PLAN.map(([d, len], i) => ({ d, len, i })).filter((m) => m.d === dest);
      const got: Uint8Array[] = [];
      while (got.length < want.length && pollOne(receivers[dest].fd, POLLIN, 2000) > 0) {
        const n = rx.recv(receivers[dest].fd, MSG_DONTWAIT);
        for (let k = 0; k < n; k++) got.push(rx.bufs[k].slice(0, rx.lens[k]));
      }
      assert.equal(got.length, want.length, `datagrams at endpoint ${dest}`);
      want.forEach((m, k) => {
        const expected = new Uint8Array(m.len);
        fillMessage(expected, m.i, m.len);
        assert.deepEqual(got[k], expected, `message ${m.i} arrived as it was queued`);
      });
    }
  } finally {
    for (const s of [...receivers, sender]) libc.close(s.fd);
  }
});
