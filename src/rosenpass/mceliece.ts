/**
 * Classic McEliece 460896, the static KEM of Rosenpass, in the two variants the profiles need:
 * round 2 (released Rosenpass, ciphertext 188 B, secret key 13 568 B) and round 4 (upstream main,
 * ciphertext 156 B, secret key 13 608 B). Both come from the WebAssembly build of `mceliece-nist`
 * (no native add-on). Key generation takes seconds: run it off the event loop's hot path.
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { McEliece as McElieceRound2 } from "mceliece-nist-round2";
import { McEliece as McElieceRound4 } from "mceliece-nist-round4";
import type { KemEncapsulation, KemKeyPair } from "./kyber512.ts";

// The package hashes with node:crypto's SHAKE256 without an explicit output length, which prints a
// deprecation warning on every process; the call is correct (it copies 32 bytes), so silence it.
(process as { noDeprecation?: boolean }).noDeprecation = true;

/** Which round of the Classic McEliece submission. */
export type McElieceRound = 2 | 4;

/** One Classic McEliece 460896 variant: sizes and the three KEM operations. */
export interface StaticKem {
  readonly round: McElieceRound;
  readonly publicKeyLength: number;
  readonly secretKeyLength: number;
  readonly ciphertextLength: number;
  keygen(): KemKeyPair;
  /** Key generation on a worker thread (the package's own), so the caller's event loop keeps running. */
  keygenAsync(): Promise<KemKeyPair>;
  encapsulate(publicKey: Uint8Array): KemEncapsulation;
  decapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

const ALGORITHM = "mceliece460896";

interface McElieceImpl {
  publicKeySize: number;
  privateKeySize: number;
  encryptedKeySize: number;
  keypair(): { publicKey: Buffer; privateKey: Buffer };
  keypair(
    callback: (err: Error | undefined, result: { publicKey: Buffer; privateKey: Buffer }) => void,
  ): void;
  generateKey(publicKey: Buffer): { key: Buffer; encryptedKey: Buffer };
  decryptKey(privateKey: Buffer, encryptedKey: Buffer): Buffer;
}

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function copy(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes);
}

function makeStaticKem(round: McElieceRound, impl: McElieceImpl): StaticKem {
  const check = (what: string, bytes: Uint8Array, length: number) => {
    if (bytes.length !== length) {
      throw new RangeError(`McEliece round ${round}: ${what} must be ${length} bytes, got ${bytes.length}`);
    }
  };
  return {
    round,
    publicKeyLength: impl.publicKeySize,
    secretKeyLength: impl.privateKeySize,
    ciphertextLength: impl.encryptedKeySize,
    keygen() {
      const { publicKey, privateKey } = impl.keypair();
      return { publicKey: copy(publicKey), secretKey: copy(privateKey) };
    },
    keygenAsync() {
      return new Promise((resolve, reject) =>
        impl.keypair((err, result) =>
          err
            ? reject(err)
            : resolve({ publicKey: copy(result.publicKey), secretKey: copy(result.privateKey) })
        )
      );
    },
    encapsulate(publicKey) {
      check("public key", publicKey, impl.publicKeySize);
      const { key, encryptedKey } = impl.generateKey(view(publicKey));
      return { ciphertext: copy(encryptedKey), sharedSecret: copy(key) };
    },
    decapsulate(ciphertext, secretKey) {
      check("ciphertext", ciphertext, impl.encryptedKeySize);
      check("secret key", secretKey, impl.privateKeySize);
      return copy(impl.decryptKey(view(secretKey), view(ciphertext)));
    },
  };
}

let round2: StaticKem | undefined;
let round4: StaticKem | undefined;

/** Classic McEliece 460896 of the given round (instantiated once per isolate). */
export function mcEliece460896(round: McElieceRound): StaticKem {
  if (round === 2) return round2 ??= makeStaticKem(2, new McElieceRound2(ALGORITHM) as McElieceImpl);
  return round4 ??= makeStaticKem(4, new McElieceRound4(ALGORITHM) as McElieceImpl);
}
