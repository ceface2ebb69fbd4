/**
 * Where a peer's aes0 PSK comes from — the one list of key sources, for the config schema, the PSK
 * gate and the admin API alike: `manual` (a PSK file or UAPI `preshared-key` writes), `dske` (agreed
 * through security hubs), `ska` (the SKA broker).
 * @module
 */

/** Every key source, in the order the docs list them. */
export const KEY_SOURCES = ["manual", "dske", "ska"] as const;

/** Where a peer's aes0 PSK comes from. */
export type KeySource = typeof KEY_SOURCES[number];
