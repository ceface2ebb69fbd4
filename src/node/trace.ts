/**
 * `twofold trace` / `POST /v1/trace`: what this node does with a packet from a peer, step by step —
 * which interface route steering puts it on and why, the packet filter's verdict with the rule or
 * lockdown entry that decided it, the aes0 gate of that peer, whether a session exists, and the MTU.
 *
 * The verdict comes from the data plane's own code: the question becomes a packet
 * (`buildProbePacket`, or the caller's raw bytes) and `PacketFilter.decideInbound` decides it as a dry
 * run (nothing remembered or refreshed) over the interface's rule table in force (read through the
 * trace reader slot of its exchange) and its live connection tracker.
 * @module
 */
import { isAesPeer, type NodeConfig, type PeerConfig } from "../config/node-config.ts";
import { decodeBase64, toHex } from "../encoding.ts";
import { ConnTracker, DEFAULT_TRACKER_BUCKETS } from "../filter/conn-tracker.ts";
import { FragmentTable } from "../filter/fragment-table.ts";
import { PacketFilter } from "../filter/packet-filter.ts";
import { enforcementFor, type FilterInterface } from "../filter/placement.ts";
import { buildProbePacket } from "../filter/probe-packet.ts";
import { lockdownEntries } from "../filter/rule-compiler.ts";
import { TableReader } from "../filter/table-exchange.ts";
import { DROP_REASONS, MATCH_KINDS, MatchKind } from "../filter/verdict.ts";
import { FILTER_TABLE_READER } from "../wireguard/dataplane/worker-protocol.ts";
import type { GateStatus } from "../keys/psk-gate.ts";
import type { LockdownPort } from "../admin/model.ts";
import { type Cidr, formatCidr, formatIp, parseIp } from "../wireguard/allowedips.ts";
import { cidrContainsIp } from "../config/routed-network.ts";

/** A trace question. */
export interface TraceQuestion {
  /** The sending peer: its name, wg0 IP or AES IP. */
  peer: string;
  /** Protocol of the probe (ignored with `packet`). */
  proto?: "tcp" | "udp" | "icmp";
  /** Destination port (TCP/UDP). */
  port?: number;
  /**
   * Which of our addresses the packet is sent to: `wg0` (our wg0 IP) or `aes0` (our AES IP). Default:
   * the interface the peer was named by (its AES IP → aes0), else both (one result each).
   */
  to?: FilterInterface;
  /** Raw IP packet (base64) instead of a probe; its destination address picks the interface. */
  packet?: string;
  /**
   * A host in a network this node routes for others (node.advertise) instead of one of its own
   * addresses: the probe is a packet forwarded into that LAN, on the layer that carries the peer's
   * routed traffic (aes0 for an AES peer) unless `to` says otherwise.
   */
  destination?: string;
}

/** What a trace reads from the running node. */
export interface TraceNode {
  /** The configuration. */
  config: NodeConfig;
  /** The two devices (the parts a trace reads). */
  devices: Record<FilterInterface, TraceDevice>;
  /** The aes0 gates. */
  gates(): GateStatus[];
  /** The lockdown list in force. */
  lockdownPorts(): LockdownPort[];
}

/** The parts of a device a trace reads. */
export interface TraceDevice {
  /** The rule-table exchange. */
  readonly filterTables: SharedArrayBuffer;
  /** The connection tracker. */
  readonly filterTracker: SharedArrayBuffer;
  /** Slot per peer (public key hex). */
  peerSlots(): Map<string, number>;
  /** Session facts of a peer. */
  peerStats(peerPublicKey: Uint8Array): { hasSession: boolean } | null;
}

/** The trace of one interface. */
export interface TraceLayer {
  /** The interface. */
  layer: FilterInterface;
  /** Our address the packet is sent to. */
  destination: string;
  /** Why route steering puts the packet on this interface. */
  steering: string;
  /** Which rule set applies (placement table). */
  enforcement: "lockdown" | "policy";
  /** The filter's verdict. */
  verdict: {
    accept: boolean;
    /** Drop reason (lockdown, policy, malformed, fragment) or null. */
    reason: string | null;
    /** What accepted it (lockdown-entry, policy-rule, default-allow, key-plane, established, related). */
    match: string | null;
    /** The deciding rule or lockdown entry, in words; null when none. */
    rule: string | null;
  };
  /** Whether the peer has a usable session (keypair) on this interface. */
  session: boolean;
  /** The interface's MTU. */
  mtu: number;
}

/** A trace's answer. */
export interface TraceResult {
  /** The peer, as the config names it. */
  peer: { name: string; wgIp: string; aesIp: string | null; aesCapable: boolean; hub: boolean };
  /** The peer's aes0 gate (null for a peer without aes0). */
  gate: { state: string; reason: string; epoch: number | null } | null;
  /** One result per interface traced. */
  layers: TraceLayer[];
}

/** A question that cannot be answered (unknown peer, bad packet): one line for the operator. */
export class TraceError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "TraceError";
  }
}

function findPeer(cfg: NodeConfig, text: string): { peer: PeerConfig; by: FilterInterface | null } {
  const byName = cfg.peers.find((p) => p.name === text);
  if (byName) return { peer: byName, by: null };
  let ip: string;
  try {
    ip = formatIp(parseIp(text));
  } catch {
    throw new TraceError(
      `${JSON.stringify(text)} is not a peer name, wg0 IP or AES IP of this node's config`,
    );
  }
  for (const p of cfg.peers) {
    if (formatIp(p.wgIp.addr) === ip) return { peer: p, by: "wg0" };
    if (p.aesIp && formatIp(p.aesIp.addr) === ip) return { peer: p, by: "aes0" };
  }
  throw new TraceError(`no peer has the address ${ip}; name a peer from the config (peers[].name)`);
}

function ruleText(cfg: NodeConfig, lockdown: LockdownPort[], match: number, index: number): string | null {
  if (match === MatchKind.lockdownEntry) {
    return lockdownEntries({ aesUdpPort: cfg.aes0.listenPort, extraPorts: lockdown })[index]?.label ?? null;
  }
  if (match === MatchKind.policyRule) {
    const r = cfg.policies?.rules[index];
    if (!r) return null;
    const ports = r.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(",");
    return `policies.rules[${index}]: ${r.from.name} → ${r.to.name} ${r.proto}${ports ? `/${ports}` : ""}`;
  }
  if (match === MatchKind.defaultAllow) return "no policies configured: all-to-all";
  if (match === MatchKind.keyPlane) return "a security hub always reaches the key plane (TCP 51831)";
  if (match === MatchKind.established) return "a reply in a flow this node opened";
  if (match === MatchKind.related) return "an ICMP error about a flow of this node";
  return null;
}

/** A destination host in one of this node's routed networks, or a TraceError. */
function routedDestination(cfg: NodeConfig, text: string): { ip: Uint8Array; network: Cidr } {
  let ip: Uint8Array;
  try {
    ip = parseIp(text);
  } catch {
    throw new TraceError(`destination: ${JSON.stringify(text)} is not an IP address`);
  }
  const networks = cfg.node.advertise ?? [];
  const network = networks.find((n) => cidrContainsIp(n, ip));
  if (!network) {
    throw new TraceError(
      `destination: ${formatIp(ip)} is not in a network this node routes (node.advertise: ${
        networks.map(formatCidr).join(", ") || "none"
      })`,
    );
  }
  return { ip, network };
}

/** Why a packet for a routed destination is on `layer`, in words. */
function routedSteering(
  routed: { ip: Uint8Array; network: Cidr },
  peer: string,
  aesCapable: boolean,
  layer: FilterInterface,
): string {
  const where = `${formatIp(routed.ip)} is in ${formatCidr(routed.network)}, a network this node routes ` +
    "(node.advertise): a packet for it is forwarded to the LAN";
  if (!aesCapable) return `${where}; ${peer} is AES-exempt, so its routed traffic travels wg0`;
  return layer === "aes0"
    ? `${where}; ${peer} is AES-capable, so its routed traffic travels aes0 (inside wg0)`
    : `${where}; ${peer} is AES-capable: its routed traffic travels aes0, never wg0 (the lockdown drops it there)`;
}

/** Answers `q` (see the module doc); throws a {@link TraceError} for a question it cannot answer. */
export function runTrace(node: TraceNode, q: TraceQuestion, now: number): TraceResult {
  const cfg = node.config;
  const { peer, by } = findPeer(cfg, q.peer);
  const aesCapable = isAesPeer(peer);
  const hex = toHex(peer.publicKey);
  let raw: Uint8Array | null = null;
  if (q.packet !== undefined) {
    try {
      raw = decodeBase64(q.packet);
    } catch {
      throw new TraceError(
        "packet: not base64; give the raw IP packet (IPv4 or IPv6 header first) in base64",
      );
    }
  }
  const ours: Record<FilterInterface, Uint8Array> = { wg0: cfg.wg0.address.ip, aes0: cfg.aes0.address.ip };
  const routed = q.destination === undefined ? null : routedDestination(cfg, q.destination);
  let layers: FilterInterface[];
  if (routed !== null) {
    layers = [q.to ?? (aesCapable ? "aes0" : "wg0")];
  } else if (raw !== null) {
    const version = raw.length > 0 ? raw[0] >> 4 : 0;
    const dst = version === 4 && raw.length >= 20
      ? raw.subarray(16, 20)
      : version === 6 && raw.length >= 40
      ? raw.subarray(24, 40)
      : null;
    layers = [dst !== null && formatIp(dst) === formatIp(ours.aes0) ? "aes0" : "wg0"];
  } else {
    layers = q.to ? [q.to] : by ? [by] : aesCapable ? ["wg0", "aes0"] : ["wg0"];
  }
  if (layers.includes("aes0") && !aesCapable) {
    throw new TraceError(`${peer.name} has no aes0 (no aesIp, or a hub): only wg0 carries its traffic`);
  }
  const gateStatus = aesCapable ? node.gates().find((g) => g.peer === hex) ?? null : null;
  const lockdown = node.lockdownPorts();
  const results = layers.map((layer): TraceLayer => {
    const dev = node.devices[layer];
    const slot = dev.peerSlots().get(hex);
    const src = layer === "aes0" ? peer.aesIp!.addr : peer.wgIp.addr;
    const dst = routed?.ip ?? ours[layer];
    const bytes = raw ?? buildProbePacket({
      src,
      dst,
      proto: q.proto ?? "tcp",
      dstPort: q.port,
    });
    const reader = new TableReader(dev.filterTables, FILTER_TABLE_READER.trace);
    let verdict: TraceLayer["verdict"];
    try {
      const filter = new PacketFilter({
        rules: reader,
        tracker: new ConnTracker(dev.filterTracker, DEFAULT_TRACKER_BUCKETS),
        fragments: new FragmentTable(),
      });
      const v = filter.decideInbound(bytes, 0, bytes.length, slot ?? -1, now, false);
      verdict = {
        accept: v.accept,
        reason: v.accept ? null : DROP_REASONS[v.reason],
        match: v.accept ? MATCH_KINDS[v.match] : null,
        rule: v.accept ? ruleText(cfg, lockdown, v.match, v.ruleIndex) : null,
      };
    } finally {
      reader.close();
    }
    const subnet = formatCidr(cfg.aes0.subnet);
    const steering = routed !== null
      ? routedSteering(routed, peer.name, aesCapable, layer)
      : layer === "aes0"
      ? `${formatIp(ours.aes0)} is this node's AES IP: packets to addresses in the aes0 subnet ${subnet} ` +
        `travel aes0 (AES-256-GCM, inside wg0)`
      : `${
        formatIp(ours.wg0)
      } is this node's wg0 IP: everything outside the aes0 subnet ${subnet} travels wg0 ` +
        `(ChaCha20-Poly1305)${aesCapable ? "" : `; ${peer.name} is AES-exempt, so wg0 is its only tunnel`}`;
    return {
      layer,
      destination: formatIp(dst),
      steering,
      enforcement: enforcementFor(true, aesCapable, layer),
      verdict: slot === undefined
        ? { accept: false, reason: "policy", match: null, rule: `${peer.name} is not a peer of ${layer} now` }
        : verdict,
      session: dev.peerStats(peer.publicKey)?.hasSession ?? false,
      mtu: layer === "aes0" ? cfg.aes0.mtu : cfg.wg0.mtu,
    };
  });
  return {
    peer: {
      name: peer.name,
      wgIp: formatIp(peer.wgIp.addr),
      aesIp: peer.aesIp ? formatIp(peer.aesIp.addr) : null,
      aesCapable,
      hub: peer.role === "hub",
    },
    gate: gateStatus ? { state: gateStatus.state, reason: gateStatus.reason, epoch: gateStatus.epoch } : null,
    layers: results,
  };
}
