/**
 * The SKA key broker's configuration (`twofold broker --config broker.json`), JSONC:
 *
 * ```jsonc
 * {
 *   "broker": {
 *     "name": "broker-1", "privateKeyFile": "broker.key",
 *     // the root key: in a PKCS#11 token (production) …
 *     "rootKey": { "pkcs11": { "module": "/usr/lib/softhsm/libsofthsm2.so", "tokenLabel": "twofold",
 *                              "keyLabel": "ska-root", "pinFile": "token.pin" } }
 *     // … or, for labs only, a 0600 file with 32+ random bytes in base64: { "file": "root.key" }
 *   },
 *   "wg0": { "listenPort": 51820, "address": "100.64.0.200/10" },
 *   "peers": [ { "name": "node-a", "publicKey": "…", "wgIp": "100.64.0.1", "wgPskFile": "node-a.wg0.psk" } ]
 * }
 * ```
 *
 * Like a hub, the broker is a wg0 peer of the edge nodes and nothing else. Every peer must have a wg0
 * pre-shared key (`wgPskFile`, written by `twofold broker enroll`): the key requests travel inside wg0,
 * and the PSK keeps that channel safe against a future quantum attacker. Problems are one line naming
 * the field (exit 2).
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { CliError } from "../operator-error.ts";
import { parseJsonc } from "./jsonc.ts";
import { type NodeConfig, parseNodeConfig, readConfigFile } from "./node-config.ts";
import type { Pkcs11RootKeySpec } from "../ska/root-key.ts";

/** Where the root key is. */
export type RootKeyConfig = { pkcs11: Pkcs11RootKeySpec } | { file: string };

/** The resolved broker configuration. */
export interface BrokerConfig {
  /** Identity (name, private key). */
  broker: NodeConfig["node"];
  /** The root key's location (paths absolute). */
  rootKey: RootKeyConfig;
  /** The broker's wg0. */
  wg0: NodeConfig["wg0"];
  /** The edge nodes it serves (wg0 peers, each with a wg0 PSK). */
  peers: NodeConfig["peers"];
}

const UNUSED_AES0 = { subnet: "198.18.0.0/15", address: "198.18.0.1/15" };
const PKCS11_FIELDS = ["module", "tokenLabel", "keyLabel", "pinFile"] as const;

/** Parses and validates broker configuration text; throws a CliError (exit 2) naming the field. */
export function parseBrokerConfig(
  text: string,
  opts: { baseDir: string; checkFiles: boolean; sourceName?: string },
): BrokerConfig {
  const where = opts.sourceName ? `config ${opts.sourceName}` : "config";
  const fail = (field: string, problem: string) => new CliError(`${where}: ${field}: ${problem}`);
  let data: unknown;
  try {
    data = parseJsonc(text);
  } catch (e) {
    throw new CliError(`${where}: ${(e as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw fail("(top level)", 'expected an object { "broker": …, "wg0": …, "peers": … }');
  }
  const raw = data as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!["broker", "wg0", "peers"].includes(key)) {
      throw fail(key, "unknown key; remove it (allowed here: broker, wg0, peers)");
    }
  }
  const b = raw.broker;
  if (typeof b !== "object" || b === null || Array.isArray(b)) {
    throw fail("broker", 'missing; add it (an object { "name", "privateKeyFile", "rootKey" })');
  }
  const { rootKey: rawRoot, ...identity } = b as Record<string, unknown>;
  const rootKey = parseRootKey(rawRoot, opts.baseDir, fail);
  if (Array.isArray(raw.peers)) {
    raw.peers.forEach((p, i) => {
      if (typeof p !== "object" || p === null) return;
      for (const k of ["aesIp", "keySource", "pskFile", "role"]) {
        if (k in p) throw fail(`peers[${i}].${k}`, `a broker's peers are wg0 peers only; remove ${k}`);
      }
      if (!("wgPskFile" in p)) {
        throw fail(
          `peers[${i}].wgPskFile`,
          'missing: every broker peer needs a wg0 pre-shared key; run "twofold broker enroll" and set wgPskFile',
        );
      }
    });
  }
  const asNode = {
    node: { stateDir: ".", ...identity },
    wg0: raw.wg0,
    aes0: UNUSED_AES0,
    peers: Array.isArray(raw.peers)
      ? raw.peers.map((p) =>
        typeof p === "object" && p !== null && !("persistentKeepalive" in p)
          ? { ...p, persistentKeepalive: 25 }
          : p
      )
      : raw.peers,
  };
  let cfg: NodeConfig;
  try {
    cfg = parseNodeConfig(JSON.stringify(asNode), opts);
  } catch (e) {
    if (e instanceof CliError) throw new CliError(e.message.replace(/: node\./, ": broker."), e.exitCode);
    throw e;
  }
  return { broker: cfg.node, rootKey, wg0: cfg.wg0, peers: cfg.peers };
}

function parseRootKey(
  raw: unknown,
  baseDir: string,
  fail: (field: string, problem: string) => CliError,
): RootKeyConfig {
  const shape =
    'an object { "pkcs11": { "module", "tokenLabel", "keyLabel", "pinFile" } } or { "file": PATH }';
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw fail("broker.rootKey", `missing; add ${shape}`);
  }
  const r = raw as Record<string, unknown>;
  const keys = Object.keys(r);
  if (keys.length !== 1 || !["pkcs11", "file"].includes(keys[0])) {
    throw fail("broker.rootKey", `expected exactly one of "pkcs11" or "file" (${shape})`);
  }
  if ("file" in r) {
    if (typeof r.file !== "string" || r.file === "") {
      throw fail("broker.rootKey.file", "expected a file path");
    }
    return { file: resolvePath(baseDir, r.file) };
  }
  const p = r.pkcs11;
  if (typeof p !== "object" || p === null || Array.isArray(p)) {
    throw fail("broker.rootKey.pkcs11", `expected ${shape}`);
  }
  const o = p as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(PKCS11_FIELDS as readonly string[]).includes(k)) {
      throw fail(
        `broker.rootKey.pkcs11.${k}`,
        `unknown key; remove it (allowed: ${PKCS11_FIELDS.join(", ")})`,
      );
    }
  }
  for (const k of PKCS11_FIELDS) {
    if (typeof o[k] !== "string" || o[k] === "") {
      throw fail(`broker.rootKey.pkcs11.${k}`, "missing; expected a string");
    }
  }
  return {
    pkcs11: {
      module: resolvePath(baseDir, o.module as string),
      tokenLabel: o.tokenLabel as string,
      keyLabel: o.keyLabel as string,
      pinFile: resolvePath(baseDir, o.pinFile as string),
    },
  };
}

/** Reads and validates the broker configuration at `path`, including its key files. */
export async function loadBrokerConfig(path: string): Promise<BrokerConfig> {
  const { text, baseDir } = await readConfigFile(path, "broker");
  return parseBrokerConfig(text, { baseDir, checkFiles: true, sourceName: path });
}
