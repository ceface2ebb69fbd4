/**
 * What the admin API serves, as plain data: the contract between a running node (which implements
 * {@link AdminBackend}) and the Hono app (`src/admin/app.ts`), the CLI clients and the tests. Nothing
 * here holds a secret: keys appear only as public keys (base64), key material never.
 * @module
 */
import type { EventBus } from "../events/bus.ts";
import type { KeySource } from "../config/key-source.ts";
import type { SupportSources } from "../support/sources.ts";
import type { TraceQuestionBody, TraceResultBody } from "./routes/trace.ts";

import type { LockdownPort } from "../config/lockdown-ports.ts";

/** One wg0 lockdown extra port or range; re-exported from `config/lockdown-ports.ts`. */
export type { LockdownPort } from "../config/lockdown-ports.ts";

/** The lockdown list as the API reports it. */
export interface LockdownState {
  /** Extra ports wg0 delivers (beyond ICMP, UDP 51830, TCP 51831) when both peers use AES. */
  ports: LockdownPort[];
  /** Whether a firewall enforces the list on this node (false until the wg0 firewall lands). */
  enforced: boolean;
}

/** One interface. */
export interface InterfaceStatus {
  /** Interface name ("wg0", "aes0"). */
  name: string;
  /** Noise construction string, e.g. `Noise_IKpsk2_25519_AESGCM_BLAKE2s`. */
  cipherSuite: string;
  /** AEAD name, e.g. "AES-256-GCM", "ChaCha20-Poly1305". */
  aead: string;
  /** AEAD implementation in use: "libcrypto" (OpenSSL via FFI) or "noble" (portable). */
  aeadBackend: string;
  /** Bound UDP port. */
  listenPort: number;
  /** TUN MTU. */
  mtu: number;
  /** Interface address (CIDR). */
  address: string;
  /** Our public key, base64. */
  publicKey: string;
  /** Packets the packet filter dropped on this interface since start, by reason (absent: no filter). */
  filterDrops?: FilterDrops;
}

/** The packet filter's drops of one interface, by reason. */
export interface FilterDrops {
  /** Not on the wg0 lockdown list (between AES peers). */
  lockdown: number;
  /** Accepted by no access-policy rule. */
  policy: number;
  /** A malformed IP header. */
  malformed: number;
  /** A fragment without its first fragment's verdict, or a tiny or overlapping one. */
  fragment: number;
}

/** One peer on one layer. */
export interface LayerPeerStatus {
  /** Current endpoint ("ip:port"), or null when none is known. */
  endpoint: string | null;
  /** Allowed IPs (CIDR). */
  allowedIps: string[];
  /** Last completed handshake, ISO 8601, or null. */
  lastHandshake: string | null;
  /** Seconds since the last completed handshake, or null. */
  lastHandshakeAgeSeconds: number | null;
  /** Bytes received from / sent to the peer on this layer. */
  rxBytes: number;
  txBytes: number;
}

/** aes0-specific per-peer state: the PSK gate and the key agreement. */
export interface AesPeerStatus extends LayerPeerStatus {
  /** Where the key comes from. */
  keySource: KeySource;
  /** Gate state and why. */
  gate: { state: "closed" | "open" | "stale"; reason: string; mismatchSuspected: boolean };
  /** Epoch of the key aes0 holds (null while closed). */
  keyEpoch: number | null;
  /** Age of that key in seconds (null while closed). */
  keyAgeSeconds: number | null;
  /** Epoch the latest completed handshake used (null if none under an agreed key). */
  lastHandshakeEpoch: number | null;
  /**
   * What the key's age is measured against: the expected rotation interval (null for a manual key,
   * which nobody rotates) and the age at which the key expires and the gate closes (null: never).
   */
  keyLimits?: { rotationIntervalSeconds: number | null; maxAgeSeconds: number | null } | null;
  /** SKA state for `keySource: "ska"` and `"ska+dske"` peers (absent or null otherwise). */
  ska?: {
    role: "initiator" | "responder";
    lastEpoch: number | null;
    /** Epoch of the latest intermediate key the broker sent for this pair. */
    lastIntermediateEpoch: number | null;
    rotationsOk: number;
    rotationsFailed: number;
  } | null;
  /** DSKE state for `keySource: "dske"` and `"ska+dske"` peers, else null. */
  dske: {
    role: "generator" | "recoverer";
    lastEpoch: number | null;
    rotationsOk: number;
    rotationsFailed: number;
    /** Hub ids (hex) named as misbehaving in the latest round. */
    badHubs: string[];
    /**
     * When the latest round could not trust the shares (a failed key confirmation; shares inconsistent:
     * how many hubs could be lying, which took part), in words; null once a round succeeds.
     */
    problem: string | null;
    /** Epochs of the agreed keys held in memory for reconciliation with the peer (oldest first). */
    heldEpochs: number[];
  } | null;
}

/** wg0-specific per-peer state: its PSK (post-quantum exchange). */
export interface Wg0PeerStatus extends LayerPeerStatus {
  /** PSK / post-quantum state of wg0 for this peer. */
  psk: {
    /** "none" (no PSK), "static" (configured), "rosenpass" (rotated by the PQ exchange). */
    source: "none" | "static" | "rosenpass";
    /** Epoch of the PQ key, when rotated. */
    epoch: number | null;
    /** Age of the PQ key in seconds, when rotated. */
    ageSeconds: number | null;
  };
  /**
   * Post-quantum (Rosenpass) state: mode "off" (wg0's PSK not managed), or state "waiting" (no exchange
   * yet: the PSK is random, closed), "exchanged" (epoch and age of the installed key), "stale" (no
   * exchange for 180 s: strict mode made the PSK random again, permissive mode keeps the stale key).
   */
  pq: {
    mode: "off" | "permissive" | "strict";
    state: "off" | "waiting" | "exchanged" | "stale";
    epoch: number | null;
    ageSeconds: number | null;
    exchanges: number;
  };
}

/** One peer, both layers. */
export interface PeerStatus {
  /** Name from the config. */
  name: string;
  /** WireGuard public key, base64. */
  publicKey: string;
  /** "peer" (an edge node) or "hub" (a DSKE security hub). */
  role: "peer" | "hub" | "broker";
  /** True when the peer has an AES IP (traffic to it goes through aes0). */
  aes: boolean;
  /** Outer layer. */
  wg0: Wg0PeerStatus;
  /** Inner layer, or null for AES-exempt peers and hubs. */
  aes0: AesPeerStatus | null;
  /**
   * Networks the peer routes for others (site-to-site): all it advertises, and those this node
   * accepts (routed through the peer's layer: aes0 for an AES peer, wg0 for an AES-exempt one).
   */
  routes: { advertised: string[]; accepted: string[] };
}

/** One security hub this node holds PSRD with. */
export interface HubStatus {
  /** Name from the config. */
  name: string;
  /** Hub id, hex. */
  hubId: string;
  /** DSKE endpoint ("ip:port"). */
  endpoint: string;
  /**
   * Whether the latest request to it got an authenticated answer (null before any). A recoverer asks
   * only the hubs a key offer lists, so read it with {@link lastAnswerAgeSeconds}.
   */
  reachable: boolean | null;
  /** Seconds since its latest authenticated answer; null if it never answered. */
  lastAnswerAgeSeconds: number | null;
  /** True when it was named as misbehaving in a recent round. */
  misbehaving: boolean;
  /** PSRD bytes left to send to / receive from it, and whether below the low-water mark. */
  psrd: { txRemaining: number; rxRemaining: number; low: boolean };
}

/** The whole node. */
export interface NodeStatus {
  node: {
    /** Node name. */
    name: string;
    /** WireGuard public key, base64. */
    publicKey: string;
    /** twofold version. */
    version: string;
    /** Start time, ISO 8601. */
    startedAt: string;
    /** Seconds since start. */
    uptimeSeconds: number;
  };
  /** Both interfaces. */
  interfaces: { wg0: InterfaceStatus; aes0: InterfaceStatus };
  /** Every configured peer. */
  peers: PeerStatus[];
  /** DSKE, when any peer uses it; else null. */
  dske: {
    threshold: number;
    rotationIntervalSeconds: number;
    hubs: HubStatus[];
    /** Node-to-node DSKE frames dropped since start (wrong sender, bad tag, malformed, stale). */
    rejectedPeerFrames: number;
  } | null;
  /** SKA, when any peer uses it (absent or null otherwise). */
  ska?: {
    /** The broker's peer name. */
    broker: string;
    /** Whether the latest request to the broker got an answer; null before any. */
    brokerReachable: boolean | null;
    rotationIntervalSeconds: number;
  } | null;
  /** The wg0 lockdown extra-port list. */
  lockdown: LockdownState;
  /** The network map the node runs, or null when its peers are inline in the config. */
  netmap: NetmapStatus | null;
  /**
   * Routed networks (site-to-site): what this node advertises for others (`node.advertise`, or its
   * map entry when the config does not say) and which peers' networks it accepts (`routes.accept`).
   */
  routes: { advertise: string[]; accept: string };
}

/** What a reload did (`POST /v1/reload`, SIGHUP). */
export interface ReloadOutcome {
  /** One line: what was re-read and applied. */
  summary: string;
  /** Changes found that need a restart of the node, one short line each. */
  restartNeeded: string[];
}

/** One peer route (`GET /v1/routes`): where traffic to a peer's address goes, and why. */
export interface PeerRoute {
  /** The peer's address as a host prefix ("100.127.0.2/32"). */
  destination: string;
  /** The interface it is routed to (wg0's or aes0's configured name). */
  interface: string;
  /** Which layer that is. */
  layer: "wg0" | "aes0";
  /** The peer's name. */
  peer: string;
  /** The peer's public key, base64. */
  publicKey: string;
  /** The peer's class: an AES peer, an AES-exempt peer, or a DSKE hub. */
  peerClass: "aes" | "exempt" | "hub";
  /** Why this interface, in words. */
  why: string;
  /** For an aes0 route: whether the peer's gate is open (keyed); null for wg0 routes. */
  gateOpen: boolean | null;
  /** A warning (a closed gate: the traffic goes nowhere, never to wg0; a network not accepted), or null. */
  note: string | null;
  /** A peer's own address, or a network it routes for others (site-to-site). */
  kind: "address" | "network";
  /** For a network: whether this node accepts it (`routes.accept`; only then is it routed); null for an address. */
  accepted: boolean | null;
}

/** The running network map, as `/v1/status` reports it. */
export interface NetmapStatus {
  /** The map's serial. */
  serial: number;
  /** Where it comes from: "file PATH" or "url URL". */
  source: string;
  /** When it was applied, ISO 8601. */
  appliedAt: string;
  /** Seconds since then. */
  ageSeconds: number;
  /** Changes of the running map that wait for a restart (one line each). */
  restartNeeded: string[];
  /** The last map refused since the running one was applied (one line), or null. */
  lastRejected: string | null;
}

/** Counters that are not part of {@link NodeStatus} (for `/metrics`). */
export interface NodeCounters {
  /** Data-plane drops by interface and reason (e.g. `{ wg0: { replay: 3 } }`). */
  drops: Record<string, Record<string, number>>;
  /** Key rotations that succeeded / failed since start, per peer name. */
  rotations: Record<string, { ok: number; failed: number }>;
}

/** What the admin API needs from a running node. */
export interface AdminBackend {
  /** A fresh status snapshot. */
  status(): NodeStatus;
  /** Counters for `/metrics`. */
  counters(): NodeCounters;
  /** The node's event bus (the API streams it and publishes lockdown changes on it). */
  events: EventBus;
  /** Current lockdown list. */
  lockdown(): LockdownState;
  /** Every peer route (AES IPs via aes0, wg0 IPs via wg0) with the gate state of AES routes. */
  routes(): PeerRoute[];
  /**
   * Re-reads what the node can take live (PSK files, the node config's live parts, the network map's
   * source) through the same guarded paths as SIGHUP; absent when the node cannot reload.
   */
  reload?(): Promise<ReloadOutcome>;
  /**
   * Replaces the lockdown list: validated by the caller, persisted atomically, then applied; returns
   * the new state. Throws an Error when persisting fails (the old list stays in force).
   */
  setLockdown(ports: LockdownPort[]): Promise<LockdownState>;
  /**
   * What only a running node adds to the support bundle (config, devices, state directory, the secrets
   * to search for); a backend without it gets a bundle of the API's own documents.
   */
  supportSources?(): SupportSources;
  /**
   * Answers a trace question (`POST /v1/trace`, node/trace.ts): the result, or `{error}` (one line) for
   * a question it cannot answer. Absent on a node without a packet filter.
   */
  trace?(question: TraceQuestionBody): TraceResultBody | { error: string };
}
