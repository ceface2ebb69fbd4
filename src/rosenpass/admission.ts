/**
 * Admission of InitHello messages before the responder's expensive step (a McEliece decapsulation,
 * tens of milliseconds): Rosenpass v0.2 has no cookie round trip, so a flood of valid-MAC InitHellos
 * (the MAC key is the public key) would otherwise eat the CPU. Three token buckets, all pure:
 * one per source address (a flood from one address throttles itself), a global budget for unknown
 * sources, and a reserved budget that only sources matching a configured or learned peer endpoint
 * may draw on first — so a flood from elsewhere can never starve the real peers' exchanges.
 * Run this after the envelope MAC check and before any KEM work.
 */

/** Rates are per second; bursts are whole messages. */
export interface AdmissionLimits {
  /** Sustained InitHellos per source address. */
  perSourcePerSecond: number;
  /** Burst per source address. */
  perSourceBurst: number;
  /** Sustained decapsulations for sources that are not known peer endpoints. */
  unknownPerSecond: number;
  /** Sustained decapsulations reserved for known peer endpoints (tried before the unknown pool). */
  knownPerSecond: number;
  /** Sources tracked at most; a full table refuses new sources instead of evicting. */
  maxSources: number;
}

/** Defaults sized for ≈ 100–150 ms per decapsulation on one worker core: at most ≈ 6 per second. */
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  perSourcePerSecond: 2,
  perSourceBurst: 4,
  unknownPerSecond: 2,
  knownPerSecond: 4,
  maxSources: 4096,
};

/** Why an InitHello was not admitted (for counters). */
export type AdmissionVerdict = "admitted" | "source-rate-limited" | "over-capacity";

interface Bucket {
  tokens: number;
  at: number;
}

function refill(bucket: Bucket, now: number, rate: number, burst: number): void {
  bucket.tokens = Math.min(burst, bucket.tokens + Math.max(0, now - bucket.at) * rate);
  bucket.at = now;
}

/** The admission state of one responder. */
export class InitHelloAdmission {
  readonly #limits: AdmissionLimits;
  readonly #sources = new Map<string, Bucket>();
  readonly #unknown: Bucket;
  readonly #known: Bucket;

  constructor(limits: Partial<AdmissionLimits> = {}, now = 0) {
    this.#limits = { ...DEFAULT_ADMISSION_LIMITS, ...limits };
    this.#unknown = { tokens: this.#limits.unknownPerSecond, at: now };
    this.#known = { tokens: this.#limits.knownPerSecond, at: now };
  }

  /** Sources currently tracked. */
  get trackedSources(): number {
    return this.#sources.size;
  }

  /** Decides on one InitHello from `source` (an address:port key) at `now` (seconds). */
  admit(now: number, source: string, knownEndpoint: boolean): AdmissionVerdict {
    const l = this.#limits;
    let bucket = this.#sources.get(source);
    if (bucket === undefined) {
      if (this.#sources.size >= l.maxSources) this.#forgetIdle(now);
      // known endpoints are few (bounded by the configuration): never refused for a full table
      if (this.#sources.size >= l.maxSources && !knownEndpoint) return "over-capacity";
      bucket = { tokens: l.perSourceBurst, at: now };
      this.#sources.set(source, bucket);
    }
    refill(bucket, now, l.perSourcePerSecond, l.perSourceBurst);
    if (bucket.tokens < 1) return "source-rate-limited";
    const pools = knownEndpoint ? [this.#known, this.#unknown] : [this.#unknown];
    for (const pool of pools) {
      const rate = pool === this.#known ? l.knownPerSecond : l.unknownPerSecond;
      refill(pool, now, rate, Math.max(1, rate));
      if (pool.tokens >= 1) {
        pool.tokens--;
        bucket.tokens--;
        return "admitted";
      }
    }
    return "over-capacity";
  }

  /** Drops sources whose bucket is full again (forgetting them changes nothing). */
  #forgetIdle(now: number): void {
    const l = this.#limits;
    for (const [source, bucket] of this.#sources) {
      if ((now - bucket.at) * l.perSourcePerSecond + bucket.tokens >= l.perSourceBurst) {
        this.#sources.delete(source);
      }
    }
  }
}
