/**
 * Two devices linked without privileges, one pair per suite (ChaCha20-Poly1305 as wg0, AES-256-GCM as
 * aes0): handshake, data both ways, a rekey (REKEY_AFTER_TIME at its 1 s minimum) and roaming (the
 * responder's port changes; the initiator follows the authenticated packets to the new endpoint).
 *
 * What is real and what stands in: the devices are production Devices with the production data plane
 * (both workers per device, through the data-plane factory, wrapped only to record the handshake
 * messages handed to the control plane). The TUN is a packet pipe in memory (an AF_UNIX datagram
 * socketpair: one IP packet per read/write, as a TUN); the packet transport is the kernel's UDP on
 * 127.0.0.1 (the workers send and receive sockaddr_in datagrams with sendmmsg/recvmmsg, which a pipe
 * cannot carry), so no root, TUN or namespace is needed and the production path is unchanged.
 */
import assert from "node:assert/strict";
import { bigLen, closeQuietly, libc } from "../../ffi/libc.ts";
import { packetPipe } from "../../ffi/unix-datagram.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { type DataplaneFactory, workerDataplane } from "../../src/wireguard/dataplane/dataplane.ts";
import { toHex } from "../../src/encoding.ts";
import type { Logger } from "../../src/log.ts";
import { aesSuite, chachaSuite, type Suite } from "../../src/noise/suite.ts";
import { Device, type DeviceEvent } from "../../src/wireguard/device.ts";
import { MessageResponseType } from "../../src/wireguard/messages.ts";
import { udpTransport } from "../../src/wireguard/transport.ts";
import { eventually, innerUdpPacket, peerEachOther, sleep } from "../helpers/memory_devices.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Inner addresses of the two sides (10.0.0.1 and 10.0.0.2). */
const INNER = [[10, 0, 0, 1], [10, 0, 0, 2]];
/** How long any one exchange may take on a loaded machine (ms). */
const PATIENCE_MS = 30_000;
/** The rekey interval asked for (the device's minimum). */
const REKEY_AFTER_MS = 1_000;

/** One device, the test's end of its packet pipe, its events and the handshake messages it admitted. */
interface Side {
  device: Device;
  pub: Uint8Array;
  tun: number;
  deviceTun: number;
  inner: number[];
  events: DeviceEvent[];
  admittedTypes: number[];
}

function side(suite: Suite, inner: number[]): Side {
  const [deviceTun, tun] = packetPipe();
  const events: DeviceEvent[] = [];
  const admittedTypes: number[] = [];
  const recording: DataplaneFactory = (opts) =>
    workerDataplane({
      ...opts,
      handlers: {
        ...opts.handlers,
        onHandshakeMessage: (data, addr) => {
          admittedTypes.push(data[0]);
          opts.handlers.onHandshakeMessage(data, addr);
        },
      },
    });
  const device = new Device({
    ifname: "tfpair0",
    suite,
    tunFd: deviceTun,
    log: quiet,
    transport: udpTransport({ bindAddress: "127.0.0.1" }),
    dataplane: recording,
    rekeyAfterTimeMs: REKEY_AFTER_MS,
    onEvent: (e) => events.push(e),
  });
  const key = generatePrivateKey();
  assert.equal(device.apply({ privateKey: key, listenPort: 0, replacePeers: false, peers: [] }), 0);
  return { device, pub: publicKey(key), tun, deviceTun, inner, events, admittedTypes };
}

/**
 * Sends numbered packets from `from`'s TUN every 100 ms until one arrives, byte for byte, at `to`'s
 * TUN and `also` holds; returns the sequence number that arrived. Packets sent before a session
 * exists are staged or dropped by the data plane, as on a real interface.
 */
async function deliver(from: Side, to: Side, also: () => boolean = () => true): Promise<number> {
  const sent = new Map<string, number>();
  const buf = new Uint8Array(2048);
  const end = Date.now() + PATIENCE_MS;
  for (let seq = 0; Date.now() < end; seq++) {
    const p = innerUdpPacket(from.inner, to.inner, `twofold pair test ${seq}`);
    sent.set(toHex(p), seq);
    assert.equal(libc.write(from.tun, p, bigLen(p.length)), p.length, "write to the packet pipe");
    await sleep(100);
    for (let n; (n = libc.read(to.tun, buf, bigLen(buf.length))) > 0;) {
      const got = sent.get(toHex(buf.subarray(0, n)));
      if (got !== undefined && also()) return got;
    }
  }
  assert.fail(`no packet from ${from.inner.join(".")} reached ${to.inner.join(".")}`);
}

const completed = (s: Side) =>
  s.events.filter((e): e is Extract<DeviceEvent, { type: "handshake-completed" }> =>
    e.type === "handshake-completed"
  );
const endpointOf = (s: Side, peer: Side) =>
  s.device.snapshot().peers.find((p) => toHex(p.publicKey) === toHex(peer.pub))!.endpoint;

for (const suite of [chachaSuite(), aesSuite()]) {
  Deno.test(`two ${suite.aead.name} devices in memory: handshake, data, rekey, roaming`, async (t) => {
    const a = side(suite, INNER[0]);
    const b = side(suite, INNER[1]);
    try {
      peerEachOther(a, b, crypto.getRandomValues(new Uint8Array(32)));

      await t.step(
        "the first packet starts a handshake and arrives; the responder counts at confirmation",
        async () => {
          await deliver(a, b);
          assert.ok(completed(a).length >= 1 && completed(a).every((e) => e.initiator), "a initiated");
          // The packet reaches b's TUN from the receive worker; the confirmation event comes from b's
          // control plane, which learns of it through the worker's message: allow it that hop.
          await eventually(() => completed(b).length >= 1);
          assert.ok(completed(b).every((e) => !e.initiator), "b confirmed");
          assert.equal(a.device.peerStats(b.pub)!.hasSession, true);
          assert.equal(b.device.peerStats(a.pub)!.hasSession, true);
        },
      );

      await t.step("data flows back under the same session", async () => {
        const handshakes = a.device.peerStats(b.pub)!.handshakes;
        await deliver(b, a);
        assert.equal(a.device.peerStats(b.pub)!.handshakes, handshakes, "no new handshake needed");
        const snap = a.device.snapshot().peers[0];
        assert.ok(snap.txBytes > 0 && snap.rxBytes > 0, "wg show counts bytes both ways");
      });

      await t.step(
        "the initiator rekeys after REKEY_AFTER_TIME; data keeps flowing under the new keys",
        async () => {
          const before = a.device.peerStats(b.pub)!.handshakes;
          const responses = a.admittedTypes.filter((x) => x === MessageResponseType).length;
          await deliver(a, b, () => a.device.peerStats(b.pub)!.handshakes > before);
          assert.ok(
            a.admittedTypes.filter((x) => x === MessageResponseType).length > responses,
            "the rekey was a new handshake on the wire",
          );
          await deliver(a, b); // under the new keypair, which confirms it on b
          await deliver(b, a);
          await eventually(() => completed(b).length >= 2);
          assert.equal(a.device.peerStats(b.pub)!.hasSession, true);
        },
      );

      await t.step("roaming: the responder's port changes; the initiator follows it", async () => {
        const oldEndpoint = endpointOf(a, b);
        assert.equal(oldEndpoint, `127.0.0.1:${b.device.listenPort}`);
        assert.equal(b.device.apply({ listenPort: 0, replacePeers: false, peers: [] }), 0, "rebind");
        const moved = `127.0.0.1:${b.device.listenPort}`;
        assert.notEqual(moved, oldEndpoint);
        await deliver(b, a, () => endpointOf(a, b) === moved);
        await sleep(400); // b's old socket is closed by now: only the new endpoint reaches b
        await deliver(a, b);
        assert.equal(endpointOf(a, b), moved, "wg show on the initiator lists the new endpoint");
      });
    } finally {
      for (const s of [a, b]) {
        await s.device.close();
        closeQuietly(s.deviceTun);
        closeQuietly(s.tun);
      }
    }
  });
}
