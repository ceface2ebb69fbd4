/**
 * Which kernel switches make a router node forward between its LAN and its tunnel interfaces, and
 * nothing else — pure: it takes the values read before start and returns what to write, what to
 * write back at stop, and which interfaces start forwarding only because of us (their traffic is
 * confined to LAN ↔ tunnels by the nftables table, nft-ruleset.ts).
 *
 * Kernel facts this rests on (Documentation/networking/ip-sysctl.rst, checked on 6.18 in namespaces):
 * - IPv4: whether a packet is forwarded depends on `net.ipv4.conf.<in>.forwarding` of the interface
 *   it arrived on; `net.ipv4.ip_forward` and `conf.all.forwarding` are not consulted per packet, and
 *   writing either rewrites the switch of every interface (and the default for new ones). So we write
 *   only the per-interface switch of the LAN and the tunnel interfaces, never the global ones.
 * - IPv6: `net.ipv6.conf.<if>.forwarding` alone forwards nothing; forwarding needs `conf.all.forwarding`
 *   (which rewrites every interface and turns off router-advertisement acceptance on all of them) or,
 *   from Linux 6.17, `conf.<in>.force_forwarding` on the interface the packet arrived on. We use
 *   force_forwarding; on an older kernel (the file is absent) IPv6 is not forwarded unless the operator
 *   has turned on `conf.all.forwarding` — reported, never done behind their back.
 * @module
 */

/** An IP family. */
export type IpFamily = 4 | 6;

/** The IPv6 switch that forwards on every interface (read to know whether IPv6 already forwards). */
export const IPV6_ALL_FORWARDING = "net/ipv6/conf/all/forwarding";

/** The value a forwarding switch has when on. */
export const SWITCH_ON = "1";

/** The sysctl (path under /proc/sys) that lets packets arriving on `iface` be forwarded, per family. */
export function ingressForwardingKey(family: IpFamily, iface: string): string {
  return family === 4 ? `net/ipv4/conf/${iface}/forwarding` : `net/ipv6/conf/${iface}/force_forwarding`;
}

/** Which interfaces forward to which: the LAN to and from the tunnel interfaces. */
export interface ForwardingTopology {
  /** The LAN interface. */
  lan: string;
  /** The tunnel interfaces (aes0, and wg0 when AES-exempt peers may route through it). */
  tunnels: readonly string[];
}

/** One sysctl value to write. */
export interface SysctlWrite {
  /** Path under /proc/sys, e.g. `net/ipv4/conf/eth1/forwarding`. */
  key: string;
  /** The value, without newline. */
  value: string;
}

/** Packets arriving on `iface` (of `family`) may leave only through `allowedOut`. */
export interface Confinement {
  family: IpFamily;
  /** The interface the packets arrive on. */
  iface: string;
  /** The interfaces they may be forwarded to. */
  allowedOut: readonly string[];
}

/** How IPv6 gets forwarded: by our per-interface switches, by the operator's global switch, or not. */
export type Ipv6Forwarding = "per-interface" | "global" | "unavailable";

/** What to change at start and what to put back at stop. */
export interface ForwardingPlan {
  /** Switches to turn on, in order. */
  writes: SysctlWrite[];
  /** The previous values of {@link writes}, in the order to write them back (reverse). */
  restore: SysctlWrite[];
  /** Interfaces that forward only because of this plan: confined to LAN ↔ tunnels. */
  confinements: Confinement[];
  /** How IPv6 is forwarded (see the module doc). */
  ipv6: Ipv6Forwarding;
}

/** Every interface of the topology with the interfaces its packets may be forwarded to. */
function ingressRoutes(topology: ForwardingTopology): { iface: string; allowedOut: readonly string[] }[] {
  return [
    { iface: topology.lan, allowedOut: topology.tunnels },
    ...topology.tunnels.map((t) => ({ iface: t, allowedOut: [topology.lan] })),
  ];
}

/** The sysctls {@link planForwarding} needs read first: the per-interface switches, then IPv6's global one. */
export function forwardingKeys(topology: ForwardingTopology): string[] {
  const ifaces = ingressRoutes(topology).map((r) => r.iface);
  return [
    ...ifaces.map((i) => ingressForwardingKey(4, i)),
    ...ifaces.map((i) => ingressForwardingKey(6, i)),
    IPV6_ALL_FORWARDING,
  ];
}

/**
 * The plan for `topology` given `previous`, the values of {@link forwardingKeys} read now (null: the
 * file does not exist). Interfaces that already forwarded keep doing so unconfined; the others are
 * switched on and confined. An absent IPv4 switch is the caller's error to report (no such interface)
 * before planning; an absent IPv6 force_forwarding means a kernel without it.
 */
export function planForwarding(
  topology: ForwardingTopology,
  previous: ReadonlyMap<string, string | null>,
): ForwardingPlan {
  const isOn = (key: string) => previous.get(key)?.trim() === SWITCH_ON;
  const routes = ingressRoutes(topology);
  const ipv6: Ipv6Forwarding = isOn(IPV6_ALL_FORWARDING)
    ? "global"
    : routes.every((r) => (previous.get(ingressForwardingKey(6, r.iface)) ?? null) !== null)
    ? "per-interface"
    : "unavailable";
  const families: IpFamily[] = ipv6 === "per-interface" ? [4, 6] : [4];
  const writes: SysctlWrite[] = [];
  const restore: SysctlWrite[] = [];
  const confinements: Confinement[] = [];
  for (const family of families) {
    for (const { iface, allowedOut } of routes) {
      const key = ingressForwardingKey(family, iface);
      if (isOn(key)) continue;
      writes.push({ key, value: SWITCH_ON });
      restore.unshift({ key, value: (previous.get(key) ?? "0").trim() });
      confinements.push({ family, iface, allowedOut });
    }
  }
  return { writes, restore, confinements, ipv6 };
}
