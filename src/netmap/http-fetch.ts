/**
 * Fetching a map from a URL (`"netmap": { "url": …, "publicKey": … }`): a conditional GET with
 * `If-None-Match` so an unchanged map costs one 304, then the detached signature from `URL.sig`. The
 * result goes to {@link acceptMap} (signature, serial); nothing here trusts the bytes. Bodies are capped
 * at the config file limit, requests time out, and every failure is one line (the node keeps its map
 * and says why). `http://` and `https://` only.
 * @module
 */
import { CONFIG_FILE_MAX_BYTES } from "../config/secret-file.ts";
import { parseSignature, SIGNATURE_SUFFIX } from "./signature.ts";

/** Time allowed for each request. */
export const FETCH_TIMEOUT_MS = 10_000;
/** Largest signature file read (one base64 line). */
const SIGNATURE_MAX_BYTES = 256;

/** The outcome of one poll. */
export type FetchResult =
  | { kind: "not-modified" }
  | {
    kind: "fetched";
    /** The map's bytes as served. */
    document: Uint8Array;
    /** The signature from `URL.sig`, or null when there is none (acceptMap then refuses the map). */
    signature: Uint8Array | null;
    /** The map's ETag, for the next poll's If-None-Match; null when the server sent none. */
    etag: string | null;
  }
  | { kind: "failed"; reason: string };

/** Options of {@link fetchMap}. */
export interface FetchMapOptions {
  /** The ETag of the map the node runs, or null. */
  etag: string | null;
  /** Request timeout in ms (default {@link FETCH_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** The fetch function (tests may pass their own). */
  fetch?: typeof fetch;
}

/** Whether `text` is a URL a map may be fetched from; a reason when not. */
export function checkMapUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL; write e.g. https://maps.example/netmap.json`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return `${url.protocol} URLs are not supported; use https:// (or http://: the signature protects the map)`;
  }
  if (url.username || url.password) {
    return "credentials in the URL would be logged; serve the map without them";
  }
  return null;
}

async function readCapped(response: Response, cap: number): Promise<Uint8Array | null> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > cap) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function describe(e: unknown): string {
  if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) return "timed out";
  return (e as Error)?.message?.split("\n")[0] ?? String(e);
}

/** Polls `url` once (see the module doc). Never throws. */
export async function fetchMap(url: string, opts: FetchMapOptions): Promise<FetchResult> {
  const doFetch = opts.fetch ?? fetch;
  const timeout = opts.timeoutMs ?? FETCH_TIMEOUT_MS;
  const urlProblem = checkMapUrl(url);
  if (urlProblem) return { kind: "failed", reason: urlProblem };
  let response: Response;
  try {
    const headers: Record<string, string> = { "accept": "application/json" };
    if (opts.etag) headers["if-none-match"] = opts.etag;
    response = await doFetch(url, { headers, signal: AbortSignal.timeout(timeout), redirect: "follow" });
  } catch (e) {
    return { kind: "failed", reason: `${url}: ${describe(e)}` };
  }
  try {
    if (response.status === 304) {
      await response.body?.cancel();
      return { kind: "not-modified" };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      return { kind: "failed", reason: `${url}: HTTP ${response.status}` };
    }
    const document = await readCapped(response, CONFIG_FILE_MAX_BYTES);
    if (document === null) {
      return { kind: "failed", reason: `${url}: the map is over the ${CONFIG_FILE_MAX_BYTES}-byte limit` };
    }
    const etag = response.headers.get("etag");
    let signature: Uint8Array | null = null;
    const sigResponse = await doFetch(`${url}${SIGNATURE_SUFFIX}`, { signal: AbortSignal.timeout(timeout) });
    if (sigResponse.status === 200) {
      const bytes = await readCapped(sigResponse, SIGNATURE_MAX_BYTES);
      signature = bytes === null ? null : parseSignature(new TextDecoder().decode(bytes));
    } else {
      await sigResponse.body?.cancel();
    }
    return { kind: "fetched", document, signature, etag };
  } catch (e) {
    return { kind: "failed", reason: `${url}: ${describe(e)}` };
  }
}
