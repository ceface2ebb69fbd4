/**
 * Redaction for the support bundle, in three independent layers so that one mistake does not leak a
 * key:
 *
 * 1. **Schema knowledge** ({@link SECRET_FIELDS}): fields that hold a secret inline (a private key, a
 *    pre-shared key, a token, a PIN, a Rosenpass or SKA secret) are replaced whatever their value.
 *    Secret *files* (`privateKeyFile`, `pskFile`, `pinFile`, `tokenFile`, PSRD files) are paths and
 *    stay: their contents are never read into a bundle.
 * 2. **A defensive pass** ({@link looksSecretName} + {@link looksLikeKeyMaterial}): any other field
 *    whose name sounds secret and whose value looks like key bytes (base64 of 16 bytes or more, or 32+
 *    hex digits) is replaced too, so a field added to a schema later is covered before anyone lists it.
 * 3. **Known secrets** ({@link SecretScrubber}): the node hands over the secrets it holds (its private
 *    key, every PSK in its devices, the admin token); every text file of the bundle is searched for
 *    their base64, base64url, hex and text forms, which are replaced.
 * @module
 */
import { encodeBase64, toHex } from "../encoding.ts";

/** What a redacted value is replaced with. */
export const REDACTED = "[redacted]";

/**
 * Field names (lower case) whose values are secrets wherever they appear: WireGuard private and
 * pre-shared keys, admin tokens, PKCS#11 PINs, Rosenpass secret keys, SKA root keys, PSRD pads.
 */
export const SECRET_FIELDS: ReadonlySet<string> = new Set([
  "privatekey",
  "private_key",
  "presharedkey",
  "preshared_key",
  "psk",
  "wgpsk",
  "token",
  "admintoken",
  "pin",
  "userpin",
  "password",
  "passphrase",
  "secret",
  "secretkey",
  "secret_key",
  "rosenpasssecretkey",
  "rootkeybytes",
  "psrd",
  "pad",
  "seed",
  "sharedsecret",
  "key",
]);

/** Parts of a field name that make a key-looking value in it a secret. */
const SECRET_NAME = /private|secret|psk|preshared|token|pin|passw|passphrase|seed|psrd|pad|otp|key/i;
/** Names that look secret but hold public or descriptive values (public keys, file paths, labels). */
const NOT_SECRET_NAME =
  /^public|publickey$|pubkey$|(file|path|dir|label|id|ids|epoch|epochs|source|seconds|port|count|threshold|module|alg|algorithm|type|hash|sha256)$/i;

/** Whether a field named `name` may hold a secret (for the defensive pass). */
export function looksSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_SECRET_NAME.test(name);
}

/** Whether `value` looks like key bytes: base64 (std or url) of ≥ 16 bytes, or ≥ 32 hex digits. */
export function looksLikeKeyMaterial(value: string): boolean {
  const v = value.trim();
  return /^(0x)?[0-9a-fA-F]{32,}$/.test(v) || (/^[A-Za-z0-9+/_-]{22,}={0,2}$/.test(v) && /[0-9]/.test(v));
}

/** What {@link redactValue} did. */
export interface RedactionReport {
  /** Paths of the fields replaced (e.g. `peers[0].presharedKey`), never their values. */
  redacted: string[];
}

function redactField(name: string, value: unknown, path: string, report: RedactionReport): unknown {
  const lower = name.toLowerCase();
  if (Array.isArray(value)) {
    return value.map((v, i) => redactField(name, v, `${path}[${i}]`, report));
  }
  if (value !== null && typeof value === "object") return redactObject(value, path, report);
  if (SECRET_FIELDS.has(lower) && !NOT_SECRET_NAME.test(name)) {
    report.redacted.push(path);
    return REDACTED;
  }
  if (typeof value === "string" && looksSecretName(name) && looksLikeKeyMaterial(value)) {
    report.redacted.push(path);
    return REDACTED;
  }
  return value;
}

function redactObject(obj: object, path: string, report: RedactionReport): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = redactField(k, v, path === "" ? k : `${path}.${k}`, report);
  }
  return out;
}

/**
 * A copy of the JSON-like `value` (a parsed config, a network map) with every secret field replaced by
 * {@link REDACTED} (layers 1 and 2 of the module doc); `report` collects the paths replaced.
 */
export function redactValue(value: unknown, report: RedactionReport = { redacted: [] }): unknown {
  if (Array.isArray(value)) return value.map((v, i) => redactField("", v, `[${i}]`, report));
  if (value !== null && typeof value === "object") return redactObject(value, "", report);
  return value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Shortest secret the scrubber searches for: shorter strings would match ordinary text. */
export const MIN_SCRUB_LENGTH = 8;

/**
 * Replaces every known secret in text (layer 3 of the module doc). Byte secrets are searched as
 * base64 (padded and not), base64url and hex (either case); text secrets (the admin token) as
 * themselves and as base64 and hex of their UTF-8 bytes.
 */
export class SecretScrubber {
  readonly #pattern: RegExp | null;

  /** Builds the search for `secrets` (all-zero and very short ones are ignored). */
  constructor(secrets: readonly (Uint8Array | string)[]) {
    const forms = new Set<string>();
    const addBytes = (b: Uint8Array) => {
      if (b.length === 0 || b.every((x) => x === 0)) return;
      const b64 = encodeBase64(b);
      const unpadded = b64.replace(/=+$/, "");
      forms.add(b64);
      forms.add(unpadded);
      forms.add(unpadded.replace(/\+/g, "-").replace(/\//g, "_"));
      forms.add(toHex(b));
    };
    for (const s of secrets) {
      if (typeof s === "string") {
        if (s.length >= MIN_SCRUB_LENGTH) forms.add(s);
        addBytes(new TextEncoder().encode(s));
      } else {
        addBytes(s);
      }
    }
    const usable = [...forms].filter((f) => f.length >= MIN_SCRUB_LENGTH).sort((a, b) => b.length - a.length);
    this.#pattern = usable.length === 0 ? null : new RegExp(usable.map(escapeRegExp).join("|"), "gi");
  }

  /** `text` with every known secret replaced by {@link REDACTED}; `count` says how many were. */
  scrub(text: string): { text: string; count: number } {
    if (this.#pattern === null) return { text, count: 0 };
    let count = 0;
    const out = text.replace(this.#pattern, () => {
      count++;
      return REDACTED;
    });
    return { text: out, count };
  }
}
