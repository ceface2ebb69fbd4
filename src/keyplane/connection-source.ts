/**
 * What a key plane's TCP server needs of a connection and of a listener, so that a plane can serve
 * connections it did not accept itself: the node's one TCP 51831 listener (keyplane-listener.ts)
 * accepts every connection, reads its first bytes to tell the planes apart and hands the connection
 * on with those bytes put back in front ({@link PrefixedConn}).
 * @module
 */

/** The part of a TCP connection the key-plane servers use. */
export type KeyplaneConn = Pick<Deno.Conn, "read" | "write" | "close" | "remoteAddr">;

/** Writes all of `data` to `conn` (a write may take only part of it). */
export async function writeAllConn(conn: KeyplaneConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Closes `conn`, ignoring a connection that is already closed. */
export function closeConnQuietly(conn: KeyplaneConn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** Where a key-plane server takes its connections from: a `Deno.Listener`, or one plane's share of one. */
export interface ConnectionSource extends AsyncIterable<KeyplaneConn> {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Stops handing out connections (the iteration ends). */
  close(): void;
}

/** `Deno.listen` on `hostname:port` (TCP) as a {@link ConnectionSource}. Throws like `Deno.listen`. */
export function listenTcp(hostname: string, port: number): ConnectionSource {
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  return {
    addr: listener.addr as Deno.NetAddr,
    close: () => listener.close(),
    [Symbol.asyncIterator]: () => listener[Symbol.asyncIterator](),
  };
}

/** A connection whose first bytes were already read: reads return them first, then the rest of the stream. */
export class PrefixedConn implements KeyplaneConn {
  readonly #conn: KeyplaneConn;
  #prefix: Uint8Array;

  /** `prefix` = the bytes already read from `conn` (not copied). */
  constructor(conn: KeyplaneConn, prefix: Uint8Array) {
    this.#conn = conn;
    this.#prefix = prefix;
  }

  /** The peer's address. */
  get remoteAddr(): Deno.Addr {
    return this.#conn.remoteAddr;
  }

  /** Reads the held bytes first, then from the connection. */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#prefix.length === 0) return this.#conn.read(p);
    const n = Math.min(p.length, this.#prefix.length);
    p.set(this.#prefix.subarray(0, n));
    this.#prefix = this.#prefix.subarray(n);
    return Promise.resolve(n);
  }

  /** Writes to the connection. */
  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  /** Closes the connection. */
  close(): void {
    this.#conn.close();
  }
}
