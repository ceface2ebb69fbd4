/**
 * The offloads knob: whether an interface's data plane may use the kernel's TUN offloads (TSO/USO
 * super-packets, GRO on write) and UDP GSO/GRO. Set per interface in the node config
 * (`wg0.offloads`, `aes0.offloads`); `TWOFOLD_OFFLOADS=off` in the environment turns them off for
 * every interface of the process (the bench compares both). "off" is the one-packet-per-syscall path.
 * @module
 */

/** The values of the knob: "auto" uses what the kernel accepts; "off" uses none. */
export const OFFLOAD_MODES = ["auto", "off"] as const;

/** One value of the knob. */
export type OffloadMode = typeof OFFLOAD_MODES[number];

/** True when offloads may be used: the interface's setting is "auto" and the environment does not say "off". */
export function offloadsWanted(configured: OffloadMode, environment: OffloadMode | undefined): boolean {
  return configured === "auto" && environment !== "off";
}
