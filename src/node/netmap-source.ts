/**
 * Where a node's network map comes from, as a running thing: a file watched for changes (the
 * directory is watched, so a new file renamed over the old one counts; events are debounced so that
 * an editor's several writes make one reading) or a URL polled with If-None-Match. Each new reading
 * goes to `onMap`; a source that cannot be read is one warning line and the running map stays.
 * `readSourceOnce` is the same reading at start-up.
 * @module
 */
import { dirname, resolve as resolvePath } from "node:path";
import { fetchMap } from "../netmap/http-fetch.ts";
import { MapFileError, readMapBytes } from "../netmap/map-file.ts";
import { SIGNATURE_SUFFIX } from "../netmap/signature.ts";
import type { NetmapSource } from "../netmap/source-config.ts";
import type { ReceivedMap } from "./netmap-part.ts";

/** Quiet time after the last change of a watched map file before it is read, ms. */
export const FILE_DEBOUNCE_MS = 200;
/** Largest signature file read beside a map file. */
const SIGNATURE_MAX_BYTES = 256;

/** One reading of a source. */
export type SourceReading =
  | { kind: "map"; map: ReceivedMap; etag: string | null }
  | { kind: "not-modified" }
  | { kind: "failed"; reason: string };

function readSignatureBeside(path: string): Uint8Array | null {
  try {
    const bytes = Deno.readFileSync(`${path}${SIGNATURE_SUFFIX}`);
    return bytes.length > SIGNATURE_MAX_BYTES ? bytes.subarray(0, SIGNATURE_MAX_BYTES + 1) : bytes;
  } catch {
    return null;
  }
}

/** Reads `source` once (`etag`: the running map's, for a URL). Never throws. */
export async function readSourceOnce(source: NetmapSource, etag: string | null): Promise<SourceReading> {
  if (source.kind === "file") {
    try {
      const document = readMapBytes(source.path);
      return { kind: "map", map: { document, signature: readSignatureBeside(source.path) }, etag: null };
    } catch (e) {
      if (e instanceof MapFileError) return { kind: "failed", reason: e.message };
      return { kind: "failed", reason: (e as Error).message };
    }
  }
  const r = await fetchMap(source.url, { etag });
  if (r.kind === "fetched") {
    return { kind: "map", map: { document: r.document, signature: r.signature }, etag: r.etag };
  }
  return r.kind === "failed" ? { kind: "failed", reason: `${source.url}: ${r.reason}` } : r;
}

/** A running source. */
export interface RunningSource {
  /** Stops watching or polling. */
  close(): void;
}

/** Options of {@link startSource}. */
export interface StartSourceOptions {
  /** Called with each new reading of the map, one at a time. */
  onMap: (map: ReceivedMap) => Promise<unknown>;
  /** Called when the source cannot be read (the running map stays). */
  onFailure: (reason: string) => void;
  /** ETag of the map the node started from (URL sources). */
  etag?: string | null;
}

/** Starts watching (file) or polling (URL) `source`. */
export function startSource(source: NetmapSource, opts: StartSourceOptions): RunningSource {
  let etag = opts.etag ?? null;
  let busy = false;
  let again = false;
  let closed = false;
  let lastFailure: string | null = null;
  const readNow = async () => {
    if (closed) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const r = await readSourceOnce(source, etag);
        if (closed) return;
        if (r.kind === "failed") {
          // One line per distinct problem, not one per poll.
          if (r.reason !== lastFailure) opts.onFailure(r.reason);
          lastFailure = r.reason;
          continue;
        }
        lastFailure = null;
        if (r.kind === "map") {
          etag = r.etag;
          await opts.onMap(r.map);
        }
      } while (again && !closed);
    } finally {
      busy = false;
    }
  };

  if (source.kind === "url") {
    const timer = setInterval(() => void readNow(), source.pollSeconds * 1000);
    return {
      close: () => {
        closed = true;
        clearInterval(timer);
      },
    };
  }

  const path = resolvePath(source.path);
  const watched = new Set([path, `${path}${SIGNATURE_SUFFIX}`]);
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  let debounce: ReturnType<typeof setTimeout> | undefined;
  void (async () => {
    try {
      for await (const ev of watcher) {
        if (!ev.paths.some((p) => watched.has(resolvePath(p)))) continue;
        clearTimeout(debounce);
        debounce = setTimeout(() => void readNow(), FILE_DEBOUNCE_MS);
      }
    } catch (e) {
      if (!closed) opts.onFailure(`watching ${dirname(path)} stopped: ${(e as Error).message}`);
    }
  })();
  return {
    close: () => {
      closed = true;
      clearTimeout(debounce);
      try {
        watcher.close();
      } catch {
        // already closed
      }
    },
  };
}
