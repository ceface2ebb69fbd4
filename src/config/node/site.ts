/**
 * The `site` section: this node is a router for a LAN behind it (site-to-site). It names the LAN
 * interface that routed traffic enters and leaves by, whether tunnel sources are masqueraded onto the
 * LAN, and whether TCP MSS is clamped to the tunnel's reduced MTU (docs/configuration.md, "Router
 * node (site)"). Absent: the node forwards nothing.
 * @module
 */
import { z } from "zod";
import { INTERFACE_NAME_RULE, isValidInterfaceName } from "../../wireguard/interface-name.ts";
import { FieldProblem, quote } from "../zod-errors.ts";
import type { NodeConfig } from "../node-config.ts";

/** Schema of the `site` section (`lan` is required once the section is present). */
export const siteSection = z.strictObject({
  lan: z.string(),
  masquerade: z.boolean().default(false),
  mssClamp: z.boolean().default(true),
});

/** The resolved `site` section. */
export interface SiteConfig {
  /** The LAN interface routed traffic is forwarded to and from. */
  lan: string;
  /** Masquerade packets from the tunnel ranges leaving through the LAN interface. */
  masquerade: boolean;
  /** Clamp the MSS of TCP SYNs leaving through the tunnel interfaces to the route MTU. */
  mssClamp: boolean;
}

/**
 * `site`: the LAN interface name under the interface-name rule and different from both tunnel
 * interfaces (forwarding a tunnel into itself is not a site); null when the section is absent.
 */
export function resolve(
  raw: z.output<typeof siteSection> | undefined,
  tunnels: { wg0: string; aes0: string },
): NodeConfig["site"] {
  if (raw === undefined) return null;
  if (!isValidInterfaceName(raw.lan)) {
    throw new FieldProblem(
      "site.lan",
      `${
        quote(raw.lan)
      } is not a usable interface name (${INTERFACE_NAME_RULE}); name the LAN interface, e.g. "eth1"`,
    );
  }
  for (const [layer, name] of Object.entries(tunnels)) {
    if (raw.lan === name) {
      throw new FieldProblem(
        "site.lan",
        `"${raw.lan}" is ${layer}.name; name the LAN interface the routed networks are on`,
      );
    }
  }
  return { lan: raw.lan, masquerade: raw.masquerade, mssClamp: raw.mssClamp };
}
