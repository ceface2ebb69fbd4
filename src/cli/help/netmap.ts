/**
 * Help entries of `twofold netmap` and its subcommands, apart from the command so that help.ts's table
 * (answered before any command module loads) can hold them without loading the netmap code.
 * @module
 */
import { type CommandHelp, HELP_OPTION } from "./entry.ts";

/** The map file when `--map` is not given. */
export const DEFAULT_MAP_FILE = "./netmap.json";

const MAP_OPTION: [string, string] = ["--map FILE", `the map file (default ${DEFAULT_MAP_FILE})`];
const EDIT_EXIT: [number, string][] = [
  [0, "the map was written (serial incremented)"],
  [2, "bad usage, a refused edit (duplicate, full subnet) or an unreadable or invalid map; nothing changed"],
];

/** `twofold netmap …` help entries, part of help.ts's table. */
export const NETMAP_HELP: readonly CommandHelp[] = [
  {
    name: "netmap",
    summary: "edit, check and sign the network map (allocation tool)",
    usage: [
      "netmap init|add|remove|list|check|sign|verify|signer-keygen|serve [options]",
      "netmap help [SUBCOMMAND]",
    ],
    description:
      "The network map lists every node of the network (name, key, wg0 IP, AES IP, role, endpoints, groups)\n" +
      "and the DNS domain. These subcommands create and edit it (allocating addresses), check it, and sign\n" +
      "it for distribution. `twofold netmap SUBCOMMAND --help` shows each subcommand.",
    options: [
      ["init", "create an empty map"],
      ["add", "add a node with the next free wg0 and AES addresses"],
      ["remove", "remove a node"],
      ["list", "show the nodes"],
      ["check", "validate the map"],
      ["sign", "write the detached signature FILE.sig"],
      ["verify", "check FILE.sig against the signer's public key"],
      ["signer-keygen", "create a signing key (0600) and print its public key"],
      ["serve", "serve a map directory over HTTP (with ETags) for nodes to poll"],
      HELP_OPTION,
    ],
    exitCodes: [[0, "success"], [1, "check or verify found a problem"], [2, "bad usage or input"]],
    signals: [],
    environment: [],
    subcommands: ["init", "add", "remove", "list", "check", "sign", "verify", "signer-keygen", "serve"],
  },
  {
    name: "netmap init",
    summary: "create an empty network map",
    usage: ["netmap init --domain DOMAIN --aes-subnet CIDR [--map FILE]"],
    description: "Writes a new map at serial 1 with no nodes. An existing file is never overwritten.",
    options: [
      ["--domain DOMAIN", "the DNS domain the nodes' names live in, e.g. fabric.example"],
      ["--aes-subnet CIDR", "the IPv4 subnet AES addresses come from, e.g. 100.127.0.0/16"],
      MAP_OPTION,
      HELP_OPTION,
    ],
    exitCodes: EDIT_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "netmap add",
    summary: "add a node, allocating the next free wg0 and AES addresses",
    usage: [
      "netmap add NAME --public-key KEY [--exempt | --hub | --broker] [--groups a,b] [--endpoint HOST:PORT]...\n" +
      "                 [--key-source manual|dske|ska] [--keepalive SECONDS] [--route CIDR]... [--map FILE]",
    ],
    description:
      "Adds NAME with the lowest free wg0 address in 100.64.0.0/10 and (unless AES-exempt, a hub or a\n" +
      "broker) the lowest free AES address; never an address still in the map, never a network or broadcast\n" +
      "address. A duplicate name or key is refused. Prints the addresses given.",
    options: [
      ["NAME", "the node's name (a DNS label: NAME.DOMAIN and NAME.aes.DOMAIN)"],
      ["--public-key KEY", "the node's WireGuard public key (`twofold pubkey < node.key`)"],
      ["--exempt", "AES-exempt: wg0 only, no AES address"],
      ["--hub", "a DSKE security hub (wg0 only)"],
      ["--broker", "an SKA broker (wg0 only)"],
      ["--groups a,b", "groups, comma-separated (declared in the map if new)"],
      ["--endpoint HOST:PORT", "numeric underlay endpoint; repeat for more"],
      ["--key-source SRC", "aes0 PSK source (default: the one the map's AES nodes use, else manual)"],
      ["--keepalive SECONDS", "persistent keepalive (default 0: off)"],
      [
        "--route CIDR",
        "a network the node routes for others (site-to-site, docs/site-to-site.md); repeat for more",
      ],
      MAP_OPTION,
      HELP_OPTION,
    ],
    exitCodes: EDIT_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "netmap remove",
    summary: "remove a node from the map",
    usage: ["netmap remove NAME [--map FILE]"],
    description: "Removes NAME; its addresses become free for later nodes.",
    options: [["NAME", "the node's name"], MAP_OPTION, HELP_OPTION],
    exitCodes: EDIT_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "netmap list",
    summary: "show the map's nodes",
    usage: ["netmap list [--json] [--map FILE]"],
    description: "One line per node: name, role, wg0 IP, AES IP, key source, groups, endpoints, public key.",
    options: [["--json", "print the map as JSON"], MAP_OPTION, HELP_OPTION],
    exitCodes: [[0, "success"], [2, "bad usage, or the map cannot be read or is invalid"]],
    signals: [],
    environment: [],
  },
  {
    name: "netmap check",
    summary: "validate the map",
    usage: ["netmap check [--map FILE]"],
    description: "Validates the whole map (the rules a node applies); prints its serial and node count.",
    options: [MAP_OPTION, HELP_OPTION],
    exitCodes: [[0, "the map is valid"], [1, "the map is invalid (one line says where)"], [2, "bad usage"]],
    signals: [],
    environment: [],
  },
  {
    name: "netmap sign",
    summary: "sign the map (detached Ed25519 signature FILE.sig)",
    usage: ["netmap sign --key SIGNER_KEY [--map FILE]"],
    description:
      "Checks the map, then writes its signature over the file's exact bytes to FILE.sig. Sign again after\n" +
      "every edit: nodes refuse a map whose signature does not verify.",
    options: [["--key SIGNER_KEY", "the signer key file (mode 0600)"], MAP_OPTION, HELP_OPTION],
    exitCodes: [[0, "signed"], [2, "bad usage, an invalid map or an unusable key file"]],
    signals: [],
    environment: [],
  },
  {
    name: "netmap verify",
    summary: "check the map's signature",
    usage: ["netmap verify --public-key SIGNER_PUBKEY [--signature FILE] [--map FILE]"],
    description: "Checks FILE.sig (or --signature) against the signer's public key, as a node does.",
    options: [
      ["--public-key KEY", "the signer's public key (base64)"],
      ["--signature FILE", "the signature file (default: the map file + .sig)"],
      MAP_OPTION,
      HELP_OPTION,
    ],
    exitCodes: [[0, "the signature verifies and the map is valid"], [1, "it does not"], [2, "bad usage"]],
    signals: [],
    environment: [],
  },
  {
    name: "netmap signer-keygen",
    summary: "create a map-signing key",
    usage: ["netmap signer-keygen --out FILE"],
    description:
      "Writes a new Ed25519 signing key to FILE (mode 0600, never overwritten) and prints its public key,\n" +
      "which goes into every node's config (netmap.publicKey). Keep the key file off the nodes.",
    options: [["--out FILE", "where to write the key"], HELP_OPTION],
    exitCodes: [[0, "written"], [2, "bad usage, or FILE exists or cannot be written"]],
    signals: [],
    environment: [],
  },
  {
    name: "netmap serve",
    summary: "serve a map directory over HTTP for small fabrics",
    usage: ["netmap serve DIR --listen HOST:PORT"],
    description:
      "Serves the files directly in DIR (the map and its .sig) read-only over HTTP, each with an ETag of its\n" +
      "content, so nodes polling with If-None-Match get 304 while nothing changed; edits show at once. Any\n" +
      "web server does the same; nodes trust the signature, not the transport.",
    options: [
      ["DIR", "the directory holding netmap.json and netmap.json.sig"],
      ["--listen HOST:PORT", "numeric address and port to listen on, e.g. 192.0.2.10:8080"],
      HELP_OPTION,
    ],
    exitCodes: [[0, "stopped by a signal"], [2, "bad usage, or the address cannot be used"]],
    signals: [["SIGINT, SIGTERM", "stop serving, exit 0"]],
    environment: [],
  },
];
