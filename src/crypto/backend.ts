/**
 * Chooses the AEAD backend once per process (or worker): libcrypto when it loads, else noble.
 * `TWOFOLD_AEAD_BACKEND=noble|libcrypto` forces one (libcrypto fails loudly when missing; empty means
 * unset, any other value is an error).
 * @module
 */
import type { Aead, AeadBackendName, AeadName } from "./aead.ts";
import { nobleAead } from "./aead-noble.ts";
import { envChoice } from "../env.ts";

let chosen: AeadBackendName | undefined;
const cache = new Map<string, Aead>();

/** Loader for the native backend; set by `aead-libcrypto.ts` when it is imported. */
export type NativeLoader = (name: AeadName) => Aead | null;
let nativeLoader: NativeLoader | undefined;

/** Registers the native backend loader (called by the libcrypto module). */
export function registerNativeAead(loader: NativeLoader): void {
  nativeLoader = loader;
  chosen = undefined;
  cache.clear();
}

/** The AEAD for `name` from a specific backend, or null when that backend is unavailable. */
export function aeadFrom(backend: AeadBackendName, name: AeadName): Aead | null {
  if (backend === "noble") return nobleAead(name);
  return nativeLoader ? nativeLoader(name) : null;
}

/** The AEAD for `name` from the preferred available backend. */
export function getAead(name: AeadName): Aead {
  const hit = cache.get(name);
  if (hit) return hit;
  const forced = envChoice("TWOFOLD_AEAD_BACKEND");
  let aead: Aead | null = null;
  if (forced === "noble") aead = nobleAead(name);
  else {
    aead = aeadFrom("libcrypto", name);
    if (!aead && forced === "libcrypto") {
      throw new Error("TWOFOLD_AEAD_BACKEND=libcrypto but libcrypto.so.3 could not be loaded");
    }
    aead ??= nobleAead(name);
  }
  chosen = aead.backend;
  cache.set(name, aead);
  return aead;
}

/** The backend in use (after the first `getAead`), for status reports. */
export function aeadBackendInUse(): AeadBackendName | undefined {
  return chosen;
}
