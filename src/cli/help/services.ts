/**
 * Help entries of the long-running services: `wg` (one WireGuard interface), `up` (an edge node),
 * `hub` (a DSKE security hub) and `broker` (the SKA key broker, with `broker enroll`).
 * @module
 */
import {
  type CommandHelp,
  COMMON_ENV,
  hangUpSignal,
  HELP_OPTION,
  RUN_ONCE_EXIT,
  SERVICE_EXIT,
  STOP_SIGNALS,
} from "./entry.ts";

/** `wg`, `up`, `hub`, `broker` and `broker enroll`, in the overview's order. */
export const SERVICE_HELP: readonly CommandHelp[] = [
  {
    name: "wg",
    summary: "run a WireGuard interface (drop-in for wireguard-go; works with wg and wg-quick)",
    usage: ["wg [-f|--foreground] [--cipher chacha20-poly1305|aes-256-gcm] IFNAME"],
    description:
      "Creates the TUN interface IFNAME and its UAPI socket /var/run/wireguard/IFNAME.sock, configured with\n" +
      "the stock `wg` tool. Without -f it returns once a background daemon has the interface (as wireguard-go\n" +
      "does, so wg-quick can use it); the daemon exits when the interface is deleted or the socket removed.",
    options: [
      ["-f, --foreground", "stay in the foreground and log to stderr"],
      ["--cipher NAME", "chacha20-poly1305 (standard WireGuard, default) or aes-256-gcm (the aes0 suite)"],
      ["IFNAME", "interface name: 1-15 characters of A-Z a-z 0-9 _ . = + -"],
      HELP_OPTION,
    ],
    exitCodes: [
      [0, "the daemon is up (or, with -f, stopped by a signal or the interface was deleted)"],
      [1, "the daemon did not come up, or failed while running"],
      [2, "bad usage, no root, no /dev/net/tun, busy port, or the interface already has a live daemon"],
    ],
    signals: [...STOP_SIGNALS, hangUpSignal("logged (nothing to re-read: wg and wg-quick configure it)")],
    environment: ["TWOFOLD_CIPHER", ...COMMON_ENV, "TWOFOLD_LOG_FILE"],
  },
  {
    name: "up",
    summary: "run an edge node: wg0 + aes0 (AES-256-GCM inside wg0) with the PSK security gate",
    usage: ["up --config node.json"],
    description:
      "Runs one edge node in the foreground: wg0 (standard WireGuard), aes0 (WireGuard with AES-256-GCM inside\n" +
      "wg0) with the PSK security gate, the key plane (manual PSK files, DSKE, SKA), Rosenpass for wg0's PSK\n" +
      "(when configured) and the local admin API. Config file: docs/configuration.md and examples/README.md.",
    options: [["-c, --config FILE", "the node's config file (JSONC)"], HELP_OPTION],
    exitCodes: SERVICE_EXIT,
    signals: [
      ...STOP_SIGNALS,
      hangUpSignal(
        "re-reads the PSK files, the config and the network map now (as `twofold reload`) and logs what changed and what needs a restart",
      ),
    ],
    environment: [...COMMON_ENV, "TWOFOLD_HANDOFF"],
  },
  {
    name: "hub",
    summary: "run a DSKE security hub (wg0 only; shares in RAM, TCP 51831 on its wg0 address)",
    usage: ["hub --config hub.json"],
    description:
      "Runs a DSKE security hub in the foreground: wg0 only, relaying key shares between the nodes it has\n" +
      "PSRD with (shares are held in RAM only), on TCP 51831 at its wg0 address.",
    options: [["-c, --config FILE", "the hub's config file (JSONC)"], HELP_OPTION],
    exitCodes: SERVICE_EXIT,
    signals: [...STOP_SIGNALS, hangUpSignal("logged (nothing to re-read; the config is not re-read yet)")],
    environment: COMMON_ENV,
  },
  {
    name: "broker",
    summary: "run the SKA key broker (wg0 only; root key in a PKCS#11 token, TCP 51831 on its wg0 address)",
    usage: [
      "broker --config broker.json",
      "broker enroll NODE --public-key KEY --wg-ip IP --config broker.json",
    ],
    description:
      "Runs the SKA key broker in the foreground: wg0 only (a pre-shared key on every peer), answering\n" +
      "intermediate-key requests on TCP 51831 at its wg0 address. The root key stays in a PKCS#11 token\n" +
      "(or, for labs, a 0600 file). `broker enroll` provisions one node: wg0 PSK files and config snippets.",
    options: [
      ["-c, --config FILE", "the broker's config file (JSONC)"],
      ["enroll", "write the wg0 PSK for one node (both copies, 0600) and print config snippets"],
      HELP_OPTION,
    ],
    exitCodes: SERVICE_EXIT,
    signals: [...STOP_SIGNALS, hangUpSignal("logged (nothing to re-read; the config is not re-read yet)")],
    environment: COMMON_ENV,
    subcommands: ["enroll"],
  },
  {
    name: "broker enroll",
    summary: "provision one node for the SKA broker: wg0 PSK files (0600) and config snippets",
    usage: ["broker enroll NODE --public-key KEY --wg-ip IP --config broker.json [--out-dir DIR]"],
    description:
      "Writes a fresh wg0 pre-shared key twice (the broker's copy NODE.wg0.psk and the node's copy), never\n" +
      "overwriting a file, and prints the peer entries to add to the broker's and the node's config.",
    options: [
      ["NODE", "the node's peer name"],
      ["--public-key KEY", "the node's wg0 public key (base64)"],
      ["--wg-ip IP", "the node's wg0 address"],
      ["-c, --config FILE", "the broker's config file"],
      ["--out-dir DIR", "where to write the PSK files (default: the config's directory)"],
      HELP_OPTION,
    ],
    exitCodes: RUN_ONCE_EXIT,
    signals: [],
    environment: [],
  },
];
