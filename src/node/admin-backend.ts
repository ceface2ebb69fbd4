/**
 * The node side of the admin API: {@link NodeAdminBackend} answers the Hono app (`src/admin/app.ts`)
 * from a running node: both devices' UAPI snapshots and counters, the PSK gate, DSKE and its hubs, the
 * PSRD pools and the persisted lockdown list. It copies only public facts (public keys, endpoints,
 * counters, epochs, reasons); the snapshots' private key and PSK fields are never read.
 * @module
 */
import { VERSION } from "../version.ts";
import type {
  AdminBackend,
  AesPeerStatus,
  HubStatus,
  InterfaceStatus,
  LayerPeerStatus,
  LockdownPort,
  LockdownState,
  NetmapStatus,
  NodeCounters,
  NodeStatus,
  PeerRoute,
  PeerStatus,
  ReloadOutcome,
  Wg0PeerStatus,
} from "../admin/model.ts";
import { peerRoutes } from "./peer-routes.ts";
import { isAesPeer, type NodeConfig } from "../config/node-config.ts";
import { aeadBackendInUse } from "../crypto/backend.ts";
import type { AeadName } from "../crypto/aead.ts";
import { DeviceWord, DROP_STATS, type StatName } from "../wireguard/dataplane/shared-state.ts";
import type { DskeHubStatus, DskePeerStatus } from "../dske/agreement.ts";
import { usesDske as usesDskeSource, usesSka } from "../config/key-source.ts";
import type { BlockInfo } from "../dske/psrd-store.ts";
import type { SkaPeerStatus } from "../ska/agreement.ts";
import { encodeBase64, toHex } from "../encoding.ts";
import type { EventBus, NodeEvent } from "../events/bus.ts";
import type { GateStatus } from "../keys/psk-gate.ts";
import type { Suite } from "../noise/suite.ts";
import type { UapiDeviceSnapshot, UapiPeerSnapshot } from "../uapi/types.ts";
import { formatCidr, formatIp } from "../wireguard/allowedips.ts";
import { describeRouteAccept } from "../config/route-accept.ts";
import type { LockdownList } from "./lockdown-list.ts";
import type { SupportSources } from "../support/sources.ts";
import type { PqPeerStatus } from "./rosenpass-psk.ts";
import { TraceError, type TraceQuestion, type TraceResult } from "./trace.ts";

/** The drop reason under which the kernel's TUN queue drops are reported (`twofold_drops_total`). */
export const TUN_QUEUE_FULL = "tunQueueFull";

/** What the backend reads from one device (a `Device` satisfies it). */
export interface AdminDeviceView {
  /** Cipher suite. */
  readonly suite: Suite;
  /** Bound UDP port. */
  readonly listenPort: number;
  /** UAPI snapshot (only its public fields are read). */
  snapshot(): UapiDeviceSnapshot;
  /** Data-plane counters and the header (MTU). */
  readonly shared: { statsSnapshot(): Record<StatName, number>; readonly header: Int32Array };
}

/** One hub as DSKE reports it (`DskeAgreement.hubStatus()`; the block id is not shown). */
export type DskeHubView = Omit<DskeHubStatus, "blockId">;

/** What the backend reads from a running node (a `RunningNode` satisfies it). */
export interface AdminNodeView {
  /** The outer interface (and the kernel's count of TUN queue drops, when it can be read). */
  wg0: { device: AdminDeviceView; tunQueueDrops?(): number };
  /** The inner interface. */
  aes0: { device: AdminDeviceView; tunQueueDrops?(): number };
  /** The PSK gate. */
  gate: { status(): GateStatus[] };
  /** DSKE, when it runs. */
  dske: { status(): DskePeerStatus[]; hubStatus(): DskeHubView[]; rejectedFrames(): number } | null;
  /** SKA, when it runs (absent or null otherwise). */
  ska?: { status(): SkaPeerStatus[]; readonly brokerReachable: boolean | null } | null;
  /** PSRD pools, when DSKE runs. */
  psrd: { blocks(): BlockInfo[] } | null;
  /** The event bus. */
  events: EventBus;
  /** wg0's post-quantum (Rosenpass) state per peer name; absent: no peer is managed. */
  pq?: { status(name: string): PqPeerStatus | undefined };
  /** The configuration the node runs. */
  config: NodeConfig;
  /** Start time (unix ms). */
  startedAt: number;
  /** Answers a trace question (node/trace.ts); absent on a node without a packet filter. */
  trace?(question: TraceQuestion, now: number): TraceResult;
}

const AEAD_NAMES: Record<AeadName, string> = {
  "chacha20-poly1305": "ChaCha20-Poly1305",
  "aes-256-gcm": "AES-256-GCM",
};

/** Seconds with one decimal. */
function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

/** A peer's post-quantum state for the status model (off when unmanaged or unknown). */
function pqStatus(s: PqPeerStatus | undefined, now: number): Wg0PeerStatus["pq"] {
  if (!s || s.mode === "off") {
    return { mode: "off", state: "off", epoch: null, ageSeconds: null, exchanges: 0 };
  }
  return {
    mode: s.mode,
    state: s.state,
    epoch: s.epoch,
    ageSeconds: s.exchangedAt === null ? null : seconds(now - s.exchangedAt),
    exchanges: s.exchanges,
  };
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/** Options of {@link NodeAdminBackend}. */
export interface NodeAdminBackendOptions {
  /** Clock (unix ms), for tests. */
  clock?: () => number;
  /** The config file the node runs (absolute), for the support bundle; null when unknown. */
  configPath?: string | null;
  /** The running network map's status (a map-driven node); absent: peers are inline. */
  netmap?: () => NetmapStatus;
  /** A map-driven node's routed networks in force (they follow the map and reloads); absent: the config's. */
  routes?: () => NodeStatus["routes"];
  /** Re-reads what the node takes live (`POST /v1/reload`); absent: the node cannot reload. */
  reload?: () => Promise<ReloadOutcome>;
}

/** The admin backend of one running node. */
export class NodeAdminBackend implements AdminBackend {
  /** The node's event bus. */
  readonly events: EventBus;
  readonly #node: AdminNodeView;
  readonly #lockdown: LockdownList;
  readonly #clock: () => number;
  readonly #netmap: (() => NetmapStatus) | undefined;
  readonly #routes: () => NodeStatus["routes"];
  /** Re-reads what the node takes live, when it can. */
  readonly reload?: () => Promise<ReloadOutcome>;
  readonly #rotations = new Map<string, { ok: number; failed: number }>();
  readonly #lowHubs = new Set<string>();
  readonly #unsubscribe: () => void;
  readonly #configPath: string | null;

  /**
   * Reads `node`; `lockdown` is the node's loaded list. Counts rotations from the bus (the history kept
   * so far, then live) until {@link close}.
   */
  constructor(node: AdminNodeView, lockdown: LockdownList, opts: NodeAdminBackendOptions = {}) {
    this.#node = node;
    this.#lockdown = lockdown;
    this.events = node.events;
    this.#clock = opts.clock ?? Date.now;
    this.#configPath = opts.configPath ?? null;
    this.#netmap = opts.netmap;
    this.#routes = opts.routes ?? (() => {
      const cfg = this.#node.config;
      return {
        advertise: (cfg.node.advertise ?? []).map(formatCidr),
        accept: describeRouteAccept(cfg.routes.accept, formatCidr),
      };
    });
    if (opts.reload) this.reload = opts.reload;
    for (const p of node.config.peers) {
      if (isAesPeer(p)) this.#rotations.set(p.name, { ok: 0, failed: 0 });
    }
    for (const e of node.events.since(0)) this.#count(e);
    this.#unsubscribe = node.events.subscribe((e) => this.#count(e));
  }

  /**
   * The node's part of the support bundle: its config path and state directory, both devices, and
   * the key material it holds (private key, PSK file contents) for the bundle's known-secret search.
   */
  supportSources(): SupportSources {
    const node = this.#node;
    const cfg = node.config;
    return {
      nodeName: cfg.node.name,
      configPath: this.#configPath,
      stateDir: cfg.node.stateDir,
      devices: () => [
        { name: cfg.wg0.name, snapshot: node.wg0.device.snapshot() },
        { name: cfg.aes0.name, snapshot: node.aes0.device.snapshot() },
      ],
      secrets: () => {
        const out: Uint8Array[] = [];
        const own = cfg.node.privateKey?.bytes();
        if (own) out.push(own);
        for (const p of cfg.peers) if (p.psk) out.push(p.psk.bytes());
        return out;
      },
    };
  }

  /** Stops counting events (the node is stopping). */
  close(): void {
    this.#unsubscribe();
  }

  #count(e: NodeEvent): void {
    if (e.type === "psrd-low" && e.hub) this.#lowHubs.add(e.hub);
    if (!e.peer || (e.type !== "key-rotated" && e.type !== "rotation-failed")) return;
    const r = this.#rotations.get(e.peer) ?? { ok: 0, failed: 0 };
    if (e.type === "key-rotated") r.ok++;
    else r.failed++;
    this.#rotations.set(e.peer, r);
  }

  /** A fresh status snapshot; no key material. */
  status(): NodeStatus {
    const now = this.#clock();
    const cfg = this.#node.config;
    const wgSnap = this.#node.wg0.device.snapshot();
    const aesSnap = this.#node.aes0.device.snapshot();
    const byKey = (s: UapiDeviceSnapshot) => new Map(s.peers.map((p) => [toHex(p.publicKey), p]));
    const wgPeers = byKey(wgSnap);
    const aesPeers = byKey(aesSnap);
    const gates = new Map(this.#node.gate.status().map((g) => [g.peer, g]));
    const dskeByName = new Map((this.#node.dske?.status() ?? []).map((d) => [d.peer, d]));
    const skaByName = new Map((this.#node.ska?.status() ?? []).map((s) => [s.peer, s]));
    const publicKey = cfg.node.publicKey ? encodeBase64(cfg.node.publicKey) : "";

    const peers: PeerStatus[] = cfg.peers.map((p) => {
      const hex = toHex(p.publicKey);
      const wg = layer(wgPeers.get(hex), now);
      const pq = pqStatus(this.#node.pq?.status(p.name), now);
      const wg0: Wg0PeerStatus = {
        ...wg,
        psk: pq.mode !== "off" ? { source: "rosenpass", epoch: pq.epoch, ageSeconds: pq.ageSeconds } : {
          source: wgPeers.get(hex) && !isZero(wgPeers.get(hex)!.presharedKey) ? "static" : "none",
          epoch: null,
          ageSeconds: null,
        },
        pq,
      };
      const gate = gates.get(hex);
      let aes0: AesPeerStatus | null = null;
      if (isAesPeer(p)) {
        const d = usesDskeSource(p.keySource) ? dskeByName.get(p.name) : undefined;
        aes0 = {
          ...layer(aesPeers.get(hex), now),
          keySource: p.keySource,
          gate: {
            state: gate?.state ?? "closed",
            reason: gate?.reason ?? "not in the gate",
            mismatchSuspected: gate?.mismatchSuspected ?? false,
          },
          keyEpoch: gate?.epoch ?? null,
          keyAgeSeconds: gate?.keyAgeMs != null ? seconds(gate.keyAgeMs) : null,
          lastHandshakeEpoch: gate?.lastHandshakeEpoch ?? null,
          keyLimits: p.keySource === "manual"
            ? { rotationIntervalSeconds: null, maxAgeSeconds: cfg.keys.manualMaxAgeSeconds }
            : {
              rotationIntervalSeconds: cfg.keys.rotationIntervalSeconds,
              maxAgeSeconds: cfg.keys.maxKeyAgeSeconds,
            },
          ska: skaView(usesSka(p.keySource) ? skaByName.get(p.name) : undefined),
          dske: d ? dskeView(d) : null,
        };
      }
      return {
        name: p.name,
        publicKey: encodeBase64(p.publicKey),
        role: p.role,
        aes: p.aesIp !== null,
        wg0,
        aes0,
        routes: {
          advertised: (p.routes ?? []).map(formatCidr),
          accepted: (p.acceptedRoutes ?? []).map(formatCidr),
        },
      };
    });

    const usesDske = cfg.peers.some((p) => usesDskeSource(p.keySource) && isAesPeer(p));
    return {
      node: {
        name: cfg.node.name,
        publicKey,
        version: VERSION,
        startedAt: new Date(this.#node.startedAt).toISOString(),
        uptimeSeconds: Math.max(0, Math.floor((now - this.#node.startedAt) / 1000)),
      },
      interfaces: {
        wg0: iface(cfg.wg0.name, this.#node.wg0.device, cfg.wg0.mtu, cfg.wg0.address.text, publicKey),
        aes0: iface(cfg.aes0.name, this.#node.aes0.device, cfg.aes0.mtu, cfg.aes0.address.text, publicKey),
      },
      peers,
      dske: usesDske
        ? {
          threshold: cfg.keys.dskeThreshold,
          rotationIntervalSeconds: cfg.keys.rotationIntervalSeconds,
          hubs: this.#hubs(dskeByName),
          rejectedPeerFrames: this.#node.dske?.rejectedFrames() ?? 0,
        }
        : null,
      ska: this.#node.ska
        ? {
          broker: cfg.peers.find((p) => p.role === "broker")?.name ?? "",
          brokerReachable: this.#node.ska.brokerReachable,
          rotationIntervalSeconds: cfg.keys.rotationIntervalSeconds,
        }
        : null,
      lockdown: this.lockdown(),
      netmap: this.#netmap?.() ?? null,
      routes: this.#routes(),
    };
  }

  #hubs(dskeByName: Map<string, DskePeerStatus>): HubStatus[] {
    const cfg = this.#node.config;
    const hubNameByIp = new Map(
      cfg.peers.filter((p) => p.role === "hub").map((p) => [formatIp(p.wgIp.addr), p.name]),
    );
    const blocks = (this.#node.psrd?.blocks() ?? []).filter((b) => b.role === "client");
    const bad = new Set([...dskeByName.values()].flatMap((d) => d.badHubs));
    const hostOf = (endpoint: string) => endpoint.replace(/:[0-9]+$/, "").replace(/^\[(.*)\]$/, "$1");
    return (this.#node.dske?.hubStatus() ?? []).map((h) => {
      const mine = blocks.filter((b) => b.hubId === h.hubId);
      const txRemaining = mine.reduce((n, b) => n + b.txRemaining, 0);
      const rxRemaining = mine.reduce((n, b) => n + b.rxRemaining, 0);
      return {
        name: hubNameByIp.get(hostOf(h.endpoint)) ?? h.hubId.slice(0, 8),
        hubId: h.hubId,
        endpoint: h.endpoint,
        reachable: h.reachable,
        lastAnswerAgeSeconds: h.lastAnswerAt === null ? null : seconds(this.#clock() - h.lastAnswerAt),
        misbehaving: h.misbehaving || bad.has(h.hubId),
        psrd: {
          txRemaining,
          rxRemaining,
          low: this.#lowHubs.has(h.hubId) || txRemaining === 0 || rxRemaining === 0,
        },
      };
    });
  }

  /**
   * Drops by interface and reason (the data plane's, plus `tunQueueFull`: packets the kernel dropped
   * because the TUN queue was full), rotations ok/failed per AES peer.
   */
  counters(): NodeCounters {
    const drops = (i: AdminNodeView["wg0"]) => {
      const s = i.device.shared.statsSnapshot();
      const out: Record<string, number> = Object.fromEntries(DROP_STATS.map((n) => [n, s[n]]));
      if (i.tunQueueDrops) out[TUN_QUEUE_FULL] = i.tunQueueDrops();
      return out;
    };
    return {
      drops: { wg0: drops(this.#node.wg0), aes0: drops(this.#node.aes0) },
      rotations: Object.fromEntries([...this.#rotations].map(([k, v]) => [k, { ...v }])),
    };
  }

  routes(): PeerRoute[] {
    const cfg = this.#node.config;
    const gates = new Map(this.#node.gate.status().map((g) => [g.peer, g]));
    return peerRoutes(cfg.peers, { wg0: cfg.wg0.name, aes0: cfg.aes0.name }, gates);
  }

  /** The lockdown list in force, enforced by the node's packet filter (node/filter-part.ts). */
  lockdown(): LockdownState {
    return { ports: this.#lockdown.ports, enforced: true };
  }

  /** Answers `POST /v1/trace` (node/trace.ts); a question it cannot answer is `{error}`, one line. */
  trace(question: TraceQuestion): TraceResult | { error: string } {
    if (!this.#node.trace) return { error: "this node has no packet filter to trace" };
    try {
      return this.#node.trace(question, Date.now());
    } catch (e) {
      if (e instanceof TraceError) return { error: e.message };
      throw e;
    }
  }

  /** Persists (atomically) and then applies `ports`; throws when saving fails (the old list stays). */
  setLockdown(ports: LockdownPort[]): Promise<LockdownState> {
    // The app logs the change (and a failure); the node's filter follows the list (LockdownList.onChange).
    try {
      this.#lockdown.set(ports);
      return Promise.resolve(this.lockdown());
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

function layer(p: UapiPeerSnapshot | undefined, now: number): LayerPeerStatus {
  if (!p) {
    return {
      endpoint: null,
      allowedIps: [],
      lastHandshake: null,
      lastHandshakeAgeSeconds: null,
      rxBytes: 0,
      txBytes: 0,
    };
  }
  const hs = p.lastHandshakeMs > 0 ? p.lastHandshakeMs : null;
  return {
    endpoint: p.endpoint,
    allowedIps: [...p.allowedIps],
    lastHandshake: hs !== null ? new Date(hs).toISOString() : null,
    lastHandshakeAgeSeconds: hs !== null ? Math.max(0, seconds(now - hs)) : null,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
  };
}

function iface(
  name: string,
  d: AdminDeviceView,
  configuredMtu: number,
  address: string,
  publicKey: string,
): InterfaceStatus {
  const mtu = Atomics.load(d.shared.header, DeviceWord.mtu);
  const stats = d.shared.statsSnapshot();
  return {
    name,
    cipherSuite: d.suite.construction,
    aead: AEAD_NAMES[d.suite.aead.name] ?? d.suite.aead.name,
    aeadBackend: d.suite.aead.backend ?? aeadBackendInUse() ?? "unknown",
    listenPort: d.listenPort,
    mtu: mtu > 0 ? mtu : configuredMtu,
    address,
    publicKey,
    filterDrops: {
      lockdown: stats.filterLockdown,
      policy: stats.filterPolicy,
      malformed: stats.filterMalformed,
      fragment: stats.filterFragment,
    },
  };
}

/** The admin view of one SKA peer's agreement (null when the peer does not use SKA). */
function skaView(s: SkaPeerStatus | undefined): AesPeerStatus["ska"] {
  return s
    ? {
      role: s.role,
      lastEpoch: s.lastEpoch,
      lastIntermediateEpoch: s.lastIntermediateEpoch,
      rotationsOk: s.agreed,
      rotationsFailed: s.failed,
    }
    : null;
}

/** A peer's DSKE state as the status shows it. */
function dskeView(d: DskePeerStatus): NonNullable<AesPeerStatus["dske"]> {
  return {
    role: d.role,
    lastEpoch: d.lastEpoch,
    rotationsOk: d.agreed,
    rotationsFailed: d.failed,
    badHubs: [...d.badHubs],
    problem: d.problem,
    heldEpochs: [...d.heldEpochs],
  };
}
