/**
 * Rosenpass wire sizes, message types and timer values (seconds), as the whitepaper and the reference
 * implementation define them. One home for every protocol number used under src/rosenpass/.
 */

/** Length of every symmetric key, chaining key and hash output. */
export const KEY_LEN = 32;
/** Length of a session id (sidi, sidr). */
export const SESSION_ID_LEN = 4;
/** Length of the biscuit number (a little-endian counter). */
export const BISCUIT_NO_LEN = 12;
/** Poly1305 tag length (ChaCha20-Poly1305 and XChaCha20-Poly1305). */
export const AEAD_TAG_LEN = 16;
/** XChaCha20-Poly1305 nonce length (biscuits). */
export const XAEAD_NONCE_LEN = 24;
/** ChaCha20-Poly1305 nonce length. */
export const AEAD_NONCE_LEN = 12;
/** Envelope MAC length (a truncated keyed hash). */
export const MAC_LEN = 16;
/** Envelope cookie length. */
export const COOKIE_LEN = 16;
/** Envelope header: message type and three reserved bytes. */
export const ENVELOPE_HEADER_LEN = 4;
/** Everything an envelope adds around its payload. */
export const ENVELOPE_OVERHEAD = ENVELOPE_HEADER_LEN + MAC_LEN + COOKIE_LEN;
/** Biscuit plaintext: pidi, biscuit number, chaining key. */
export const BISCUIT_PT_LEN = KEY_LEN + BISCUIT_NO_LEN + KEY_LEN;
/** Biscuit on the wire: nonce, ciphertext, tag. */
export const BISCUIT_CT_LEN = XAEAD_NONCE_LEN + BISCUIT_PT_LEN + AEAD_TAG_LEN;

/** Kyber-512 (round 3) public key length. */
export const EKEM_PK_LEN = 800;
/** Kyber-512 (round 3) secret key length. */
export const EKEM_SK_LEN = 1632;
/** Kyber-512 (round 3) ciphertext length. */
export const EKEM_CT_LEN = 768;
/** Classic McEliece 460896 public key length (both rounds). */
export const SKEM_PK_LEN = 524_160;
/** KEM shared secret length (both KEMs). */
export const KEM_SHARED_LEN = 32;

/** Message type bytes in the envelope. */
export const MessageType = {
  InitHello: 0x81,
  RespHello: 0x82,
  InitConf: 0x83,
  EmptyData: 0x84,
  Data: 0x85,
  CookieReply: 0x86,
} as const;
/** One of the message type bytes. */
export type MessageTypeByte = (typeof MessageType)[keyof typeof MessageType];

/** A previous responder starts a new exchange as initiator this long after the last one. */
export const REKEY_AFTER_TIME_RESPONDER = 120;
/** A previous initiator starts a new exchange this long after the last one. */
export const REKEY_AFTER_TIME_INITIATOR = 130;
/** An output key older than this is stale and must not be used. */
export const REJECT_AFTER_TIME = 180;
/** Biscuit keys are used for new biscuits this long, and accepted for twice as long. */
export const BISCUIT_EPOCH = 300;
/** First retransmission delay. */
export const RETRANSMIT_DELAY_BEGIN = 0.5;
/** Retransmission delay growth factor. */
export const RETRANSMIT_DELAY_GROWTH = 2;
/** Retransmission delay cap. */
export const RETRANSMIT_DELAY_END = 10;
/** Retransmission jitter: the delay is multiplied by JITTER * (1 + random[0, 1)). */
export const RETRANSMIT_DELAY_JITTER = 0.5;
/** An initiator gives up on a handshake this long after starting it. */
export const RETRANSMIT_ABORT = 120;
