/**
 * The nftables table of a router node, as text for `nft -f` / libnftables — pure. One table of
 * twofold's own ({@link NFT_TABLE}) holds everything, so stopping removes exactly what we added by
 * deleting that table by name, and a table a crash left behind is replaced in the same transaction
 * that creates the new one.
 *
 * - forward chain: interfaces that forward only because of twofold are confined to LAN ↔ tunnels
 *   (forwarding-plan.ts), then TCP SYNs leaving through a tunnel interface get their MSS clamped to the
 *   route's MTU (`rt mtu` is the route MTU minus the IP and TCP headers). Clamping on the way into the
 *   tunnel covers both directions: the SYN of a LAN host and the SYN-ACK it answers a remote SYN with
 *   both leave through the tunnel, so the far end learns the smaller MSS; clamping on the way out of
 *   the tunnel would use the LAN's MTU and change nothing.
 * - postrouting chain (only with masquerade): packets from the tunnel ranges leaving through the LAN
 *   interface take the LAN address, so LAN hosts answer without a route back to the tunnels.
 * @module
 */
import { type Cidr, formatCidr } from "../wireguard/allowedips.ts";
import { isValidInterfaceName } from "../wireguard/interface-name.ts";
import type { Confinement } from "./forwarding-plan.ts";

/** The family and name of twofold's nftables table. */
export const NFT_TABLE = "inet twofold";

/** What the table does. */
export interface SiteRuleset {
  /** The LAN interface. */
  lan: string;
  /** The tunnel interfaces. */
  tunnels: readonly string[];
  /** Interfaces to confine to LAN ↔ tunnels (forwarding-plan.ts). */
  confinements: readonly Confinement[];
  /** Clamp the MSS of SYNs leaving through the tunnels. */
  mssClamp: boolean;
  /** Sources to masquerade when leaving through the LAN, or empty for none. */
  masqueradeSources: readonly Cidr[];
}

/** An interface name as an nft string; refuses a name outside the interface-name rule (no injection). */
function ifname(name: string): string {
  if (!isValidInterfaceName(name)) throw new Error(`not an interface name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** `{ "a", "b" }`. */
function ifnameSet(names: readonly string[]): string {
  return `{ ${names.map(ifname).join(", ")} }`;
}

function forwardChain(r: SiteRuleset): string[] {
  const rules = r.confinements.map((c) =>
    `meta nfproto ipv${c.family} iifname ${ifname(c.iface)} oifname != ${ifnameSet(c.allowedOut)} drop`
  );
  if (r.mssClamp) {
    rules.push(`oifname ${ifnameSet(r.tunnels)} tcp flags syn tcp option maxseg size set rt mtu`);
  }
  return [
    "\tchain forward {",
    "\t\ttype filter hook forward priority filter; policy accept;",
    ...rules.map((rule) => `\t\t${rule}`),
    "\t}",
  ];
}

function postroutingChain(r: SiteRuleset): string[] {
  const rules: string[] = [];
  for (const [family, selector] of [[4, "ip"], [6, "ip6"]] as const) {
    const sources = r.masqueradeSources.filter((c) => c.family === family).map(formatCidr);
    if (sources.length > 0) {
      rules.push(`oifname ${ifname(r.lan)} ${selector} saddr { ${sources.join(", ")} } masquerade`);
    }
  }
  if (rules.length === 0) return [];
  return [
    "\tchain postrouting {",
    "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    ...rules.map((rule) => `\t\t${rule}`),
    "\t}",
  ];
}

/**
 * The commands that delete the table by name whether or not it exists (adding an existing table is a
 * no-op, so the delete never fails on a missing one; nft 1.0.6 has no `destroy`).
 */
export function deleteTableCommands(): string {
  return `add table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`;
}

/** The command that fails when the table does not exist (and lists it when it does). */
export function listTableCommand(): string {
  return `list table ${NFT_TABLE}\n`;
}

/** One transaction that replaces any table of that name with the one `r` describes. */
export function siteRulesetCommands(r: SiteRuleset): string {
  return [
    deleteTableCommands().trimEnd(),
    `table ${NFT_TABLE} {`,
    ...forwardChain(r),
    ...postroutingChain(r),
    "}",
    "",
  ].join("\n");
}
