/**
 * `twofold netmap`: the allocation and signing tool for the network map (what the management server
 * does in the product). Every subcommand about the map takes `--map FILE` (default ./netmap.json). Edits (`init`,
 * `add`, `remove`) hold the map's lock file, increment the serial, validate the whole result and
 * replace the file atomically; a refused edit changes nothing. `sign` writes the detached signature
 * `FILE.sig`; `verify` checks it against the signer's public key; `serve` serves a map directory over
 * HTTP with ETags.
 *
 * Its help entries live in help/netmap.ts (help.ts's table reads them without loading this module).
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { encodeBase64 } from "../encoding.ts";
import { SubnetFullError } from "../netmap/allocate.ts";
import { addNode, initDocument, removeNode } from "../netmap/edit.ts";
import { formatIpv4Number, formatPrefix } from "../netmap/ipv4.ts";
import { MapFileError, readMapBytes, withMapLock, writeFileReplacing } from "../netmap/map-file.ts";
import {
  formatNetmapDocument,
  type Netmap,
  type NetmapDocument,
  NetmapError,
  type NetmapKeySource,
  parseNetmap,
  parseNetmapDocument,
} from "../netmap/schema.ts";
import {
  formatSignature,
  generateSignerSeed,
  parseSignature,
  parseSignerPublicKey,
  readSignerKeyFile,
  SIGNATURE_SUFFIX,
  SignatureError,
  signDocument,
  verifyDocument,
  writeNewSignerKeyFile,
} from "../netmap/signature.ts";
import { formatEndpoint, parseEndpoint } from "../uapi/netaddr.ts";
import { formatCidr } from "../wireguard/allowedips.ts";
import { serveMapDirectory } from "../netmap/http-serve.ts";
import { CliError, optionError } from "./errors.ts";

import { DEFAULT_MAP_FILE, NETMAP_HELP } from "./help/netmap.ts";

export { DEFAULT_MAP_FILE, NETMAP_HELP };

type Options = NonNullable<ParseArgsConfig["options"]>;

function parse<O extends Options>(sub: string, args: string[], options: O, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`netmap ${sub}: ${optionError(`netmap ${sub}`, e).message}`);
  }
  if (parsed.positionals.length !== positionals) {
    throw new CliError(
      positionals === 0
        ? `netmap ${sub}: unexpected argument "${parsed.positionals[0]}"; run "twofold netmap ${sub} --help"`
        : `netmap ${sub}: expected the node's NAME; run "twofold netmap ${sub} --help"`,
    );
  }
  return parsed;
}

function required(sub: string, values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") {
    throw new CliError(`netmap ${sub}: --${name} is required; run "twofold netmap ${sub} --help"`);
  }
  return v;
}

/** Turns the netmap layer's one-line errors into CLI errors (exit 2 unless given). */
function operatorError(sub: string, path: string | null, e: unknown, exitCode = 2): never {
  if (e instanceof NetmapError) {
    throw new CliError(`netmap ${sub}: ${path ? `${path}: ` : ""}${e.message}`, exitCode);
  }
  if (e instanceof MapFileError || e instanceof SignatureError || e instanceof SubnetFullError) {
    throw new CliError(`netmap ${sub}: ${e.message}`, exitCode);
  }
  throw e;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function readDocument(
  sub: string,
  path: string,
  exitCode = 2,
): { bytes: Uint8Array; doc: NetmapDocument; map: Netmap } {
  try {
    const bytes = readMapBytes(path);
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new CliError(`netmap ${sub}: ${path}: the file is not UTF-8 text; is it a map?`, exitCode);
    }
    const doc = parseNetmapDocument(text);
    return { bytes, doc, map: parseNetmap(text) };
  } catch (e) {
    return operatorError(sub, e instanceof NetmapError ? path : null, e, exitCode);
  }
}

/** One edit under the map's lock: read, change, validate, write atomically. */
function edit(sub: string, path: string, change: (doc: NetmapDocument) => NetmapDocument): NetmapDocument {
  try {
    return withMapLock(path, () => {
      const { doc } = readDocument(sub, path);
      const next = change(doc);
      writeFileReplacing(path, encoder.encode(formatNetmapDocument(next)));
      return next;
    });
  } catch (e) {
    return operatorError(sub, null, e);
  }
}

function mapPath(values: Record<string, unknown>): string {
  const v = values.map;
  return typeof v === "string" && v !== "" ? v : DEFAULT_MAP_FILE;
}

const MAP = { map: { type: "string" } } as const;

function runInit(args: string[]): number {
  const { values } = parse("init", args, {
    ...MAP,
    domain: { type: "string" },
    "aes-subnet": { type: "string" },
  }, 0);
  const domain = required("init", values, "domain");
  const subnet = required("init", values, "aes-subnet");
  const path = mapPath(values);
  let doc: NetmapDocument;
  try {
    doc = initDocument(domain, subnet);
    writeFileReplacing(path, encoder.encode(formatNetmapDocument(doc)), { createOnly: true });
  } catch (e) {
    return operatorError("init", null, e);
  }
  console.log(`${path}: new map for ${doc.domain}, AES subnet ${doc.aesSubnet}, serial ${doc.serial}`);
  return 0;
}

const KEY_SOURCES: readonly NetmapKeySource[] = ["manual", "dske", "ska"];

function runAdd(args: string[]): number {
  const { values, positionals } = parse("add", args, {
    ...MAP,
    "public-key": { type: "string" },
    exempt: { type: "boolean" },
    hub: { type: "boolean" },
    broker: { type: "boolean" },
    groups: { type: "string" },
    endpoint: { type: "string", multiple: true },
    "key-source": { type: "string" },
    keepalive: { type: "string" },
    route: { type: "string", multiple: true },
  }, 1);
  const name = positionals[0];
  const publicKey = required("add", values, "public-key");
  const kinds = (["exempt", "hub", "broker"] as const).filter((k) => values[k]);
  if (kinds.length > 1) {
    throw new CliError(`netmap add: --${kinds[0]} and --${kinds[1]} exclude each other; give one`);
  }
  const keySource = values["key-source"];
  if (keySource !== undefined && !KEY_SOURCES.includes(keySource as NetmapKeySource)) {
    throw new CliError(`netmap add: --key-source must be one of ${KEY_SOURCES.join(", ")}`);
  }
  let keepalive: number | undefined;
  if (values.keepalive !== undefined) {
    keepalive = /^[0-9]{1,5}$/.test(values.keepalive) ? Number(values.keepalive) : NaN;
    if (!(keepalive <= 65535)) throw new CliError("netmap add: --keepalive must be 0 (off) to 65535 seconds");
  }
  const groups = values.groups === undefined
    ? []
    : values.groups.split(",").map((g) => g.trim()).filter((g) => g);
  const path = mapPath(values);
  const doc = edit("add", path, (d) =>
    addNode(d, {
      name,
      publicKey,
      role: values.hub ? "hub" : values.broker ? "broker" : "peer",
      exempt: values.exempt === true,
      groups,
      endpoints: values.endpoint ?? [],
      keySource: keySource as NetmapKeySource | undefined,
      persistentKeepalive: keepalive,
      routes: values.route ?? [],
    }).doc);
  const added = doc.nodes[doc.nodes.length - 1];
  console.log(
    `${path}: added ${added.name}: wg0 ${added.wgIp}, ` +
      (added.aesIp ? `AES ${added.aesIp} (${added.keySource})` : "no AES address (wg0 only)") +
      (added.routes.length ? `; routes ${added.routes.join(", ")}` : "") +
      `; serial ${doc.serial}`,
  );
  return 0;
}

function runRemove(args: string[]): number {
  const { values, positionals } = parse("remove", args, MAP, 1);
  const path = mapPath(values);
  const doc = edit("remove", path, (d) => removeNode(d, positionals[0]).doc);
  console.log(`${path}: removed ${positionals[0]}; serial ${doc.serial}`);
  return 0;
}

/** The `list` table: one row per node. */
export function formatNodeTable(map: Netmap): string {
  // The ROUTES column only when a node routes networks (site-to-site), before the key (the last column).
  const routed = map.nodes.some((n) => n.routes.length > 0);
  const rows = [[
    "NAME",
    "ROLE",
    "WG IP",
    "AES IP",
    "KEYS",
    "GROUPS",
    "ENDPOINTS",
    ...(routed ? ["ROUTES"] : []),
    "PUBLIC KEY",
  ]];
  for (const n of map.nodes) {
    rows.push([
      n.name,
      n.role,
      formatIpv4Number(n.wgIp),
      n.aesIp === null ? "-" : formatIpv4Number(n.aesIp),
      n.keySource ?? "-",
      n.groups.join(",") || "-",
      n.endpoints.map(formatEndpoint).join(",") || "-",
      ...(routed ? [n.routes.map(formatCidr).join(",") || "-"] : []),
      n.publicKeyText,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c])).join("  "))
    .join("\n");
}

function runList(args: string[]): number {
  const { values } = parse("list", args, { ...MAP, json: { type: "boolean" } }, 0);
  const path = mapPath(values);
  const { doc, map } = readDocument("list", path);
  if (values.json) {
    console.log(formatNetmapDocument(doc).trimEnd());
    return 0;
  }
  console.log(
    `map ${path}: serial ${map.serial}, domain ${map.domain}, AES subnet ${formatPrefix(map.aesSubnet)}, ` +
      `${map.nodes.length} node(s)`,
  );
  if (map.nodes.length) console.log(formatNodeTable(map));
  return 0;
}

function runCheck(args: string[]): number {
  const { values } = parse("check", args, MAP, 0);
  const path = mapPath(values);
  const { map } = readDocument("check", path, 1);
  console.log(`${path}: valid; serial ${map.serial}, ${map.nodes.length} node(s), domain ${map.domain}`);
  return 0;
}

function runSign(args: string[]): number {
  const { values } = parse("sign", args, { ...MAP, key: { type: "string" } }, 0);
  const keyFile = required("sign", values, "key");
  const path = mapPath(values);
  const { bytes, map } = readDocument("sign", path);
  let seed: Uint8Array;
  try {
    seed = readSignerKeyFile(keyFile);
  } catch (e) {
    return operatorError("sign", null, e);
  }
  try {
    const sigPath = `${path}${SIGNATURE_SUFFIX}`;
    writeFileReplacing(sigPath, encoder.encode(formatSignature(signDocument(bytes, seed))));
    console.log(`${sigPath}: signed serial ${map.serial}`);
  } catch (e) {
    return operatorError("sign", null, e);
  } finally {
    seed.fill(0);
  }
  return 0;
}

function runVerify(args: string[]): number {
  const { values } = parse("verify", args, {
    ...MAP,
    "public-key": { type: "string" },
    signature: { type: "string" },
  }, 0);
  let publicKey: Uint8Array;
  try {
    publicKey = parseSignerPublicKey("--public-key", required("verify", values, "public-key"));
  } catch (e) {
    return operatorError("verify", null, e);
  }
  const path = mapPath(values);
  const sigPath = values.signature ?? `${path}${SIGNATURE_SUFFIX}`;
  const { bytes, map } = readDocument("verify", path, 1);
  let sigText: string;
  try {
    sigText = Deno.readTextFileSync(sigPath);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be read (${(e as Error).name})`;
    throw new CliError(
      `netmap verify: ${sigPath} ${why}; sign the map with \`twofold netmap sign --key FILE\``,
      1,
    );
  }
  const signature = parseSignature(sigText);
  if (signature === null) {
    throw new CliError(
      `netmap verify: ${sigPath} does not hold one base64 Ed25519 signature; sign the map again`,
      1,
    );
  }
  if (!verifyDocument(bytes, signature, publicKey)) {
    throw new CliError(
      `netmap verify: ${sigPath} does not verify ${path} with this key; the map changed since it was signed, or the key is not the signer's`,
      1,
    );
  }
  console.log(`${path}: signature good (serial ${map.serial}, signer ${encodeBase64(publicKey)})`);
  return 0;
}

function runSignerKeygen(args: string[]): number {
  const { values } = parse("signer-keygen", args, { out: { type: "string" } }, 0);
  const out = required("signer-keygen", values, "out");
  const seed = generateSignerSeed();
  try {
    console.log(encodeBase64(writeNewSignerKeyFile(out, seed)));
  } catch (e) {
    return operatorError("signer-keygen", null, e);
  } finally {
    seed.fill(0);
  }
  return 0;
}

async function runServe(args: string[]): Promise<number> {
  const { values, positionals } = parse("serve", args, { listen: { type: "string" } }, 1);
  const listen = parseEndpoint(required("serve", values, "listen"));
  if (listen === null) {
    throw new CliError(
      'netmap serve: --listen must be a numeric HOST:PORT such as 127.0.0.1:8080 or "[::1]:8080"',
    );
  }
  const dir = positionals[0];
  try {
    if (!Deno.statSync(dir).isDirectory) throw new Error("not a directory");
  } catch {
    throw new CliError(`netmap serve: ${dir} is not a directory; give the directory holding the map`);
  }
  let server: Deno.HttpServer;
  try {
    server = serveMapDirectory({ dir, hostname: listen.ip, port: listen.port });
  } catch (e) {
    throw new CliError(
      `netmap serve: cannot listen on ${formatEndpoint(listen)} (${(e as Error).name}); pick a free address`,
    );
  }
  const address = server.addr as Deno.NetAddr;
  console.log(`serving ${dir} on http://${formatEndpoint({ ip: address.hostname, port: address.port })}/`);
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}

const SUBCOMMANDS: Readonly<Record<string, (args: string[]) => number | Promise<number>>> = {
  init: runInit,
  add: runAdd,
  remove: runRemove,
  list: runList,
  check: runCheck,
  sign: runSign,
  verify: runVerify,
  "signer-keygen": runSignerKeygen,
  serve: runServe,
};

/** The subcommands `twofold netmap` runs (each has an entry in {@link NETMAP_HELP}). */
export const NETMAP_SUBCOMMANDS: readonly string[] = Object.keys(SUBCOMMANDS);

/**
 * Runs `twofold netmap SUBCOMMAND [options]` and returns the exit code; operator mistakes are thrown as
 * one-line CliErrors (exit 2, or 1 when `check`/`verify` find the map or its signature bad).
 */
export function runNetmapCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) {
    const what = sub === undefined ? "a subcommand is needed" : `unknown subcommand "${sub}"`;
    return Promise.reject(
      new CliError(
        `netmap: ${what}; use one of ${Object.keys(SUBCOMMANDS).join(", ")} (twofold netmap --help)`,
      ),
    );
  }
  try {
    return Promise.resolve(run(rest));
  } catch (e) {
    return Promise.reject(e);
  }
}
