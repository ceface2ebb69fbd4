/**
 * `twofold netmap serve`'s server: serves the files of one directory (the map and its `.sig`) over HTTP
 * for small fabrics, with a strong ETag per file content so polling nodes get 304 while nothing changed.
 * Read-only: GET and HEAD of plain file names directly in the directory (no subdirectories, no dot
 * files, no links out); the file is read at each request, so an edit shows at once. Any web server does
 * the same job; the map's signature, not the transport, is what nodes trust.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CONFIG_FILE_MAX_BYTES } from "../config/secret-file.ts";
import { toHex } from "../encoding.ts";

/** File names served: one path segment of safe characters, not starting with a dot. */
const SERVED_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;

/** The strong ETag of a file's bytes. */
export function etagOf(bytes: Uint8Array): string {
  return `"${toHex(sha256(bytes)).slice(0, 32)}"`;
}

function contentType(name: string): string {
  return name.endsWith(".json") || name.endsWith(".jsonc") ? "application/json" : "text/plain; charset=utf-8";
}

/** Answers one request for the directory `dir` (exported for in-process tests). */
export function serveMapRequest(dir: string, request: Request): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  let name: string;
  try {
    name = decodeURIComponent(new URL(request.url).pathname.slice(1));
  } catch {
    return new Response("not found\n", { status: 404 });
  }
  if (!SERVED_NAME.test(name)) return new Response("not found\n", { status: 404 });
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    const info = Deno.lstatSync(`${dir}/${name}`);
    if (!info.isFile || info.size > CONFIG_FILE_MAX_BYTES) {
      return new Response("not found\n", { status: 404 });
    }
    bytes = Deno.readFileSync(`${dir}/${name}`);
  } catch {
    return new Response("not found\n", { status: 404 });
  }
  const etag = etagOf(bytes);
  const headers = { etag, "cache-control": "no-cache", "content-type": contentType(name) };
  const match = request.headers.get("if-none-match");
  if (match !== null && match.split(",").map((t) => t.trim()).includes(etag)) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(request.method === "HEAD" ? null : bytes, { status: 200, headers });
}

/** Serves `dir` on `hostname:port` until the returned server is shut down. */
export function serveMapDirectory(opts: { dir: string; hostname: string; port: number }): Deno.HttpServer {
  return Deno.serve(
    { hostname: opts.hostname, port: opts.port, onListen: () => {} },
    (request) => serveMapRequest(opts.dir, request),
  );
}
