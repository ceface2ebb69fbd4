/**
 * Where each rule set is enforced, from the node's point of view (the table of issue 13 / docs/filter.md):
 *
 * | local peer  | remote peer | aes0          | wg0                                   |
 * |-------------|-------------|---------------|---------------------------------------|
 * | AES-capable | AES-capable | user policies | lockdown (ICMP, aes0 UDP, key plane, extra ports) |
 * | AES-capable | AES-exempt  | —             | user policies                         |
 * | AES-exempt  | any         | —             | user policies                         |
 *
 * Security hubs are AES-exempt (they have no aes0). The "—" cells carry no traffic (aes0 only has AES
 * peers); should a packet ever arrive there, user policies apply, so no cell is unfiltered.
 * @module
 */

/** The two tunnel interfaces of a node. */
export type FilterInterface = "wg0" | "aes0";
/** The rule set enforced for one (interface, remote peer). */
export type Enforcement = "lockdown" | "policy";

/** Which rule set the inbound filter of `iface` applies to packets from a remote peer. */
export function enforcementFor(
  localAesCapable: boolean,
  remoteAesCapable: boolean,
  iface: FilterInterface,
): Enforcement {
  if (localAesCapable && remoteAesCapable && iface === "wg0") return "lockdown";
  return "policy";
}
