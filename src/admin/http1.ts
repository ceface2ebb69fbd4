/**
 * HTTP/1.1 on one accepted connection of the admin listener, for a fetch-style handler (the Hono
 * app). The admin API serves its own connections instead of using `Deno.serve` because `Deno.serve`
 * has no connection cap and no timeouts, and ends its serving loop for good on the first failed
 * accept (EMFILE): see accept-loop.ts for the listener side.
 *
 * What a connection may cost is bounded here:
 * - the request head (request line and headers) must arrive within `headerTimeoutMs` of the
 *   connection opening or of the previous response ending (slowloris, idle keep-alive), and be at most
 *   `maxHeaderBytes` long (431);
 * - a body is taken only with a Content-Length of at most `maxBodyBytes` (413; no chunked request
 *   bodies: 411) and must arrive within `bodyTimeoutMs`;
 * - each write of the response must be taken by the client within `writeTimeoutMs` (a client that
 *   never reads is dropped; an event stream also drops it when its queue fills).
 * A timeout closes the connection. Responses are sent with their length in one write, except event
 * streams, which are chunked (close-delimited for HTTP/1.0 clients). The connection is idle (evictable at the
 * cap) while a request head or body is arriving, busy while the handler runs and its response is
 * written. The handler's `completed` promise settles when its response was written or the
 * connection ended, whichever comes first (the event stream ends on it).
 * @module
 */
import { connectionDeadline as deadline, type ConnectionSlot } from "../accept-loop.ts";

/** Default time to receive a request head, ms (from the connection opening or the previous response). */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** Default time to receive a request body once its head is in, ms. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;
/** Default time a client has to take one write of a response, ms. */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;
/** Default largest request head (request line and headers), bytes. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

/** What one connection may cost; see the module doc. */
export interface HttpConnectionLimits {
  /** Time to receive a request head, ms. */
  headerTimeoutMs: number;
  /** Time to receive a request body, ms. */
  bodyTimeoutMs: number;
  /** Time for the client to take one response write, ms. */
  writeTimeoutMs: number;
  /** Largest request head, bytes. */
  maxHeaderBytes: number;
  /** Largest request body, bytes. */
  maxBodyBytes: number;
}

/** What the handler gets besides the request (the shape of `Deno.ServeHandlerInfo` the app uses). */
export interface HttpHandlerInfo {
  /** Settles when the response was written (resolves) or the connection ended first (rejects). */
  completed: Promise<void>;
  /** Where the request came from, for the audit trail: `unix socket` or the TCP peer `ADDR:PORT`. */
  peer?: string;
}

/** Names the client end of `conn` for logs and the audit trail (never secret). */
export function connectionPeer(conn: Deno.Conn): string {
  const a = conn.remoteAddr;
  if (a.transport === "tcp" || a.transport === "udp") {
    return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
  }
  return "unix socket";
}

/** A fetch-style handler. */
export type HttpHandler = (req: Request, info: HttpHandlerInfo) => Response | Promise<Response>;

/** A parsed request head. */
export interface RequestHead {
  /** The method, e.g. "GET". */
  method: string;
  /** The target in origin form, e.g. "/v1/status?x=1" (an absolute-form target is reduced to it). */
  target: string;
  /** Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Header fields in order, names as sent. */
  headers: [string, string][];
}

/** A request head that cannot be served, with the status to answer. */
export interface HeadProblem {
  /** The HTTP status. */
  status: 400 | 505;
  /** One sentence for the error body. */
  detail: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s]+) HTTP\/(\d)\.(\d)$/;
const ABSOLUTE_FORM = /^https?:\/\/[^/?#\s]*(\/[^\s]*)?$/i;

/** Parses a request head (the text before the blank line, lines split on CRLF or LF). */
export function parseRequestHead(text: string): RequestHead | HeadProblem {
  const lines = text.split(/\r?\n/);
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) return { status: 400, detail: "malformed request line (expected: METHOD /path HTTP/1.1)" };
  if (m[3] !== "1" || (m[4] !== "0" && m[4] !== "1")) {
    return { status: 505, detail: `HTTP/${m[3]}.${m[4]} is not supported; use HTTP/1.1` };
  }
  let target = m[2];
  if (!target.startsWith("/")) {
    // Absolute form (what a client talking through a proxy, e.g. Deno's unix-socket client, sends).
    const abs = ABSOLUTE_FORM.exec(target);
    if (!abs) return { status: 400, detail: "malformed request target (expected /path)" };
    target = abs[1] ?? "/";
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    // No obsolete line folding, no whitespace before the colon (RFC 9112 §5).
    if (!TOKEN.test(name)) return { status: 400, detail: "malformed header line" };
    const value = line.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value)) return { status: 400, detail: "malformed header value" };
    headers.push([name, value]);
  }
  return { method: m[1], target, minor: m[4] === "1" ? 1 : 0, headers };
}

/** Whether a parse result is a problem. */
export function isHeadProblem(h: RequestHead | HeadProblem): h is HeadProblem {
  return "status" in h;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A complete error response (JSON `{error, detail}`, connection closed), as bytes. */
export function errorResponseBytes(status: number, error: string, detail: string): Uint8Array {
  const body = JSON.stringify({ error, detail });
  return encoder.encode(
    `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\nContent-Type: application/json\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\nContent-Length: ${
        encoder.encode(body).length
      }\r\n\r\n${body}`,
  );
}

class ConnectionGone extends Error {}

/** Bytes read from the connection, with at most one read in flight. */
class Inbox {
  #conn: Deno.Conn;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #reading: Promise<boolean> | null = null;
  eof = false;

  constructor(conn: Deno.Conn, capacity: number) {
    this.#conn = conn;
    this.#buf = new Uint8Array(capacity);
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** Reads more (false at EOF or when full); joins a read already in flight. */
  fill(): Promise<boolean> {
    if (this.#reading) return this.#reading;
    if (this.eof) return Promise.resolve(false);
    if (this.#end === this.#buf.length) {
      if (this.#start === 0) return Promise.resolve(false);
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#reading = this.#conn.read(this.#buf.subarray(this.#end)).then((n) => {
      this.#reading = null;
      if (n === null) {
        this.eof = true;
        return false;
      }
      this.#end += n;
      return true;
    }, () => {
      this.#reading = null;
      this.eof = true;
      return false;
    });
    return this.#reading;
  }
}

function findHeadEnd(bytes: Uint8Array): { headEnd: number; bodyStart: number } | null {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 10) continue;
    if (bytes[i + 1] === 10) return { headEnd: i, bodyStart: i + 2 };
    if (bytes[i + 1] === 13 && bytes[i + 2] === 10) return { headEnd: i, bodyStart: i + 3 };
  }
  return null;
}

/** Sends bytes on the connection within the write timeout; throws ConnectionGone when it cannot. */
type Writer = (bytes: Uint8Array) => Promise<void>;

/** One connection being served: its buffered input, its writer and its limits. */
interface Served {
  conn: Deno.Conn;
  inbox: Inbox;
  write: Writer;
  limits: HttpConnectionLimits;
  /** The 431 answer, built once per connection. */
  headTooLarge: Uint8Array;
}

/** Serves requests on `conn` until it closes, a timeout passes or a response ends it. */
export async function serveHttpConnection(
  conn: Deno.Conn,
  slot: ConnectionSlot,
  handler: HttpHandler,
  limits: HttpConnectionLimits,
): Promise<void> {
  // Each response leaves in one write (events as they come): nothing to gain from Nagle's delay.
  if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
  const served: Served = {
    conn,
    // Room for one head plus the body bytes that may follow it in the same read.
    inbox: new Inbox(conn, limits.maxHeaderBytes + 4096),
    write: async (bytes: Uint8Array) => {
      const cancel = deadline(conn, limits.writeTimeoutMs);
      try {
        let rest = bytes;
        while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
      } catch {
        throw new ConnectionGone();
      } finally {
        cancel();
      }
    },
    limits,
    headTooLarge: errorResponseBytes(
      431,
      "header_too_large",
      `the request head is larger than ${limits.maxHeaderBytes} bytes`,
    ),
  };
  try {
    while (!slot.closed) {
      slot.setIdle(true);
      const request = await readHead(served);
      if (request === null) return;
      const body = await readBody(served, request.headers);
      if (body === null) return;
      slot.setIdle(false);
      if (!(await answer(served, request.head, request.headers, body.body, handler))) return;
    }
  } catch (e) {
    if (!(e instanceof ConnectionGone)) throw e;
  }
}

/**
 * The next request head and its headers, within the head timeout and size cap; null when the
 * connection is to close (EOF, timeout, or a refusal already written: 431, 400, 505).
 */
async function readHead(s: Served): Promise<{ head: RequestHead; headers: Headers } | null> {
  const { conn, inbox, write, limits } = s;
  const cancelHead = deadline(conn, limits.headerTimeoutMs);
  let found: { headEnd: number; bodyStart: number } | null;
  try {
    while ((found = findHeadEnd(inbox.view())) === null) {
      if (inbox.buffered >= limits.maxHeaderBytes) {
        await write(s.headTooLarge);
        return null;
      }
      if (!(await inbox.fill())) return null; // EOF, timeout (closed) or a reset
    }
  } finally {
    cancelHead();
  }
  if (found.headEnd > limits.maxHeaderBytes) {
    await write(s.headTooLarge);
    return null;
  }
  const headBytes = inbox.take(found.bodyStart);
  const head = parseRequestHead(decoder.decode(headBytes.subarray(0, found.headEnd)));
  if (isHeadProblem(head)) {
    await write(errorResponseBytes(head.status, "bad_request", head.detail));
    return null;
  }
  const headers = new Headers();
  try {
    for (const [name, value] of head.headers) headers.append(name, value);
  } catch {
    await write(errorResponseBytes(400, "bad_request", "malformed header"));
    return null;
  }
  return { head, headers };
}

/**
 * The request body (null when there is none), within the body timeout and size cap; null instead of
 * the result when the connection is to close (EOF, timeout, or a refusal already written: 411, 400, 413).
 */
async function readBody(
  s: Served,
  headers: Headers,
): Promise<{ body: Uint8Array<ArrayBuffer> | null } | null> {
  const { conn, inbox, write, limits } = s;
  if (headers.has("transfer-encoding")) {
    await write(errorResponseBytes(411, "length_required", "send the request body with a Content-Length"));
    return null;
  }
  const lengthText = headers.get("content-length");
  let length = 0;
  if (lengthText !== null) {
    if (!/^\d{1,15}$/.test(lengthText)) {
      await write(errorResponseBytes(400, "bad_request", "malformed Content-Length"));
      return null;
    }
    length = Number(lengthText);
  }
  if (length > limits.maxBodyBytes) {
    await write(
      errorResponseBytes(
        413,
        "body_too_large",
        `the request body is larger than ${limits.maxBodyBytes} bytes`,
      ),
    );
    return null;
  }
  if (length === 0) return { body: null };
  if (headers.get("expect")?.toLowerCase() === "100-continue") {
    await write(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
  }
  const body = new Uint8Array(length);
  let got = 0;
  const cancelBody = deadline(conn, limits.bodyTimeoutMs);
  try {
    while (got < length) {
      if (inbox.buffered === 0 && !(await inbox.fill())) return null;
      const chunk = inbox.take(Math.min(inbox.buffered, length - got));
      body.set(chunk, got);
      got += chunk.length;
    }
  } finally {
    cancelBody();
  }
  return { body };
}

/** Runs the handler and writes its response; false when the connection is to close. */
async function answer(
  s: Served,
  head: RequestHead,
  headers: Headers,
  body: Uint8Array<ArrayBuffer> | null,
  handler: HttpHandler,
): Promise<boolean> {
  const connectionTokens = (headers.get("connection") ?? "").toLowerCase();
  const keepAlive = head.minor === 1
    ? !connectionTokens.includes("close")
    : connectionTokens.includes("keep-alive");
  let settle!: (ok: boolean) => void;
  const completed = new Promise<void>((resolve, reject) => {
    settle = (ok) => ok ? resolve() : reject(new ConnectionGone("the connection ended first"));
  });
  completed.catch(() => {});
  let response: Response;
  try {
    const withBody = body !== null && head.method !== "GET" && head.method !== "HEAD";
    const request = new Request(new URL(head.target, "http://localhost"), {
      method: head.method,
      headers,
      body: withBody ? body : undefined,
    });
    response = await handler(request, { completed, peer: connectionPeer(s.conn) });
  } catch {
    settle(false);
    await s.write(errorResponseBytes(500, "internal", "the admin API failed to answer"));
    return false;
  }
  const ok = await writeResponse(
    response,
    head.method === "HEAD",
    head.minor === 1,
    keepAlive,
    s.inbox,
    s.write,
  );
  settle(ok);
  return ok && keepAlive;
}

/** Writes `response`; false when the connection must close (or already has). */
async function writeResponse(
  response: Response,
  isHead: boolean,
  http11: boolean,
  keepAlive: boolean,
  inbox: Inbox,
  write: (bytes: Uint8Array) => Promise<void>,
): Promise<boolean> {
  const status = response.status;
  const noBody = isHead || status === 204 || status === 304 || response.body === null;
  const streaming = /^text\/event-stream/i.test(response.headers.get("content-type") ?? "");
  if (!noBody && !streaming) {
    // Every other body the app makes is already in memory: send it with its length in one write
    // (separate small writes would meet the peer's delayed ACK on every response).
    const bytes = new Uint8Array(await response.arrayBuffer());
    let head = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
    for (const [name, value] of response.headers) {
      const lower = name.toLowerCase();
      if (lower === "connection" || lower === "transfer-encoding" || lower === "keep-alive") continue;
      if (lower === "content-length") continue;
      head += `${name}: ${value}\r\n`;
    }
    head += `Content-Length: ${bytes.length}\r\n${keepAlive ? "" : "Connection: close\r\n"}\r\n`;
    const headBytes = encoder.encode(head);
    const all = new Uint8Array(headBytes.length + bytes.length);
    all.set(headBytes);
    all.set(bytes, headBytes.length);
    await write(all);
    return keepAlive;
  }
  const lengthText = response.headers.get("content-length");
  const chunked = !noBody && lengthText === null && http11;
  // Without a length, an HTTP/1.0 body ends when the connection does.
  const persist = keepAlive && (noBody || lengthText !== null || chunked);
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
  for (const [name, value] of response.headers) {
    const lower = name.toLowerCase();
    if (lower === "connection" || lower === "transfer-encoding" || lower === "keep-alive") continue;
    head += `${name}: ${value}\r\n`;
  }
  if (noBody && !isHead && lengthText === null && status !== 204 && status !== 304) {
    head += "Content-Length: 0\r\n";
  }
  if (chunked) head += "Transfer-Encoding: chunked\r\n";
  head += persist ? "" : "Connection: close\r\n";
  head += "\r\n";
  if (noBody || response.body === null) {
    await response.body?.cancel().catch(() => {});
    await write(encoder.encode(head));
    return persist;
  }
  const reader = response.body.getReader();
  // A client that hangs up while the body is still coming (an event stream) ends it at once: the
  // read below notices the end of the connection while the response is being written.
  let gone = false;
  let writing = true;
  const watch = () => {
    if (!writing || inbox.buffered >= 4096) return; // a client sending ahead: stop until served
    inbox.fill().then((more) => {
      if (!writing) return;
      if (!more && inbox.eof) {
        gone = true;
        reader.cancel().catch(() => {});
      } else if (!gone) watch();
    });
  };
  try {
    await write(encoder.encode(head));
    watch();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (gone) return false;
      if (value.length === 0) continue;
      if (chunked) {
        const framed = new Uint8Array(value.length + 32);
        const prefix = encoder.encode(`${value.length.toString(16)}\r\n`);
        framed.set(prefix);
        framed.set(value, prefix.length);
        framed.set([13, 10], prefix.length + value.length);
        await write(framed.subarray(0, prefix.length + value.length + 2));
      } else {
        await write(value);
      }
    }
    if (gone) return false;
    if (chunked) await write(encoder.encode("0\r\n\r\n"));
    return persist;
  } catch {
    gone = true;
    reader.cancel().catch(() => {});
    return false;
  } finally {
    writing = false;
  }
}
