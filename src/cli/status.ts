/**
 * `twofold status [--json]`: a running node's status from its admin API, as a readable table of both
 * layers per peer (or the API's JSON document with `--json`, for scripts).
 * @module
 */
import type {
  AesPeerStatus,
  HubStatus,
  LayerPeerStatus,
  NodeStatus,
  PeerStatus,
  Wg0PeerStatus,
} from "../admin/model.ts";
import { formatEntry } from "../admin/lockdown-schema.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";

const USAGE = usageOf("status");
const HELP = helpOf("status");

/** Runs the command; resolves with the exit code. */
export async function runStatus(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP);
  if (a.positionals.length > 0) throw new CliError(`unexpected argument "${a.positionals[0]}" (${USAGE})`);
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  try {
    const s = await client.json<NodeStatus>("GET", "/v1/status");
    console.log(a.json ? JSON.stringify(s, null, 2) : renderStatusTable(s));
    return 0;
  } finally {
    client.close();
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** 75 → "1m15s"; null → "never". */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "never";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, "0")}h`;
}

function handshake(l: LayerPeerStatus): string {
  return l.lastHandshakeAgeSeconds === null ? "never" : `${formatAge(l.lastHandshakeAgeSeconds)} ago`;
}

/** Left-aligned columns separated by two spaces; trailing blanks removed. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

/**
 * The WG0 PSK cell: "none"/"static" for unmanaged peers; for Rosenpass-managed ones "pq waiting",
 * "pq #3 41s" (epoch and age of the installed key) or "pq STALE" (strict: closed), with "(permissive)".
 */
export function wg0PskCell(w: Wg0PeerStatus): string {
  const pq = w.pq;
  if (!pq || pq.mode === "off") return w.psk.source;
  const mode = pq.mode === "permissive" ? " (permissive)" : "";
  if (pq.state === "exchanged") {
    return `pq #${pq.epoch}${pq.ageSeconds === null ? "" : ` ${formatAge(pq.ageSeconds)}`}${mode}`;
  }
  return `pq ${pq.state === "stale" ? "STALE" : pq.state}${mode}`;
}

function gateCell(a: AesPeerStatus): string {
  return a.gate.mismatchSuspected ? `${a.gate.state}!` : a.gate.state;
}

/** "yes (3s ago)" / "no (last answer 2m10s ago)" / "no (never answered)" / "?" for a hub. */
function reachability(h: HubStatus): string {
  if (h.reachable === null) return "?";
  const age = h.lastAnswerAgeSeconds === null ? null : `${formatAge(h.lastAnswerAgeSeconds)} ago`;
  if (h.reachable) return age ? `yes (${age})` : "yes";
  return age ? `no (last answer ${age})` : "no (never answered)";
}

/** The routed networks a peer advertises, accepted or not: "192.168.20.0/24, 10.5.0.0/16 (not accepted)". */
export function routesCell(p: PeerStatus): string {
  const accepted = new Set(p.routes.accepted);
  const cells = p.routes.advertised.map((r) => accepted.has(r) ? r : `${r} (not accepted)`);
  return cells.join(", ") || "-";
}

/** The node line, its interfaces, the lockdown, the filter drops, the map and the routed networks. */
function headerLines(s: NodeStatus): string[] {
  const out: string[] = [];
  out.push(
    `node ${s.node.name}  ${s.node.publicKey}  up ${
      formatAge(s.node.uptimeSeconds)
    }  twofold ${s.node.version}`,
  );
  out.push(...table(
    [s.interfaces.wg0, s.interfaces.aes0].map((i) => [
      i.name,
      i.address,
      `udp/${i.listenPort}`,
      `mtu ${i.mtu}`,
      `${i.aead} (${i.aeadBackend})`,
      i.cipherSuite,
    ]),
  ));
  const ports = s.lockdown.ports.map(formatEntry).join(", ") || "none";
  out.push(`lockdown extra ports: ${ports}${s.lockdown.enforced ? "" : " (stored, not enforced)"}`);
  const filterDrops = (["wg0", "aes0"] as const).flatMap((n) => {
    const d = s.interfaces[n].filterDrops;
    return d
      ? [`${n} lockdown ${d.lockdown}, policy ${d.policy}, malformed ${d.malformed}, fragment ${d.fragment}`]
      : [];
  });
  if (filterDrops.length > 0) out.push(`filter drops: ${filterDrops.join("; ")}`);
  if (s.netmap) {
    out.push(
      `network map: serial ${s.netmap.serial} from ${s.netmap.source}, applied ${s.netmap.ageSeconds}s ago`,
    );
    for (const line of s.netmap.restartNeeded) out.push(`network map: needs a restart: ${line}`);
    if (s.netmap.lastRejected) out.push(`network map: last refused: ${s.netmap.lastRejected}`);
  }
  if (s.routes.advertise.length > 0 || s.peers.some((p) => p.routes.advertised.length > 0)) {
    out.push(
      `routed networks: this node advertises ${
        s.routes.advertise.join(", ") || "none"
      }; accepts ${s.routes.accept}`,
    );
  }
  return out;
}

/** One row per peer: both layers, then the networks it routes. */
function peerTable(s: NodeStatus): string[] {
  const head = [
    "PEER",
    "ROLE",
    "WG0 ENDPOINT",
    "HANDSHAKE",
    "RX",
    "TX",
    "WG0 PSK",
    "AES0 GATE",
    "EPOCH",
    "KEY AGE",
    "HANDSHAKE",
    "RX",
    "TX",
  ];
  const routed = s.peers.some((p) => p.routes.advertised.length > 0);
  const rows = s.peers.map((p) => {
    const w = p.wg0;
    const wg = [
      w.endpoint ?? "-",
      handshake(w),
      formatBytes(w.rxBytes),
      formatBytes(w.txBytes),
      wg0PskCell(w),
    ];
    const a = p.aes0;
    const aes = a
      ? [
        gateCell(a),
        a.keyEpoch === null ? "-" : String(a.keyEpoch),
        a.keyAgeSeconds === null ? "-" : formatAge(a.keyAgeSeconds),
        handshake(a),
        formatBytes(a.rxBytes),
        formatBytes(a.txBytes),
      ]
      : [p.role === "hub" ? "(hub: wg0 only)" : "(AES-exempt: wg0 only)", "", "", "", "", ""];
    return [p.name, p.role, ...wg, ...aes, ...(routed ? [routesCell(p)] : [])];
  });
  return table([routed ? [...head, "ROUTES"] : head, ...rows]);
}

/** One line per peer whose aes0 gate is not simply open. */
function gateNotes(s: NodeStatus): string[] {
  const notes = s.peers.filter((p) =>
    p.aes0 && (p.aes0.gate.state !== "open" || p.aes0.gate.mismatchSuspected)
  );
  if (notes.length === 0) return [];
  return [
    "",
    ...notes.map((p) => {
      const g = p.aes0!.gate;
      return `${p.name}: aes0 gate ${g.state}${
        g.mismatchSuspected ? " (PSK mismatch suspected)" : ""
      }: ${g.reason}`;
    }),
  ];
}

/** The DSKE hubs and per-peer problems, when DSKE runs. */
function dskeLines(s: NodeStatus): string[] {
  if (!s.dske) return [];
  const out = [
    "",
    `DSKE: k = ${s.dske.threshold} of ${s.dske.hubs.length} hub(s), rotation every ${s.dske.rotationIntervalSeconds}s`,
  ];
  out.push(...table([
    ["HUB", "ID", "ENDPOINT", "REACHABLE", "PSRD TX LEFT", "PSRD RX LEFT", ""],
    ...s.dske.hubs.map((h) => [
      h.name,
      h.hubId.slice(0, 16),
      h.endpoint,
      reachability(h),
      formatBytes(h.psrd.txRemaining),
      formatBytes(h.psrd.rxRemaining),
      [h.psrd.low ? "PSRD low" : "", h.misbehaving ? "MISBEHAVING" : ""].filter(Boolean).join(", "),
    ]),
  ]));
  for (const p of s.peers) {
    if (p.aes0?.dske?.problem) out.push(`${p.name}: DSKE ${p.aes0.dske.problem}`);
  }
  if (s.dske.rejectedPeerFrames > 0) {
    out.push(
      `DSKE: ${s.dske.rejectedPeerFrames} node-to-node frame(s) dropped (not from the peer, or forged)`,
    );
  }
  return out;
}

/** The SKA broker and per-peer rotations, when SKA runs. */
function skaLines(s: NodeStatus): string[] {
  if (!s.ska) return [];
  const reach = s.ska.brokerReachable === null
    ? "not asked yet"
    : s.ska.brokerReachable
    ? "reachable"
    : "UNREACHABLE";
  const out = ["", `SKA: broker ${s.ska.broker} ${reach}, rotation every ${s.ska.rotationIntervalSeconds}s`];
  for (const p of s.peers) {
    const k = p.aes0?.ska;
    if (k) {
      out.push(
        `${p.name}: SKA ${k.role}, last epoch ${k.lastEpoch ?? "-"}, last intermediate epoch ${
          k.lastIntermediateEpoch ?? "-"
        }, ${k.rotationsOk} ok / ${k.rotationsFailed} failed`,
      );
    }
  }
  return out;
}

/** The status as the table `twofold status` prints. */
export function renderStatusTable(s: NodeStatus): string {
  return [...headerLines(s), "", ...peerTable(s), ...gateNotes(s), ...dskeLines(s), ...skaLines(s)].join(
    "\n",
  );
}
