/**
 * The one home of the CLI's help texts: a table of every command and subcommand (what it does, usage,
 * options, exit codes, signals, environment), the overview `twofold help` prints, and the pure
 * decision whether a command line asks for help or the version instead of running anything. main.ts
 * answers `--help`/`-h` from this table before a command module is loaded, so asking for help never has
 * a side effect (no key printed, no file created, no stdin read). The command modules take their usage
 * lines from here for their error messages.
 * @module
 */
import { DEFAULT_ADMIN_SOCKET } from "../admin/server.ts";
import { DEFAULT_TOKEN_FILE } from "./admin-client.ts";
import { ENV_VARS, type EnvName } from "../env.ts";
import { CliError } from "./errors.ts";
import { NETMAP_HELP } from "./netmap-help.ts";

/** One command's (or subcommand's) help. */
export interface CommandHelp {
  /** Its words after `twofold`, e.g. "psrd new". */
  name: string;
  /** One line for the overview. */
  summary: string;
  /** Usage lines, each without the leading `twofold ` (the first is the error messages' usage). */
  usage: string[];
  /** What it does, a few lines. */
  description: string;
  /** Options and arguments: [flag, meaning]. */
  options: [string, string][];
  /** Exit codes: [code, meaning]. */
  exitCodes: [number, string][];
  /** Signals it handles: [signal, effect]; empty for commands that do not run long. */
  signals: [string, string][];
  /** Environment variables it reads. */
  environment: EnvName[];
  /** Subcommands (their own help entries), for `psrd` and `lockdown`. */
  subcommands?: string[];
}

const HELP_OPTION: [string, string] = ["-h, --help", "print this help and exit (no other effect)"];

/** `--config`, `--admin`, `--token-file`: what status, events and lockdown share. */
const ADMIN_OPTIONS: [string, string][] = [
  [
    "-c, --config FILE",
    "the node's config: its admin.listen and admin.tokenFile (node defaults for what it leaves out)",
  ],
  [
    "--admin ADDR",
    `the node's admin API: unix:/path, /path.sock, 127.0.0.1:PORT or [::1]:PORT (default: from --config, else unix:${DEFAULT_ADMIN_SOCKET})`,
  ],
  [
    "--token-file FILE",
    `the admin token, for changes and for TCP (default: from --config, else ${DEFAULT_TOKEN_FILE})`,
  ],
];

const COMMON_ENV: EnvName[] = [
  "TWOFOLD_LOG",
  "TWOFOLD_AEAD_BACKEND",
  "TWOFOLD_OFFLOADS",
  "JOURNAL_STREAM",
  "NOTIFY_SOCKET",
];
const STOP_SIGNALS: [string, string][] = [[
  "SIGINT, SIGTERM",
  "stop cleanly (interfaces and sockets removed), exit 0",
]];
/** SIGHUP for the long-running commands: never a stop; what it does differs (see each command). */
function hangUpSignal(effect: string): [string, string] {
  return ["SIGHUP", `${effect}; never stops it (a closed terminal or SSH session sends it)`];
}
const ADMIN_EXIT: [number, string][] = [
  [0, "success"],
  [1, "the node could not be reached or refused the request"],
  [2, "bad usage, or the token file cannot be read"],
];
const SERVICE_EXIT: [number, string][] = [
  [0, "stopped by a signal, or its interfaces were deleted"],
  [1, "failed while running"],
  [2, "bad usage or config, or the host prevents starting (no root, no /dev/net/tun, busy port)"],
];
const SIMPLE_EXIT: [number, string][] = [[0, "success"], [2, "bad usage or bad input"]];

const LOCKDOWN_USAGE =
  "lockdown list|add|remove|set [PROTO/PORT[-PORT] ...] [--json] [--config FILE] [--admin ADDR] [--token-file FILE]";
const LOCKDOWN_DESCRIPTION =
  "The wg0 lockdown extra ports (beyond ICMP, UDP 51830 and TCP 51831) of a running node, through its\n" +
  "admin API. Changes need the admin token and take effect at once (twofold's own packet filter: between\n" +
  "two AES peers wg0 delivers only these ports, ICMP, UDP 51830 and TCP 51831; see README, Lockdown).";

function lockdownAction(action: string, spec: string, summary: string): CommandHelp {
  return {
    name: `lockdown ${action}`,
    summary,
    usage: [`lockdown ${action}${spec} [--json] [--config FILE] [--admin ADDR] [--token-file FILE]`],
    description: `${summary[0].toUpperCase()}${summary.slice(1)}.\n${LOCKDOWN_DESCRIPTION}`,
    options: [
      ...(spec
        ? [["PROTO/PORT[-PORT]", "an entry: tcp or udp, a port or a range, e.g. tcp/8080 udp/6000-6010"]] as [
          string,
          string,
        ][]
        : []),
      ["--json", "print the resulting list as JSON"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
  };
}

const PSRD_EXIT: [number, string][] = [[0, "success"], [1, "failed while running"], [
  2,
  "bad usage or bad input",
]];

const AUDIT_EXIT: [number, string][] = [
  [0, "the chain is intact"],
  [1, "the chain is broken (the line names the first broken record)"],
  [2, "bad usage, or a file cannot be read"],
];

/** Every command and subcommand, in the order the overview lists them. */
export const COMMANDS: readonly CommandHelp[] = [
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
    environment: COMMON_ENV,
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
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "psrd",
    summary:
      "provision pre-shared random data for one (node, hub) pair; import it; show pools; remove a block",
    usage: ["psrd new|ingest|list|remove [options]", "psrd help [new|ingest|list|remove]"],
    description:
      "Pre-shared random data (PSRD) for DSKE: `new` makes a matched pair of single-use files for one\n" +
      "(node, hub) pair, `ingest` loads one into a node's or hub's state directory, `list` shows the pools,\n" +
      "`remove` deletes a block (e.g. one made for another hub) after overwriting its pad with zeros.\n" +
      "Nothing here ever prints pad bytes. `twofold psrd SUBCOMMAND --help` shows each subcommand.",
    options: [
      ["new", "write a matched pair of PSRD files (client copy, hub copy)"],
      ["ingest", "load a PSRD file into a state directory"],
      ["list", "show the blocks in a state directory"],
      ["remove", "remove a block from a state directory (its pad is overwritten with zeros)"],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
    subcommands: ["new", "ingest", "list", "remove"],
  },
  {
    name: "psrd new",
    summary: "write a matched pair of single-use PSRD files for one (node, hub) pair",
    usage: [
      "psrd new --hub-endpoint HOST:PORT --peer-id BASE64PUBKEY [--hub-id HEX] [--client-id HEX]\n" +
      "                 [--c2h BYTES] [--h2c BYTES] --client-out FILE --hub-out FILE",
    ],
    description:
      "Writes the same fresh random block twice (mode 0600): the client (node) copy and the hub copy. Move\n" +
      "each to its machine over a trusted channel, ingest it there, then delete it. Never overwrites a file.",
    options: [
      ["--hub-endpoint HOST:PORT", "where the node reaches the hub (its wg0 address, TCP 51831)"],
      ["--peer-id BASE64PUBKEY", "the node's wg0 public key"],
      [
        "--hub-id HEX",
        "the hub's id, 32 hex digits (default: a new random id; reuse it for a hub's other pairs)",
      ],
      ["--client-id HEX", "the node's id, 32 hex digits (default: random)"],
      ["--c2h BYTES, --h2c BYTES", "bytes client-to-hub and hub-to-client (suffix K, M or G allowed)"],
      ["--client-out FILE", "where to write the node's copy"],
      ["--hub-out FILE", "where to write the hub's copy"],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "psrd ingest",
    summary: "load a PSRD file into a node's or hub's state directory",
    usage: ["psrd ingest --state-dir DIR [--hub-address IP] FILE"],
    description:
      "Adds the block in FILE to the pools in DIR (the node's or hub's stateDir). A block is accepted once;\n" +
      "delete FILE afterwards: it is a second copy of the pad. A hub's state takes only blocks of its own\n" +
      "hub id and wg0 address: a hub copy made for another hub is refused, naming both.",
    options: [
      ["--state-dir DIR", "the state directory"],
      [
        "--hub-address IP",
        "for a hub copy: the hub's wg0 address its endpoint must name (default: the one its blocks name)",
      ],
      ["FILE", "the PSRD file"],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "psrd list",
    summary: "show the PSRD blocks in a state directory (never their bytes)",
    usage: ["psrd list --state-dir DIR"],
    description: "Prints one line per block: ids, role, peer, hub endpoint and bytes left in each direction.",
    options: [["--state-dir DIR", "the state directory (opened read-only)"], HELP_OPTION],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "psrd remove",
    summary: "remove a PSRD block from a state directory, overwriting its pad with zeros",
    usage: ["psrd remove --state-dir DIR BLOCK_ID"],
    description:
      "Overwrites the block's pad with zeros, syncs and deletes it (e.g. a block ingested on the wrong hub;\n" +
      "see `psrd list` for ids). Its id stays recorded: it can never be ingested again. Not while the node\n" +
      "or hub using DIR runs (the store is locked).",
    options: [
      ["--state-dir DIR", "the state directory"],
      ["BLOCK_ID", "the block id, 32 hex digits"],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "status",
    summary: "show a running node: both interfaces and, per peer, wg0 and aes0 side by side",
    usage: ["status [--json] [--config FILE] [--admin ADDR] [--token-file FILE]"],
    description:
      "Shows a running node (twofold up) through its admin API: both interfaces and, per peer, wg0 and aes0\n" +
      "side by side (WG0 PSK: where wg0's preshared key comes from), then the DSKE hubs.",
    options: [
      ["--json", "print the admin API's status document instead of the table"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "reload",
    summary: "make a running node re-read its PSK files, config and network map (as SIGHUP)",
    usage: ["reload [--json] [--config FILE] [--admin ADDR] [--token-file FILE]"],
    description:
      "Asks a running node (POST /v1/reload, admin token required) to re-read its PSK files, its config\n" +
      "(a map-driven node's pskFiles apply at once; other changes are listed as needing a restart) and its\n" +
      "network map's source, through the same guarded path as a map change. Nothing restarts.",
    options: [["--json", "print the node's answer as JSON"], ...ADMIN_OPTIONS, HELP_OPTION],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "route",
    summary: "where a running node sends traffic to a peer: interface, peer, class, gate",
    usage: ["route list|get IP|NAME [--json] [--config FILE] [--admin ADDR] [--token-file FILE]"],
    description:
      "Asks a running node (GET /v1/routes) which interface traffic to a peer's address takes: AES peers'\n" +
      "AES IPs via aes0, every wg0 IP (AES-exempt peers, hubs) via wg0; for an AES IP whether its gate is\n" +
      "open. A closed gate means that traffic goes nowhere (aes0 drops it); it never falls back to wg0.",
    options: [
      ["list", "every peer route"],
      ["get IP|NAME", "the route(s) of one address or one peer"],
      ["--json", "print the routes as JSON"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "events",
    summary: "follow a running node's events (rotations, gate, handshakes, hubs, lockdown)",
    usage: ["events [--json] [--since ID] [--config FILE] [--admin ADDR] [--token-file FILE]"],
    description:
      "Follows a running node's events (key rotated, rotation failed, gate opened/closed/stale, handshakes,\n" +
      "hubs, PSRD, lockdown changes), one line each, until Ctrl-C. A dropped connection is re-opened and\n" +
      "resumes after the last event shown.",
    options: [
      ["--json", "one JSON object per line"],
      ["--since ID", "first print the events after ID that the node still holds, then follow"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [["SIGINT, SIGTERM", "stop following, exit 0"]],
    environment: [],
  },
  {
    name: "trace",
    summary: "explain what a running node does with a packet from a peer (route, filter verdict, gate)",
    usage: [
      "trace PEER [PROTO/PORT|icmp] [--to wg0|aes0] [--json] [--admin ADDR] [--token-file FILE]",
      "trace PEER --packet BASE64 [--json] [--admin ADDR] [--token-file FILE]",
    ],
    description:
      "Asks a running node (POST /v1/trace, needs the admin token) what it would do with a packet from PEER\n" +
      "(its name, wg0 IP or AES IP): which interface route steering picks and why, the packet filter's\n" +
      "verdict with the policy rule or lockdown entry that decided it (the data plane's own code, as a dry\n" +
      "run), the peer's aes0 gate, whether a session exists, and the MTU. Default probe: tcp needs a port.",
    options: [
      ["PROTO/PORT", "tcp/8080, udp/53 or icmp (default: a new TCP connection; give the port)"],
      ["--to wg0|aes0", "which of this node's addresses the packet goes to (default: both the peer has)"],
      ["--packet BASE64", "a raw IP packet to decide instead of a probe"],
      ["--json", "print the admin API's trace document"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "lockdown",
    summary: "show or change a running node's wg0 lockdown extra ports (e.g. tcp/8080 udp/6000-6010)",
    usage: [LOCKDOWN_USAGE],
    description: LOCKDOWN_DESCRIPTION,
    options: [
      ["list", "show the list"],
      ["add SPEC...", "add entries, e.g. tcp/8080 udp/6000-6010 (all or none)"],
      ["remove SPEC...", "remove entries (exactly as listed)"],
      ["set [SPEC...]", "replace the whole list (no SPEC: empty it)"],
      ["--json", "print the resulting list as JSON"],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: ADMIN_EXIT,
    signals: [],
    environment: [],
    subcommands: ["list", "add", "remove", "set"],
  },
  lockdownAction("list", "", "show the lockdown extra ports"),
  lockdownAction("add", " PROTO/PORT[-PORT]...", "add entries to the lockdown extra ports, all or none"),
  lockdownAction("remove", " PROTO/PORT[-PORT]...", "remove entries from the lockdown extra ports"),
  lockdownAction(
    "set",
    " [PROTO/PORT[-PORT]...]",
    "replace the lockdown extra ports (no entry: empty the list)",
  ),
  ...NETMAP_HELP,
  {
    name: "bundle",
    summary: "write a support bundle of a running node (.tar.gz, every secret redacted)",
    usage: ["bundle [-o FILE] [--config FILE] [--admin ADDR] [--token-file FILE]"],
    description:
      "Fetches a support bundle from a running node's admin API (always with the admin token): its config\n" +
      "and network map with every secret redacted, status, events, metrics, recent log lines, versions,\n" +
      "ip addr/route/rule, wg show all dump with keys redacted, the newest audit records. Written mode\n" +
      "0600; an existing file is never overwritten. See docs/support-bundle.md.",
    options: [
      [
        "-o, --output FILE",
        "where to write it (default ./twofold-bundle-<node>-<time>.tar.gz; - for stdout)",
      ],
      ...ADMIN_OPTIONS,
      HELP_OPTION,
    ],
    exitCodes: [
      [0, "the bundle was written"],
      [1, "the node could not be reached or refused, or the file exists or cannot be written"],
      [2, "bad usage, or the token file cannot be read"],
    ],
    signals: [],
    environment: [],
  },
  {
    name: "ui",
    summary: "open a running node's status page in a browser (serves it on 127.0.0.1 from the admin API)",
    usage: ["ui [--port N] [--config FILE] [--admin ADDR]"],
    description:
      "Serves the status page of a running node (the admin API's GET /) on http://127.0.0.1:PORT/ by\n" +
      "forwarding to its admin API (the unix socket, which a browser cannot reach), prints the URL (under a\n" +
      "random path key made for this run, so other local users cannot read through the port) and stays in the\n" +
      "foreground. Changes need the token typed into the page. From another machine: ssh -L\n" +
      "8080:127.0.0.1:PORT node, then open the printed URL with port 8080.",
    options: [
      ["--port N", "the local port (default 0: a free port, printed)"],
      ADMIN_OPTIONS[0],
      ADMIN_OPTIONS[1],
      HELP_OPTION,
    ],
    exitCodes: [
      [0, "stopped by a signal"],
      [1, "the node could not be reached"],
      [2, "bad usage, or the port could not be bound"],
    ],
    signals: [["SIGINT, SIGTERM", "stop serving, exit 0"]],
    environment: [],
  },
  {
    name: "check",
    summary: "validate a node, hub or broker config as up/hub/broker would, without starting (like nginx -t)",
    usage: ["check --config FILE"],
    description:
      "Checks everything `twofold up` checks before bringing anything up (`twofold hub` or `twofold broker`\n" +
      'for a config with a top-level "hub" or "broker"): the config and the files it names (keys, PSKs,\n' +
      "modes), the lockdown list, a broker's root key, the UAPI sockets, the admin token and listen address,\n" +
      "the UDP ports and the PSRD blocks. Prints one line per problem; creates nothing (ports are bound and\n" +
      "released at once).",
    options: [["-c, --config FILE", "the node's, hub's or broker's config file (JSONC)"], HELP_OPTION],
    exitCodes: [[0, "no problem found"], [2, "problems found (one line each), or bad usage"]],
    signals: [],
    environment: [],
  },
  {
    name: "audit",
    summary: "verify the tamper-evident audit log offline (hash chain of key-plane and security events)",
    usage: ["audit verify FILE..."],
    description:
      "A node appends its key-plane and security events to <stateDir>/audit.jsonl as a hash chain (rotated\n" +
      "files audit.<seq>.jsonl continue it). `verify` checks files given oldest first and names the first\n" +
      "broken record. See docs/audit-log.md.",
    options: [
      ["verify FILE...", "check these files as one chain, oldest first (e.g. audit*.jsonl)"],
      HELP_OPTION,
    ],
    exitCodes: AUDIT_EXIT,
    signals: [],
    environment: [],
    subcommands: ["verify"],
  },
  {
    name: "audit verify",
    summary: "check audit log files as one hash chain and name the first broken record",
    usage: ["audit verify FILE..."],
    description:
      "Checks the files (oldest first; `/var/lib/twofold/audit*.jsonl` lists them in order) as one hash\n" +
      "chain. Prints `ok: records A..B …; head B HASH` or `broken at FILE:LINE (record N): …`. Records cut\n" +
      "off the end cannot be seen by the chain alone: compare the head with one noted earlier.",
    options: [["FILE...", "audit files, oldest first"], HELP_OPTION],
    exitCodes: AUDIT_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "rosenpass",
    summary: "Rosenpass (post-quantum wg0 PSK) key tools: generate a key pair, print a fingerprint",
    usage: ["rosenpass keygen|fingerprint [options]", "rosenpass help [keygen|fingerprint]"],
    description:
      "Key tools for Rosenpass, which rotates wg0's preshared key with a post-quantum key exchange (see\n" +
      'docs/rosenpass.md, "Running it"). `twofold rosenpass SUBCOMMAND --help` shows each subcommand.',
    options: [
      ["keygen", "generate a Rosenpass static key pair (Classic McEliece 460896)"],
      ["fingerprint", "print the SHA-256 (base64) of a public key file"],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
    subcommands: ["keygen", "fingerprint"],
  },
  {
    name: "rosenpass keygen",
    summary: "generate a Rosenpass static key pair (secret key 0600; a few seconds)",
    usage: ["rosenpass keygen --secret-key FILE --public-key FILE [--profile v02|v03]"],
    description:
      "Generates a Classic McEliece 460896 key pair (a few seconds, with a progress line on stderr) and\n" +
      "prints the public key's fingerprint. The secret key is written with mode 0600; existing files are\n" +
      "never overwritten. Copy the public key file to every peer and pin its fingerprint there.",
    options: [
      ["--secret-key FILE", "where to write the secret key (stays on this node)"],
      ["--public-key FILE", "where to write the public key (524 160 bytes; give it to the peers)"],
      [
        "--profile v02|v03",
        "v02 (default, released Rosenpass) or v03 (upstream protocol 3); a key pair serves one profile",
      ],
      HELP_OPTION,
    ],
    exitCodes: PSRD_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "rosenpass fingerprint",
    summary: "print the SHA-256 (base64) of a Rosenpass public key file",
    usage: ["rosenpass fingerprint FILE"],
    description:
      'Prints the value a peer entry pins in "rosenpass": { "fingerprint" }, so that a swapped key file is\n' +
      "refused at start.",
    options: [["FILE", "a Rosenpass public key file"], HELP_OPTION],
    exitCodes: SIMPLE_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "keygen",
    summary: "print a new private key (base64, like wg genkey)",
    usage: ["keygen"],
    description: "Prints a new X25519 private key in base64 on stdout. Store it mode 0600 (e.g. umask 077).",
    options: [HELP_OPTION],
    exitCodes: SIMPLE_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "pubkey",
    summary: "read a private key on stdin, print its public key (like wg pubkey)",
    usage: ["pubkey < private.key"],
    description: "Reads a base64 private key from stdin and prints its public key in base64.",
    options: [HELP_OPTION],
    exitCodes: SIMPLE_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "demo",
    summary: "build namespaces on this machine and show twofold working (needs root)",
    usage: ["demo [--log-dir DIR]"],
    description:
      "Builds namespaces for two nodes and three hubs, shows the aes0 gate opened by DSKE, a rotation and a\n" +
      "hub failure under a running ping, prints a summary, and removes everything it made.",
    options: [["--log-dir DIR", "keep every process's log in DIR"], HELP_OPTION],
    exitCodes: [[0, "every step held"], [1, "a step failed (one line says which)"], [
      2,
      "a prerequisite is missing",
    ], [
      130,
      "interrupted",
    ]],
    signals: [["SIGINT, SIGTERM", "remove everything made so far, exit 130"]],
    environment: ["TWOFOLD_LOG", "TWOFOLD_AEAD_BACKEND"],
  },
  {
    name: "help",
    summary: "show the commands, or one command's help",
    usage: ["help [COMMAND [SUBCOMMAND]]", "--version"],
    description:
      "Without a command: the list of commands. `twofold --version`: twofold, Deno and the AEAD backend.",
    options: [["COMMAND", "a command from the list, e.g. status or psrd new"], HELP_OPTION],
    exitCodes: SIMPLE_EXIT,
    signals: [],
    environment: [],
  },
];

/** The help entry for `words` (e.g. ["psrd", "new"]), or undefined. */
export function findCommand(words: string[]): CommandHelp | undefined {
  const name = words.join(" ");
  return COMMANDS.find((c) => c.name === name);
}

/** `usage: twofold …` of a command (its first usage line), for error messages. */
export function usageOf(name: string): string {
  const c = COMMANDS.find((c) => c.name === name);
  if (!c) throw new Error(`no help entry for "${name}"`);
  return `usage: twofold ${c.usage[0]}`;
}

function columns(rows: [string, string][], indent = "  "): string[] {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}  ${b}`);
}

/** The full help text of one command. */
export function renderHelp(c: CommandHelp): string {
  const out = [
    `usage: twofold ${c.usage[0]}`,
    ...c.usage.slice(1).map((u) => `       twofold ${u}`),
    "",
    c.description,
    "",
    "options:",
    ...columns(c.options),
    "",
    "exit codes:",
    ...columns(c.exitCodes.map(([n, t]) => [String(n), t])),
  ];
  if (c.signals.length > 0) out.push("", "signals:", ...columns(c.signals));
  out.push("", "environment (an empty variable counts as unset):");
  if (c.environment.length === 0) out.push("  none read");
  else out.push(...columns(c.environment.map((n) => [n, ENV_VARS[n].description])));
  return out.join("\n");
}

/** The list of commands `twofold help` prints. */
export function renderOverview(): string {
  const top = COMMANDS.filter((c) => !c.name.includes(" "));
  return [
    "usage: twofold <command> [options]",
    "",
    "commands:",
    ...columns(top.map((c) => [c.name, c.summary])),
    "",
    'Run "twofold help COMMAND" or "twofold COMMAND --help" for a command\'s options, exit codes, signals',
    'and environment; "twofold --version" for the versions.',
  ].join("\n");
}

/** What a command line asks for before anything runs. */
export type HelpRequest =
  | { kind: "help"; text: string; exitCode: 0 | 2 }
  | { kind: "version" }
  | { kind: "run" };

const HELP_FLAGS = ["-h", "--help"];

/**
 * Decides, without side effects, whether `args` ask for help or the version: `twofold`, `help [CMD
 * [SUB]]`, `--version`, `CMD [SUB] … --help|-h` (before any `--`), and `CMD help [SUB]` for commands
 * with subcommands. Everything else is `run`. An unknown command named for help is a CliError (exit 2).
 */
export function helpRequest(args: string[]): HelpRequest {
  const [cmd, ...rest] = args;
  if (cmd === undefined) return { kind: "help", text: renderOverview(), exitCode: 2 };
  if (cmd === "--version" || cmd === "-V") return { kind: "version" };
  if (HELP_FLAGS.includes(cmd)) return { kind: "help", text: renderOverview(), exitCode: 0 };
  if (cmd === "help") {
    const words = rest.filter((w) => !HELP_FLAGS.includes(w));
    if (words.length === 0) return { kind: "help", text: renderOverview(), exitCode: 0 };
    return { kind: "help", text: renderHelp(lookup(words)), exitCode: 0 };
  }
  const top = findCommand([cmd]);
  if (!top) return { kind: "run" };
  const end = rest.indexOf("--");
  const before = end < 0 ? rest : rest.slice(0, end);
  const sub = top.subcommands?.includes(before[0]) ? before[0] : undefined;
  if (top.subcommands && before[0] === "help") {
    return { kind: "help", text: renderHelp(lookup(before[1] ? [cmd, before[1]] : [cmd])), exitCode: 0 };
  }
  if (!before.some((a) => HELP_FLAGS.includes(a))) return { kind: "run" };
  return { kind: "help", text: renderHelp(findCommand(sub ? [cmd, sub] : [cmd]) ?? top), exitCode: 0 };
}

function lookup(words: string[]): CommandHelp {
  const c = findCommand(words);
  if (c) return c;
  const top = findCommand([words[0]]);
  if (top?.subcommands && words.length > 1) {
    throw new CliError(
      `"${words[0]}" has no subcommand "${words[1]}" (it has ${
        top.subcommands.join(", ")
      }); run "twofold help ${words[0]}"`,
    );
  }
  throw new CliError(`unknown command "${words.join(" ")}"; run "twofold help" for the list of commands`);
}

/** The full help text of a command by name (for the modules' own `--help` handling). */
export function helpOf(name: string): string {
  const c = findCommand(name.split(" "));
  if (!c) throw new Error(`no help entry for "${name}"`);
  return renderHelp(c);
}
