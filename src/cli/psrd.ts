/**
 * `twofold psrd`: provision PSRD blocks out of band (`new`), load them into a node's pools (`ingest`),
 * show the pools (`list`) and remove a block (`remove`, e.g. one made for another hub: its pad is
 * overwritten). Nothing here ever prints pad bytes.
 * @module
 */
import {
  parseSubcommandArgs,
  requiredOption,
  type Subcommand,
  type SubcommandOptions,
} from "./subcommand-args.ts";
import { decodeBase64, encodeBase64, fromHex, toHex } from "../encoding.ts";
import {
  createPsrdPair,
  isValidHubEndpoint,
  PSRD_DEFAULT_REGION_BYTES,
  PSRD_FILE_MAX_DATA_BYTES,
  PSRD_MAX_REGION_BYTES,
  PSRD_MIN_REGION_BYTES,
  PsrdError,
  type PsrdFile,
  readPsrdFile,
  writePsrdFile,
} from "../dske/psrd-file.ts";
import { PsrdStore } from "../dske/psrd-store.ts";
import { hubIngestProblem } from "../dske/psrd-provisioning.ts";
import { CliError } from "./errors.ts";
import { helpOf } from "./help.ts";

const USAGE = helpOf("psrd");

function parse(sub: string, args: string[], options: SubcommandOptions, positionals: number) {
  return parseSubcommandArgs(
    psrdSubcommand(sub),
    args,
    options,
    positionals,
    sub === "remove" ? "block id" : "file",
  );
}

function required(sub: string, values: Record<string, unknown>, name: string): string {
  return requiredOption(psrdSubcommand(sub), values, name);
}

/** `psrd SUB`, whose own help is `twofold psrd SUB --help`. */
function psrdSubcommand(sub: string): Subcommand {
  return { name: `psrd ${sub}`, help: `psrd ${sub}` };
}

/** Parses a byte count: digits with an optional binary suffix K, M or G (1M = 1048576). */
function parseRegion(name: string, text: string | undefined): number {
  if (text === undefined) return PSRD_DEFAULT_REGION_BYTES;
  const m = /^([0-9]{1,10})([KMG]?)$/i.exec(text);
  const n = m
    ? Number(m[1]) * { "": 1, k: 1024, m: 1 << 20, g: 1 << 30 }[m[2].toLowerCase() as "" | "k"]!
    : NaN;
  if (!(n >= PSRD_MIN_REGION_BYTES && n <= PSRD_MAX_REGION_BYTES)) {
    throw new CliError(
      `psrd new: --${name} must be a byte count between ${PSRD_MIN_REGION_BYTES} and ${PSRD_MAX_REGION_BYTES} (suffix K, M or G allowed)`,
    );
  }
  return n;
}

function parseHexId(name: string, text: string | undefined): Uint8Array | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9a-fA-F]{32}$/.test(text)) {
    throw new CliError(`psrd new: --${name} must be 32 hex digits (16 bytes)`);
  }
  return fromHex(text);
}

function parsePeerId(text: string): Uint8Array {
  let key: Uint8Array | undefined;
  try {
    key = decodeBase64(text);
  } catch { /* reported below */ }
  if (!key || key.length !== 32) {
    throw new CliError(
      "psrd new: --peer-id must be the client's WireGuard public key (44 characters of base64)",
    );
  }
  return key;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function wipe(f: PsrdFile): void {
  f.data.fill(0);
}

async function runNew(args: string[]): Promise<number> {
  const { values } = parse("new", args, {
    "hub-endpoint": { type: "string" },
    "peer-id": { type: "string" },
    "hub-id": { type: "string" },
    "client-id": { type: "string" },
    "c2h": { type: "string" },
    "h2c": { type: "string" },
    "client-out": { type: "string" },
    "hub-out": { type: "string" },
  }, 0);
  const v = values as Record<string, string | undefined>;
  const hubEndpoint = required("new", v, "hub-endpoint");
  if (!isValidHubEndpoint(hubEndpoint)) {
    throw new CliError("psrd new: --hub-endpoint must be HOST:PORT (e.g. 10.0.0.1:51831 or [fd00::1]:51831)");
  }
  const peerId = parsePeerId(required("new", v, "peer-id"));
  const hubId = parseHexId("hub-id", v["hub-id"]);
  const clientId = parseHexId("client-id", v["client-id"]);
  const c2hLen = parseRegion("c2h", v.c2h);
  const h2cLen = parseRegion("h2c", v.h2c);
  if (c2hLen + h2cLen > PSRD_FILE_MAX_DATA_BYTES) {
    throw new CliError(
      `psrd new: --c2h plus --h2c must not exceed ${PSRD_FILE_MAX_DATA_BYTES} bytes (the PSRD file's limit)`,
    );
  }
  const clientOut = required("new", v, "client-out");
  const hubOut = required("new", v, "hub-out");
  if (clientOut === hubOut) throw new CliError("psrd new: --client-out and --hub-out must differ");
  for (const [name, path] of [["client-out", clientOut], ["hub-out", hubOut]]) {
    if (await exists(path)) {
      throw new CliError(
        `psrd new: --${name} ${path} already exists: refusing to overwrite it; choose another path`,
      );
    }
  }
  const { client, hub } = createPsrdPair({ hubId, hubEndpoint, clientId, peerId, c2hLen, h2cLen });
  try {
    try {
      await writePsrdFile(clientOut, client);
    } catch (e) {
      if (e instanceof PsrdError) throw new CliError(`psrd new: --client-out: ${e.message}`);
      throw e;
    }
    try {
      await writePsrdFile(hubOut, hub);
    } catch (e) {
      await Deno.remove(clientOut).catch(() => {}); // never leave half a pair behind
      if (e instanceof PsrdError) throw new CliError(`psrd new: --hub-out: ${e.message}`);
      throw e;
    }
  } finally {
    wipe(client);
    wipe(hub);
  }
  console.log(`block ${toHex(client.blockId)}: ${c2hLen} B client-to-hub, ${h2cLen} B hub-to-client`);
  console.log(`  hub ${toHex(client.hubId)} at ${hubEndpoint}, client ${toHex(client.clientId)}`);
  console.log(`  client copy: ${clientOut}`);
  console.log(`  hub copy:    ${hubOut}`);
  console.log("move each copy to its node over a trusted channel (mode 0600), ingest it, then delete it");
  return 0;
}

async function openStore(sub: string, dir: string, readOnly = false): Promise<PsrdStore> {
  try {
    return await PsrdStore.open(dir, { readOnly });
  } catch (e) {
    if (e instanceof PsrdError) throw new CliError(`psrd ${sub}: --state-dir: ${e.message}`);
    throw e;
  }
}

async function runIngest(args: string[]): Promise<number> {
  const { values, positionals } = parse("ingest", args, {
    "state-dir": { type: "string" },
    "hub-address": { type: "string" },
  }, 1);
  const stateDir = required("ingest", values as Record<string, unknown>, "state-dir");
  const hubAddress = (values as Record<string, string | undefined>)["hub-address"];
  const path = positionals[0];
  let file: PsrdFile;
  try {
    file = await readPsrdFile(path);
  } catch (e) {
    if (e instanceof PsrdError) throw new CliError(`psrd ingest: ${e.message}`);
    throw e;
  }
  try {
    const store = await openStore("ingest", stateDir);
    try {
      const problem = hubIngestProblem(store.blocks(), {
        blockId: toHex(file.blockId),
        role: file.role,
        hubId: toHex(file.hubId),
        hubEndpoint: file.hubEndpoint,
      }, hubAddress);
      if (problem) throw new CliError(`psrd ingest: refused: ${problem}`);
      const b = store.ingest(file);
      console.log(
        `ingested block ${b.blockId} (${b.role}): ${b.txLen} B to send, ${b.rxLen} B to receive, hub ${b.hubId} at ${b.hubEndpoint}`,
      );
    } catch (e) {
      if (e instanceof PsrdError) throw new CliError(`psrd ingest: ${e.message}`);
      throw e;
    } finally {
      store.close();
    }
  } finally {
    wipe(file);
  }
  console.error(`psrd ingest: now delete ${path} (e.g. shred -u ${path}): it is a second copy of the pad`);
  return 0;
}

async function runList(args: string[]): Promise<number> {
  const { values } = parse("list", args, { "state-dir": { type: "string" } }, 0);
  const stateDir = required("list", values as Record<string, unknown>, "state-dir");
  const store = await openStore("list", stateDir, true);
  try {
    const blocks = store.blocks().sort((a, b) => a.blockId.localeCompare(b.blockId));
    if (blocks.length === 0) {
      console.log("no PSRD blocks");
      return 0;
    }
    console.log(
      ["block_id", "role", "hub_id", "client_id", "peer", "endpoint", "tx_left/tx_len", "rx_left/rx_len"]
        .join("\t"),
    );
    for (const b of blocks) {
      console.log(
        [
          b.blockId,
          b.role,
          b.hubId,
          b.clientId,
          encodeBase64(fromHex(b.peerId)),
          b.hubEndpoint,
          `${b.txRemaining}/${b.txLen}`,
          `${b.rxRemaining}/${b.rxLen}`,
        ].join("\t"),
      );
    }
  } finally {
    store.close();
  }
  return 0;
}

async function runRemove(args: string[]): Promise<number> {
  const { values, positionals } = parse("remove", args, { "state-dir": { type: "string" } }, 1);
  const stateDir = required("remove", values as Record<string, unknown>, "state-dir");
  const blockId = positionals[0].toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(blockId)) {
    throw new CliError(`psrd remove: BLOCK_ID must be 32 hex digits (see "twofold psrd list")`);
  }
  const store = await openStore("remove", stateDir);
  try {
    if (!store.block(blockId)) {
      throw new CliError(`psrd remove: no block ${blockId} in ${stateDir} (see "twofold psrd list")`);
    }
    const b = store.remove(blockId);
    console.log(
      `removed block ${b.blockId} (${b.role}, hub ${b.hubId} at ${b.hubEndpoint}): pad overwritten with zeros`,
    );
  } finally {
    store.close();
  }
  return 0;
}

/**
 * Runs `twofold psrd <new|ingest|list|remove> ...`; returns the exit code. Bad input throws a
 * {@link CliError}.
 */
export async function psrdCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "new":
      return await runNew(rest);
    case "ingest":
      return await runIngest(rest);
    case "list":
      return await runList(rest);
    case "remove":
      return await runRemove(rest);
    case "help":
    case "-h":
    case "--help":
      console.log(USAGE);
      return 0;
    default:
      throw new CliError(
        sub === undefined
          ? `psrd: missing subcommand; run "twofold psrd help"`
          : `psrd: unknown subcommand "${sub}"; run "twofold psrd help"`,
      );
  }
}
