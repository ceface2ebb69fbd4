/**
 * One request over a fresh TCP connection, as both key planes' clients make it (a DSKE frame to a hub
 * or a peer node, an SKA frame to the broker or the peer): connect, run the exchange, close, all within
 * a deadline that also closes the connection. Failures come back as the caller's own error type with
 * the address in the message and never a secret: a refused connection, the deadline, or an unexpected
 * error (named by its class only).
 * @module
 */
import { closeConnQuietly, type KeyplaneConn } from "./connection-source.ts";

/** The caller's error type: the exchange throws it for its own failures, which pass through unchanged. */
export type RequestErrorClass = new (message: string) => Error;

/**
 * Connects to `hostname:port`, runs `exchange` on the connection and returns its result, closing the
 * connection in every case; rejects with `errorClass` when the connection is refused, `timeoutMs`
 * passes, or `exchange` fails with anything but an `errorClass`.
 */
export async function requestOverTcp<T>(
  hostname: string,
  port: number,
  timeoutMs: number,
  errorClass: RequestErrorClass,
  exchange: (conn: KeyplaneConn, where: string) => Promise<T>,
): Promise<T> {
  const where = `${hostname}:${port}`;
  let conn: KeyplaneConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (conn) closeConnQuietly(conn);
      reject(new errorClass(`${where} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const work = (async () => {
    try {
      conn = await Deno.connect({ hostname, port, transport: "tcp" });
    } catch (e) {
      throw new errorClass(`cannot connect to ${where}: ${(e as Error).name}`);
    }
    try {
      return await exchange(conn, where);
    } catch (e) {
      if (e instanceof errorClass) throw e;
      throw new errorClass(`${where}: ${(e as Error).name}`);
    } finally {
      closeConnQuietly(conn);
    }
  })();
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}
