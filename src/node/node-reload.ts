/**
 * Reloading a running node (SIGHUP, `twofold reload` / `POST /v1/reload`): the PSK files are re-read,
 * the node config is read again and compared with the running one (a map-driven node's `pskFiles`
 * apply at once; every other difference is listed as needing a restart), and a map-driven node reads
 * its map source now, through the same guarded path as a watched change. A config that no longer
 * loads changes nothing and is named. One `config-reloaded` event per reload.
 * @module
 */
import { loadNodeConfig, type NodeConfig } from "../config/node-config.ts";
import type { ReloadOutcome } from "../admin/model.ts";
import type { RunningNode } from "./node.ts";
import type { MapRun } from "./netmap-run.ts";
import { compareConfigs } from "./config-reload.ts";
import { routeSettingsOf } from "../netmap/view.ts";

/** Inputs of {@link makeReload}. */
export interface ReloadTarget {
  node: RunningNode;
  /** The config file the node was started with. */
  configPath: string;
  /** The config it runs (its `pskFiles` follow a reload). */
  config: NodeConfig;
  /** The map services, for a map-driven node. */
  mapRun: MapRun | null;
}

/** The reload of `target`; calls run one at a time. */
export function makeReload(target: ReloadTarget): () => Promise<ReloadOutcome> {
  let running = target.config;
  let queue: Promise<unknown> = Promise.resolve();
  const once = async (): Promise<ReloadOutcome> => {
    const r = target.node.reloadPskFiles();
    const lines = [`re-read ${r.files} PSK file(s): ${r.installed} new key(s) installed, ${r.failed} failed`];
    const restartNeeded: string[] = [];
    let fresh: NodeConfig | null = null;
    try {
      fresh = await loadNodeConfig(target.configPath);
      const changes = compareConfigs(running, fresh);
      if (changes.pskFilesChanged && target.mapRun) {
        await target.mapRun.part.setPskFiles(fresh.pskFiles);
        running = { ...running, pskFiles: fresh.pskFiles };
        lines.push("pskFiles applied");
      }
      if (changes.routingChanged && target.mapRun) {
        const o = await target.mapRun.part.setRouting(routeSettingsOf(fresh));
        if (o.outcome === "rejected") lines.push(`routes not applied (${o.reason})`);
        else {
          running = {
            ...running,
            node: { ...running.node, advertise: fresh.node.advertise },
            routes: fresh.routes,
          };
          await target.node.filter.setNetworks(fresh.node.advertise ?? []);
          lines.push("routes applied");
        }
      }
      restartNeeded.push(...changes.restartNeeded.map((field) => `${field} changed in the config`));
      if (!changes.pskFilesChanged && !changes.routingChanged && changes.restartNeeded.length === 0) {
        lines.push("config unchanged");
      }
    } catch (e) {
      lines.push(`config not re-read (${(e as Error).message}); nothing of it changed`);
    } finally {
      fresh?.node.privateKey?.wipe();
      for (const p of fresh?.peers ?? []) p.psk?.wipe();
    }
    if (target.mapRun) {
      const m = await target.mapRun.reload();
      lines.push(m.line);
      restartNeeded.push(...m.restartNeeded);
    }
    const summary = lines.join("; ");
    target.node.events.publish({
      type: "config-reloaded",
      reason: restartNeeded.length ? `${summary}; needs a restart: ${restartNeeded.join("; ")}` : summary,
      data: { restartNeeded: restartNeeded.length },
    });
    return { summary, restartNeeded };
  };
  return () => {
    const run = queue.then(once);
    queue = run.catch(() => {});
    return run;
  };
}
