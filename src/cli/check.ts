/**
 * `twofold check --config FILE`: validates a node or hub config as `twofold up` / `twofold hub` would
 * before bringing anything up — the config and the files it names (keys, PSKs, modes), the lockdown
 * list, and the preflight (UAPI sockets, admin token and listen address, UDP ports, PSRD blocks) — and
 * prints one line per problem, like `nginx -t`. Creates nothing (ports are bound and released at once).
 * A config with a top-level `hub` object is checked as a hub config, one with `broker` as an SKA broker
 * config (its root key opened and closed, as `twofold broker` does), else as a node config.
 * @module
 */
import { loadNodeConfig, readConfigFile } from "../config/node-config.ts";
import { loadHubConfig } from "../config/hub-config.ts";
import { loadBrokerConfig } from "../config/broker-config.ts";
import { openRootKey } from "../broker/broker.ts";
import { RootKeyError } from "../ska/root-key.ts";
import { parseJsonc } from "../config/jsonc.ts";
import { LockdownList, LockdownListError } from "../node/lockdown-list.ts";
import { formatPreflightProblem, preflightHub, preflightNode } from "../node/preflight.ts";
import { CliError } from "./errors.ts";
import { configPathArg } from "./foreground.ts";
import { usageOf } from "./help.ts";

const USAGE = usageOf("check");

/** The kind of config by its top-level object: `hub`, `broker`, else `node` (also for unparsable text). */
export function configKindOf(text: string): "node" | "hub" | "broker" {
  try {
    const data = parseJsonc(text);
    if (typeof data !== "object" || data === null) return "node";
    return "hub" in data ? "hub" : "broker" in data ? "broker" : "node";
  } catch {
    return "node";
  }
}

/** Runs the command; resolves with 0 (no problem) or 2 (problems printed, one per line). */
export async function runCheck(args: string[]): Promise<number> {
  const path = configPathArg(args, USAGE);
  const { text } = await readConfigFile(path, "node");
  const kind = configKindOf(text);
  const problems: string[] = [];
  let name = "";
  try {
    if (kind === "broker") {
      const cfg = await loadBrokerConfig(path);
      name = `broker ${cfg.broker.name}`;
      try {
        openRootKey(cfg).close();
      } catch (e) {
        if (!(e instanceof RootKeyError)) throw e;
        problems.push(e.message);
      }
      const asHub = { hub: cfg.broker, wg0: cfg.wg0, peers: cfg.peers };
      problems.push(...(await preflightHub(asHub)).map(formatPreflightProblem));
    } else if (kind === "hub") {
      const cfg = await loadHubConfig(path);
      name = `hub ${cfg.hub.name}`;
      problems.push(...(await preflightHub(cfg)).map(formatPreflightProblem));
    } else {
      const cfg = await loadNodeConfig(path);
      name = `node ${cfg.node.name}`;
      try {
        LockdownList.open(cfg.node.stateDir, cfg.lockdown.extraPorts);
      } catch (e) {
        if (!(e instanceof LockdownListError)) throw e;
        problems.push(e.message);
      }
      problems.push(...(await preflightNode(cfg)).map(formatPreflightProblem));
    }
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    problems.push(e.message); // the config itself: parsing stops at its first problem
  }
  for (const p of problems) console.error(p);
  if (problems.length > 0) return 2;
  console.log(`config ${path} ok (${name}): nothing stands in the way of starting`);
  return 0;
}
