/**
 * One data-plane worker pair shared by several devices (src/wireguard/dataplane/worker-pair.ts and
 * worker-loop.ts: one encrypt and one decrypt worker, each polling every attached device's path in
 * one loop), in memory and without privileges as in device_pair_test.ts.
 *
 * A1 and A2 run on ONE shared {@link DataplaneWorkers}; each is peered with a device on a pair of its
 * own (B1, B2), under different suites and inner addresses. The test checks that both tunnels carry
 * data both ways through the shared pair, each packet to its own device's TUN only; that A1 leaving
 * lets go of its paths in both workers and leaves A2 ↔ B2 running; that a device attached while the
 * pair already serves another (A3, peered with B3) works, which needs the worker loop to yield to
 * the attach message; and that everything closes without leaks (Deno's sanitizers stay on).
 *
 * As in device_pair_test.ts, the TUNs are packet pipes in memory and the transport is the kernel's
 * UDP on 127.0.0.1; devices and data plane are the production ones.
 */
import assert from "node:assert/strict";
import { bigLen, closeQuietly, libc } from "../../ffi/libc.ts";
import { packetPipe } from "../../ffi/unix-datagram.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { DataplaneWorkers, WORKERS_PER_PAIR } from "../../src/wireguard/dataplane/worker-pair.ts";
import type { WorkerEvent, WorkerInit } from "../../src/wireguard/dataplane/worker-protocol.ts";
import { toHex } from "../../src/encoding.ts";
import type { Logger } from "../../src/log.ts";
import { aesSuite, chachaSuite, type Suite } from "../../src/noise/suite.ts";
import { Device, type DeviceEvent } from "../../src/wireguard/device.ts";
import { udpTransport } from "../../src/wireguard/transport.ts";
import { eventually, innerUdpPacket, peerEachOther, sleep } from "../helpers/memory_devices.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** How long any one exchange may take on a loaded machine (ms). */
const PATIENCE_MS = 10_000;

/** The events the pair reported for one attached device (kinds only), in order. */
interface Attachment {
  id: number;
  events: WorkerEvent["t"][];
}

/** The production pair, recording what it reports for each device it attaches. */
class RecordingWorkers extends DataplaneWorkers {
  /** Every attachment, in the order of attach. */
  readonly attached: Attachment[] = [];

  override attach(init: WorkerInit, onEvent: (event: WorkerEvent) => void): number {
    const events: WorkerEvent["t"][] = [];
    const id = super.attach(init, (e) => {
      events.push(e.t);
      onEvent(e);
    });
    this.attached.push({ id, events });
    return id;
  }
}

/** One device, the test's end of its packet pipe, its events and what arrived at its pipe. */
interface Side {
  name: string;
  device: Device;
  pub: Uint8Array;
  tun: number;
  deviceTun: number;
  inner: number[];
  events: DeviceEvent[];
  /** Packets (hex) read from its pipe that were sent to it. */
  received: Set<string>;
  /** Its attachment to the shared pair (only for devices on it). */
  attachment?: Attachment;
}

/** Every side, the destination of every packet sent, and packets that arrived at the wrong pipe. */
interface Lab {
  sides: Side[];
  destination: Map<string, Side>;
  strays: string[];
  seq: number;
}

/** A device over a new packet pipe, on `shared` when given (else on a pair of its own). */
function side(lab: Lab, name: string, suite: Suite, inner: number[], shared?: RecordingWorkers): Side {
  const [deviceTun, tun] = packetPipe();
  const events: DeviceEvent[] = [];
  let device: Device;
  try {
    device = new Device({
      ifname: name,
      suite,
      tunFd: deviceTun,
      log: quiet,
      transport: udpTransport({ bindAddress: "127.0.0.1" }),
      workers: shared,
      onEvent: (e) => events.push(e),
    });
  } catch (e) {
    closeQuietly(deviceTun);
    closeQuietly(tun);
    throw e;
  }
  const s: Side = {
    name,
    device,
    pub: new Uint8Array(),
    tun,
    deviceTun,
    inner,
    events,
    received: new Set(),
    attachment: shared?.attached.at(-1),
  };
  lab.sides.push(s);
  const key = generatePrivateKey();
  s.pub = publicKey(key);
  assert.equal(device.apply({ privateKey: key, listenPort: 0, replacePeers: false, peers: [] }), 0);
  return s;
}

/** Reads every pipe empty: a packet sent to that side is kept; anything else is a stray. */
function drain(lab: Lab): void {
  const buf = new Uint8Array(2048);
  for (const s of lab.sides) {
    for (let n; (n = libc.read(s.tun, buf, bigLen(buf.length))) > 0;) {
      const hex = toHex(buf.subarray(0, n));
      const to = lab.destination.get(hex);
      if (to === s) s.received.add(hex);
      else lab.strays.push(`${to ? `a packet for ${to.name}` : "an unknown packet"} arrived at ${s.name}`);
    }
  }
}

/**
 * Sends numbered packets from `from`'s TUN every 100 ms until one arrives, byte for byte, at `to`'s
 * TUN. Packets sent before a session exists are staged or dropped by the data plane, as on a real
 * interface. Every pipe is read meanwhile, so a packet delivered to the wrong device is caught.
 */
async function deliver(lab: Lab, from: Side, to: Side): Promise<void> {
  const sent: string[] = [];
  for (const end = Date.now() + PATIENCE_MS; Date.now() < end;) {
    const p = innerUdpPacket(
      from.inner,
      to.inner,
      `twofold worker pair test ${from.name}>${to.name} ${lab.seq++}`,
    );
    const hex = toHex(p);
    lab.destination.set(hex, to);
    sent.push(hex);
    assert.equal(libc.write(from.tun, p, bigLen(p.length)), p.length, "write to the packet pipe");
    await sleep(100);
    drain(lab);
    if (sent.some((h) => to.received.has(h))) return;
  }
  assert.fail(`no packet from ${from.name} reached ${to.name}`);
}

/** Lets packets still in flight land, then asserts none reached a pipe it was not sent to. */
async function assertNoStrays(lab: Lab): Promise<void> {
  await sleep(200);
  drain(lab);
  assert.deepEqual(lab.strays, []);
}

const completed = (s: Side) => s.events.filter((e) => e.type === "handshake-completed").length;
const endpointOf = (s: Side, peer: Side) =>
  s.device.snapshot().peers.find((p) => toHex(p.publicKey) === toHex(peer.pub))!.endpoint;
const stoppedCount = (s: Side) => s.attachment!.events.filter((t) => t === "stopped").length;

/** Asserts a tunnel is up on both ends, each end's traffic coming from the other's own socket. */
function assertTunnel(a: Side, b: Side): void {
  assert.equal(a.device.peerStats(b.pub)!.hasSession, true, `${a.name} has a session with ${b.name}`);
  assert.equal(b.device.peerStats(a.pub)!.hasSession, true, `${b.name} has a session with ${a.name}`);
  assert.equal(endpointOf(b, a), `127.0.0.1:${a.device.listenPort}`, `${b.name} hears ${a.name}'s socket`);
  assert.equal(endpointOf(a, b), `127.0.0.1:${b.device.listenPort}`, `${a.name} hears ${b.name}'s socket`);
  for (const s of [a, b]) {
    const snap = s.device.snapshot().peers[0];
    assert.ok(snap.txBytes > 0 && snap.rxBytes > 0, `${s.name} counts bytes both ways`);
  }
}

Deno.test("one shared worker pair serves several devices; they come and go independently", async (t) => {
  const lab: Lab = { sides: [], destination: new Map(), strays: [], seq: 0 };
  const shared = new RecordingWorkers();
  try {
    // Different suites on the two tunnels: the one pair runs ChaCha20-Poly1305 and AES-256-GCM paths.
    const a1 = side(lab, "tfshareA1", chachaSuite(), [10, 0, 1, 1], shared);
    const a2 = side(lab, "tfshareA2", aesSuite(), [10, 0, 2, 1], shared);
    const b1 = side(lab, "tfshareB1", chachaSuite(), [10, 0, 1, 2]);
    const b2 = side(lab, "tfshareB2", aesSuite(), [10, 0, 2, 2]);
    peerEachOther(a1, b1, crypto.getRandomValues(new Uint8Array(32)));
    peerEachOther(a2, b2, crypto.getRandomValues(new Uint8Array(32)));

    await t.step(
      "two tunnels through one shared pair: handshakes, data both ways, each packet to its own TUN",
      async () => {
        assert.equal(shared.attached.length, 2, "A1 and A2 attached to the shared pair");
        assert.notEqual(a1.attachment!.id, a2.attachment!.id);
        // Both at once: the shared workers serve both devices' handshakes and data in the same turns.
        await Promise.all([deliver(lab, a1, b1), deliver(lab, a2, b2)]);
        await Promise.all([deliver(lab, b1, a1), deliver(lab, b2, a2)]);
        for (const s of [a1, a2, b1, b2]) await eventually(() => completed(s) >= 1, `${s.name} handshake`);
        assertTunnel(a1, b1);
        assertTunnel(a2, b2);
        await assertNoStrays(lab);
      },
    );

    await t.step("A1 leaving: both workers let its paths go; A2 ↔ B2 keeps flowing both ways", async () => {
      await a1.device.close();
      // Dataplane.stop waits for one "stopped" per worker (or gives up after 1 s): both came for A1,
      // none for A2, whose paths stay in the workers.
      assert.equal(stoppedCount(a1), WORKERS_PER_PAIR, "A1's paths left both workers");
      assert.equal(stoppedCount(a2), 0, "A2's paths stay");
      const handshakes = a2.device.peerStats(b2.pub)!.handshakes;
      await deliver(lab, a2, b2);
      await deliver(lab, b2, a2);
      assert.equal(a2.device.peerStats(b2.pub)!.handshakes, handshakes, "the same session carried on");
      assertTunnel(a2, b2);
      await assertNoStrays(lab);
    });

    await t.step("a device attached while the pair serves another (A3 ↔ B3) works too", async () => {
      // First A2's traffic flows: the workers are inside their poll loops serving A2, so A3's attach
      // message reaches them only if the loop yields to it.
      await deliver(lab, a2, b2);
      const a3 = side(lab, "tfshareA3", chachaSuite(), [10, 0, 3, 1], shared);
      const b3 = side(lab, "tfshareB3", chachaSuite(), [10, 0, 3, 2]);
      assert.equal(shared.attached.length, 3, "A3 attached to the shared pair");
      assert.equal(a3.attachment, shared.attached[2]);
      peerEachOther(a3, b3, crypto.getRandomValues(new Uint8Array(32)));
      // A2's traffic at the same time: the new layout of the workers' poll sets keeps serving it.
      await Promise.all([deliver(lab, a3, b3), deliver(lab, a2, b2)]);
      await Promise.all([deliver(lab, b3, a3), deliver(lab, b2, a2)]);
      await eventually(() => completed(b3) >= 1, "B3 handshake");
      assertTunnel(a3, b3);
      assertTunnel(a2, b2);
      assert.equal(stoppedCount(a3), 0);
      assert.equal(stoppedCount(a2), 0);
      await assertNoStrays(lab);
    });

    await t.step(
      "closing: every device on the pair lets go of both workers; then the pair ends",
      async () => {
        for (const s of lab.sides) await s.device.close();
        for (const s of lab.sides.filter((s) => s.attachment)) {
          assert.equal(stoppedCount(s), WORKERS_PER_PAIR, `${s.name}'s paths left both workers`);
          assert.ok(!s.attachment!.events.includes("error"), `${s.name} saw no worker error`);
        }
        await shared.close();
        assert.throws(() => shared.attach({} as WorkerInit, () => {}), /closed/);
      },
    );
  } finally {
    for (const s of lab.sides) {
      await s.device.close();
      closeQuietly(s.deviceTun);
      closeQuietly(s.tun);
    }
    await shared.close();
  }
});

/** Threads of this process Deno runs web workers on (named "worker-N"). */
function workerThreads(): number {
  let n = 0;
  for (const e of Deno.readDirSync("/proc/self/task")) {
    if (Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).startsWith("worker-")) n++;
  }
  return n;
}

Deno.test("closing a pair that still serves a device ends both workers", async () => {
  const lab: Lab = { sides: [], destination: new Map(), strays: [], seq: 0 };
  const before = workerThreads();
  const workers = new RecordingWorkers();
  try {
    const c1 = side(lab, "tfshareC1", chachaSuite(), [10, 0, 4, 1], workers);
    const d1 = side(lab, "tfshareD1", chachaSuite(), [10, 0, 4, 2]);
    peerEachOther(c1, d1, crypto.getRandomValues(new Uint8Array(32)));
    await deliver(lab, c1, d1); // the pair's loops are busy serving C1 (and D1's own pair its paths)
    await eventually(() => workerThreads() >= before + 2 * WORKERS_PER_PAIR, "both pairs' worker threads");
    const running = workerThreads();
    await workers.close();
    // Deno ends a worker only once it is back in its event loop: the close message must get it there
    // although C1 was never stopped.
    await eventually(() => workerThreads() === running - WORKERS_PER_PAIR, "the shared pair's threads end");
  } finally {
    for (const s of lab.sides) {
      await s.device.close();
      closeQuietly(s.deviceTun);
      closeQuietly(s.tun);
    }
    await workers.close();
  }
});
