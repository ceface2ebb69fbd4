/**
 * How `twofold up` runs the SKA key plane: one {@link SkaAgreement} over the node's `ska` AES peers,
 * installing through the aes0 gate with source "ska", its events logged and published on the node's
 * event bus (`key-agreed` is published by the gate as `key-rotated`).
 * @module
 */
import type { NodeConfig, PeerConfig } from "../config/node-config.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import type { PskGate } from "../keys/psk-gate.ts";
import type { EventBus, NodeEventType } from "../events/bus.ts";
import { encodeBase64 } from "../encoding.ts";
import type { Logger } from "../log.ts";
import { SkaAgreement, type SkaEvent } from "./agreement.ts";
import { usesSka } from "../config/key-source.ts";
import type { ConnectionSource } from "../keyplane/connection-source.ts";

const SKA_EVENT_TYPES: Partial<Record<SkaEvent["type"], NodeEventType>> = {
  "rotation-failed": "rotation-failed",
  "broker-unreachable": "broker-unreachable",
};

/**
 * How SKA joins the node's other key plane: where agreed keys go (default: the gate, source `ska`) and
 * where its channel takes connections from (default: it listens on TCP 51831 itself).
 */
export interface SkaPlaneWiring {
  /** Installs an agreed key (the combiner for `ska+dske` peers). */
  install?: (peer: Uint8Array, psk: Uint8Array, epoch: number) => boolean;
  /** The SKA share of the node's shared key-plane listener. */
  connections?: ConnectionSource;
}

/**
 * Starts SKA for `cfg`'s `ska` and `ska+dske` peers, or returns null when there are none. Throws when
 * TCP 51831 is busy.
 */
export function startNodeSka(
  cfg: NodeConfig,
  aesPeers: PeerConfig[],
  gate: PskGate,
  events: EventBus,
  log: Logger,
  onEvent?: (e: SkaEvent) => void,
  plane: SkaPlaneWiring = {},
): SkaAgreement | null {
  const skaPeers = aesPeers.filter((p) => usesSka(p.keySource));
  const broker = cfg.peers.find((p) => p.role === "broker");
  if (skaPeers.length === 0 || !broker) return null;
  const ska = new SkaAgreement({
    selfPublicKey: cfg.node.publicKey!,
    listenHost: formatIp(cfg.wg0.address.ip),
    peers: skaPeers.map((p) => ({ name: p.name, publicKey: p.publicKey, wgIp: formatIp(p.wgIp.addr) })),
    brokerHost: formatIp(broker.wgIp.addr),
    rotationIntervalMs: cfg.keys.rotationIntervalSeconds * 1000,
    install: plane.install ?? ((peer, psk, epoch) => gate.install(peer, psk, epoch, "ska").ok),
    connections: plane.connections,
    onEvent: (e) => {
      const line = `ska ${e.type}${e.peer ? ` with ${e.peer}` : ""}${
        e.epoch !== undefined ? ` epoch ${e.epoch}` : ""
      }: ${e.reason}`;
      if (e.type === "key-agreed") log.info(line);
      else log.warn(line);
      const type = SKA_EVENT_TYPES[e.type];
      if (type) {
        const p = skaPeers.find((d) => d.name === e.peer);
        events.publish({
          type,
          layer: "aes0",
          ...(p ? { peer: p.name, publicKey: encodeBase64(p.publicKey) } : {}),
          epoch: e.epoch,
          hub: e.type === "broker-unreachable" ? broker.name : undefined,
          reason: e.reason,
        });
      }
      onEvent?.(e);
    },
  });
  ska.start();
  return ska;
}
