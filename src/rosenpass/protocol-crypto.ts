/**
 * The randomness and KEM operations a Rosenpass server needs, behind one interface so the protocol
 * stays pure: production passes `defaultProtocolCrypto(profile)`; the test-vector replay passes
 * recorded values instead of fresh randomness.
 */
import { randomBytes } from "@noble/hashes/utils.js";
import {
  type KemEncapsulation,
  type KemKeyPair,
  kyberDecapsulate,
  kyberEncapsulate,
  kyberKeygen,
} from "./kyber512.ts";
import { mcEliece460896 } from "./mceliece.ts";
import type { Profile } from "./profile.ts";

/** Randomness and KEMs used by the handshake. */
export interface ProtocolCrypto {
  /** Uniform random bytes (session ids, biscuit keys and nonces). */
  randomBytes(length: number): Uint8Array;
  /** A uniform number in [0, 1) (retransmission jitter). */
  randomUnit(): number;
  ephemeralKeygen(): KemKeyPair;
  ephemeralEncapsulate(publicKey: Uint8Array): KemEncapsulation;
  ephemeralDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;
  staticEncapsulate(publicKey: Uint8Array): KemEncapsulation;
  staticDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

const UNIT_BYTES = 4;
const UNIT_RANGE = 2 ** 32;

/** Real randomness, Kyber-512 round 3 and the profile's McEliece round. */
export function defaultProtocolCrypto(profile: Profile): ProtocolCrypto {
  const mceliece = mcEliece460896(profile.mcElieceRound);
  return {
    randomBytes,
    randomUnit: () => new DataView(randomBytes(UNIT_BYTES).buffer).getUint32(0) / UNIT_RANGE,
    ephemeralKeygen: kyberKeygen,
    ephemeralEncapsulate: (pk) => kyberEncapsulate(pk),
    ephemeralDecapsulate: kyberDecapsulate,
    staticEncapsulate: (pk) => mceliece.encapsulate(pk),
    staticDecapsulate: (ct, sk) => mceliece.decapsulate(ct, sk),
  };
}
