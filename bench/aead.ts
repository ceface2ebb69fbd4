/**
 * AEAD micro-benchmark: microseconds per in-place seal of one 1420-byte packet, for each
 * algorithm × backend, on a buffer over a SharedArrayBuffer (as the data plane uses).
 * @module
 */
import type { AeadBackendName, AeadName } from "../src/crypto/aead.ts";
import { aeadFrom, loadNobleAead } from "../src/crypto/backend.ts";

// Both backends are timed: noble loads on request when libcrypto serves the process.
await loadNobleAead();

const PACKET = 1420;
const ALGORITHMS: readonly AeadName[] = ["chacha20-poly1305", "aes-256-gcm"];
const BACKENDS: readonly AeadBackendName[] = ["libcrypto", "noble"];

/** Average µs per `sealInPlace` of a 1420-byte packet, or null when the backend is missing. */
export function measureSealMicros(
  backend: AeadBackendName,
  name: AeadName,
  iterations: number,
): number | null {
  const aead = aeadFrom(backend, name);
  if (!aead) return null;
  const key = aead.keyed(crypto.getRandomValues(new Uint8Array(32)));
  try {
    const buf = new Uint8Array(new SharedArrayBuffer(4096), 16, 2048);
    crypto.getRandomValues(buf.subarray(0, PACKET));
    const warmup = Math.max(100, iterations >> 3);
    for (let i = 0; i < warmup; i++) key.sealInPlace(i, buf, 16, PACKET);
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) key.sealInPlace(i, buf, 16, PACKET);
    return ((performance.now() - t0) * 1000) / iterations;
  } finally {
    key.free();
  }
}

/** Runs the AEAD micro-benchmark and returns a small table (one line per algorithm × backend). */
export function aeadMicroBench(): string {
  const lines = [`AEAD sealInPlace, ${PACKET}-byte packet (µs/packet)`];
  for (const name of ALGORITHMS) {
    for (const backend of BACKENDS) {
      const us = measureSealMicros(backend, name, backend === "noble" ? 3000 : 200000);
      const shown = us === null ? "unavailable" : us.toFixed(3);
      lines.push(`  ${name.padEnd(18)} ${backend.padEnd(10)} ${shown}`);
    }
  }
  return lines.join("\n");
}

if (import.meta.main) console.log(aeadMicroBench());
