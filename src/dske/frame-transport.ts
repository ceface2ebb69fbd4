/**
 * DSKE frames over TCP (port 51831, inside wg0): a server loop that answers each request frame, and a
 * client call that sends one frame and reads one reply. Frames are delimited by their length field
 * (`FrameReader`); anything malformed closes the connection.
 * @module
 */
import { FrameReader } from "./frame-reader.ts";
import {
  closeConnQuietly,
  type ConnectionSource,
  type KeyplaneConn,
  listenTcp,
  writeAllConn,
} from "../keyplane/connection-source.ts";
import { requestOverTcp } from "../keyplane/tcp-request.ts";

/** TCP port of the DSKE service; the one home is `config/ports.ts`. */
export { DSKE_PORT } from "../config/ports.ts";

/** What a handler returns for a request: a reply, nothing (keep reading), or close the connection. */
export type FrameReply = Uint8Array | null | "close";

/** A running frame server. */
export interface FrameServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Stops accepting and closes every connection. */
  close(): void;
}

/** Per-connection limits. */
const IDLE_TIMEOUT_MS = 15_000;

/**
 * Listens on `hostname:port` and answers every frame with `handler`, which also gets the sender's
 * address (so a handler can accept a frame only from the address it must come from). Frames of one
 * connection are handled in order. A malformed stream (bad magic or version, oversized frame) closes
 * the connection and is reported to `onMalformed`. Listens itself unless `source` hands it the
 * connections (the node's shared key-plane listener). Throws like `Deno.listen` (e.g. AddrInUse,
 * AddrNotAvailable).
 */
export function serveFrames(
  hostname: string,
  port: number,
  handler: (frame: Uint8Array, remote: Deno.NetAddr) => FrameReply | Promise<FrameReply>,
  onMalformed?: (remote: Deno.NetAddr, why: string) => void,
  source?: ConnectionSource,
): FrameServer {
  const listener = source ?? listenTcp(hostname, port);
  const conns = new Set<KeyplaneConn>();
  let closed = false;
  const serveConn = async (conn: KeyplaneConn) => {
    conns.add(conn);
    const reader = new FrameReader();
    const buf = new Uint8Array(8192);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => closeConnQuietly(conn), IDLE_TIMEOUT_MS);
    };
    try {
      arm();
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        arm();
        let frames: Uint8Array[];
        try {
          frames = reader.push(buf.subarray(0, n));
        } catch (e) {
          onMalformed?.(conn.remoteAddr as Deno.NetAddr, (e as Error).message);
          break; // malformed stream: close
        }
        let stop = false;
        for (const frame of frames) {
          const reply = await handler(frame, conn.remoteAddr as Deno.NetAddr);
          if (reply === "close") {
            stop = true;
            break;
          }
          if (reply) await writeAllConn(conn, reply);
        }
        if (stop) break;
      }
    } catch {
      // connection reset or closed by close(): nothing to do
    } finally {
      clearTimeout(idle);
      conns.delete(conn);
      closeConnQuietly(conn);
    }
  };
  (async () => {
    try {
      for await (const conn of listener) {
        if (closed) {
          closeConnQuietly(conn);
          break;
        }
        void serveConn(conn);
      }
    } catch {
      // listener closed
    }
  })();
  return {
    addr: listener.addr,
    close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) closeConnQuietly(c);
      conns.clear();
    },
  };
}

/** Why a request failed (no secrets in the message). */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransportError";
  }
}

/**
 * Connects to `hostname:port`, sends `frame` and returns the first complete reply frame; `expectReply:
 * false` only sends. Throws TransportError on refusal, timeout, a closed connection or a malformed reply.
 */
export function requestFrame(
  hostname: string,
  port: number,
  frame: Uint8Array,
  timeoutMs: number,
  expectReply = true,
): Promise<Uint8Array | null> {
  return requestOverTcp(hostname, port, timeoutMs, TransportError, async (conn, where) => {
    await writeAllConn(conn, frame);
    if (!expectReply) return null;
    const reader = new FrameReader();
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) throw new TransportError(`${where} closed the connection`);
      let frames: Uint8Array[];
      try {
        frames = reader.push(buf.subarray(0, n));
      } catch {
        throw new TransportError(`${where} sent a malformed frame`);
      }
      if (frames.length > 0) return frames[0];
    }
  });
}
