/**
 * One edge node (`twofold up`): wg0 (ChaCha20-Poly1305) over the underlay and aes0 (AES-256-GCM)
 * inside it, both from the same static key, with every AES peer's aes0 PSK behind the PSK security
 * gate. Route steering, first cut: wg0's address covers 100.64.0.0/10 and aes0's covers its subnet,
 * so traffic to a peer's AES IP goes through aes0 and everything else (AES-exempt peers, hubs, wg0
 * IPs) through wg0; aes0's UDP socket is bound to our wg0 address and tied to the wg0 interface, so
 * its packets travel inside wg0 and it receives nothing from the underlay.
 *
 * A node is a composition of named parts (node/part.ts), started in this order and closed in
 * reverse: wg0's PSK manager (Rosenpass), wg0 (node/wg0-bringup.ts, shared with the hub and the
 * broker), the Rosenpass exchange, the aes0 gate and device (node/aes0-part.ts), the packet filter,
 * the PSK-file watcher (the manual key plane), the automatic key planes (node/keyplane-part.ts) and,
 * on a map-driven node, the network map (node/netmap-run.ts: the guarded live apply, DNS, routes and
 * the map source). The audit log opens before every part and closes before them; events reach the bus
 * through node/node-events.ts.
 * @module
 */
import { isAesPeer, type NodeConfig, type PeerConfig } from "../config/node-config.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import type { RunningInterface } from "../wireguard/interface.ts";
import type { Device } from "../wireguard/device.ts";
import { layerLabel } from "../wireguard/interface-name.ts";
import type { GateEvent, GateStatus, PskGate } from "../keys/psk-gate.ts";
import { type Logger, logger } from "../log.ts";
import type { DskeAgreement, DskeEvent } from "../dske/agreement.ts";
import type { PsrdStore } from "../dske/psrd-store.ts";
import { EventBus } from "../events/bus.ts";
import { fromHex } from "../encoding.ts";
import type { SkaAgreement } from "../ska/agreement.ts";
import type { RosenpassPart } from "./rosenpass-part.ts";
import type { RosenpassPskManager } from "./rosenpass-psk.ts";
import type { LockdownList } from "./lockdown-list.ts";
import { NodeFilter } from "./filter-part.ts";
import { runTrace, type TraceQuestion, type TraceResult } from "./trace.ts";
import { type NodePart, PartStack } from "./part.ts";
import { startWg0Parts } from "./wg0-part.ts";
import { openNodeAudit } from "./audit-part.ts";
import { NodeEventTranslator } from "./node-events.ts";
import { startAes0Part } from "./aes0-part.ts";
import { sharedDataplanePart } from "./dataplane-part.ts";
import { PskFileWatcher, type PskReload } from "./psk-file-watcher.ts";
import { type KeyplanePart, startKeyplanePart } from "./keyplane-part.ts";
import type { MapRun } from "./netmap-run.ts";
import { startNetworkRoutes } from "./peer-routes.ts";
import { siteRouterPart } from "./site-router-part.ts";
import type { StartMap } from "./netmap-startup.ts";

export type { PskReload } from "./psk-file-watcher.ts";

/** A running node. */
export interface RunningNode {
  /** The outer interface. */
  wg0: RunningInterface;
  /** The inner interface. */
  aes0: RunningInterface;
  /** The PSK security gate of aes0. */
  gate: PskGate;
  /** DSKE key agreement, when any AES peer's key source is `dske`. */
  dske: DskeAgreement | null;
  /** PSRD pools (client role), when DSKE runs. */
  psrd: PsrdStore | null;
  /** SKA key agreement, when any AES peer's key source is `ska`. */
  ska?: SkaAgreement | null;
  /** The node's event bus: gate, key-plane and handshake events (the admin API streams it). */
  events: EventBus;
  /** wg0's PSKs under Rosenpass (post-quantum state per peer; every peer is known, mode off included). */
  pq: RosenpassPskManager;
  /** The running Rosenpass exchange, or null when no peer is Rosenpass-managed. */
  rosenpass: RosenpassPart | null;
  /** The packet filter of wg0 and aes0 (lockdown and access policies). */
  filter: NodeFilter;
  /** The configuration the node runs (replaced by {@link RunningNode.setPeers}). */
  config: NodeConfig;
  /**
   * Takes a new peer list after the interfaces and the gate were changed to match (a live map change):
   * event and log names, the PSK files watched and `config.peers` follow it.
   */
  setPeers(peers: PeerConfig[]): void;
  /** The network map services (live apply, DNS, routes, source) of a map-driven node; null otherwise. */
  map: MapRun | null;
  /** Start time (unix ms). */
  startedAt: number;
  /**
   * Re-reads every manual peer's PSK file now (SIGHUP) and installs, as a new epoch, each one whose
   * key differs from the one installed from it, even when its mtime did not change. Problems are logged.
   */
  reloadPskFiles(): PskReload;
  /** Answers a trace question with the data plane's own filter (node/trace.ts). */
  trace(question: TraceQuestion, now: number): TraceResult;
  /** Stops both interfaces and wipes keys. */
  close(reason?: string): Promise<void>;
}

/** Options for {@link startNode}. */
export interface NodeOptions {
  /** Called once when the node stops by itself (an interface deleted, a socket removed). */
  onEnded?: (reason: string) => void;
  /** Gate events (also logged). */
  onGateEvent?: (e: GateEvent) => void;
  /** DSKE events (also logged). */
  onDskeEvent?: (e: DskeEvent) => void;
  /** The event bus to publish on (default: a new one). */
  events?: EventBus;
  /** The wg0 lockdown list in force, followed as it changes (default: the config's extra ports, fixed). */
  lockdown?: LockdownList;
  /** The map a map-driven node starts from (node/netmap-startup.ts; `cfg` is its `config`). */
  map?: StartMap;
}

/** Brings up wg0 and aes0 for `cfg`; throws (with everything removed) when anything fails. */
export async function startNode(cfg: NodeConfig, opts: NodeOptions = {}): Promise<RunningNode> {
  const log = logger(cfg.node.name);
  const startedAt = Date.now();
  const events = opts.events ?? new EventBus();
  const audit = openNodeAudit(cfg, events);
  const translator = new NodeEventTranslator(cfg, events, log);
  const packetFilter = packetFilterOn(log);
  const parts = new PartStack();
  const { close, onEnded } = nodeStop(audit, parts, opts.onEnded);
  try {
    const privateKey = cfg.node.privateKey;
    if (!privateKey) throw new Error("the node's private key was not loaded");
    const dataplane = await parts.start(sharedDataplanePart(log));
    const handoff = dataplane.channel ?? undefined;
    const workers = dataplane.workers;
    const { pq, wg0, rosenpass } = await startWg0Parts(parts, {
      handoff,
      workers,
      config: cfg,
      privateKey: privateKey.bytes(),
      translator,
      log,
      packetFilter,
      onEnded,
    });
    let keyplanesPart: KeyplanePart | undefined; // started after the gate, which already reports to it
    const onGateEvent = reconcilingGateEvents(() => keyplanesPart, opts.onGateEvent);
    const { gate, aes0 } = await parts.start({
      name: "aes0",
      start: () =>
        startAes0Part({
          config: cfg,
          wg0,
          privateKey: privateKey.bytes(),
          events: translator,
          onGateEvent,
          packetFilter,
          handoff,
          workers,
          onEnded,
        }),
    });
    const filter = await parts.start({
      name: "filter",
      start: () => startFilter(cfg, wg0, aes0, opts.lockdown),
    });
    await parts.start(networkRoutesPart(cfg, opts.map !== undefined));
    const site = await parts.start(siteRouterPart(cfg, log));
    const aesPeers = cfg.peers.filter(isAesPeer);
    const pskFiles = await parts.start({
      name: "PSK-file watcher",
      start: () => new PskFileWatcher(aesPeers, gate, log).start(),
    });
    const keyplanes = keyplanesPart = await parts.start({
      name: "key planes",
      start: () =>
        startKeyplanePart({
          config: cfg,
          aesPeers,
          gate,
          privateKey: privateKey.bytes(),
          events,
          translator,
          log,
          onDskeEvent: opts.onDskeEvent,
        }),
    });
    log.info(upLine(cfg, wg0, aes0, aesPeers.length, describeGates(gate.status(), translator.peerName)));
    const running: RunningNode = {
      wg0,
      aes0,
      gate,
      dske: keyplanes.dske,
      psrd: keyplanes.psrd,
      ska: keyplanes.ska,
      events,
      pq,
      rosenpass,
      filter: filter.filter,
      config: cfg,
      startedAt,
      reloadPskFiles: () => pskFiles.reload(),
      trace: nodeTrace(cfg, { wg0: wg0.device, aes0: aes0.device }, gate, filter.filter),
      close,
      setPeers: (peers) =>
        followPeers(running, peers, [translator, pskFiles, filterFollower(filter.filter, log), site]),
      map: null,
    };
    running.map = await startMapPart(parts, running, opts.map, log);
    return running;
  } catch (e) {
    await close("start-up failed");
    throw e;
  }
}

/**
 * How a node stops: `close` closes the audit log, then the parts in reverse order; `onEnded` is for a
 * part that ended by itself (an interface deleted, a socket removed): it closes the node once, then
 * tells the caller.
 */
function nodeStop(
  audit: { close(reason: string): void },
  parts: PartStack,
  ended?: (reason: string) => void,
): { close(reason?: string): Promise<void>; onEnded(reason: string): void } {
  const close = async (reason = "stopped") => {
    audit.close(reason);
    await parts.close(reason);
  };
  let endedOnce = false;
  const onEnded = (reason: string) => {
    if (endedOnce) return;
    endedOnce = true;
    void close(reason).then(() => ended?.(reason));
  };
  return { close, onEnded };
}

/**
 * The gate's event handler: every event goes to `onGateEvent`; a suspected mismatch (handshakes keep
 * failing under the agreed key) also asks DSKE, once the key planes run, which keys the peer holds.
 */
function reconcilingGateEvents(
  keyplanes: () => KeyplanePart | undefined,
  onGateEvent?: (e: GateEvent) => void,
): (e: GateEvent) => void {
  return (e) => {
    if (e.type === "mismatch-suspected") keyplanes()?.dske?.reconcile(fromHex(e.peer));
    onGateEvent?.(e);
  };
}

/**
 * The kernel routes of the routed networks a node with inline peers accepts (fixed while it runs); a
 * map-driven node's routes follow its map instead (netmap-run.ts).
 */
function networkRoutesPart(cfg: NodeConfig, mapDriven: boolean): NodePart<{ close(): void } | null> {
  return {
    name: "routed networks",
    start: () => mapDriven ? null : startNetworkRoutes(cfg.peers, { wg0: cfg.wg0.name, aes0: cfg.aes0.name }),
  };
}

/** The packet filter as a follower of live peer changes (a failure is logged). */
function filterFollower(filter: NodeFilter, log: Logger): { setPeers(peers: PeerConfig[]): void } {
  return { setPeers: (p) => void filter.setPeers(p).catch((e) => log.error(`packet filter: ${e}`)) };
}

/** A live peer change (a map change) reaching the node's config and the parts that name or watch peers. */
function followPeers(
  node: RunningNode,
  peers: PeerConfig[],
  followers: ({ setPeers(peers: PeerConfig[]): unknown } | null)[],
): void {
  node.config = { ...node.config, peers };
  for (const follower of followers) void follower?.setPeers(peers);
}

/**
 * The network map part of a map-driven node (null without a map): started last, so that it applies
 * maps to a running node, and closed first.
 */
async function startMapPart(
  parts: PartStack,
  node: RunningNode,
  start: StartMap | undefined,
  log: Logger,
): Promise<MapRun | null> {
  if (!start) return null;
  for (const w of start.warnings) log.warn(w);
  // The map's modules (DNS server, sources, peer routes) load only for a map-driven node.
  const { startMapRun } = await import("./netmap-run.ts");
  return await parts.start({ name: "network map", start: () => startMapRun(node, start, log) });
}

/** The node's trace: the question answered with the data plane's own filter, gates and lockdown. */
function nodeTrace(
  config: NodeConfig,
  devices: { wg0: Device; aes0: Device },
  gate: PskGate,
  filter: NodeFilter,
): RunningNode["trace"] {
  const sources = { config, devices, gates: () => gate.status(), lockdownPorts: () => filter.lockdownPorts };
  return (question, now) => runTrace(sources, question, now);
}

/** Whether the packet filter runs: always, except in benchmarks that compare it on and off. */
function packetFilterOn(log: Logger): boolean {
  // Benchmarks only (`deno task bench` compares the filter on and off in one run): never in production.
  const on = Deno.env.get("TWOFOLD_BENCH_NO_FILTER") !== "1";
  if (!on) {
    log.warn("[BENCH: packet filter OFF, lockdown and policies not enforced] (TWOFOLD_BENCH_NO_FILTER)");
  }
  return on;
}

/** The filter part: both devices' filter, following the lockdown list as it changes. */
async function startFilter(
  cfg: NodeConfig,
  wg0: RunningInterface,
  aes0: RunningInterface,
  lockdown: LockdownList | undefined,
): Promise<{ filter: NodeFilter; close(): void }> {
  const filter = new NodeFilter(
    cfg,
    { wg0: wg0.device, aes0: aes0.device },
    lockdown?.ports ?? cfg.lockdown.extraPorts,
  );
  try {
    await filter.start();
  } catch (e) {
    filter.close();
    throw e;
  }
  const stopWatch = lockdown?.onChange((ports) => void filter.setLockdown(ports)) ?? (() => {});
  return {
    filter,
    close: () => {
      stopWatch();
      filter.close();
    },
  };
}

/** The start-up line: both interfaces, the peers, the gates. */
function upLine(
  cfg: NodeConfig,
  wg0: RunningInterface,
  aes0: RunningInterface,
  aesPeers: number,
  gates: string,
) {
  const wgAddress = formatIp(cfg.wg0.address.ip);
  return `node ${cfg.node.name} up: ${layerLabel("wg0", cfg.wg0.name)} ${cfg.wg0.address.text} ` +
    `udp/${wg0.device.listenPort}, ${layerLabel("aes0", cfg.aes0.name)} ${cfg.aes0.address.text} ` +
    `udp/${aes0.device.listenPort} on ${wgAddress} dev ${wg0.device.ifname} (mtu ${cfg.aes0.mtu}); ` +
    `${aesPeers} AES peer(s), ${cfg.peers.length - aesPeers} over wg0 only; ${gates}`;
}

/**
 * The aes0 gates as they are at this moment, for the start-up line: "aes0 gates: node-b open, node-c
 * closed". Later changes are logged by the gate events themselves.
 */
export function describeGates(gates: GateStatus[], name: (peerHex: string) => string): string {
  if (gates.length === 0) return "no aes0 gates";
  return `aes0 gates now: ${gates.map((g) => `${name(g.peer)} ${g.state}`).join(", ")}`;
}
