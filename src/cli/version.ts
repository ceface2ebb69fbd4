/**
 * `twofold --version`: twofold's version, the Deno runtime it runs on and the AEAD backend this
 * process would use (libcrypto when libcrypto.so.3 loads, else noble; TWOFOLD_AEAD_BACKEND forces one).
 * Reads nothing but the environment and creates nothing.
 * @module
 */
import { getAead } from "../crypto/backend.ts";
import { VERSION } from "../version.ts";

/** The lines `twofold --version` prints. */
export function versionText(): string {
  let backend: string;
  try {
    backend = getAead("aes-256-gcm").backend;
  } catch (e) {
    backend = `unavailable (${(e as Error).message})`;
  }
  return [
    `twofold ${VERSION}`,
    `deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `AEAD backend ${backend}`,
  ]
    .join("\n");
}
