/**
 * Help entries of the commands that hand a running node's state to someone else: `bundle` (a support
 * bundle, secrets redacted) and `ui` (the status page, for a browser).
 * @module
 */
import { ADMIN_OPTIONS, type CommandHelp, HELP_OPTION } from "./entry.ts";

/** `bundle` and `ui`. */
export const SUPPORT_HELP: readonly CommandHelp[] = [
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
];
