/**
 * Responder key confirmation (issue 9, item 2), in process: two real Devices on loopback, each with its
 * two data-plane workers over an eventfd standing in for the TUN (no root needed). The answering side's
 * handshake counts (event, last handshake) only when the initiator's first packet under the new session
 * arrives, as in wireguard-go and the kernel; a response never confirmed (PSK mismatch) is reported as
 * `response-unconfirmed`, when a new initiation supersedes it or after RESPONSE_CONFIRMATION_TIMEOUT.
 * The control-plane clock is injected so the timeout passes without waiting.
 */
import assert from "node:assert/strict";
import { closeQuietly, EFD_CLOEXEC, EFD_NONBLOCK, libc } from "../../ffi/libc.ts";
import { encodeSockaddr, openUdp, sendTo } from "../../ffi/udp.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { toHex } from "../../src/encoding.ts";
import type { Logger } from "../../src/log.ts";
import { aesSuite } from "../../src/noise/suite.ts";
import { RESPONSE_CONFIRMATION_TIMEOUT } from "../../src/wireguard/constants.ts";
import { Device, type DeviceEvent } from "../../src/wireguard/device.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** One side: a device on 127.0.0.1, its events, and a clock the test can move forward. */
interface Side {
  device: Device;
  events: DeviceEvent[];
  key: Uint8Array;
  pub: Uint8Array;
  tunFd: number;
}

let offset = 0;
const clock = () => Date.now() + offset;

function side(): Side {
  const tunFd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  assert.ok(tunFd >= 0, "eventfd");
  const events: DeviceEvent[] = [];
  const device = new Device({
    ifname: "tfconf0",
    suite: aesSuite(),
    tunFd,
    log: quiet,
    bindAddress: "127.0.0.1",
    clock,
    onEvent: (e) => events.push(e),
  });
  const key = generatePrivateKey();
  assert.equal(device.apply({ privateKey: key, listenPort: 0, replacePeers: false, peers: [] }), 0);
  return { device, events, key, pub: publicKey(key), tunFd };
}

/** Makes each side the other's peer with the given PSKs. */
function pair(a: Side, b: Side, pskA: Uint8Array, pskB: Uint8Array): void {
  const peerOf = (other: Side, psk: Uint8Array) => ({
    publicKey: other.pub,
    remove: false,
    updateOnly: false,
    replaceAllowedIps: true,
    allowedIps: [],
    presharedKey: psk,
    endpoint: { ip: "127.0.0.1", port: other.device.listenPort },
  });
  assert.equal(a.device.apply({ replacePeers: false, peers: [peerOf(b, pskA)] }), 0);
  assert.equal(b.device.apply({ replacePeers: false, peers: [peerOf(a, pskB)] }), 0);
}

const removal = { remove: true, updateOnly: false, replaceAllowedIps: false, allowedIps: [] };

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

/**
 * Waits until the side's receive worker runs (it counts a 3-byte datagram as malformed): a loaded
 * machine may take seconds to start the workers.
 */
async function workersUp(s: Side): Promise<void> {
  const probe = openUdp(0, { family: 4, bindAddress: "127.0.0.1", nonBlocking: true });
  const addr = new Uint8Array(32);
  const len = encodeSockaddr("127.0.0.1", s.device.listenPort, addr, 0);
  try {
    const up = await until(() => {
      sendTo(probe.fd, new Uint8Array([9, 9, 9]), 0, 3, addr, len);
      return s.device.shared.statsSnapshot().rxMalformed > 0;
    }, 30_000);
    assert.ok(up, "the data-plane workers started");
  } finally {
    closeQuietly(probe.fd);
  }
}

const of = (s: Side, type: DeviceEvent["type"]) => s.events.filter((e) => e.type === type);
const lastHandshakeMs = (s: Side, peer: Side) =>
  s.device.snapshot().peers.find((p) => toHex(p.publicKey) === toHex(peer.pub))!.lastHandshakeMs;

Deno.test("responder key confirmation: a handshake counts only once the initiator's first packet arrives", async (t) => {
  const a = side();
  const b = side();
  try {
    const psk = crypto.getRandomValues(new Uint8Array(32));
    const other = crypto.getRandomValues(new Uint8Array(32));

    await t.step("different PSKs: the responder answers, but never counts a handshake", async () => {
      await workersUp(a);
      await workersUp(b);
      pair(a, b, psk, other);
      a.device.initiateHandshake(b.pub);
      assert.ok(
        await until(() => of(a, "handshake-failed").length > 0),
        "the initiator got a response that did not authenticate (so the responder answered)",
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(of(b, "handshake-completed"), [], "no handshake-completed on the responder");
      assert.equal(lastHandshakeMs(b, a), 0, "wg show on the responder: no latest handshake");
      assert.equal(lastHandshakeMs(a, b), 0);
      assert.equal(b.device.peerStats(a.pub)!.hasSession, false);
      assert.deepEqual(of(b, "response-unconfirmed"), [], "not yet: the initiator may still confirm");
    });

    await t.step("a new initiation supersedes the unconfirmed response: reported at once", async () => {
      offset += 1_000; // past the responder's initiation flood guard; a newer TAI64N timestamp
      a.device.initiateHandshake(b.pub);
      assert.ok(await until(() => of(b, "response-unconfirmed").length === 1), "one unconfirmed response");
      const [e] = of(b, "response-unconfirmed");
      assert.equal(e.type === "response-unconfirmed" && e.peer, toHex(a.pub));
      assert.match(e.type === "response-unconfirmed" ? e.reason : "", /superseded by a new initiation/);
    });

    await t.step(`no packet within ${RESPONSE_CONFIRMATION_TIMEOUT / 1000} s: reported once`, async () => {
      // The initiator forgets the peer first, so no retransmitted initiation races the timeout.
      assert.equal(a.device.apply({ replacePeers: false, peers: [{ ...removal, publicKey: b.pub }] }), 0);
      offset += RESPONSE_CONFIRMATION_TIMEOUT;
      assert.ok(await until(() => of(b, "response-unconfirmed").length === 2), "the timeout fired");
      const e = of(b, "response-unconfirmed")[1];
      assert.match(e.type === "response-unconfirmed" ? e.reason : "", /no packet under its session/);
      offset += 3 * RESPONSE_CONFIRMATION_TIMEOUT;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(of(b, "response-unconfirmed").length, 2, "each response is reported once");
      assert.deepEqual(of(b, "handshake-completed"), []);
      assert.deepEqual(of(a, "handshake-completed"), [], "nor on the initiator");
    });

    await t.step("the same PSK: the responder counts the handshake at confirmation", async () => {
      pair(a, b, psk, psk);
      offset += 1_000;
      const before = clock();
      a.device.initiateHandshake(b.pub);
      assert.ok(await until(() => of(b, "handshake-completed").length === 1), "the responder confirms");
      const [init] = of(a, "handshake-completed");
      const [resp] = of(b, "handshake-completed");
      assert.ok(init.type === "handshake-completed" && init.initiator, "the initiator completed first");
      assert.ok(resp.type === "handshake-completed" && !resp.initiator && resp.pskIndex === 0);
      assert.ok(resp.type === "handshake-completed" && resp.derivedAt >= before, "derivedAt: the response");
      assert.ok(lastHandshakeMs(b, a) >= before, "the responder's latest handshake is set now");
      assert.equal(b.device.peerStats(a.pub)!.hasSession, true, "the confirmed keypair is current");
      assert.equal(of(b, "response-unconfirmed").length, 2);
      offset += 2 * RESPONSE_CONFIRMATION_TIMEOUT;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(of(b, "response-unconfirmed").length, 2, "a confirmed response is not reported");
    });
  } finally {
    for (const s of [a, b]) {
      await s.device.close();
      libc.close(s.tunFd);
    }
  }
});
