/**
 * The thin I/O shell around {@link answer}: one UDP socket and one TCP listener on the same address and
 * port (53 on the node's wg0 address when wired; configurable). UDP: one datagram in, at most one out.
 * TCP: RFC 1035 framing (2-byte length before each message), several queries per connection answered
 * in order, at most {@link DEFAULT_MAX_TCP_CONNECTIONS} connections at once (more are closed at once),
 * a connection idle for {@link DEFAULT_TCP_IDLE_MS} is closed. The zone is swapped atomically with
 * {@link DnsServer.setZone} when the map changes. A busy port is a {@link DnsServerError} naming it.
 * @module
 */
import dgram from "node:dgram";
import { answer } from "./answer.ts";
import type { DnsZone } from "./zone.ts";

/** TCP connections served at once; more are closed on accept. */
export const DEFAULT_MAX_TCP_CONNECTIONS = 64;
/** A TCP connection with no complete query for this long is closed (RFC 7766 suggests seconds). */
export const DEFAULT_TCP_IDLE_MS = 10_000;
/** Length prefix of a DNS message over TCP. */
const TCP_LENGTH_BYTES = 2;
/** Read size for TCP connections. */
const TCP_READ_BYTES = 4096;
/** Attempts to find a port free for both UDP and TCP when asked for any port (0). */
const ANY_PORT_ATTEMPTS = 8;

/** Where and how to serve. */
export interface DnsServerOptions {
  /** Address to bind (the node's wg0 address; 127.0.0.1 in tests). */
  hostname: string;
  /** Port for both UDP and TCP; 0 picks a free one (tests). */
  port: number;
  /** The zone to answer from. */
  zone: DnsZone;
  /** TCP connections at once (default {@link DEFAULT_MAX_TCP_CONNECTIONS}). */
  maxTcpConnections?: number;
  /** TCP idle timeout in ms (default {@link DEFAULT_TCP_IDLE_MS}). */
  tcpIdleMs?: number;
}

/** Counters of a running server. */
export interface DnsServerStats {
  /** UDP queries answered. */
  udpAnswered: number;
  /** TCP queries answered. */
  tcpAnswered: number;
  /** Queries dropped (too short, or a response). */
  dropped: number;
  /** TCP connections closed on accept because the limit was reached. */
  tcpRejected: number;
  /** TCP connections closed for idleness. */
  tcpIdleClosed: number;
  /** TCP connections open now. */
  tcpOpen: number;
}

/** The DNS server could not start: one line naming the address, port and fix. */
export class DnsServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DnsServerError";
  }
}

/** A running DNS server. */
export interface DnsServer {
  /** The bound port (UDP and TCP). */
  readonly port: number;
  /** Answers from `zone` from now on. */
  setZone(zone: DnsZone): void;
  /** Counters. */
  stats(): DnsServerStats;
  /** Stops both sockets and closes every TCP connection. */
  close(): Promise<void>;
}

function busy(hostname: string, port: number, proto: string, why: string): DnsServerError {
  return new DnsServerError(
    `DNS cannot listen on ${hostname}:${port}/${proto} (${why}); stop whatever uses the port or set another DNS port`,
  );
}

function bindUdp(hostname: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: hostname.includes(":") ? "udp6" : "udp4" });
    const onError = (e: Error & { code?: string }) => {
      socket.close();
      reject(busy(hostname, port, "udp", e.code ?? e.message));
    };
    socket.once("error", onError);
    socket.bind(port, hostname, () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

function listenTcp(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (e) {
    throw busy(hostname, port, "tcp", (e as Error).name);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** The counters a running server keeps (all but `tcpOpen`, which is the connection set's size). */
type Counters = Omit<DnsServerStats, "tcpOpen">;

/** What the TCP side shares with each connection it serves. */
interface TcpContext {
  /** The zone in force now (swapped by setZone). */
  zone(): DnsZone;
  counters: Counters;
  idleMs: number;
  /** Open connections; a connection leaves it when it ends. */
  connections: Set<Deno.Conn>;
}

/**
 * UDP and TCP bound on the same port. For any port (0), the port UDP got may be taken for TCP: then
 * both are tried again, a few times.
 */
async function bindBoth(
  hostname: string,
  requestedPort: number,
): Promise<{ udp: dgram.Socket; tcp: Deno.TcpListener }> {
  for (let attempt = 0;; attempt++) {
    const udp = await bindUdp(hostname, requestedPort);
    try {
      return { udp, tcp: listenTcp(hostname, udp.address().port) };
    } catch (e) {
      udp.close();
      if (requestedPort !== 0 || attempt + 1 >= ANY_PORT_ATTEMPTS) throw e;
    }
  }
}

/** Answers every datagram on `socket` from the zone in force. */
function serveUdp(socket: dgram.Socket, zone: () => DnsZone, counters: Counters): void {
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    const response = answer(msg, zone(), "udp");
    if (response === null) {
      counters.dropped++;
      return;
    }
    counters.udpAnswered++;
    socket.send(response, rinfo.port, rinfo.address);
  });
  // A send error (e.g. ICMP unreachable reported back) must not stop the server.
  socket.on("error", () => {});
}

/** A DNS message with its TCP length prefix. */
function tcpFrame(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(TCP_LENGTH_BYTES + message.length);
  framed[0] = message.length >> 8;
  framed[1] = message.length & 0xff;
  framed.set(message, TCP_LENGTH_BYTES);
  return framed;
}

/** Serves one TCP connection until it closes, idles out or the server stops. */
async function serveConnection(conn: Deno.Conn, ctx: TcpContext): Promise<void> {
  const { counters, idleMs } = ctx;
  let pending = new Uint8Array(0);
  const chunk = new Uint8Array(TCP_READ_BYTES);
  let idle = setTimeout(closeIdle, idleMs);
  function closeIdle() {
    counters.tcpIdleClosed++;
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  try {
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) return;
      const grown = new Uint8Array(pending.length + n);
      grown.set(pending);
      grown.set(chunk.subarray(0, n), pending.length);
      pending = grown;
      while (pending.length >= TCP_LENGTH_BYTES) {
        const length = (pending[0] << 8) | pending[1];
        if (pending.length < TCP_LENGTH_BYTES + length) break;
        const message = pending.slice(TCP_LENGTH_BYTES, TCP_LENGTH_BYTES + length);
        pending = pending.slice(TCP_LENGTH_BYTES + length);
        clearTimeout(idle);
        idle = setTimeout(closeIdle, idleMs);
        const response = answer(message, ctx.zone(), "tcp");
        if (response === null) {
          counters.dropped++;
          continue;
        }
        await writeAll(conn, tcpFrame(response));
        counters.tcpAnswered++;
      }
    }
  } catch {
    // reset, closed for idleness or at shutdown: nothing to answer
  } finally {
    clearTimeout(idle);
    ctx.connections.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * Accepts TCP connections until the listener closes; beyond `maxConnections` open ones a new connection
 * is closed at once. Each served connection's promise is in `serving` while it runs.
 */
async function acceptTcp(
  listener: Deno.TcpListener,
  ctx: TcpContext,
  maxConnections: number,
  serving: Set<Promise<void>>,
): Promise<void> {
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      return; // listener closed
    }
    if (ctx.connections.size >= maxConnections) {
      ctx.counters.tcpRejected++;
      conn.close();
      continue;
    }
    ctx.connections.add(conn);
    const p = serveConnection(conn, ctx).finally(() => serving.delete(p));
    serving.add(p);
  }
}

/** Starts serving `opts.zone` on UDP and TCP. Throws DnsServerError when the port is taken. */
export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  let zone = opts.zone;
  const counters: Counters = { udpAnswered: 0, tcpAnswered: 0, dropped: 0, tcpRejected: 0, tcpIdleClosed: 0 };
  const { udp, tcp } = await bindBoth(opts.hostname, opts.port);
  const port = udp.address().port;
  serveUdp(udp, () => zone, counters);
  const connections = new Set<Deno.Conn>();
  const ctx: TcpContext = {
    zone: () => zone,
    counters,
    idleMs: opts.tcpIdleMs ?? DEFAULT_TCP_IDLE_MS,
    connections,
  };
  const serving = new Set<Promise<void>>();
  const acceptLoop = acceptTcp(tcp, ctx, opts.maxTcpConnections ?? DEFAULT_MAX_TCP_CONNECTIONS, serving);

  return {
    port,
    setZone(next: DnsZone) {
      zone = next;
    },
    stats() {
      return { ...counters, tcpOpen: connections.size };
    },
    async close() {
      tcp.close();
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await acceptLoop;
      await Promise.all([...serving]);
    },
  };
}
