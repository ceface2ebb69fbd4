/**
 * The node's wg0 side, three parts started in order on the node's part stack: wg0's PSK manager
 * (Rosenpass state per peer; its PSK policy goes into the device), wg0 itself (node/wg0-bringup.ts,
 * shared with the hub and the broker) and the Rosenpass exchange over it.
 * @module
 */
import type { HandoffChannel } from "../wireguard/dataplane/handoff-channel.ts";
import type { DataplaneWorkers } from "../wireguard/dataplane/worker-pair.ts";
import type { NodeConfig } from "../config/node-config.ts";
import type { RunningInterface } from "../wireguard/interface.ts";
import type { Logger } from "../log.ts";
import { toHex } from "../encoding.ts";
import { parseEndpoint } from "../uapi/netaddr.ts";
import {
  type RosenpassPart,
  rosenpassPskManagerFor,
  rosenpassTestKnob,
  startRosenpassPart,
} from "./rosenpass-part.ts";
import type { RosenpassPskManager } from "./rosenpass-psk.ts";
import type { PartStack } from "./part.ts";
import { startWg0 } from "./wg0-bringup.ts";
import type { NodeEventTranslator } from "./node-events.ts";
import { wg0AllowedIps } from "../config/steering.ts";

/** What {@link startWg0Parts} needs. */
export interface Wg0PartsOptions {
  config: NodeConfig;
  /** The node's static private key. */
  privateKey: Uint8Array;
  translator: NodeEventTranslator;
  log: Logger;
  /** Whether the packet filter runs (off only in benchmarks). */
  packetFilter: boolean;
  /** Called once when wg0 ends by itself. */
  onEnded: (reason: string) => void;
  /** The aes0 → wg0 hand-off channel, wg0 being its outer end (none: aes0 goes through the kernel). */
  handoff?: HandoffChannel;
  /** The data-plane worker pair wg0 and aes0 share (none: the device starts a pair of its own). */
  workers?: DataplaneWorkers;
}

/** The running wg0 side. */
export interface Wg0Parts {
  /** wg0's PSK manager (every peer, mode off included). */
  pq: RosenpassPskManager;
  /** The outer interface. */
  wg0: RunningInterface;
  /** The Rosenpass exchange, or null when no peer is Rosenpass-managed. */
  rosenpass: RosenpassPart | null;
}

/** Starts the wg0 side's parts on `parts` (closed with the node's other parts). */
export async function startWg0Parts(parts: PartStack, opts: Wg0PartsOptions): Promise<Wg0Parts> {
  const { config: cfg, translator } = opts;
  const outer: { wg0?: RunningInterface } = {};
  const pq = await parts.start({
    name: "wg0 PSK manager",
    start: () =>
      rosenpassPskManagerFor(cfg, {
        setPresharedKey: (peer, psk, extra) => outer.wg0!.device.setPresharedKey(peer, psk, extra),
        dropSessions: (peer) => outer.wg0!.device.dropSessions(peer),
      }, (e) => translator.pqEvent(e)),
  });
  const wg0TestRekeySeconds = rosenpassTestKnob(opts.log)?.wg0RekeyAfterSeconds;
  const wg0 = outer.wg0 = await parts.start({
    name: "wg0",
    start: () =>
      startWg0({
        ifname: cfg.wg0.name,
        uapiDir: cfg.node.uapiSocketDir,
        mtu: cfg.wg0.mtu,
        offloads: cfg.wg0.offloads,
        address: cfg.wg0.address.text,
        privateKey: opts.privateKey,
        listenPort: cfg.wg0.listenPort,
        peers: cfg.peers.map((p) => ({ ...p, allowedIps: wg0AllowedIps(p) })),
        device: {
          onEvent: (e) => translator.deviceEvent("wg0", e),
          pskPolicy: pq.pskPolicy(),
          rekeyAfterTimeMs: wg0TestRekeySeconds === undefined ? undefined : wg0TestRekeySeconds * 1000,
          onFilterDrop: translator.filterDrop("wg0"),
          packetFilter: opts.packetFilter,
          handoff: opts.handoff && { role: "outer", channel: opts.handoff },
          workers: opts.workers,
        },
        onEnded: opts.onEnded,
        // wg0's PSK manager sets PSKs while the peers are configured: it needs wg0 from the start.
        onStarted: (running) => outer.wg0 = running,
      }),
  });
  const rosenpass = await parts.start({
    name: "rosenpass",
    start: () =>
      startRosenpassPart({
        config: cfg,
        manager: pq,
        log: opts.log,
        wg0EndpointAddress: (name) => {
          const p = cfg.peers.find((c) => c.name === name);
          const snap = p &&
            wg0.device.snapshot().peers.find((s) => toHex(s.publicKey) === toHex(p.publicKey));
          return (snap?.endpoint ? parseEndpoint(snap.endpoint)?.ip : p?.endpoint?.ip) ?? null;
        },
      }),
  });
  return { pq, wg0, rosenpass };
}
