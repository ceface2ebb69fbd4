/**
 * The node's translation of its parts' events onto the event bus (and the log): device handshakes
 * and filter drops, gate events, DSKE events and wg0's post-quantum events, each naming the peer as
 * the config does. A handshake-failure flood is thinned to one event per (layer, peer) per second.
 * @module
 */
import type { NodeConfig, PeerConfig } from "../config/node-config.ts";
import type { EventBus, NodeEventInput, NodeEventType } from "../events/bus.ts";
import type { GateEvent } from "../keys/psk-gate.ts";
import type { DskeEvent } from "../dske/agreement.ts";
import type { DeviceEvent } from "../wireguard/device.ts";
import type { PqEvent } from "./rosenpass-psk.ts";
import type { Logger } from "../log.ts";
import { encodeBase64, fromHex, toHex } from "../encoding.ts";

const GATE_EVENT_TYPES: Partial<Record<GateEvent["type"], NodeEventType>> = {
  "gate-opened": "gate-opened",
  "gate-closed": "gate-closed",
  "gate-stale": "gate-stale",
  "key-installed": "key-rotated",
  "key-refused": "key-refused",
  "mismatch-suspected": "mismatch-suspected",
  "mismatch-cleared": "mismatch-cleared",
};

/** Gate events an operator must act on (traffic stopped or about to): logged at WARN, the rest at INFO. */
const GATE_WARNINGS: ReadonlySet<GateEvent["type"]> = new Set([
  "gate-closed",
  "gate-stale",
  "mismatch-suspected",
]);

const DSKE_EVENT_TYPES: Partial<Record<DskeEvent["type"], NodeEventType>> = {
  // "key-agreed" is published by the gate as key-rotated when the key is installed.
  "rotation-failed": "rotation-failed",
  "hub-unreachable": "hub-unreachable",
  "hub-misbehaved": "hub-misbehaving",
  "psrd-exhausted": "psrd-exhausted",
  "key-confirmation-failed": "key-confirmation-failed",
  "shares-inconsistent": "shares-inconsistent",
};

/** At most one handshake-failed event per (layer, peer) per this many ms: a flood must not flood the bus. */
const HANDSHAKE_FAILED_EVENT_INTERVAL_MS = 1_000;

type PeerFields = Pick<NodeEventInput, "peer" | "publicKey">;

/** Publishes the node's part events on its bus; one per node. */
export class NodeEventTranslator {
  readonly #events: EventBus;
  readonly #log: Logger;
  #peers: PeerConfig[];
  #peerByHex: Map<string, PeerConfig>;
  readonly #lastFailedEvent = new Map<string, number>();

  /** Translates for the node of `cfg` onto `events`, logging through `log`. */
  constructor(cfg: NodeConfig, events: EventBus, log: Logger) {
    this.#events = events;
    this.#log = log;
    this.#peers = cfg.peers;
    this.#peerByHex = new Map(cfg.peers.map((p) => [toHex(p.publicKey), p]));
  }

  /** Takes a new peer list (a live map change): events and log lines name peers as it does. */
  setPeers(peers: PeerConfig[]): void {
    this.#peers = peers;
    this.#peerByHex = new Map(peers.map((p) => [toHex(p.publicKey), p]));
  }

  /** A peer as log lines name it: its config name (a key prefix only for a peer not in the config). */
  peerName = (hex: string): string =>
    this.#peerByHex.get(hex)?.name ?? `unconfigured peer ${encodeBase64(fromHex(hex)).slice(0, 8)}…`;

  /** A device's handshake completed or failed. */
  deviceEvent(layer: "wg0" | "aes0", e: DeviceEvent): void {
    if (e.type === "handshake-completed") {
      this.#events.publish({
        type: "handshake-completed",
        layer,
        ...this.#peerFields(e.peer),
        reason: e.initiator ? "we initiated" : "the peer initiated",
        data: { initiator: e.initiator },
      });
      return;
    }
    // A refused handshake message, or a response of ours never confirmed: both a handshake failure.
    const key = `${layer}/${e.peer ?? ""}`;
    const now = Date.now();
    if (now - (this.#lastFailedEvent.get(key) ?? -Infinity) < HANDSHAKE_FAILED_EVENT_INTERVAL_MS) return;
    this.#lastFailedEvent.set(key, now);
    this.#events.publish({ type: "handshake-failed", layer, ...this.#peerFields(e.peer), reason: e.reason });
  }

  /** The filter-drop callback of `layer`'s device. */
  filterDrop(layer: "wg0" | "aes0"): (hex: string, reason: string, count: number) => void {
    return (hex, reason, count) => {
      this.#events.publish({
        type: "packet-dropped",
        layer,
        ...this.#peerFields(hex),
        reason,
        data: { count },
      });
    };
  }

  /** An aes0 gate event: logged, and published when operators see it. */
  gateEvent(e: GateEvent): void {
    const level = e.type === "handshake" ? "debug" : GATE_WARNINGS.has(e.type) ? "warn" : "info";
    this.#log[level](
      `aes0 gate ${e.type} for ${this.peerName(e.peer)}${
        e.epoch !== null ? ` epoch ${e.epoch}` : ""
      }: ${e.reason}`,
    );
    const type = GATE_EVENT_TYPES[e.type];
    if (type) {
      this.#events.publish({
        type,
        layer: "aes0",
        ...this.#peerFields(e.peer),
        epoch: e.epoch ?? undefined,
        reason: e.reason,
      });
    }
  }

  /** A DSKE event: logged (hubs named by `hubName`), and published when operators see it. */
  dskeEvent(e: DskeEvent, hubName: (hubId: string) => string): void {
    const line = `dske ${e.type}${e.peer ? ` with ${e.peer}` : ""}${
      e.epoch !== undefined ? ` epoch ${e.epoch}` : ""
    }${e.hub ? ` hub ${hubName(e.hub)}` : ""}: ${e.reason}`;
    if (e.type === "key-agreed" || e.type === "epochs-reconciled") this.#log.info(line);
    else this.#log.warn(line);
    const type = DSKE_EVENT_TYPES[e.type];
    if (!type) return;
    const p = this.#peers.find((d) => d.name === e.peer);
    this.#events.publish({
      type,
      layer: "aes0",
      ...(p ? this.#fieldsOf(p) : {}),
      epoch: e.epoch,
      hub: e.hub,
      reason: e.reason,
      data: e.hubs
        ? {
          hubs: e.hubs.join(","),
          ...(e.lyingAtLeast !== undefined ? { lyingAtLeast: e.lyingAtLeast } : {}),
        }
        : undefined,
    });
  }

  /** A wg0 post-quantum (Rosenpass) event: logged and published. */
  pqEvent(e: PqEvent): void {
    const line = `wg0 ${e.type} for ${e.peer}${e.epoch !== null ? ` epoch ${e.epoch}` : ""}: ${e.reason}`;
    if (e.type === "pq-key-exchanged") this.#log.info(line);
    else this.#log.warn(line);
    const p = this.#peers.find((c) => c.name === e.peer);
    this.#events.publish({
      type: e.type,
      layer: "wg0",
      ...(p ? this.#fieldsOf(p) : {}),
      epoch: e.epoch ?? undefined,
      reason: e.reason,
    });
  }

  #fieldsOf(p: PeerConfig): PeerFields {
    return { peer: p.name, publicKey: encodeBase64(p.publicKey) };
  }

  #peerFields(hex: string | null): PeerFields {
    if (hex === null) return {};
    const p = this.#peerByHex.get(hex);
    return p ? this.#fieldsOf(p) : { publicKey: encodeBase64(fromHex(hex)) };
  }
}
