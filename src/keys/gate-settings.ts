/**
 * The PSK gate's settings: {@link PskGateOptions} with every default applied and checked for
 * consistency (the key ages, the previous-key grace, mismatch detection). The gate reads only these.
 * @module
 */
import type { PskGateOptions } from "./gate-types.ts";

/** Default expected rotation interval (ms). */
const DEFAULT_ROTATION_INTERVAL_MS = 120_000;
/** Default maximum age of a rotated key, in rotation intervals. */
const DEFAULT_MAX_AGE_INTERVALS = 3;
/** Default stale age of a rotated key, in rotation intervals (one expected rotation was missed). */
const DEFAULT_STALE_INTERVALS = 2;
/** The previous key's grace after a rotation never lasts longer (ms); also the default. */
const MAX_GRACE_MS = 30_000;
/** A manual key with a maximum age goes stale at 2/3 of it (as a rotated key's default: 2 of 3 intervals). */
const MANUAL_STALE_NUMERATOR = 2;
const MANUAL_STALE_DENOMINATOR = 3;
/** Default failures of one side that make a mismatch suspected. */
const DEFAULT_MISMATCH_THRESHOLD = 2;
/** Default install skew window (ms). */
const DEFAULT_SKEW_WINDOW_MS = 5_000;
/** Default first skew retry delay (ms). */
const DEFAULT_SKEW_RETRY_MS = 100;

/** The gate's settings, defaults applied. */
export interface GateSettings {
  /** Expected rotation interval (ms). */
  readonly rotationIntervalMs: number;
  /** Maximum age (ms) of a key a key plane rotates. */
  readonly maxAgeMs: number;
  /** Age at which an open gate with a rotated key turns stale (ms). */
  readonly staleAfterMs: number;
  /** Maximum age (ms) of a manual key; Infinity (the default) when manual keys do not expire. */
  readonly manualMaxAgeMs: number;
  /** Age at which an open gate with a manual key turns stale (ms): two thirds of `manualMaxAgeMs`. */
  readonly manualStaleAfterMs: number;
  /** Previous-key grace after a rotation (ms). */
  readonly graceMs: number;
  /** Failures that make a mismatch suspected. */
  readonly mismatchThreshold: number;
  /** Install skew window (ms). */
  readonly skewWindowMs: number;
  /** First skew retry delay (ms). */
  readonly skewRetryMs: number;
}

/** The settings `opts` ask for, defaults applied. Throws on inconsistent options. */
export function gateSettings(opts: PskGateOptions): GateSettings {
  const rotationIntervalMs = opts.rotationIntervalMs ?? DEFAULT_ROTATION_INTERVAL_MS;
  if (!(rotationIntervalMs > 0) || !Number.isFinite(rotationIntervalMs)) {
    throw new Error("rotationIntervalMs must be a positive number of milliseconds");
  }
  const maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_INTERVALS * rotationIntervalMs;
  if (!(maxAgeMs > 0)) throw new Error("maxAgeMs must be positive (or Infinity)");
  const staleAfterMs = opts.staleAfterMs ?? Math.min(DEFAULT_STALE_INTERVALS * rotationIntervalMs, maxAgeMs);
  if (!(staleAfterMs > 0) || staleAfterMs > maxAgeMs) {
    throw new Error("staleAfterMs must be positive and at most maxAgeMs");
  }
  const manualMaxAgeMs = opts.manualMaxAgeMs ?? Infinity;
  if (!(manualMaxAgeMs > 0)) throw new Error("manualMaxAgeMs must be positive (or Infinity)");
  const manualStaleAfterMs = Number.isFinite(manualMaxAgeMs)
    ? Math.round((manualMaxAgeMs * MANUAL_STALE_NUMERATOR) / MANUAL_STALE_DENOMINATOR)
    : Infinity;
  const graceMs = opts.graceMs ?? MAX_GRACE_MS;
  if (!(graceMs >= 0 && graceMs <= MAX_GRACE_MS)) {
    throw new Error(`graceMs must be between 0 and ${MAX_GRACE_MS}`);
  }
  const mismatchThreshold = opts.mismatchThreshold ?? DEFAULT_MISMATCH_THRESHOLD;
  if (!Number.isInteger(mismatchThreshold) || mismatchThreshold < 1) {
    throw new Error("mismatchThreshold must be an integer ≥ 1");
  }
  const skewWindowMs = opts.skewWindowMs ?? DEFAULT_SKEW_WINDOW_MS;
  const skewRetryMs = opts.skewRetryMs ?? DEFAULT_SKEW_RETRY_MS;
  if (!(skewWindowMs >= 0) || !(skewRetryMs > 0)) {
    throw new Error("skewWindowMs must be ≥ 0 and skewRetryMs positive");
  }
  return {
    rotationIntervalMs,
    maxAgeMs,
    staleAfterMs,
    manualMaxAgeMs,
    manualStaleAfterMs,
    graceMs,
    mismatchThreshold,
    skewWindowMs,
    skewRetryMs,
  };
}
