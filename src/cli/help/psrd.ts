/**
 * Help entries of `twofold psrd` and its subcommands: provisioning, ingesting, listing and removing
 * pre-shared random data for DSKE.
 * @module
 */
import { type CommandHelp, HELP_OPTION, RUN_ONCE_EXIT } from "./entry.ts";

/** `psrd` and its subcommands `new`, `ingest`, `list`, `remove`. */
export const PSRD_HELP: readonly CommandHelp[] = [
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
    exitCodes: RUN_ONCE_EXIT,
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
    exitCodes: RUN_ONCE_EXIT,
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
    exitCodes: RUN_ONCE_EXIT,
    signals: [],
    environment: [],
  },
  {
    name: "psrd list",
    summary: "show the PSRD blocks in a state directory (never their bytes)",
    usage: ["psrd list --state-dir DIR"],
    description: "Prints one line per block: ids, role, peer, hub endpoint and bytes left in each direction.",
    options: [["--state-dir DIR", "the state directory (opened read-only)"], HELP_OPTION],
    exitCodes: RUN_ONCE_EXIT,
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
    exitCodes: RUN_ONCE_EXIT,
    signals: [],
    environment: [],
  },
];
