/**
 * The aes0 part of a node: the PSK security gate of every AES peer and the aes0 device behind it.
 * aes0's UDP socket is bound to the node's wg0 address and tied to the wg0 interface, so it accepts
 * only what came through wg0; every peer's endpoint is its wg0 address. The gate ticks every 100 ms.
 * @module
 */
import type { HandoffChannel } from "../wireguard/dataplane/handoff-channel.ts";
import type { DataplaneWorkers } from "../wireguard/dataplane/worker-pair.ts";
import { aesSuite } from "../noise/suite.ts";
import { isAesPeer, type NodeConfig } from "../config/node-config.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import { aes0AllowedIps } from "../config/steering.ts";
import { type RunningInterface, startInterface } from "../wireguard/interface.ts";
import { REKEY_AFTER_TIME } from "../wireguard/constants.ts";
import { UapiErrno } from "../uapi/protocol.ts";
import { type GateEvent, handshakeOutcomeOf, PskGate, pskPolicy } from "../keys/psk-gate.ts";
import type { NodeEventTranslator } from "./node-events.ts";
import { wgPeerChange } from "./wg0-bringup.ts";

/** How often the gate re-checks key ages (ms). */
const GATE_TICK_MS = 100;

/** The running aes0 part. */
export interface Aes0Part {
  /** The PSK security gate of aes0. */
  gate: PskGate;
  /** The inner interface. */
  aes0: RunningInterface;
  /** Stops the gate's tick and removes aes0. */
  close(reason?: string): Promise<void>;
}

/** What {@link startAes0Part} needs. */
export interface Aes0PartOptions {
  config: NodeConfig;
  /** The running wg0 (aes0 binds to its address and interface). */
  wg0: RunningInterface;
  /** The node's static private key. */
  privateKey: Uint8Array;
  /** Where device and gate events go. */
  events: NodeEventTranslator;
  /** Every gate event, after it is logged and published. */
  onGateEvent: (e: GateEvent) => void;
  /** Whether the packet filter runs (off only in benchmarks). */
  packetFilter: boolean;
  /** Called once when aes0 ends by itself. */
  onEnded: (reason: string) => void;
  /**
   * The aes0 → wg0 hand-off channel, aes0 being its inner end (its datagrams skip the kernel's UDP
   * stack); none: they cross it.
   */
  handoff?: HandoffChannel;
  /** The data-plane worker pair wg0 and aes0 share (none: the device starts a pair of its own). */
  workers?: DataplaneWorkers;
}

/** Builds the gate, brings up aes0 and configures its peers; on failure nothing is left behind. */
export async function startAes0Part(opts: Aes0PartOptions): Promise<Aes0Part> {
  const { config: cfg, wg0, events } = opts;
  const inner: { aes0?: RunningInterface } = {};
  const gate = new PskGate({
    setPresharedKey: (peer, psk, extra) => inner.aes0?.device.setPresharedKey(peer, psk, extra) ?? false,
    initiateHandshake: (peer) => inner.aes0?.device.initiateHandshake(peer),
    dropSessions: (peer) => inner.aes0?.device.dropSessions(peer),
  }, {
    rotationIntervalMs: cfg.keys.rotationIntervalSeconds * 1000,
    maxAgeMs: cfg.keys.maxKeyAgeSeconds * 1000,
    manualMaxAgeMs: cfg.keys.manualMaxAgeSeconds === null ? Infinity : cfg.keys.manualMaxAgeSeconds * 1000,
    onEvent: (e) => {
      events.gateEvent(e);
      opts.onGateEvent(e);
    },
  });
  const aesPeers = cfg.peers.filter(isAesPeer);
  for (const p of aesPeers) gate.addPeer(p.publicKey, p.keySource);
  const wgAddress = formatIp(cfg.wg0.address.ip);
  const running = await startInterface({
    ifname: cfg.aes0.name,
    nameField: "aes0.name",
    uapiDir: cfg.node.uapiSocketDir,
    suite: aesSuite(),
    mtu: cfg.aes0.mtu,
    offloads: cfg.aes0.offloads,
    address: cfg.aes0.address.text,
    device: {
      // aes0 accepts only what came through wg0: the wg0 address alone would also be accepted from
      // the underlay (Linux takes a local destination on any interface).
      bindAddress: wgAddress,
      bindDevice: wg0.device.ifname,
      pskPolicy: pskPolicy(gate, { adoptUnknownAs: null }),
      rekeyAfterTimeMs: aesRekeyAfterMs(cfg.keys.rotationIntervalSeconds * 1000),
      onFilterDrop: events.filterDrop("aes0"),
      packetFilter: opts.packetFilter,
      handoff: opts.handoff && { role: "inner", channel: opts.handoff, address: cfg.wg0.address.ip },
      workers: opts.workers,
      onEvent: (e) => {
        const o = handshakeOutcomeOf(e);
        if (o) gate.handshakeResult(o.peer, o.outcome);
        events.deviceEvent("aes0", e);
      },
    },
    onEnded: opts.onEnded,
  });
  inner.aes0 = running;
  try {
    const errno = await running.device.apply({
      privateKey: opts.privateKey,
      listenPort: cfg.aes0.listenPort,
      replacePeers: true,
      peers: aesPeers.map((p) =>
        wgPeerChange(p, aes0AllowedIps(p), { ip: formatIp(p.wgIp.addr), port: cfg.aes0.listenPort })
      ),
    });
    if (errno !== 0) {
      throw new Error(
        `configuring aes0 failed (errno ${-errno}): ${
          errno === UapiErrno.PORT_IN_USE
            ? `is ${wgAddress}:${cfg.aes0.listenPort} free?`
            : `its UDP socket on ${wgAddress}:${cfg.aes0.listenPort} (tied to ${wg0.device.ifname}) could not be opened; see the line above`
        }`,
      );
    }
  } catch (e) {
    await running.close("start-up failed");
    throw e;
  }
  const tick = setInterval(() => gate.tick(), GATE_TICK_MS);
  return {
    gate,
    aes0: running,
    close: async (reason) => {
      clearInterval(tick);
      await running.close(reason);
    },
  };
}

/**
 * aes0 rekeys (as initiator) twice per key rotation interval, at most every 120 s (WireGuard's
 * REKEY_AFTER_TIME) and at least every 1 s: a rotated PSK applies at the next natural handshake, so
 * every key is used within about half an interval without any forced handshake.
 */
export function aesRekeyAfterMs(rotationIntervalMs: number): number {
  return Math.max(1_000, Math.min(REKEY_AFTER_TIME, Math.floor(rotationIntervalMs / 2)));
}
