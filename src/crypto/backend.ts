/**
 * Chooses the AEAD backend once per process (or worker): libcrypto when it loads, else noble.
 * `TWOFOLD_AEAD_BACKEND=noble|libcrypto` forces one (libcrypto fails loudly when missing; empty means
 * unset, any other value is an error).
 *
 * noble (`aead-noble.ts`, pure TypeScript) is only the fallback, and its module costs every isolate that
 * loads it megabytes (each data-plane worker imports this module). So it is imported here, at module
 * load, only when it may be needed — the variable forces it, or libcrypto does not load — and otherwise
 * on request by {@link loadNobleAead} (tests and the bench compare both backends).
 * @module
 */
import type { Aead, AeadBackendName, AeadName } from "./aead.ts";
import { libcryptoAead, libcryptoAvailable } from "./aead-libcrypto.ts";
import { envChoice } from "../env.ts";

let chosen: AeadBackendName | undefined;
const cache = new Map<string, Aead>();

/** The noble backend's constructor, once its module is loaded. */
let nobleAead: ((name: AeadName) => Aead) | undefined;

/** Loads the noble backend (idempotent); {@link aeadFrom}("noble", …) needs it loaded. */
export async function loadNobleAead(): Promise<void> {
  nobleAead ??= (await import("./aead-noble.ts")).nobleAead;
}

/** Whether {@link getAead} may fall back to (or be forced onto) noble in this process. */
function nobleMayBeNeeded(): boolean {
  try {
    if (envChoice("TWOFOLD_AEAD_BACKEND") === "noble") return true;
  } catch {
    return true; // a bad value: getAead reports it, exactly as before
  }
  return !libcryptoAvailable();
}

if (nobleMayBeNeeded()) await loadNobleAead();

function noble(name: AeadName): Aead {
  if (nobleAead === undefined) {
    throw new Error("the noble AEAD backend is not loaded (await loadNobleAead())");
  }
  return nobleAead(name);
}

/**
 * The AEAD for `name` from a specific backend, or null when that backend is unavailable (libcrypto not
 * loaded). noble must have been loaded with {@link loadNobleAead} (it is whenever libcrypto is missing).
 */
export function aeadFrom(backend: AeadBackendName, name: AeadName): Aead | null {
  if (backend === "noble") return noble(name);
  return libcryptoAead(name);
}

/** The AEAD for `name` from the preferred available backend. */
export function getAead(name: AeadName): Aead {
  const hit = cache.get(name);
  if (hit) return hit;
  const forced = envChoice("TWOFOLD_AEAD_BACKEND");
  let aead: Aead | null = null;
  if (forced === "noble") aead = noble(name);
  else {
    aead = libcryptoAead(name);
    if (!aead && forced === "libcrypto") {
      throw new Error("TWOFOLD_AEAD_BACKEND=libcrypto but libcrypto.so.3 could not be loaded");
    }
    aead ??= noble(name);
  }
  chosen = aead.backend;
  cache.set(name, aead);
  return aead;
}

/** The backend in use (after the first `getAead`), for status reports. */
export function aeadBackendInUse(): AeadBackendName | undefined {
  return chosen;
}
