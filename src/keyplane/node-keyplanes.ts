/**
 * How `twofold up` joins its key planes: which plane installs where (straight into the gate, or into
 * the {@link PskCombiner} for `ska+dske` peers), and the one TCP 51831 listener both planes share when
 * both run on the node (mixed nodes: `ska`, `dske` and `ska+dske` peers side by side).
 * @module
 */
import type { NodeConfig, PeerConfig } from "../config/node-config.ts";
import { usesDske, usesSka } from "../config/key-source.ts";
import type { PskGate } from "../keys/psk-gate.ts";
import type { Logger } from "../log.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import { listenTcp } from "./connection-source.ts";
import { KeyplaneListener, type KeyPlaneName } from "./keyplane-listener.ts";
import { PskCombiner } from "./psk-combiner.ts";
import { DSKE_PORT } from "../dske/frame-transport.ts";
import { toHex } from "../encoding.ts";

/** Installs a key `plane` agreed: into the combiner for a `ska+dske` peer, else into the gate. */
export type PlaneInstall = (peer: Uint8Array, psk: Uint8Array, epoch: number) => boolean;

/** The install function of `plane`. */
export function planeInstall(gate: PskGate, combiner: PskCombiner | null, plane: KeyPlaneName): PlaneInstall {
  return (peer, psk, epoch) =>
    combiner?.has(peer) ? combiner.offer(plane, peer, psk, epoch) : gate.install(peer, psk, epoch, plane).ok;
}

/** The combiner of the node's `ska+dske` peers, or null when it has none. */
export function startCombiner(
  aesPeers: PeerConfig[],
  gate: PskGate,
  log: Logger,
): PskCombiner | null {
  const combined = aesPeers.filter((p) => p.keySource === "ska+dske");
  if (combined.length === 0) return null;
  const name = (hex: string) => combined.find((p) => toHex(p.publicKey) === hex)?.name ?? hex.slice(0, 8);
  const combiner = new PskCombiner({
    install: (peer, psk, epoch, keyAgeFrom) => gate.install(peer, psk, epoch, "ska+dske", keyAgeFrom).ok,
    freshForMs: gate.staleAfterMs,
    now: Date.now,
    onEvent: (e) => {
      const line = `ska+dske ${e.type} with ${name(e.peer)}${
        e.epoch !== undefined ? ` epoch ${e.epoch}` : ""
      }: ${e.reason}`;
      if (e.type === "combined") log.info(line);
      else log.warn(line);
    },
  });
  for (const p of combined) combiner.addPeer(p.publicKey);
  return combiner;
}

/**
 * The shared TCP 51831 listener on the wg0 address when both planes run on this node, else null (a
 * plane running alone listens itself). Throws when the port cannot be bound.
 */
export function openSharedKeyplaneListener(
  cfg: NodeConfig,
  aesPeers: PeerConfig[],
  log: Logger,
): KeyplaneListener | null {
  const dske = aesPeers.some((p) => usesDske(p.keySource));
  const ska = aesPeers.some((p) => usesSka(p.keySource)) && cfg.peers.some((p) => p.role === "broker");
  if (!dske || !ska) return null;
  return new KeyplaneListener(listenTcp(formatIp(cfg.wg0.address.ip), DSKE_PORT), {
    onRefused: (from, why) => log.debug(`key-plane connection from ${from} closed: ${why}`),
  });
}
