/**
 * `twofold up --config node.json`: runs one edge node (wg0 + aes0 with the PSK gate) and its local
 * admin API in the foreground until SIGINT/SIGTERM or until one of its interfaces is deleted. SIGHUP
 * re-reads the PSK files (the config itself is not re-read yet) and never stops the node.
 *
 * Start-up order: config (key and PSK files included), the state directory's lock (another process
 * holding it stops here, naming its PID), lockdown list (`<stateDir>/lockdown.json`; a
 * corrupt one stops here), preflight (admin token file, admin listen address, UDP ports, PSRD: see
 * node/preflight.ts), the admin token file (created 0600 with a random token when absent), the node,
 * the admin server. Everything up to the token file fails before any interface exists; any failure is
 * one line, exit 2, with everything started so far stopped again. The token is never logged.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { loadNodeConfig } from "../config/node-config.ts";
import { type RunningNode, startNode } from "../node/node.ts";
import { NodeAdminBackend } from "../node/admin-backend.ts";
import { LockdownList, LockdownListError } from "../node/lockdown-list.ts";
import { ensureTokenFile, startAdminServer } from "../admin/server.ts";
import { logger } from "../log.ts";
import { usageOf } from "./help.ts";
import { formatPreflightProblem, preflightNode } from "../node/preflight.ts";
import { CliError } from "./errors.ts";
import { configPathArg, runUntilStopped } from "./foreground.ts";
import { holdStateDir } from "./state-dir.ts";
import type { StartMap } from "../node/netmap-startup.ts";
import { makeReload } from "../node/node-reload.ts";
import type { NodeConfig } from "../config/node-config.ts";
import type { NetmapSource } from "../netmap/source-config.ts";

const USAGE = usageOf("up");

/** Runs the command; resolves with the exit code. */
export async function runUp(args: string[]): Promise<number> {
  const configPath = configPathArg(args, USAGE);
  const loaded = await loadNodeConfig(configPath);
  const stateLock = holdStateDir(loaded.node.stateDir, "node.stateDir");
  let startMap: StartMap | null = null;
  let cfg = loaded;
  let lockdown: LockdownList;
  let token = "";
  try {
    // A map-driven node takes its addresses and peers from the map (or its last good copy) first.
    startMap = await loadStartMapOrFail(loaded);
    cfg = startMap?.config ?? loaded;
    try {
      lockdown = LockdownList.open(cfg.node.stateDir, cfg.lockdown.extraPorts);
    } catch (e) {
      if (e instanceof LockdownListError) throw new CliError(e.message, 2);
      throw e;
    }
    const problems = await preflightNode(cfg);
    if (problems.length > 0) throw new CliError(formatPreflightProblem(problems[0]), 2);
    if (cfg.admin.enabled) {
      try {
        token = await ensureTokenFile(cfg.admin.tokenFile);
      } catch (e) {
        throw new CliError(`admin.tokenFile: ${(e as Error).message}`, 2);
      }
    }
  } catch (e) {
    stateLock.release();
    throw e;
  }
  const log = logger(cfg.node.name);
  return await runUntilStopped(async (onEnded) => {
    let stopAdmin: () => Promise<void> = () => Promise.resolve();
    let node: RunningNode;
    try {
      // A map-driven node runs the map (live apply, DNS, routes, source) as its last part.
      node = await startNode(cfg, {
        lockdown,
        map: startMap ?? undefined,
        onEnded: () => void stopAdmin().finally(() => stateLock.release()).finally(onEnded),
      });
    } catch (e) {
      stateLock.release();
      throw e;
    }
    const mapRun = node.map;
    if (lockdown.source === "file") {
      log.info(
        `lockdown list loaded from ${lockdown.path} (${lockdown.ports.length} entries; the config's ` +
          "lockdown.extraPorts applies only while that file does not exist)",
      );
    }
    const reload = makeReload({ node, configPath, config: cfg, mapRun });
    if (cfg.admin.enabled) {
      const part = mapRun?.part;
      const backend = new NodeAdminBackend(node, lockdown, {
        configPath: resolvePath(configPath),
        ...(part ? { netmap: () => part.status(), routes: () => part.routeStatus() } : {}),
        reload,
      });
      try {
        const server = await startAdminServer(backend, {
          listen: cfg.admin.listen,
          token,
          maxConnections: cfg.admin.maxConnections,
          maxEventStreams: cfg.admin.maxEventStreams,
          onError: (msg) => log.warn(`admin API: ${msg}`),
        });
        let stopped = false;
        stopAdmin = async () => {
          if (stopped) return;
          stopped = true;
          backend.close();
          await server.close().catch(() => {});
        };
        log.info(`admin API listening on ${server.address} (token file ${cfg.admin.tokenFile})`);
      } catch (e) {
        backend.close();
        await node.close("admin API start-up failed");
        throw new Error(`admin API (admin.listen / admin.tokenFile): ${(e as Error).message}`);
      }
    } else {
      log.info("admin API disabled (admin.enabled is false)");
    }
    return {
      close: async (reason?: string) => {
        await stopAdmin();
        await node.close(reason);
        stateLock.release();
      },
      reload: async () => {
        const o = await reload();
        return o.restartNeeded.length
          ? `${o.summary}; needs a restart: ${o.restartNeeded.join("; ")}`
          : o.summary;
      },
    };
  }, log);
}

/** The start map of a config with a `netmap` section (null without one); no map is one line, exit 2. */
async function loadStartMapOrFail(cfg: NodeConfig): Promise<StartMap | null> {
  if (cfg.netmap === null) return null;
  // The map's modules (fetch, signature, acceptance) load only for a map-driven node.
  const { loadStartMap, NetmapStartError } = await import("../node/netmap-startup.ts");
  try {
    return await loadStartMap(cfg as NodeConfig & { netmap: NetmapSource });
  } catch (e) {
    if (e instanceof NetmapStartError) {
      cfg.node.privateKey?.wipe();
      throw new CliError(e.message, 2);
    }
    throw e;
  }
}
