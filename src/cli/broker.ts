/**
 * `twofold broker --config broker.json`: runs the SKA key broker in the foreground until
 * SIGINT/SIGTERM. `twofold broker enroll NODE --public-key KEY --wg-ip IP --config broker.json`
 * provisions one node: it writes the wg0 pre-shared key twice (mode 0600, never overwriting: the
 * broker's copy and the node's copy) and prints the config snippets for both sides.
 * Config, root-key and preflight problems are one line, exit 2, before anything is brought up.
 * @module
 */
import { parseArgs } from "node:util";
import { resolve as resolvePath } from "node:path";
import { loadBrokerConfig } from "../config/broker-config.ts";
import { openRootKey, startBroker } from "../broker/broker.ts";
import { formatPreflightProblem, preflightHub } from "../node/preflight.ts";
import { RootKeyError } from "../ska/root-key.ts";
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import { CliError, optionError } from "./errors.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";
import { usageOf } from "./help.ts";
import { logger } from "../log.ts";

const USAGE = usageOf("broker");
const ENROLL_USAGE = usageOf("broker enroll");
const PSK_LEN = 32;
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Runs the command; resolves with the exit code. */
export async function runBroker(args: string[]): Promise<number> {
  if (args[0] === "enroll") return await runEnroll(args.slice(1));
  const cfg = await loadBrokerConfig(configPathArg(args, USAGE));
  // The root key first: a wrong PIN or a missing label must stop the broker before wg0 comes up.
  try {
    openRootKey(cfg).close();
  } catch (e) {
    if (e instanceof RootKeyError) throw new CliError(e.message, 2);
    throw e;
  }
  const problems = await preflightHub({ hub: cfg.broker, wg0: cfg.wg0, peers: cfg.peers });
  if (problems.length > 0) throw new CliError(formatPreflightProblem(problems[0]), 2);
  return await runUntilStopped((onEnded) => startBroker(cfg, { onEnded }), logger(cfg.broker.name));
}

/** Writes `data` to a new file with mode 0600; refuses to overwrite. */
function writeNewSecret(path: string, data: string): void {
  try {
    Deno.writeTextFileSync(path, data, { createNew: true, mode: 0o600 });
    Deno.chmodSync(path, 0o600);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new CliError(`broker enroll: ${path} already exists; remove it first or choose --out-dir`, 2);
    }
    throw new CliError(`broker enroll: cannot write ${path}: ${(e as Error).name}`, 2);
  }
}

async function runEnroll(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        "public-key": { type: "string" },
        "wg-ip": { type: "string" },
        config: { type: "string", short: "c" },
        "out-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw optionError("broker enroll", e);
  }
  const v = parsed.values;
  if (v.help) throw new CliError(ENROLL_USAGE, 0);
  if (parsed.positionals.length !== 1) {
    throw new CliError(`broker enroll: name exactly one NODE (${ENROLL_USAGE})`);
  }
  const node = parsed.positionals[0];
  if (!NAME_RE.test(node)) {
    throw new CliError(`broker enroll: "${node}" is not a valid peer name (a DNS label)`);
  }
  if (!v["public-key"]) throw new CliError(`broker enroll: --public-key is required (${ENROLL_USAGE})`);
  let pub: Uint8Array;
  try {
    pub = decodeBase64(v["public-key"]);
  } catch {
    pub = new Uint8Array(0);
  }
  if (pub.length !== 32) {
    throw new CliError("broker enroll: --public-key is not a base64 WireGuard public key");
  }
  if (!v["wg-ip"]) throw new CliError(`broker enroll: --wg-ip is required (${ENROLL_USAGE})`);
  if (!v.config) throw new CliError(`broker enroll: --config is required (${ENROLL_USAGE})`);
  const cfg = await loadBrokerConfig(v.config);
  const outDir = resolvePath(v["out-dir"] ?? resolvePath(v.config, ".."));
  const brokerCopy = `${outDir}/${node}.wg0.psk`;
  const nodeCopyName = `${node}.broker-${cfg.broker.name}.wg0.psk`;
  const nodeCopy = `${outDir}/${nodeCopyName}`;
  const psk = crypto.getRandomValues(new Uint8Array(PSK_LEN));
  const text = encodeBase64(psk) + "\n";
  psk.fill(0);
  writeNewSecret(brokerCopy, text);
  writeNewSecret(nodeCopy, text);
  const brokerEntry = { name: node, publicKey: encodeBase64(pub), wgIp: v["wg-ip"], wgPskFile: brokerCopy };
  const nodeEntry = {
    name: cfg.broker.name,
    role: "broker",
    publicKey: encodeBase64(cfg.broker.publicKey!),
    wgIp: formatIp(cfg.wg0.address.ip),
    endpoint: "BROKER-UNDERLAY-IP:" + cfg.wg0.listenPort,
    wgPskFile: nodeCopyName,
  };
  console.log(
    [
      `wrote ${brokerCopy} (the broker's copy) and ${nodeCopy} (move it to ${node} over a trusted channel, mode 0600)`,
      "",
      `add to the broker's "peers" (${v.config}):`,
      "  " + JSON.stringify(brokerEntry),
      "",
      `add to ${node}'s "peers" (and keySource "ska" on its SKA peers):`,
      "  " + JSON.stringify(nodeEntry),
    ].join("\n"),
  );
  return 0;
}
