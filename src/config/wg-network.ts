/**
 * The network every wg0 address belongs to, in its own module so that the node config and the
 * network map (which the node config embeds) can both name it without importing each other.
 * @module
 */

/** The network every wg0 address must belong to (RFC 6598 shared address space). */
export const WG_NETWORK = "100.64.0.0/10";
