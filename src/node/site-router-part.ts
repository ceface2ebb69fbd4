/**
 * The site router as a node part: a node whose config has a `site` section forwards between its LAN
 * and its tunnel interfaces while it runs (src/site-router/site-router.ts does the kernel side).
 *
 * wg0 forwards only when the node has AES-exempt edge peers: they are the only ones whose routed
 * traffic may come over wg0 (an AES peer's never does, issue 20), so without them a packet for the LAN
 * arriving on wg0 is not forwarded by the kernel either. A live peer change (a network map) that makes
 * the first exempt peer appear or the last one leave sets the router up again with or without wg0.
 * Every {@link TABLE_CHECK_INTERVAL_MS} the part checks that its nftables table is still there and
 * puts it back when a firewall reload (`nft flush ruleset`) removed it.
 * @module
 */
import type { NodeConfig, PeerConfig } from "../config/node-config.ts";
import { formatIp, parseCidr } from "../wireguard/allowedips.ts";
import type { ForwardingPlan } from "../site-router/forwarding-plan.ts";
import { NFT_TABLE } from "../site-router/nft-ruleset.ts";
import {
  describeSiteRouter,
  type SiteRouter,
  type SiteRouterIo,
  type SiteRouterOptions,
  startSiteRouter,
  SYSTEM_SITE_ROUTER_IO,
} from "../site-router/site-router.ts";
import type { Logger } from "../log.ts";
import type { NodePart, PartHandle } from "./part.ts";

export {
  describeSiteRouter,
  type SiteRouter,
  type SiteRouterIo,
  type SiteRouterOptions,
  startSiteRouter,
  SYSTEM_SITE_ROUTER_IO,
} from "../site-router/site-router.ts";

/** Whether some peer may route through wg0: an AES-exempt edge peer (no aesIp, not a hub or broker). */
export function exemptPeersRoute(peers: readonly PeerConfig[]): boolean {
  return peers.some((p) => p.role === "peer" && p.aesIp === null);
}

/** The options for `cfg`'s `site` section, or null when the node is no router. */
export function siteRouterOptions(cfg: NodeConfig): SiteRouterOptions | null {
  if (cfg.site === null) return null;
  const viaWg0 = exemptPeersRoute(cfg.peers);
  const wg0Network = parseCidr(`${formatIp(cfg.wg0.address.ip)}/${cfg.wg0.address.prefixLength}`);
  return {
    lan: cfg.site.lan,
    tunnels: viaWg0 ? [cfg.aes0.name, cfg.wg0.name] : [cfg.aes0.name],
    mssClamp: cfg.site.mssClamp,
    masqueradeSources: cfg.site.masquerade
      ? (viaWg0 ? [cfg.aes0.subnet, wg0Network] : [cfg.aes0.subnet])
      : [],
    stateDir: cfg.node.stateDir,
  };
}

/** How often the node checks that its nftables table is still there (ms). */
export const TABLE_CHECK_INTERVAL_MS = 5_000;

/** The IPv6 warning, when the kernel cannot forward IPv6 per interface. */
export const IPV6_UNAVAILABLE_WARNING =
  "site: IPv6 is not forwarded: this kernel has no per-interface force_forwarding (Linux 6.17+); " +
  "set net.ipv6.conf.all.forwarding=1 yourself to route IPv6";

/** The running site router of a node. */
export interface NodeSiteRouter extends PartHandle {
  /** What the router switched on and confines now; null while a restart after a peer change failed. */
  readonly plan: ForwardingPlan | null;
  /** The tunnel interfaces forwarded now. */
  readonly tunnels: readonly string[];
  /**
   * The node's peers changed live: when that adds or removes wg0 as a routed tunnel, the router is set
   * up again (closed, then started for the new peers; a failure is logged and leaves nothing
   * forwarding). Resolves when done; changes are applied one at a time.
   */
  setPeers(peers: readonly PeerConfig[]): Promise<void>;
  /** Puts every switch back and removes the table (site-router.ts). */
  close(reason?: string): Promise<void>;
}

/** Starts the router for `options`, logging what it set up. */
async function startLogged(options: SiteRouterOptions, io: SiteRouterIo, log: Logger): Promise<SiteRouter> {
  const router = await startSiteRouter(options, io);
  log.info(describeSiteRouter(options, router.plan));
  if (router.plan.ipv6 === "unavailable") log.warn(IPV6_UNAVAILABLE_WARNING);
  return router;
}

/**
 * The node part for `cfg`: null handle without a `site` section. Start it after aes0 and wg0 are up
 * (their forwarding switches must exist) and after the packet filter.
 */
export function siteRouterPart(
  cfg: NodeConfig,
  log: Logger,
  io: SiteRouterIo = SYSTEM_SITE_ROUTER_IO,
): NodePart<NodeSiteRouter | null> {
  return {
    name: "site router",
    start: async () => {
      let options = siteRouterOptions(cfg);
      if (options === null) return null;
      let router: SiteRouter | null = await startLogged(options, io, log);
      let queue = Promise.resolve();
      let closed = false;
      const timer = setInterval(() => {
        try {
          if (router?.ensureTable()) {
            log.warn(`site: nftables table ${NFT_TABLE} was removed (a firewall reload?); put back`);
          }
        } catch (e) {
          log.error(
            `site: nftables table ${NFT_TABLE} is gone and could not be put back: ${(e as Error).message}`,
          );
        }
      }, TABLE_CHECK_INTERVAL_MS);
      const restart = async (next: SiteRouterOptions) => {
        if (closed || next.tunnels.join(",") === options!.tunnels.join(",")) return;
        log.info(
          `site: routed tunnels change from ${options!.tunnels.join(", ")} to ${next.tunnels.join(", ")}`,
        );
        const previous = router;
        router = null;
        options = next;
        await previous?.close();
        router = await startLogged(next, io, log);
      };
      return {
        get plan() {
          return router?.plan ?? null;
        },
        get tunnels() {
          return options!.tunnels;
        },
        setPeers(peers) {
          const next = siteRouterOptions({ ...cfg, peers: [...peers] })!;
          queue = queue.then(() => restart(next)).catch((e) => log.error((e as Error).message));
          return queue;
        },
        async close() {
          closed = true;
          clearInterval(timer);
          await queue;
          await router?.close();
          router = null;
        },
      };
    },
  };
}
