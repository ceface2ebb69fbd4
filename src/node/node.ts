/**
 * One edge node (`twofold up`): wg0 (ChaCha20-Poly1305) over the underlay and aes0 (AES-256-GCM)
 * inside it, both from the same static key, with every AES peer's aes0 PSK behind the PSK security
 * gate. Route steering, first cut: wg0's address covers 100.64.0.0/10 and aes0's covers its subnet,
 * so traffic to a peer's AES IP goes through aes0 and everything else (AES-exempt peers, hubs, wg0
 * IPs) through wg0; aes0's UDP socket is bound to our wg0 address and tied to the wg0 interface, so
 * its packets travel inside wg0 and it receives nothing from the underlay.
 * @module
 */
import "../crypto/aead-libcrypto.ts";
import { aesSuite, chachaSuite } from "../noise/suite.ts";
import { isAesPeer, type NodeConfig, type PeerConfig } from "../config/node-config.ts";
import { formatCidr, formatIp } from "../wireguard/allowedips.ts";
import { type RunningInterface, startInterface } from "../wireguard/interface.ts";
import { layerLabel } from "../wireguard/interface-name.ts";
import type { UapiPeerChange } from "../uapi/types.ts";
import { UapiErrno } from "../uapi/protocol.ts";
import { readPskFile } from "../keys/psk-file.ts";
import { type GateEvent, type GateStatus, handshakeOutcomeOf, PskGate, pskPolicy } from "../keys/psk-gate.ts";
import { logger } from "../log.ts";
import { REKEY_AFTER_TIME } from "../wireguard/constants.ts";
import { DskeAgreement, type DskeEvent } from "../dske/agreement.ts";
import { hubLinksFor } from "../dske/hub-client.ts";
import { PsrdStore } from "../dske/psrd-store.ts";
import { psrdHubProblem } from "./preflight.ts";
import { EventBus, type NodeEventInput, type NodeEventType } from "../events/bus.ts";
import { AuditLog } from "../audit/audit-log.ts";
import { auditInputOf } from "../audit/node-events.ts";
import { encodeBase64, fromHex, toHex } from "../encoding.ts";
import type { DeviceEvent } from "../wireguard/device.ts";
import type { SkaAgreement } from "../ska/agreement.ts";
import { startNodeSka } from "../ska/node-ska.ts";
import { openSharedKeyplaneListener, planeInstall, startCombiner } from "../keyplane/node-keyplanes.ts";
import type { KeyplaneListener } from "../keyplane/keyplane-listener.ts";
import type { PskCombiner } from "../keyplane/psk-combiner.ts";
import { usesDske } from "../config/key-source.ts";
import { mac } from "../crypto/blake2s.ts";
import { constantTimeEqual } from "../crypto/constant-time.ts";
import {
  type RosenpassPart,
  rosenpassPskManagerFor,
  rosenpassTestKnob,
  startRosenpassPart,
} from "./rosenpass-part.ts";
import type { PqEvent, RosenpassPskManager } from "./rosenpass-psk.ts";
import { parseEndpoint } from "../uapi/netaddr.ts";
import type { LockdownList } from "./lockdown-list.ts";
import { NodeFilter } from "./filter-part.ts";
import { runTrace, type TraceQuestion, type TraceResult } from "./trace.ts";

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

/** What {@link RunningNode.reloadPskFiles} did. */
export interface PskReload {
  /** PSK files read (one per manual AES peer with a pskFile). */
  files: number;
  /** Of those, the ones whose new key was installed. */
  installed: number;
  /** Of those, the ones that could not be read or installed (logged). */
  failed: number;
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
}

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

/** Brings up wg0 and aes0 for `cfg`; throws (with everything removed) when anything fails. */
export async function startNode(cfg: NodeConfig, opts: NodeOptions = {}): Promise<RunningNode> {
  const log = logger(cfg.node.name);
  const startedAt = Date.now();
  const events = opts.events ?? new EventBus();
  const audit = openNodeAudit(cfg, events);
  let peerByHex = new Map(cfg.peers.map((p) => [toHex(p.publicKey), p]));
  type PeerFields = Pick<NodeEventInput, "peer" | "publicKey">;
  const fieldsOf = (p: PeerConfig): PeerFields => ({ peer: p.name, publicKey: encodeBase64(p.publicKey) });
  const peerFields = (hex: string | null): PeerFields => {
    if (hex === null) return {};
    const p = peerByHex.get(hex);
    return p ? fieldsOf(p) : { publicKey: encodeBase64(fromHex(hex)) };
  };
  /** A peer as log lines name it: its config name (a key prefix only for a peer not in the config). */
  const peerName = (hex: string): string =>
    peerByHex.get(hex)?.name ?? `unconfigured peer ${encodeBase64(fromHex(hex)).slice(0, 8)}…`;
  const lastFailedEvent = new Map<string, number>();
  const publishDeviceEvent = (layer: "wg0" | "aes0", e: DeviceEvent) => {
    if (e.type === "handshake-completed") {
      events.publish({
        type: "handshake-completed",
        layer,
        ...peerFields(e.peer),
        reason: e.initiator ? "we initiated" : "the peer initiated",
        data: { initiator: e.initiator },
      });
      return;
    }
    // A refused handshake message, or a response of ours never confirmed: both a handshake failure.
    const key = `${layer}/${e.peer ?? ""}`;
    const now = Date.now();
    if (now - (lastFailedEvent.get(key) ?? -Infinity) < HANDSHAKE_FAILED_EVENT_INTERVAL_MS) return;
    lastFailedEvent.set(key, now);
    events.publish({ type: "handshake-failed", layer, ...peerFields(e.peer), reason: e.reason });
  };
  const publishFilterDrop = (layer: "wg0" | "aes0") => (hex: string, reason: string, count: number) => {
    events.publish({
      type: "packet-dropped",
      layer,
      ...peerFields(hex),
      reason,
      data: { count },
    });
  };
  // Benchmarks only (`deno task bench` compares the filter on and off in one run): never in production.
  const packetFilter = Deno.env.get("TWOFOLD_BENCH_NO_FILTER") !== "1";
  if (!packetFilter) {
    log.warn("[BENCH: packet filter OFF, lockdown and policies not enforced] (TWOFOLD_BENCH_NO_FILTER)");
  }
  const privateKey = cfg.node.privateKey;
  if (!privateKey) throw new Error("the node's private key was not loaded");
  const wgAddress = formatIp(cfg.wg0.address.ip);
  let ended = false;
  const onEnded = (reason: string) => {
    if (ended) return;
    ended = true;
    void close(reason).then(() => opts.onEnded?.(reason));
  };

  const wg0TestRekeySeconds = rosenpassTestKnob(log)?.wg0RekeyAfterSeconds;
  const wg0TestRekeyMs = wg0TestRekeySeconds === undefined ? undefined : wg0TestRekeySeconds * 1000;
  const pq = rosenpassPskManagerFor(cfg, {
    setPresharedKey: (peer, psk, extra) => wg0.device.setPresharedKey(peer, psk, extra),
    dropSessions: (peer) => wg0.device.dropSessions(peer),
  }, (e: PqEvent) => {
    const line = `wg0 ${e.type} for ${e.peer}${e.epoch !== null ? ` epoch ${e.epoch}` : ""}: ${e.reason}`;
    if (e.type === "pq-key-exchanged") log.info(line);
    else log.warn(line);
    const p = cfg.peers.find((c) => c.name === e.peer);
    events.publish({
      type: e.type,
      layer: "wg0",
      ...(p ? fieldsOf(p) : {}),
      epoch: e.epoch ?? undefined,
      reason: e.reason,
    });
  });
  const wg0 = await startInterface({
    ifname: cfg.wg0.name,
    nameField: "wg0.name",
    uapiDir: cfg.node.uapiSocketDir,
    suite: chachaSuite(),
    mtu: cfg.wg0.mtu,
    address: cfg.wg0.address.text,
    device: {
      onEvent: (e) => publishDeviceEvent("wg0", e),
      pskPolicy: pq.pskPolicy(),
      rekeyAfterTimeMs: wg0TestRekeyMs,
      onFilterDrop: publishFilterDrop("wg0"),
      packetFilter,
    },
    onEnded,
  });
  let aes0: RunningInterface | undefined;
  let dske: DskeAgreement | null = null;
  let store: PsrdStore | null = null;
  let ska: SkaAgreement | null = null;
  let rosenpass: RosenpassPart | null = null;
  let combiner: PskCombiner | null = null;
  let keyplaneListener: KeyplaneListener | null = null;
  const timers: ReturnType<typeof setInterval>[] = [];
  let filter: NodeFilter | undefined;
  let stopLockdownWatch = () => {};
  const close = async (reason = "stopped") => {
    audit.close(reason);
    for (const t of timers) clearInterval(t);
    rosenpass?.close();
    pq.close();
    stopLockdownWatch();
    filter?.close();
    dske?.close();
    ska?.close();
    keyplaneListener?.close();
    combiner?.close();
    store?.close();
    await aes0?.close(reason);
    await wg0.close(reason);
  };
  try {
    // wg0 pre-shared keys (the SKA broker's link): the device copies them; ours are wiped at once.
    const wgPsks = new Map(cfg.peers.flatMap((p) => p.wgPskFile ? [[p.name, readPskFile(p.wgPskFile)]] : []));
    let errno: number;
    try {
      errno = await wg0.device.apply({
        privateKey: privateKey.bytes(),
        listenPort: cfg.wg0.listenPort,
        replacePeers: true,
        peers: cfg.peers.map((p) => ({
          ...peerChange(p, formatCidr(p.wgIp), p.endpoint ?? undefined),
          presharedKey: wgPsks.get(p.name),
        })),
      });
    } finally {
      wgPsks.forEach((k) => k.fill(0));
    }
    if (errno !== 0) {
      throw new Error(`configuring wg0 failed (errno ${-errno}): is UDP port ${cfg.wg0.listenPort} free?`);
    }

    rosenpass = await startRosenpassPart({
      config: cfg,
      manager: pq,
      log,
      wg0EndpointAddress: (name) => {
        const p = cfg.peers.find((c) => c.name === name);
        const snap = p && wg0.device.snapshot().peers.find((s) => toHex(s.publicKey) === toHex(p.publicKey));
        return (snap?.endpoint ? parseEndpoint(snap.endpoint)?.ip : p?.endpoint?.ip) ?? null;
      },
    });

    const gate = new PskGate({
      setPresharedKey: (peer, psk, extra) => aes0?.device.setPresharedKey(peer, psk, extra) ?? false,
      initiateHandshake: (peer) => aes0?.device.initiateHandshake(peer),
      dropSessions: (peer) => aes0?.device.dropSessions(peer),
    }, {
      rotationIntervalMs: cfg.keys.rotationIntervalSeconds * 1000,
      maxAgeMs: cfg.keys.maxKeyAgeSeconds * 1000,
      manualMaxAgeMs: cfg.keys.manualMaxAgeSeconds === null ? Infinity : cfg.keys.manualMaxAgeSeconds * 1000,
      onEvent: (e) => {
        const level = e.type === "handshake" ? "debug" : GATE_WARNINGS.has(e.type) ? "warn" : "info";
        log[level](
          `aes0 gate ${e.type} for ${peerName(e.peer)}${
            e.epoch !== null ? ` epoch ${e.epoch}` : ""
          }: ${e.reason}`,
        );
        const type = GATE_EVENT_TYPES[e.type];
        if (type) {
          events.publish({
            type,
            layer: "aes0",
            ...peerFields(e.peer),
            epoch: e.epoch ?? undefined,
            reason: e.reason,
          });
        }
        // Handshakes keep failing under the agreed key: ask the peer which keys it holds.
        if (e.type === "mismatch-suspected") dske?.reconcile(fromHex(e.peer));
        opts.onGateEvent?.(e);
      },
    });
    let aesPeers = cfg.peers.filter(isAesPeer);
    for (const p of aesPeers) gate.addPeer(p.publicKey, p.keySource);
    aes0 = await startInterface({
      ifname: cfg.aes0.name,
      nameField: "aes0.name",
      uapiDir: cfg.node.uapiSocketDir,
      suite: aesSuite(),
      mtu: cfg.aes0.mtu,
      address: cfg.aes0.address.text,
      device: {
        // aes0 accepts only what came through wg0: the wg0 address alone would also be accepted from
        // the underlay (Linux takes a local destination on any interface).
        bindAddress: wgAddress,
        bindDevice: wg0.device.ifname,
        pskPolicy: pskPolicy(gate, { adoptUnknownAs: null }),
        rekeyAfterTimeMs: aesRekeyAfterMs(cfg.keys.rotationIntervalSeconds * 1000),
        onFilterDrop: publishFilterDrop("aes0"),
        packetFilter,
        onEvent: (e) => {
          const o = handshakeOutcomeOf(e);
          if (o) gate.handshakeResult(o.peer, o.outcome);
          publishDeviceEvent("aes0", e);
        },
      },
      onEnded,
    });
    const aesErrno = await aes0.device.apply({
      privateKey: privateKey.bytes(),
      listenPort: cfg.aes0.listenPort,
      replacePeers: true,
      peers: aesPeers.map((p) =>
        peerChange(p, formatCidr(p.aesIp!), { ip: formatIp(p.wgIp.addr), port: cfg.aes0.listenPort })
      ),
    });
    if (aesErrno !== 0) {
      throw new Error(
        `configuring aes0 failed (errno ${-aesErrno}): ${
          aesErrno === UapiErrno.PORT_IN_USE
            ? `is ${wgAddress}:${cfg.aes0.listenPort} free?`
            : `its UDP socket on ${wgAddress}:${cfg.aes0.listenPort} (tied to ${wg0.device.ifname}) could not be opened; see the line above`
        }`,
      );
    }
    filter = new NodeFilter(
      cfg,
      { wg0: wg0.device, aes0: aes0.device },
      opts.lockdown?.ports ?? cfg.lockdown.extraPorts,
    );
    await filter.start();
    const nodeFilter = filter;
    stopLockdownWatch = opts.lockdown?.onChange((ports) => void nodeFilter.setLockdown(ports)) ?? (() => {});
    // Static PSK files (the manual source): install now, and again with a new epoch when they change
    // (mtime, polled every second; on SIGHUP also the content). Only a keyed fingerprint of the last
    // installed key is kept, to tell whether a re-read file holds a new one.
    const fileState = new Map<string, { mtime: number; epoch: number; fingerprint: Uint8Array | null }>();
    const fingerprintKey = crypto.getRandomValues(new Uint8Array(32));
    const installFromFile = (p: PeerConfig, force = false): "installed" | "unchanged" | "failed" => {
      if (p.keySource !== "manual" || !p.pskFile) return "unchanged";
      let mtime: number;
      try {
        mtime = Deno.statSync(p.pskFile).mtime?.getTime() ?? 0;
      } catch (e) {
        if (!force) return "unchanged";
        log.warn(`PSK file for ${p.name}: ${p.pskFile} cannot be read (${(e as Error).name})`);
        return "failed";
      }
      const prev = fileState.get(p.name);
      if (prev && prev.mtime === mtime && !force) return "unchanged";
      try {
        const psk = readPskFile(p.pskFile);
        const fingerprint = mac(fingerprintKey, psk);
        if (
          force && prev?.mtime === mtime && prev.fingerprint &&
          constantTimeEqual(prev.fingerprint, fingerprint)
        ) {
          psk.fill(0);
          return "unchanged";
        }
        const epoch = (prev?.epoch ?? 0) + 1;
        fileState.set(p.name, { mtime, epoch, fingerprint: null });
        const result = gate.install(p.publicKey, psk, epoch, "manual");
        psk.fill(0);
        if (!result.ok) {
          log.warn(`PSK file for ${p.name} not installed: ${result.reason}`);
          return "failed";
        }
        fileState.set(p.name, { mtime, epoch, fingerprint });
        return "installed";
      } catch (e) {
        fileState.set(p.name, { mtime, epoch: prev?.epoch ?? 0, fingerprint: null });
        log.warn(`PSK file for ${p.name}: ${(e as Error).message}`);
        return "failed";
      }
    };
    const reloadPskFiles = (): PskReload => {
      const report = { files: 0, installed: 0, failed: 0 };
      for (const p of aesPeers) {
        if (p.keySource !== "manual" || !p.pskFile) continue;
        report.files++;
        const outcome = installFromFile(p, true);
        if (outcome === "installed") report.installed++;
        if (outcome === "failed") report.failed++;
      }
      return report;
    };
    for (const p of aesPeers) installFromFile(p);
    timers.push(setInterval(() => gate.tick(), 100));
    timers.push(setInterval(() => {
      for (const p of aesPeers) installFromFile(p);
    }, 1000));
    // ska+dske peers: both planes hand their keys to the combiner; both planes share TCP 51831.
    combiner = startCombiner(aesPeers, gate, log);
    keyplaneListener = openSharedKeyplaneListener(cfg, aesPeers, log);
    const dskePeers = aesPeers.filter((p) => usesDske(p.keySource));
    if (dskePeers.length > 0) {
      /** Hub id (hex) → the hub's config name, once the PSRD blocks are matched to the hub peers. */
      const hubNameById = new Map<string, string>();
      const hubName = (hubId: string) => hubNameById.get(hubId) ?? hubId.slice(0, 8);
      store = await PsrdStore.open(cfg.node.stateDir, {
        onLowWater: (b) => {
          log.warn(`PSRD with hub ${hubName(b.hubId)} is running low: ${b.txRemaining} B left to send`);
          events.publish({
            type: "psrd-low",
            hub: b.hubId,
            reason: `PSRD with hub ${hubName(b.hubId)} is below its low-water mark`,
            data: { txRemaining: b.txRemaining, rxRemaining: b.rxRemaining },
          });
        },
      });
      // Only blocks made for this node's key count; a foreign one (another node's copy) is named.
      const problem = psrdHubProblem(cfg, store.blocks());
      if (problem) throw new Error(problem);
      const selfHex = toHex(cfg.node.publicKey!);
      const hubPeers = cfg.peers.filter((p) => p.role === "hub");
      const hubIps = hubPeers.map((h) => formatIp(h.wgIp.addr));
      const links = hubLinksFor(store.blocks().filter((b) => b.peerId === selfHex), hubIps);
      for (const h of hubPeers) {
        const link = links.get(formatIp(h.wgIp.addr));
        if (!link) continue;
        link.name = h.name; // DSKE's messages name the hub as the config does
        hubNameById.set(link.hubId, h.name);
      }
      const dropKeyResults = Deno.env.get("TWOFOLD_TEST_FAULT") === "drop-key-result";
      if (dropKeyResults) {
        log.warn("[TEST FAULT: drops every second KEY_RESULT] (TWOFOLD_TEST_FAULT, tests only)");
      }
      dske = new DskeAgreement({
        selfPublicKey: cfg.node.publicKey!,
        selfPrivateKey: privateKey.bytes(),
        dropKeyResults,
        listenHost: wgAddress,
        peers: dskePeers.map((p) => ({ name: p.name, publicKey: p.publicKey, wgIp: formatIp(p.wgIp.addr) })),
        hubs: [...links.values()],
        k: cfg.keys.dskeThreshold,
        rotationIntervalMs: cfg.keys.rotationIntervalSeconds * 1000,
        stateDir: cfg.node.stateDir,
        store,
        install: planeInstall(gate, combiner, "dske"),
        connections: keyplaneListener?.source("dske"),
        closeGate: (peer, reason) => gate.close(peer, reason),
        onEvent: (e) => {
          const line = `dske ${e.type}${e.peer ? ` with ${e.peer}` : ""}${
            e.epoch !== undefined ? ` epoch ${e.epoch}` : ""
          }${e.hub ? ` hub ${hubName(e.hub)}` : ""}: ${e.reason}`;
          if (e.type === "key-agreed" || e.type === "epochs-reconciled") log.info(line);
          else log.warn(line);
          const type = DSKE_EVENT_TYPES[e.type];
          if (type) {
            const p = dskePeers.find((d) => d.name === e.peer);
            events.publish({
              type,
              layer: "aes0",
              ...(p ? fieldsOf(p) : {}),
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
          opts.onDskeEvent?.(e);
        },
      });
      dske.start();
    }
    ska = startNodeSka(cfg, aesPeers, gate, events, log, undefined, {
      install: planeInstall(gate, combiner, "ska"),
      connections: keyplaneListener?.source("ska"),
    });
    log.info(
      `node ${cfg.node.name} up: ${layerLabel("wg0", cfg.wg0.name)} ${cfg.wg0.address.text} ` +
        `udp/${wg0.device.listenPort}, ${layerLabel("aes0", cfg.aes0.name)} ${cfg.aes0.address.text} ` +
        `udp/${aes0.device.listenPort} on ${wgAddress} dev ${wg0.device.ifname} (mtu ${cfg.aes0.mtu}); ` +
        `${aesPeers.length} AES peer(s), ${cfg.peers.length - aesPeers.length} over wg0 only; ` +
        `${describeGates(gate.status(), peerName)}`,
    );
    const aes0Device = aes0.device;
    const trace = (question: TraceQuestion, now: number) =>
      runTrace(
        {
          config: cfg,
          devices: { wg0: wg0.device, aes0: aes0Device },
          gates: () => gate.status(),
          lockdownPorts: () => nodeFilter.lockdownPorts,
        },
        question,
        now,
      );
    const running: RunningNode = {
      wg0,
      aes0,
      gate,
      dske,
      psrd: store,
      ska,
      events,
      pq,
      rosenpass,
      filter,
      config: cfg,
      startedAt,
      reloadPskFiles,
      trace,
      close,
      setPeers: (peers) => {
        running.config = { ...running.config, peers };
        peerByHex = new Map(peers.map((p) => [toHex(p.publicKey), p]));
        aesPeers = peers.filter(isAesPeer);
        // A peer that left forgets its file state: back in the map, its file is installed again.
        for (const name of fileState.keys()) {
          if (!aesPeers.some((p) => p.name === name)) fileState.delete(name);
        }
        for (const p of aesPeers) installFromFile(p);
      },
    };
    return running;
  } catch (e) {
    await close("start-up failed");
    throw e;
  }
}

/**
 * The aes0 gates as they are at this moment, for the start-up line: "aes0 gates: node-b open, node-c
 * closed". Later changes are logged by the gate events themselves.
 */
export function describeGates(gates: GateStatus[], name: (peerHex: string) => string): string {
  if (gates.length === 0) return "no aes0 gates";
  return `aes0 gates now: ${gates.map((g) => `${name(g.peer)} ${g.state}`).join(", ")}`;
}

/**
 * aes0 rekeys (as initiator) twice per key rotation interval, at most every 120 s (WireGuard's
 * REKEY_AFTER_TIME) and at least every 1 s: a rotated PSK applies at the next natural handshake, so
 * every key is used within about half an interval without any forced handshake.
 */
export function aesRekeyAfterMs(rotationIntervalMs: number): number {
  return Math.max(1_000, Math.min(REKEY_AFTER_TIME, Math.floor(rotationIntervalMs / 2)));
}

function peerChange(
  p: PeerConfig,
  allowedIp: string,
  endpoint: { ip: string; port: number } | undefined,
): UapiPeerChange {
  return {
    publicKey: p.publicKey,
    remove: false,
    updateOnly: false,
    endpoint,
    persistentKeepalive: p.persistentKeepalive,
    replaceAllowedIps: true,
    allowedIps: [allowedIp],
  };
}

/**
 * Opens `<stateDir>/audit.jsonl` and records every audited bus event in it (audit/node-events.ts),
 * with the peer's key source; `close` records why the node stopped and closes the file.
 */
function openNodeAudit(cfg: NodeConfig, events: EventBus): { close(reason: string): void } {
  let audit: AuditLog;
  try {
    audit = AuditLog.open(cfg.node.stateDir);
  } catch (e) {
    throw new Error(`audit log in node.stateDir ${cfg.node.stateDir}: ${(e as Error).message}`);
  }
  audit.append({ event: "audit-opened", fields: { node: cfg.node.name, reason: "node starting" } });
  const keySources = new Map<string, string>(cfg.peers.map((p) => [p.name, p.keySource]));
  const unsubscribe = events.subscribe((e) => {
    const input = auditInputOf(e, e.peer !== undefined ? keySources.get(e.peer) : undefined);
    if (input) audit.append(input, e.at);
  });
  return {
    close(reason: string) {
      unsubscribe();
      audit.append({ event: "audit-closed", fields: { node: cfg.node.name, reason } });
      audit.close();
    },
  };
}
