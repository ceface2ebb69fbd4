/**
 * `GET /metrics`: the node's state in the Prometheus text exposition format (version 0.0.4). Every
 * metric name starts with `twofold_`; labels are `peer`, `layer` (`wg0`/`aes0`), `reason`, `state`,
 * `hub` and `direction`. A sample whose value is unknown (no handshake yet, gate closed) is left out
 * rather than reported as 0.
 *
 * Gate state is one gauge per state: `twofold_peer_gate_state{peer,layer="aes0",state="open"}` is 1 for
 * the current state and 0 for the two others (`closed`, `open`, `stale`), so `== 1` selects peers by
 * state and a sum over `state` is always 1.
 * @module
 */
import type { EventBus } from "../events/bus.ts";
import type { NodeCounters, NodeStatus } from "./model.ts";

/** The Content-Type of the exposition. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
type Kind = "counter" | "gauge";

/** Escapes a label value (backslash, double quote, newline). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** Collects metric families and renders them (HELP and TYPE first, then the samples). */
class Exposition {
  readonly #families = new Map<string, { help: string; kind: Kind; samples: string[] }>();

  family(name: string, kind: Kind, help: string): void {
    this.#families.set(name, { help, kind, samples: [] });
  }

  sample(name: string, labels: Labels, value: number | null | undefined): void {
    if (value === null || value === undefined) return;
    const f = this.#families.get(name);
    if (!f) throw new Error(`metric family ${name} not declared`);
    const entries = Object.entries(labels);
    const l = entries.length === 0
      ? ""
      : `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
    f.samples.push(`${name}${l} ${formatValue(value)}`);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      lines.push(`# TYPE ${name} ${f.kind}`);
      lines.push(...f.samples);
    }
    return lines.join("\n") + "\n";
  }
}

const GATE_STATES = ["closed", "open", "stale"] as const;
const PQ_STATES = ["waiting", "exchanged", "stale"] as const;

/** Renders the exposition for one status snapshot, the counters and the event bus. */
export function renderMetrics(status: NodeStatus, counters: NodeCounters, bus: EventBus): string {
  const x = new Exposition();
  nodeMetrics(x, status);
  peerMetrics(x, status);
  pqMetrics(x, status);
  keyPlaneMetrics(x, status, counters);
  hubMetrics(x, status);
  lockdownAndEventMetrics(x, status, bus);
  return x.render();
}

/** The node: info and uptime. */
function nodeMetrics(x: Exposition, status: NodeStatus): void {
  x.family("twofold_info", "gauge", "Always 1; labels name the node and the twofold version.");
  x.sample("twofold_info", { node: status.node.name, version: status.node.version }, 1);
  x.family("twofold_uptime_seconds", "gauge", "Seconds since the node started.");
  x.sample("twofold_uptime_seconds", {}, status.node.uptimeSeconds);
}

/** Both layers of every peer: bytes, handshake and key age, key epoch, the aes0 gate. */
function peerMetrics(x: Exposition, status: NodeStatus): void {
  x.family("twofold_peer_rx_bytes_total", "counter", "Bytes received from the peer on the layer.");
  x.family("twofold_peer_tx_bytes_total", "counter", "Bytes sent to the peer on the layer.");
  x.family(
    "twofold_peer_last_handshake_age_seconds",
    "gauge",
    "Seconds since the last completed handshake with the peer on the layer (absent before the first).",
  );
  x.family(
    "twofold_peer_key_epoch",
    "gauge",
    "Epoch of the agreed key the layer holds for the peer (aes0: gate key; wg0: PQ key; absent when none).",
  );
  x.family("twofold_peer_key_age_seconds", "gauge", "Age of that key in seconds (absent when none).");
  x.family(
    "twofold_peer_gate_state",
    "gauge",
    "1 for the aes0 PSK gate's current state (closed, open, stale), 0 for the others.",
  );
  x.family(
    "twofold_peer_gate_mismatch_suspected",
    "gauge",
    "1 while aes0 handshakes keep failing under an open gate (the two sides hold different keys).",
  );
  for (const p of status.peers) {
    const w = { peer: p.name, layer: "wg0" };
    x.sample("twofold_peer_rx_bytes_total", w, p.wg0.rxBytes);
    x.sample("twofold_peer_tx_bytes_total", w, p.wg0.txBytes);
    x.sample("twofold_peer_last_handshake_age_seconds", w, p.wg0.lastHandshakeAgeSeconds);
    x.sample("twofold_peer_key_epoch", w, p.wg0.psk.epoch);
    x.sample("twofold_peer_key_age_seconds", w, p.wg0.psk.ageSeconds);
    const a0 = p.aes0;
    if (!a0) continue;
    const a = { peer: p.name, layer: "aes0" };
    x.sample("twofold_peer_rx_bytes_total", a, a0.rxBytes);
    x.sample("twofold_peer_tx_bytes_total", a, a0.txBytes);
    x.sample("twofold_peer_last_handshake_age_seconds", a, a0.lastHandshakeAgeSeconds);
    x.sample("twofold_peer_key_epoch", a, a0.keyEpoch);
    x.sample("twofold_peer_key_age_seconds", a, a0.keyAgeSeconds);
    for (const s of GATE_STATES) {
      x.sample("twofold_peer_gate_state", { ...a, state: s }, a0.gate.state === s ? 1 : 0);
    }
    x.sample("twofold_peer_gate_mismatch_suspected", a, a0.gate.mismatchSuspected ? 1 : 0);
  }
}

/** wg0's post-quantum (Rosenpass) key per managed peer: exchanges, key age, state one-hot. */
function pqMetrics(x: Exposition, status: NodeStatus): void {
  x.family(
    "twofold_pq_key_exchanges_total",
    "counter",
    "Rosenpass exchanges completed with the peer since start (wg0 PSKs installed); Rosenpass-managed peers only.",
  );
  x.family(
    "twofold_pq_key_age_seconds",
    "gauge",
    "Age of the Rosenpass key installed as the peer's wg0 PSK (absent before the first exchange).",
  );
  x.family(
    "twofold_pq_state",
    "gauge",
    "1 for the peer's current Rosenpass state (waiting, exchanged, stale), 0 for the others; managed peers only.",
  );
  for (const p of status.peers) {
    const pq = p.wg0.pq;
    if (!pq || pq.mode === "off") continue;
    x.sample("twofold_pq_key_exchanges_total", { peer: p.name }, pq.exchanges);
    x.sample("twofold_pq_key_age_seconds", { peer: p.name }, pq.ageSeconds);
    for (const s of PQ_STATES) {
      x.sample("twofold_pq_state", { peer: p.name, state: s }, pq.state === s ? 1 : 0);
    }
  }
}

/** Key rotations, drops and rejected node-to-node DSKE frames. */
function keyPlaneMetrics(x: Exposition, status: NodeStatus, counters: NodeCounters): void {
  x.family("twofold_key_rotations_total", "counter", "aes0 key rotations that succeeded, per peer.");
  x.family(
    "twofold_key_rotations_failed_total",
    "counter",
    "aes0 key-agreement rounds that failed, per peer.",
  );
  for (const [peer, r] of Object.entries(counters.rotations)) {
    x.sample("twofold_key_rotations_total", { peer }, r.ok);
    x.sample("twofold_key_rotations_failed_total", { peer }, r.failed);
  }

  x.family(
    "twofold_drops_total",
    "counter",
    "Packets dropped, by layer and reason (tunQueueFull: the kernel dropped them because the TUN queue was full).",
  );
  for (const [layer, byReason] of Object.entries(counters.drops)) {
    for (const [reason, n] of Object.entries(byReason)) x.sample("twofold_drops_total", { layer, reason }, n);
  }

  x.family(
    "twofold_dske_rejected_peer_frames_total",
    "counter",
    "Node-to-node DSKE frames dropped (not from the peer's wg0 address, bad tag, malformed, stale).",
  );
  if (status.dske) x.sample("twofold_dske_rejected_peer_frames_total", {}, status.dske.rejectedPeerFrames);
}

/** Per DSKE hub: reachability, answer age, misbehaviour, PSRD left. */
function hubMetrics(x: Exposition, status: NodeStatus): void {
  x.family("twofold_hub_reachable", "gauge", "1 when the hub's latest answer was authenticated, 0 when not.");
  x.family(
    "twofold_hub_last_answer_age_seconds",
    "gauge",
    "Seconds since the hub's latest authenticated answer (absent if it never answered).",
  );
  x.family("twofold_hub_misbehaving", "gauge", "1 when the hub was named as misbehaving in a recent round.");
  x.family(
    "twofold_hub_psrd_remaining_bytes",
    "gauge",
    "PSRD bytes left with the hub, by direction (tx, rx).",
  );
  x.family("twofold_hub_psrd_low", "gauge", "1 when a PSRD pool with the hub is below its low-water mark.");
  for (const h of status.dske?.hubs ?? []) {
    const l = { hub: h.name };
    x.sample("twofold_hub_reachable", l, h.reachable === null ? null : h.reachable ? 1 : 0);
    x.sample("twofold_hub_last_answer_age_seconds", l, h.lastAnswerAgeSeconds);
    x.sample("twofold_hub_misbehaving", l, h.misbehaving ? 1 : 0);
    x.sample("twofold_hub_psrd_remaining_bytes", { ...l, direction: "tx" }, h.psrd.txRemaining);
    x.sample("twofold_hub_psrd_remaining_bytes", { ...l, direction: "rx" }, h.psrd.rxRemaining);
    x.sample("twofold_hub_psrd_low", l, h.psrd.low ? 1 : 0);
  }
}

/** The lockdown list and the event bus. */
function lockdownAndEventMetrics(x: Exposition, status: NodeStatus, bus: EventBus): void {
  x.family("twofold_lockdown_entries", "gauge", "Entries in the wg0 lockdown extra-port list.");
  x.sample("twofold_lockdown_entries", {}, status.lockdown.ports.length);
  x.family("twofold_lockdown_enforced", "gauge", "1 when a firewall enforces the lockdown list, else 0.");
  x.sample("twofold_lockdown_enforced", {}, status.lockdown.enforced ? 1 : 0);

  x.family("twofold_events_published_total", "counter", "Events published on the node's event bus.");
  x.sample("twofold_events_published_total", {}, bus.lastId);
  x.family(
    "twofold_event_subscribers",
    "gauge",
    "Current listeners of the event bus (SSE clients included).",
  );
  x.sample("twofold_event_subscribers", {}, bus.listenerCount);
}
