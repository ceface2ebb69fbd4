/**
 * Everything a map-driven node runs beside its interfaces, started after them and stopped before
 * them: the guarded map part, the DNS stub and the per-peer routes that follow it, and the source (file
 * watch or URL poll) that feeds it.
 * @module
 */
import { formatIp } from "../wireguard/allowedips.ts";
import { routeSettingsOf } from "../netmap/view.ts";
import type { RunningNode } from "./node.ts";
import { startMapDns } from "./netmap-dns.ts";
import { describeSource, type MapFollower, NetmapPart } from "./netmap-part.ts";
import type { StartMap } from "./netmap-startup.ts";
import { type KernelPeerRoutes, startPeerRoutes } from "./peer-routes.ts";
import { readSourceOnce, type RunningSource, startSource } from "./netmap-source.ts";

/** The running map services of a node. */
export interface MapRun {
  /** The guarded map part (status, offers). */
  part: NetmapPart;
  /** Reads the map source now (SIGHUP) through the guarded path: one line, and what needs a restart. */
  reload(): Promise<{ line: string; restartNeeded: string[] }>;
  /** Stops the source, then DNS. */
  close(): Promise<void>;
}

/** Logger the map services write to. */
export interface MapRunLog {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

/**
 * Starts DNS (a busy port throws its one-line DnsServerError), the map part and the source, for
 * `node` started from `start.config`. `extraFollowers` follow the map after DNS (routes).
 */
export async function startMapRun(
  node: RunningNode,
  start: StartMap,
  log: MapRunLog,
  extraFollowers: MapFollower[] = [],
): Promise<MapRun> {
  const cfg = start.config;
  const source = cfg.netmap!;
  const dns = await startMapDns({
    hostname: formatIp(cfg.wg0.address.ip),
    port: cfg.dns.port,
    ifname: node.wg0.device.ifname,
    selfName: start.initial.view.self.name,
    initial: start.initial,
    log,
  });
  log.info(`DNS for ${start.initial.map.domain} on ${dns.address} (udp and tcp)`);
  let routes: KernelPeerRoutes;
  try {
    routes = startPeerRoutes(start.initial, cfg.pskFiles, { wg0: cfg.wg0.name, aes0: cfg.aes0.name });
  } catch (e) {
    await dns.close();
    throw new Error(`peer routes: ${(e as Error).message}`);
  }
  const part = new NetmapPart({
    node,
    source,
    initial: start.initial,
    pskFiles: cfg.pskFiles,
    followers: [dns.follower, routes.follower, ...extraFollowers],
    routing: routeSettingsOf(cfg),
    log,
  });
  let running: RunningSource;
  try {
    running = startSource(source, {
      etag: start.etag,
      onMap: (map) => part.offer(map, describeSource(source)),
      onFailure: (reason) =>
        log.warn(`netmap source: ${reason}; serial ${part.running.record.serial} keeps running`),
    });
  } catch (e) {
    routes.close();
    await dns.close();
    throw new Error(`netmap source ${describeSource(source)}: ${(e as Error).message}`);
  }
  log.info(
    `netmap serial ${start.initial.record.serial} from ${start.origin}; following ${describeSource(source)}`,
  );
  return {
    part,
    reload: async () => {
      const r = await readSourceOnce(source, null);
      const serial = () => part.running.record.serial;
      if (r.kind !== "map") {
        const why = r.kind === "failed" ? r.reason : "no answer";
        return {
          line: `network map source unreadable (${why}); serial ${serial()} keeps running`,
          restartNeeded: [],
        };
      }
      const o = await part.offer(r.map, `${describeSource(source)} (reload)`);
      if (o.outcome === "unchanged") {
        return { line: `network map unchanged (serial ${serial()})`, restartNeeded: [] };
      }
      if (o.outcome === "rejected") return { line: `network map refused: ${o.reason}`, restartNeeded: [] };
      return { line: `network map applied: ${o.summary}`, restartNeeded: o.restartNeeded };
    },
    close: async () => {
      running.close();
      routes.close();
      await dns.close();
    },
  };
}
