/**
 * Help entries of the commands that ask a running node through its admin API what it does, or change
 * it: `status`, `reload`, `route`, `events`, `trace` and `lockdown` with its subcommands.
 * @module
 */
import { ADMIN_EXIT, ADMIN_OPTIONS, type CommandHelp, HELP_OPTION } from "./entry.ts";

const LOCKDOWN_USAGE =
  "lockdown list|add|remove|set [PROTO/PORT[-PORT] ...] [--json] [--config FILE] [--admin ADDR] [--token-file FILE]";
const LOCKDOWN_DESCRIPTION =
  "The wg0 lockdown extra ports (beyond ICMP, UDP 51830 and TCP 51831) of a running node, through its\n" +
  "admin API. Changes need the admin token and take effect at once (twofold's own packet filter: between\n" +
  "two AES peers wg0 delivers only these ports, ICMP, UDP 51830 and TCP 51831; see README, Lockdown).";

/** The help entry of one `lockdown` subcommand (they differ only in their argument and summary). */
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

/** `status`, `reload`, `route`, `events`, `trace`, `lockdown` and its subcommands. */
export const NODE_ADMIN_HELP: readonly CommandHelp[] = [
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
      "trace PEER [PROTO/PORT|icmp] [--to wg0|aes0] [--destination IP] [--json] [--admin ADDR] [--token-file FILE]",
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
      [
        "--destination IP",
        "a host in a network this node routes (node.advertise) instead of its own address",
      ],
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
];
