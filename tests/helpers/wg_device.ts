/**
 * Test-side entry point to the namespace lab in src/lab (shared with `twofold demo` and the bench), plus
 * what only tests use: a stock wireguard-go peer and a parser for `wg show IF dump`.
 * @module
 */
import type { Netns, Proc } from "../../src/lab/netns.ts";
import {
  type StartDeviceOptions,
  startWgDevice,
  type WgDeviceConfig,
  WIREGUARD_GO_COMMAND,
} from "../../src/lab/wg-device.ts";

export * from "../../src/lab/wg-device.ts";

/** Starts Debian `wireguard-go -f IFNAME` in `ns` and configures it (see {@link startWgDevice}). */
export async function startWireguardGo(
  ns: Netns,
  ifname: string,
  cfg: WgDeviceConfig,
  opts: Omit<StartDeviceOptions, "command"> = {},
): Promise<Proc> {
  return await startWgDevice(ns, ifname, cfg, { ...opts, command: [...WIREGUARD_GO_COMMAND] });
}

/** The interface line of `wg show IF dump` (the private key is deliberately not kept). */
export interface WgDumpInterface {
  /** Base64 public key. */
  publicKey: string;
  /** UDP listen port (0 if none). */
  listenPort: number;
  /** Firewall mark, or null when off. */
  fwmark: number | null;
}

/** A peer line of `wg show IF dump` (the pre-shared key is reduced to a flag). */
export interface WgDumpPeer {
  /** Base64 public key. */
  publicKey: string;
  /** Whether a pre-shared key is set. */
  hasPresharedKey: boolean;
  /** "host:port", or null when unknown. */
  endpoint: string | null;
  /** Allowed IPs (CIDRs). */
  allowedIps: string[];
  /** Unix time in seconds of the latest handshake, 0 if none. */
  latestHandshake: number;
  /** Bytes received from this peer. */
  rxBytes: number;
  /** Bytes sent to this peer. */
  txBytes: number;
  /** Persistent keepalive in seconds, 0 when off. */
  persistentKeepalive: number;
}

/** Parsed `wg show IF dump`. */
export interface WgDump {
  /** The device itself. */
  iface: WgDumpInterface;
  /** Its peers. */
  peers: WgDumpPeer[];
}

function orNull(field: string): string | null {
  return field === "(none)" || field === "off" ? null : field;
}

/** Parses the text of `wg show IF dump` (tab-separated; first line is the interface). */
export function parseWgDump(text: string): WgDump {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new Error("empty wg dump");
  const head = lines[0].split("\t");
  if (head.length !== 4) throw new Error(`unexpected wg dump interface line (${head.length} fields)`);
  const fw = orNull(head[3]);
  const iface = { publicKey: head[1], listenPort: Number(head[2]), fwmark: fw === null ? null : Number(fw) };
  const peers = lines.slice(1).map((line, i) => {
    const f = line.split("\t");
    if (f.length !== 8) throw new Error(`unexpected wg dump peer line ${i + 1} (${f.length} fields)`);
    const allowed = orNull(f[3]);
    const keepalive = orNull(f[7]);
    return {
      publicKey: f[0],
      hasPresharedKey: orNull(f[1]) !== null,
      endpoint: orNull(f[2]),
      allowedIps: allowed === null ? [] : allowed.split(","),
      latestHandshake: Number(f[4]),
      rxBytes: Number(f[5]),
      txBytes: Number(f[6]),
      persistentKeepalive: keepalive === null ? 0 : Number(keepalive),
    };
  });
  return { iface, peers };
}

/** Runs `wg show IF dump` inside `ns` and parses it. */
export async function wgShowDump(ns: Netns, ifname: string): Promise<WgDump> {
  const r = await ns.exec(["wg", "show", ifname, "dump"]);
  return parseWgDump(r.stdout);
}
