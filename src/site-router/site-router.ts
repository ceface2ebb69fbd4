/**
 * The router side of site-to-site on the kernel (docs/configuration.md, "Router node (site)"): the
 * forwarding switches of the LAN and tunnel interfaces and twofold's nftables table — set up by
 * {@link startSiteRouter}, put back by its close, and put back when the start fails half-way.
 *
 * Order: the table goes in before forwarding is switched on, and forwarding goes off before the table
 * comes out, so no moment forwards unconfined. What to change is planned by pure code
 * (forwarding-plan.ts, nft-ruleset.ts); this file only does the I/O.
 * @module
 */
import { CliError } from "../operator-error.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import { loadLibnftables, runNftCommands } from "../../ffi/nftables.ts";
import {
  forwardingKeys,
  type ForwardingPlan,
  ingressForwardingKey,
  planForwarding,
  type SysctlWrite,
} from "./forwarding-plan.ts";
import { deleteTableCommands, listTableCommand, NFT_TABLE, siteRulesetCommands } from "./nft-ruleset.ts";
import { PROC_SYS, procSysctl, readSysctls, type SysctlIo, writeEverySysctl } from "./sysctl.ts";
import { loadSavedForwarding, removeSavedForwarding, saveForwarding } from "./saved-forwarding.ts";
import type { PartHandle } from "../node/part.ts";

/** What {@link startSiteRouter} sets up. */
export interface SiteRouterOptions {
  /** The LAN interface (`site.lan`). */
  lan: string;
  /** The tunnel interfaces forwarded to and from the LAN: aes0's name, and wg0's when exempt peers route. */
  tunnels: readonly string[];
  /** Clamp the MSS of TCP SYNs leaving through the tunnels (`site.mssClamp`). */
  mssClamp: boolean;
  /** Sources masqueraded when leaving through the LAN; empty without `site.masquerade`. */
  masqueradeSources: readonly Cidr[];
  /** Where the switches' previous values are kept while running (crash recovery); null: nowhere. */
  stateDir: string | null;
}

/** The system calls of the part; tests wrap {@link SYSTEM_SITE_ROUTER_IO} to inject failures. */
export interface SiteRouterIo {
  /** The forwarding switches. */
  sysctl: SysctlIo;
  /** Runs nft commands as one transaction; throws (an NftablesError) when refused. */
  runNft(commands: string): void;
}

/** The real kernel: /proc/sys files and libnftables. */
export const SYSTEM_SITE_ROUTER_IO: SiteRouterIo = { sysctl: procSysctl, runNft: runNftCommands };

/** A running router side. */
export interface SiteRouter extends PartHandle {
  /** What was switched on, what goes back at close, which interfaces are confined, how IPv6 forwards. */
  readonly plan: ForwardingPlan;
  /** The nft commands that created the table. */
  readonly ruleset: string;
  /**
   * Puts the table back when something removed it (`nft flush ruleset`, as a firewall reload does) while
   * forwarding is on; returns true when it had to. Throws (an NftablesError) when nftables refuses.
   */
  ensureTable(): boolean;
  /**
   * Restores the forwarding switches, then deletes the table; once. Throws a one-line CliError (exit 1)
   * naming what could not be restored (the saved-values file is then kept for the next start).
   */
  close(reason?: string): Promise<void>;
}

/** One log line: what forwards, what is clamped and masqueraded. */
export function describeSiteRouter(options: SiteRouterOptions, plan: ForwardingPlan): string {
  const confined = plan.confinements.map((c) => `${c.iface}/ipv${c.family}`);
  return `site: forwarding ${options.lan} <-> ${options.tunnels.join(", ")} (IPv6 ${plan.ipv6}` +
    (confined.length > 0 ? `; switched on and confined: ${confined.join(" ")}` : "") +
    `), MSS clamp ${options.mssClamp ? "on" : "off"}, masquerade ${
      options.masqueradeSources.length > 0 ? "on" : "off"
    }, nftables table ${NFT_TABLE}`;
}

/** The values to plan from: those read now, with the saved originals of a crashed run in their place. */
function previousValues(
  current: ReadonlyMap<string, string | null>,
  saved: readonly SysctlWrite[],
): Map<string, string | null> {
  const previous = new Map(current);
  for (const { key, value } of saved) if (current.get(key) != null) previous.set(key, value);
  return previous;
}

/** The problem of a LAN interface that does not exist (after the field name). */
function noLanProblem(lan: string): string {
  return `there is no interface "${lan}" on this host; name the LAN interface (ip link) in site.lan`;
}

/**
 * What stands in the way of routing for `lan` before anything is brought up (for preflight): the LAN
 * interface is missing, or libnftables is not installed. Null when nothing known does.
 */
export async function siteRouterProblem(
  lan: string,
  sysctl: SysctlIo = procSysctl,
  hasLibnftables: () => boolean = () => loadLibnftables() !== null,
): Promise<{ field: string; message: string } | null> {
  if (await sysctl.read(ingressForwardingKey(4, lan)) === null) {
    return { field: "site.lan", message: noLanProblem(lan) };
  }
  if (!hasLibnftables()) {
    return {
      field: "site",
      message:
        "libnftables.so.1 is not installed (Debian: apt install nftables); the router's table needs it",
    };
  }
  return null;
}

/** Reads the switches; an interface without one does not exist (one operator line). */
async function readSwitches(
  io: SiteRouterIo,
  options: SiteRouterOptions,
): Promise<Map<string, string | null>> {
  const current = await readSysctls(io.sysctl, forwardingKeys(options));
  for (const iface of [options.lan, ...options.tunnels]) {
    if (current.get(ingressForwardingKey(4, iface)) != null) continue;
    throw new CliError(
      iface === options.lan
        ? `site.lan: ${noLanProblem(iface)}`
        : `site: tunnel interface "${iface}" is not up; start the site router after the interfaces`,
    );
  }
  return current;
}

/**
 * Sets up the router side for `options`: table first, then the forwarding switches. Throws a one-line
 * CliError when it cannot, after putting back everything it changed.
 */
export async function startSiteRouter(
  options: SiteRouterOptions,
  io: SiteRouterIo = SYSTEM_SITE_ROUTER_IO,
): Promise<SiteRouter> {
  if (options.tunnels.length === 0) throw new Error("site router: no tunnel interfaces given");
  let saved: SysctlWrite[] = [];
  if (options.stateDir !== null) {
    try {
      saved = await loadSavedForwarding(options.stateDir);
    } catch (e) {
      throw new CliError(`site: ${(e as Error).message}`);
    }
  }
  const current = await readSwitches(io, options);
  const plan = planForwarding(options, previousValues(current, saved));
  // Saved switches of a crashed run that this topology no longer touches: put them back now (an
  // interface that is gone has nothing to put back, so a failure here is no failure).
  const planned = new Set(forwardingKeys(options));
  const stale = saved.filter(({ key }) => !planned.has(key));
  await writeEverySysctl(io.sysctl, stale);
  const ruleset = siteRulesetCommands({ ...options, confinements: plan.confinements });
  const undo = async () => {
    const failures = await writeEverySysctl(io.sysctl, plan.restore);
    try {
      io.runNft(deleteTableCommands());
    } catch {
      // nothing was created, or the kernel refuses nft altogether: nothing left to remove
    }
    // A switch that could not be put back keeps its saved value for the next start.
    if (failures.length === 0 && options.stateDir !== null) {
      await removeSavedForwarding(options.stateDir).catch(() => {});
    }
  };
  try {
    if (options.stateDir !== null) await saveForwarding(options.stateDir, plan.restore);
    try {
      io.runNft(ruleset);
    } catch (e) {
      throw new CliError(
        `site: nftables refused table ${NFT_TABLE} (${(e as Error).message}); ` +
          "the kernel needs nf_tables (and nft_masq for site.masquerade)",
      );
    }
    for (const { key, value } of plan.writes) {
      try {
        await io.sysctl.write(key, value);
      } catch (e) {
        throw new CliError(
          `site: cannot write ${value} to ${PROC_SYS}/${key} (${(e as Error).message}); ` +
            "twofold up needs root (CAP_NET_ADMIN) in the node's network namespace",
        );
      }
    }
  } catch (e) {
    await undo();
    throw e;
  }
  let closed = false;
  return {
    plan,
    ruleset,
    ensureTable() {
      if (closed) return false;
      try {
        io.runNft(listTableCommand());
        return false;
      } catch {
        io.runNft(ruleset);
        return true;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      const failures = await writeEverySysctl(io.sysctl, plan.restore);
      try {
        io.runNft(deleteTableCommands());
      } catch (e) {
        failures.push(`nftables table ${NFT_TABLE}: ${(e as Error).message}`);
      }
      if (failures.length > 0) {
        throw new CliError(`site: could not undo ${failures.join("; ")}; put these back by hand`, 1);
      }
      if (options.stateDir !== null) await removeSavedForwarding(options.stateDir);
    },
  };
}
