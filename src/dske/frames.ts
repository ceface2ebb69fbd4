/**
 * DSKE wire frames for the TCP 51831 service (docs/design.md §3.4, §3.5, §3.7;
 * §4 invariants 4-6).
 *
 * Every frame is `Header(8) | Body | [Auth(48)]` with big-endian integers and fixed-length IDs.
 *
 * - Client ↔ hub frames (HELLO … SHARE_DELETE and their responses) carry Auth: the PSRD block, the
 *   start offset in the sender's region, the number of PSRD bytes used (32 for the one-time MAC key plus
 *   the OTP field lengths) and a Poly1305 tag keyed with the first 32 pad bytes over every frame byte
 *   before the tag. The only OTP-encrypted field is `enc_share` (SHARE_PUT, and SHARE_GET_RESP with
 *   status OK), encrypted with the pad bytes that follow the MAC key.
 * - Node ↔ node frames (KEY_OFFER, KEY_RESULT, KEY_ABORT, KEY_SYNC) end with a 32-byte tag under a key
 *   only the two nodes can compute (see peer-auth.ts; docs/dske.md): `decodePeerFrame` verifies it in
 *   constant time before it reads any field. KEY_OFFER and KEY_RESULT carry the key-confirmation tags
 *   of key-confirm.ts. ERROR carries no Auth (advisory only, never acted on).
 *
 * Receiving a hub frame is two steps, so the caller can follow docs/design.md §4 invariant 3: `peekHubFrame` checks the
 * whole structure (sizes, `used`, reserved bytes) without the pad and returns block and offset, the caller
 * checks `offset ≥ rx_next` and fetches the pad, then `openHubFrame` verifies the tag in constant time
 * before it touches the OTP field (invariant 5). Once the tag verifies, decoding cannot fail, so the
 * caller never sees an authenticated frame it cannot act on.
 *
 * Every reserved byte must be zero and every length must equal the one the type (and, for
 * SHARE_GET_RESP, the status) implies (invariant 6). u64 fields are JavaScript numbers; values above
 * 2^53 − 1 are rejected as malformed.
 *
 * Error messages name the reason and, for field problems, the field name; never pad, key or share bytes.
 *
 * The vocabulary lives in frame-types.ts, the field layouts in frame-fields.ts, the codecs in
 * hub-frames.ts and peer-frame-codec.ts; this module gathers them for the rest of the code.
 * @module
 */

export * from "./frame-types.ts";
export * from "./hub-frames.ts";
export * from "./peer-frame-codec.ts";
