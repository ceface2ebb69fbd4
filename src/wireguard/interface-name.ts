/**
 * The rule for a WireGuard interface name (`twofold wg IFNAME`, `wg0.name`, `aes0.name`): what the
 * kernel accepts for a TUN device (at most IFNAMSIZ − 1 bytes) and what `wg` accepts for a UAPI socket
 * name (no `/`), narrowed to the characters wg-quick allows so that every tool handles it.
 * @module
 */
import { IFNAMSIZ_MAX } from "../../ffi/tun.ts";

/** Characters of an interface name, as wg-quick allows them. */
const INTERFACE_NAME = new RegExp(`^[A-Za-z0-9_.=+-]{1,${IFNAMSIZ_MAX}}$`);

/** The rule in words, for error messages. */
export const INTERFACE_NAME_RULE = `1-${IFNAMSIZ_MAX} characters of A-Z a-z 0-9 _ . = + -`;

/** Whether `name` is a usable interface name (and so a usable UAPI socket name). */
export function isValidInterfaceName(name: string): boolean {
  return INTERFACE_NAME.test(name) && name !== "." && name !== "..";
}

/** "wg0", or "wg0 (tfa0)" when the layer's interface has another name: for log lines. */
export function layerLabel(layer: "wg0" | "aes0", ifname: string): string {
  return ifname === layer ? layer : `${layer} (${ifname})`;
}
