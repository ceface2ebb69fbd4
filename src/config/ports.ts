/**
 * Well-known ports every role agrees on without configuration.
 * @module
 */

/**
 * TCP port of the key planes on wg0 addresses only: the DSKE service (hubs and peer coordination) and
 * SKA (the broker and node endpoints) share it; a node's one listener routes by frame magic.
 */
export const DSKE_PORT = 51831;
/** TCP port of SKA: the same port as DSKE (see {@link DSKE_PORT}). */
export const SKA_PORT = DSKE_PORT;

/** Default port of the netmap DNS server (UDP and TCP), on the node's wg0 address. */
export const DNS_PORT = 53;
