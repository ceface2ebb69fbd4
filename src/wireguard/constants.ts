/**
 * WireGuard protocol constants (docs/design.md §2.5) and a few implementation limits.
 *
 * Times are milliseconds. Message counters are JavaScript numbers, which are exact only below 2^53;
 * see {@link REJECT_AFTER_MESSAGES} for how the specification's 64-bit limit maps onto that.
 * @module
 */

/** After sending this many messages on one keypair, start a new handshake (2^60). */
export const REKEY_AFTER_MESSAGES: number = 2 ** 60;

/**
 * The specification's hard counter limit, 2^64 − 2^13 − 1, as a bigint for reference and for code that
 * handles the full 64-bit wire counter. Counters at or above it are never sent or accepted.
 */
export const REJECT_AFTER_MESSAGES_SPEC: bigint = 2n ** 64n - 2n ** 13n - 1n;

/**
 * The counter limit twofold enforces on send and receive: `Number.MAX_SAFE_INTEGER` (2^53 − 1).
 *
 * The specification's limit ({@link REJECT_AFTER_MESSAGES_SPEC}) cannot be represented as a JS number,
 * so 2^53 is treated as an additional, lower hard ceiling: counters must be `< REJECT_AFTER_MESSAGES`,
 * and a received 64-bit counter whose high 32-bit word is ≥ 2^21 must be rejected before it is turned
 * into a number. At 10^7 packets/s reaching 2^53 takes about 28 years, and a keypair lives at most
 * {@link REJECT_AFTER_TIME}, so the lower ceiling is never hit in practice.
 */
export const REJECT_AFTER_MESSAGES: number = Number.MAX_SAFE_INTEGER;

/** An initiator re-handshakes when it sends on a keypair older than this (120 s). */
export const REKEY_AFTER_TIME = 120_000;
/** A keypair older than this is never used for sending or receiving (180 s). */
export const REJECT_AFTER_TIME = 180_000;
/** How long handshake retransmission is attempted before giving up (90 s). */
export const REKEY_ATTEMPT_TIME = 90_000;
/** Handshake retransmit interval, before jitter (5 s). */
export const REKEY_TIMEOUT = 5_000;
/** Exclusive upper bound of the random jitter added to handshake timers: jitter is 0..333 ms. */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/**
 * A responder whose handshake response is not confirmed (no authenticated packet under the new session)
 * within this long counts it as unconfirmed: the initiator sends a keepalive as soon as it consumes a
 * response and retransmits its initiation only after REKEY_TIMEOUT, so 5 s. twofold's own (for PSK
 * mismatch detection on the responder side); nothing on the wire depends on it.
 */
export const RESPONSE_CONFIRMATION_TIMEOUT: number = REKEY_TIMEOUT;
/** Send an empty keepalive if data was received but nothing sent for this long (10 s). */
export const KEEPALIVE_TIMEOUT = 10_000;
/** Lifetime of the cookie secret and of a received cookie (120 s). */
export const COOKIE_REFRESH_TIME = 120_000;
/** Per-peer flood limit: an initiation consumed within this long after the previous one is dropped (1 s / 50 = 20 ms). */
export const HANDSHAKE_INITIATION_RATE = 20;
/** Number of handshake retries before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT = 18. */
export const MAX_TIMER_HANDSHAKES: number = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;

/** An initiator that receives on a keypair older than this re-handshakes (180 − 10 − 5 = 165 s). */
export const REKEY_AFTER_TIME_RECEIVING: number = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
/** New handshake if data was sent but nothing received for this long, before jitter (15 s). */
export const NEW_HANDSHAKE_TIMEOUT: number = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT;
/** All key material is zeroed after this long without a new session (3 × 180 s = 540 s). */
export const ZERO_KEY_MATERIAL_TIMEOUT: number = REJECT_AFTER_TIME * 3;

/** Total bits of the RFC 6479 replay bitmap (128 blocks × 64 bits). */
export const COUNTER_BITS_TOTAL = 8192;
/** Bits per replay bitmap block (one 64-bit word, as on 64-bit kernels and wireguard-go). */
export const COUNTER_BLOCK_BITS = 64;
/** Number of blocks in the replay bitmap. */
export const COUNTER_BLOCKS: number = COUNTER_BITS_TOTAL / COUNTER_BLOCK_BITS;
/** Replay window: how far behind the highest accepted counter a counter may be (8128). */
export const COUNTER_WINDOW_SIZE: number = COUNTER_BITS_TOTAL - COUNTER_BLOCK_BITS;

/** Plaintext is zero-padded to a multiple of this many bytes. */
export const PADDING_MULTIPLE = 16;
/** Largest UDP payload (and so largest WireGuard message). */
export const MAX_SEGMENT_SIZE = 65_535;
/** Packets queued per peer while waiting for a handshake; older ones are dropped first. */
export const MAX_STAGED_PACKETS = 128;
/** Maximum number of configured peers per device. */
export const MAX_PEERS = 65_536;
/** How long the device stays "under load" (cookies required) after load was last detected (1 s). */
export const UNDER_LOAD_AFTER_TIME = 1_000;
