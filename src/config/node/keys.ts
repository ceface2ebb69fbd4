/**
 * The `keys` section (rotation interval, key ages, DSKE threshold) and the rules that tie peers' key
 * sources to the key planes they need: enough hubs for dske, exactly one broker for ska and ska+dske.
 * @module
 */
import { z } from "zod";
import { usesDske, usesSka } from "../key-source.ts";
import { FieldProblem } from "../zod-errors.ts";
import type { NodeConfig, PeerConfig } from "../node-config.ts";

/** Default PSK rotation interval (seconds). */
export const DEFAULT_ROTATION_SECONDS = 120;
/** Longest allowed keys.manualMaxAgeSeconds: a year. */
export const MAX_MANUAL_AGE_SECONDS = 366 * 86400;

/** Schema of the `keys` section. */
export const keysSection = z.strictObject({
  rotationIntervalSeconds: z.int()
    .min(1, { error: "must be at least 1 second" })
    .max(7 * 86400, { error: "must be at most 604800 seconds (a week)" })
    .default(DEFAULT_ROTATION_SECONDS),
  maxKeyAgeSeconds: z.int().min(1, { error: "must be at least 1 second" }).optional(),
  manualMaxAgeSeconds: z.int()
    .min(1, { error: "must be at least 1 second; leave it out so that manual keys never expire" })
    .max(MAX_MANUAL_AGE_SECONDS, {
      error: `must be at most ${MAX_MANUAL_AGE_SECONDS} seconds (a year); leave it out for no expiry`,
    })
    .optional(),
  dskeThreshold: z.int()
    .min(2, { error: "must be at least 2 (one hub alone would hold the whole key)" })
    .max(255, { error: "must be at most 255" })
    .default(2),
});

/** `keys`: a key must outlive the rotation interval, or every key expires before its successor. */
export function resolve(raw: z.output<typeof keysSection>): NodeConfig["keys"] {
  const rotation = raw.rotationIntervalSeconds;
  const maxAge = raw.maxKeyAgeSeconds ?? 3 * rotation;
  if (maxAge <= rotation) {
    throw new FieldProblem(
      "keys.maxKeyAgeSeconds",
      `${maxAge} is not longer than keys.rotationIntervalSeconds (${rotation}), so every key would expire ` +
        `before its successor arrives; use at least ${rotation + 1} (default ${3 * rotation})`,
    );
  }
  return {
    rotationIntervalSeconds: rotation,
    maxKeyAgeSeconds: maxAge,
    manualMaxAgeSeconds: raw.manualMaxAgeSeconds ?? null,
    dskeThreshold: raw.dskeThreshold,
  };
}

/** The peers' key sources against the key planes: dske needs k hubs, ska one broker (and only one). */
export function checkKeyPlanes(peers: readonly PeerConfig[], dskeThreshold: number): void {
  const k = dskeThreshold;
  const hubs = peers.filter((p) => p.role === "hub").length;
  if (peers.some((p) => usesDske(p.keySource)) && hubs < k) {
    throw new FieldProblem(
      "keys.dskeThreshold",
      `k = ${k} but only ${hubs} hub(s) are configured (peers with role "hub"); DSKE needs at least k hubs: ` +
        `add hubs or lower keys.dskeThreshold`,
    );
  }
  const brokers = peers.filter((p) => p.role === "broker").length;
  if (brokers > 1) {
    throw new FieldProblem("peers", `${brokers} peers have role "broker"; a node uses one SKA broker`);
  }
  if (peers.some((p) => usesSka(p.keySource)) && brokers === 0) {
    throw new FieldProblem(
      "peers",
      'a peer has keySource "ska" or "ska+dske" but no peer has role "broker"; add the SKA broker as a peer',
    );
  }
}
