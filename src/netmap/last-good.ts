/**
 * The last good map, kept in the node's state directory (`netmap-last-good.json`, mode 0600, written
 * atomically) so a node whose map source is unreachable starts from the map it last applied, and so
 * the anti-rollback serial survives a restart. The file holds the map's exact bytes and its signature;
 * a node re-checks both with {@link acceptMap} before using them, as it would a fresh download.
 * @module
 */
import { decodeBase64, encodeBase64 } from "../encoding.ts";
import { writeFileAtomic } from "../dske/durable-file.ts";
import { type AcceptedRecord, documentDigest } from "./accept.ts";

/** File name of the last good map inside the state directory. */
export const LAST_GOOD_FILE = "netmap-last-good.json";
/** Format version of that file. */
const LAST_GOOD_VERSION = 1;

/** The last good map as kept on disk. */
export interface LastGoodMap {
  /** The map file's bytes. */
  document: Uint8Array;
  /** Its detached signature, or null (a local file source needs none). */
  signature: Uint8Array | null;
  /** Serial and digest of the document. */
  record: AcceptedRecord;
}

/** Writes the last good map into `stateDir` atomically (write, fsync, rename, fsync directory). */
export function saveLastGood(stateDir: string, last: LastGoodMap): void {
  const text = JSON.stringify({
    version: LAST_GOOD_VERSION,
    serial: last.record.serial,
    sha256: last.record.sha256,
    signature: last.signature ? encodeBase64(last.signature) : null,
    document: encodeBase64(last.document),
  });
  Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 }); // a first start has no state directory yet
  writeFileAtomic(stateDir, LAST_GOOD_FILE, `${text}\n`);
}

/**
 * Reads the last good map from `stateDir`: null when there is none; an Error with one line when the
 * file is damaged (the node then refuses to start from it and says so, rather than guess).
 */
export function loadLastGood(stateDir: string): LastGoodMap | null {
  const path = `${stateDir}/${LAST_GOOD_FILE}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path} cannot be read (${(e as Error).name}); check the state directory`);
  }
  const damaged = new Error(`${path} is damaged; delete it to start from the map source alone`);
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch {
    throw damaged;
  }
  if (
    data === null || typeof data !== "object" || data.version !== LAST_GOOD_VERSION ||
    typeof data.serial !== "number" || typeof data.sha256 !== "string" || typeof data.document !== "string" ||
    (data.signature !== null && typeof data.signature !== "string")
  ) throw damaged;
  let document: Uint8Array;
  let signature: Uint8Array | null;
  try {
    document = decodeBase64(data.document);
    signature = typeof data.signature === "string" ? decodeBase64(data.signature) : null;
  } catch {
    throw damaged;
  }
  if (documentDigest(document) !== data.sha256) throw damaged;
  return { document, signature, record: { serial: data.serial, sha256: data.sha256 } };
}
