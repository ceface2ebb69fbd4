/**
 * Well-known ports every role agrees on without configuration.
 * @module
 */

/** TCP port of the DSKE service (hubs and peer coordination), on wg0 addresses only. */
export const DSKE_PORT = 51831;
