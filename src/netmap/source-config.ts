/**
 * The node config's `netmap` section, ready for node-config.ts to embed: where the map comes from.
 *
 * - `{ "file": PATH }`: a local file, watched; a signature is optional (`"publicKey"` makes it
 *   required, as for a URL).
 * - `{ "url": URL, "publicKey": SIGNER_KEY }`: an `https://` or `http://` URL polled every
 *   `pollSeconds` (default {@link DEFAULT_POLL_SECONDS}) with If-None-Match; the signer key is
 *   required: a map from the network is believed only when signed.
 *
 * Problems are NetmapErrors whose field is the config path (`netmap.url: …`), in the node config's
 * one-line style. Pure apart from resolving a relative path against the config's directory.
 * @module
 */
import { resolve as resolvePath } from "node:path";
import { z } from "zod";
import { checkMapUrl } from "./http-fetch.ts";
import { NetmapError } from "./schema.ts";
import { parseSignerPublicKey, SignatureError } from "./signature.ts";

/** Default URL poll interval, seconds. */
export const DEFAULT_POLL_SECONDS = 30;
/** Shortest poll interval accepted, seconds (a map server is not a heartbeat). */
export const MIN_POLL_SECONDS = 5;
/** Longest poll interval accepted, seconds. */
export const MAX_POLL_SECONDS = 3600;

/** The `netmap` section's schema (embed as `netmap: netmapSourceSection.optional()`). */
export const netmapSourceSection = z.strictObject({
  file: z.string().min(1, { error: "must not be empty; give the map file's path" }).optional(),
  url: z.string().optional(),
  publicKey: z.string().optional(),
  pollSeconds: z.int()
    .min(MIN_POLL_SECONDS, { error: `must be ${MIN_POLL_SECONDS} to ${MAX_POLL_SECONDS} seconds` })
    .max(MAX_POLL_SECONDS, { error: `must be ${MIN_POLL_SECONDS} to ${MAX_POLL_SECONDS} seconds` })
    .optional(),
});

/** The section as written. */
export type NetmapSourceRaw = z.output<typeof netmapSourceSection>;

/** Where a node's map comes from, resolved. */
export type NetmapSource =
  | {
    kind: "file";
    /** Absolute path of the map file. */
    path: string;
    /** Signer key when the file's signature is required, else null. */
    signerPublicKey: Uint8Array | null;
  }
  | {
    kind: "url";
    /** The map's URL (its signature is at URL + ".sig"). */
    url: string;
    /** The signer's Ed25519 public key (required). */
    signerPublicKey: Uint8Array;
    /** Poll interval in seconds. */
    pollSeconds: number;
  };

function signerKey(text: string): Uint8Array {
  try {
    return parseSignerPublicKey("netmap.publicKey", text);
  } catch (e) {
    if (e instanceof SignatureError) {
      throw new NetmapError("netmap.publicKey", e.message.replace(/^netmap\.publicKey: /, ""));
    }
    throw e;
  }
}

/** Resolves a schema-checked `netmap` section; relative paths resolve against `baseDir`. */
export function resolveNetmapSource(raw: NetmapSourceRaw, baseDir: string): NetmapSource {
  if ((raw.file === undefined) === (raw.url === undefined)) {
    throw new NetmapError(
      "netmap",
      'needs exactly one of "file" (a local map) or "url" (a signed map to poll, with "publicKey")',
    );
  }
  if (raw.file !== undefined) {
    if (raw.pollSeconds !== undefined) {
      throw new NetmapError("netmap.pollSeconds", "applies to a url only (a file is watched); remove it");
    }
    return {
      kind: "file",
      path: resolvePath(baseDir, raw.file),
      signerPublicKey: raw.publicKey === undefined ? null : signerKey(raw.publicKey),
    };
  }
  const problem = checkMapUrl(raw.url!);
  if (problem) throw new NetmapError("netmap.url", problem);
  if (raw.publicKey === undefined) {
    throw new NetmapError(
      "netmap.publicKey",
      "missing: a map from a URL must be signed; add the signer's public key (`twofold netmap signer-keygen` printed it)",
    );
  }
  return {
    kind: "url",
    url: raw.url!,
    signerPublicKey: signerKey(raw.publicKey),
    pollSeconds: raw.pollSeconds ?? DEFAULT_POLL_SECONDS,
  };
}
