/**
 * Helpers for tests that link production Devices without privileges (tests/unit/device_pair_test.ts,
 * worker_pair_test.ts): the TUN is a packet pipe in memory and the transport the kernel's UDP on
 * 127.0.0.1. Peering two devices, an inner IPv4/UDP test packet, and waiting for a condition.
 * @module
 */
import assert from "node:assert/strict";
import type { Device } from "../../src/wireguard/device.ts";

/** A device under test: the device, its public key and its inner IPv4 address (4 bytes). */
export interface MemoryDevice {
  device: Device;
  pub: Uint8Array;
  inner: number[];
}

/** Makes each device the other's peer: its inner address routed to it, its port on 127.0.0.1, `psk` shared. */
export function peerEachOther(a: MemoryDevice, b: MemoryDevice, psk: Uint8Array): void {
  const peerOf = (other: MemoryDevice) => ({
    publicKey: other.pub,
    remove: false,
    updateOnly: false,
    replaceAllowedIps: true,
    allowedIps: [`${other.inner.join(".")}/32`],
    presharedKey: psk,
    endpoint: { ip: "127.0.0.1", port: other.device.listenPort },
  });
  assert.equal(a.device.apply({ replacePeers: false, peers: [peerOf(b)] }), 0);
  assert.equal(b.device.apply({ replacePeers: false, peers: [peerOf(a)] }), 0);
}

/**
 * An IPv4/UDP packet from the inner address `from` to `to` carrying `text` (checksums are not checked
 * by the data plane).
 */
export function innerUdpPacket(from: number[], to: number[], text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const p = new Uint8Array(28 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  p.set(from, 12);
  p.set(to, 16);
  v.setUint16(20, 40000);
  v.setUint16(22, 9);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits up to 5 s for `cond` (checked every 20 ms); fails naming it otherwise. */
export async function eventually(cond: () => boolean, what = cond.toString()): Promise<void> {
  for (const end = Date.now() + 5_000; Date.now() < end; await sleep(20)) if (cond()) return;
  assert.fail(`not within 5 s: ${what}`);
}
