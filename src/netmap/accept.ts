/**
 * Whether a node takes a map it was handed (from a URL, a file, or its own last-good copy): the map
 * must parse and validate, carry a detached Ed25519 signature that verifies with the signer key from
 * the node config (when the source needs one), and never go backwards: its serial must be at least the
 * last accepted one, and strictly greater unless it is the very same document (same SHA-256). An
 * unchanged document is accepted as such (nothing to apply). Pure: the caller supplies the bytes and
 * the last accepted record, and keeps the new record only when it applied the map.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../encoding.ts";
import { type Netmap, NetmapError, parseNetmap } from "./schema.ts";
import { verifyDocument } from "./signature.ts";

/** What a node remembers of the last map it accepted (persisted with the map, see last-good.ts). */
export interface AcceptedRecord {
  /** The map's serial. */
  serial: number;
  /** SHA-256 of the map file's bytes, lowercase hex. */
  sha256: string;
}

/** The outcome of {@link acceptMap}. */
export type AcceptDecision =
  | {
    ok: true;
    /** The validated map. */
    map: Netmap;
    /** Record to keep once the map is applied. */
    record: AcceptedRecord;
    /** The same document as the last accepted one: nothing to apply. */
    unchanged: boolean;
  }
  | {
    ok: false;
    /** One line for the operator and the `netmap-rejected` event. */
    reason: string;
  };

/** Inputs of {@link acceptMap}. */
export interface AcceptInput {
  /** The map file's bytes, exactly as received. */
  document: Uint8Array;
  /** The detached signature's bytes, or null when none came with the map. */
  signature: Uint8Array | null;
  /** The signer's public key from the node config; null = the source needs no signature (a local file). */
  signerPublicKey: Uint8Array | null;
  /** The last accepted record, or null when the node has none. */
  last: AcceptedRecord | null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** SHA-256 of a document, lowercase hex. */
export function documentDigest(document: Uint8Array): string {
  return toHex(sha256(document));
}

/** Decides whether to take a map (see the module doc). Never throws. */
export function acceptMap(input: AcceptInput): AcceptDecision {
  if (input.signerPublicKey !== null) {
    if (input.signature === null) {
      return { ok: false, reason: "the map is unsigned; sign it with `twofold netmap sign --key FILE`" };
    }
    if (!verifyDocument(input.document, input.signature, input.signerPublicKey)) {
      return {
        ok: false,
        reason:
          "the map's signature does not verify with the configured signer key; re-sign it or check netmap.publicKey",
      };
    }
  }
  let map: Netmap;
  try {
    map = parseNetmap(decoder.decode(input.document));
  } catch (e) {
    if (e instanceof NetmapError) return { ok: false, reason: `invalid map: ${e.message}` };
    if (e instanceof TypeError) return { ok: false, reason: "invalid map: the file is not UTF-8 text" };
    return { ok: false, reason: `invalid map: ${(e as Error).message}` };
  }
  const record = { serial: map.serial, sha256: documentDigest(input.document) };
  const last = input.last;
  if (last !== null) {
    if (record.serial < last.serial) {
      return {
        ok: false,
        reason:
          `serial ${record.serial} is lower than the running map's ${last.serial}; a map never goes back (rollback refused)`,
      };
    }
    if (record.serial === last.serial && record.sha256 !== last.sha256) {
      return {
        ok: false,
        reason:
          `serial ${record.serial} is the running map's but the document differs; every change needs a higher serial`,
      };
    }
  }
  return { ok: true, map, record, unchanged: last !== null && record.sha256 === last.sha256 };
}
