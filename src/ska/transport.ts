/**
 * SKA frames over TCP (port 51831 inside wg0): a server that hands each request frame to a handler
 * together with the address it came from (the wg0 address that identifies the requester), and a
 * client call that sends one frame and reads one reply. One request per connection; anything
 * malformed closes it.
 * @module
 */
import { frameLength, SKA_HEADER_LEN, SkaFrameError } from "./frames.ts";
import {
  closeConnQuietly,
  type ConnectionSource,
  type KeyplaneConn,
  listenTcp,
  writeAllConn,
} from "../keyplane/connection-source.ts";
import { requestOverTcp } from "../keyplane/tcp-request.ts";

/** The SKA TCP port on wg0 addresses (the same port DSKE uses); the one home is `config/ports.ts`. */
export { SKA_PORT } from "../config/ports.ts";
/** How long a connection may take to deliver its request. */
const REQUEST_TIMEOUT_MS = 10_000;

/** A running SKA server. */
export interface SkaServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and closes every connection. */
  close(): void;
}

/** Why a request failed (never holds key material). */
export class SkaTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SkaTransportError";
  }
}

/** Reads exactly one frame from `conn`; null when the peer closed first. Throws SkaFrameError. */
async function readFrame(conn: KeyplaneConn): Promise<Uint8Array | null> {
  const header = new Uint8Array(SKA_HEADER_LEN);
  if (!await readExactly(conn, header)) return null;
  const frame = new Uint8Array(frameLength(header));
  frame.set(header);
  if (!await readExactly(conn, frame.subarray(SKA_HEADER_LEN))) return null;
  return frame;
}

async function readExactly(conn: KeyplaneConn, into: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < into.length) {
    const n = await conn.read(into.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

/**
 * Listens on `hostname:port`; for each connection reads one frame and writes `handler`'s reply (none
 * when it returns null). `from` is the connection's source IP. Listens itself unless `source` hands
 * it the connections (the node's shared key-plane listener). Throws like `Deno.listen`.
 */
export function serveSka(
  hostname: string,
  port: number,
  handler: (frame: Uint8Array, from: string) => Promise<Uint8Array | null> | Uint8Array | null,
  source?: ConnectionSource,
): SkaServer {
  const listener = source ?? listenTcp(hostname, port);
  const conns = new Set<KeyplaneConn>();
  const serve = async (conn: KeyplaneConn) => {
    conns.add(conn);
    const timer = setTimeout(() => closeConnQuietly(conn), REQUEST_TIMEOUT_MS);
    try {
      const frame = await readFrame(conn);
      if (frame === null) return;
      const reply = await handler(frame, (conn.remoteAddr as Deno.NetAddr).hostname);
      if (reply) await writeAllConn(conn, reply);
    } catch {
      // malformed frame, reset or closed by close(): drop the connection
    } finally {
      clearTimeout(timer);
      conns.delete(conn);
      closeConnQuietly(conn);
    }
  };
  (async () => {
    try {
      for await (const conn of listener) void serve(conn);
    } catch { /* listener closed */ }
  })();
  return {
    addr: listener.addr,
    close() {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) closeConnQuietly(c);
      conns.clear();
    },
  };
}

/**
 * Connects to `hostname:port` (from `localAddress` when given), sends `frame` and returns the reply
 * frame. Throws SkaTransportError on refusal, timeout, a closed connection or a malformed reply.
 */
export function skaRequest(
  hostname: string,
  port: number,
  frame: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  return requestOverTcp(hostname, port, timeoutMs, SkaTransportError, async (conn, where) => {
    await writeAllConn(conn, frame);
    let reply: Uint8Array | null;
    try {
      reply = await readFrame(conn);
    } catch (e) {
      if (e instanceof SkaFrameError) throw new SkaTransportError(`${where}: ${e.message}`);
      throw e;
    }
    if (reply === null) throw new SkaTransportError(`${where} closed the connection`);
    return reply;
  });
}
