/**
 * Well-known ports every role agrees on without configuration.
 * @module
 */

/** TCP port of the DSKE service (hubs and peer coordination), on wg0 addresses only. */
export const DSKE_PORT = 51831;

/** Default port of the netmap DNS server (UDP and TCP), on the node's wg0 address. */
export const DNS_PORT = 53;
