/**
 * Where a peer's aes0 PSK comes from — the one list of key sources, for the config schema, the PSK
 * gate and the admin API alike: `manual` (a PSK file or UAPI `preshared-key` writes), `dske` (agreed
 * through security hubs), `ska` (the SKA broker), `ska+dske` (both, combined: docs/ska.md).
 * @module
 */

/** Every key source, in the order the docs list them. */
export const KEY_SOURCES = ["manual", "dske", "ska", "ska+dske"] as const;

/** Where a peer's aes0 PSK comes from. */
export type KeySource = typeof KEY_SOURCES[number];

/** Whether peers of `source` get their keys (or a part of them) from DSKE. */
export function usesDske(source: KeySource): boolean {
  return source === "dske" || source === "ska+dske";
}

/** Whether peers of `source` get their keys (or a part of them) from the SKA broker. */
export function usesSka(source: KeySource): boolean {
  return source === "ska" || source === "ska+dske";
}
