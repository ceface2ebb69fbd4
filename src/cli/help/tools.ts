/**
 * Help entries of the commands that need no running node: `check` (a config), `audit verify`, the key
 * tools (`rosenpass keygen|fingerprint`, `keygen`, `pubkey`), `demo` and `help` itself.
 * @module
 */
import { type CommandHelp, HELP_OPTION, RUN_ONCE_EXIT, SIMPLE_EXIT } from "./entry.ts";

const AUDIT_EXIT: [number, string][] = [
  [0, "the chain is intact"],
  [1, "the chain is broken (the line names the first broken record)"],
  [2, "bad usage, or a file cannot be read"],
];

/** `check`, `audit`, `rosenpass`, `keygen`, `pubkey`, `demo` and `help`, in the overview's order. */
export const TOOL_HELP: readonly CommandHelp[] = [
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
    exitCodes: RUN_ONCE_EXIT,
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
    exitCodes: RUN_ONCE_EXIT,
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
