/**
 * The accept loop of a local control listener (the admin API, the UAPI sockets): the part of such a
 * server that an unauthenticated local user can press on, so it never stops and never grows without
 * bound.
 *
 * - At most `maxConnections` connections are open at once. When a new one arrives at the cap, the
 *   oldest connection that is still waiting for a request (idle: nothing asked yet, or a request
 *   still arriving) is closed to make room: a flood of silent or slowly-talking connections cannot
 *   lock out a client that asks at once. When every open connection is busy, the new one is refused
 *   (`onRefused` may tell it why first, within a short bound).
 * - An accept that fails (EMFILE/ENFILE when the process or system is out of file descriptors,
 *   ENOMEM, …) never ends the loop: the oldest idle connection, if any, is closed to give its
 *   descriptor back and accepting resumes on the next turn of the event loop; with none idle it backs off (10 ms doubling
 *   to 1 s, reset by a good accept). The pending connection waits in the kernel's backlog meanwhile.
 * - Refusals, evictions and accept failures are logged at most once per second each.
 * Each connection is served by `serve`, which marks it busy/idle through its {@link ConnectionSlot};
 * the loop closes the connection when `serve` ends.
 * @module
 */
import { LogThrottle } from "./log-throttle.ts";

/** First pause after a failed accept, ms. */
export const ACCEPT_BACKOFF_MIN_MS = 10;
/** Longest pause between accept attempts while accepting keeps failing, ms. */
export const ACCEPT_BACKOFF_MAX_MS = 1000;
/** How long a refused connection is given to take its refusal message, ms. */
const REFUSAL_WRITE_MS = 1000;
/** Connections closed at the cap between two turns of the event loop (see #run). */
const CLOSES_PER_YIELD = 8;
/** Most refusal messages in flight at once (each holds a descriptor); beyond, refusals are silent. */
const MAX_REFUSALS_IN_FLIGHT = 16;

/** What a connection's server tells the loop about it. */
export interface ConnectionSlot {
  /** Marks the connection as waiting for a request (evictable at the cap) or busy serving one. */
  setIdle(idle: boolean): void;
  /** The loop is stopping or evicted this connection. */
  readonly closed: boolean;
}

/** Options of {@link AcceptLoop}. */
export interface AcceptLoopOptions {
  /** What the log lines name, e.g. "admin API" or "UAPI wg0". */
  name: string;
  /** Most connections open at once (≥ 1). */
  maxConnections: number;
  /** Serves one connection until it should be closed. New connections start idle. */
  serve(conn: Deno.Conn, slot: ConnectionSlot): Promise<void>;
  /** Bytes written to a connection refused because every slot is busy (none: closed at once). */
  refusal?: Uint8Array;
  /** Receives the (throttled) log lines. */
  log(message: string): void;
}

/** Counters of what the loop did (for tests and metrics). */
export interface AcceptLoopStats {
  /** Connections accepted and served. */
  accepted: number;
  /** Idle connections closed to make room at the cap. */
  evicted: number;
  /** Connections refused because every slot was busy. */
  refused: number;
  /** Accept calls that failed (and were retried after a pause). */
  acceptErrors: number;
}

interface Entry {
  conn: Deno.Conn;
  idle: boolean;
  closed: boolean;
}

function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch { /* already closed */ }
}

/**
 * Closes `conn` unless the returned function is called within `ms` (a read or write waiting on it
 * then fails); the returned function cancels the timer and says whether it had already fired.
 */
export function connectionDeadline(conn: Deno.Conn, ms: number): () => boolean {
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    closeQuietly(conn);
  }, ms);
  return () => {
    clearTimeout(timer);
    return fired;
  };
}

/** A running accept loop over `listener`; see the module doc. */
export class AcceptLoop {
  readonly #listener: Deno.Listener;
  readonly #opts: AcceptLoopOptions;
  /** Open connections in arrival order (a Map keeps insertion order: the first idle is the oldest). */
  readonly #open = new Map<Deno.Conn, Entry>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #refusing = new Set<Promise<void>>();
  readonly #running: Promise<void>;
  readonly #acceptErrorLog = new LogThrottle();
  readonly #refusedLog = new LogThrottle();
  readonly #evictedLog = new LogThrottle();
  #closed = false;
  #wake: (() => void) | null = null;
  /** What the loop did so far. */
  readonly stats: AcceptLoopStats = { accepted: 0, evicted: 0, refused: 0, acceptErrors: 0 };

  /** Starts accepting on `listener`. */
  constructor(listener: Deno.Listener, opts: AcceptLoopOptions) {
    if (!Number.isInteger(opts.maxConnections) || opts.maxConnections < 1) {
      throw new RangeError(`${opts.name}: maxConnections must be a positive integer`);
    }
    this.#listener = listener;
    this.#opts = opts;
    this.#running = this.#run();
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#open.size;
  }

  /** Stops accepting, closes every connection and waits for their servers to finish. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      closeQuietly(this.#listener);
      this.#wake?.();
      for (const e of this.#open.values()) {
        e.closed = true;
        closeQuietly(e.conn);
      }
    }
    await this.#running;
    await Promise.allSettled([...this.#handlers, ...this.#refusing]);
  }

  #say(throttle: LogThrottle, message: string): void {
    const line = throttle.admit(message, Date.now());
    if (line !== null) this.#opts.log(line);
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }

  async #run(): Promise<void> {
    let backoff = ACCEPT_BACKOFF_MIN_MS;
    let closedSinceYield = 0;
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        this.stats.acceptErrors++;
        // Out of descriptors, most likely: a connection that has not asked anything gives its
        // descriptor back for the waiting one; without one, wait longer each time.
        const freed = this.#evictOldestIdle("to free a descriptor");
        const wait = freed ? 0 : backoff;
        this.#say(
          this.#acceptErrorLog,
          `${this.#opts.name}: accepting a connection failed (${(e as Error).message}); ` +
            `still serving the ${this.#open.size} open, retrying in ${wait} ms`,
        );
        await this.#pause(wait);
        if (!freed) backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      backoff = ACCEPT_BACKOFF_MIN_MS;
      if (this.#closed) {
        closeQuietly(conn);
        return;
      }
      if (this.#open.size >= this.#opts.maxConnections) {
        if (this.#evictOldestIdle()) this.#start(conn);
        else this.#refuse(conn);
        // A closed connection's descriptor is released only when its pending read is cancelled,
        // which happens on a turn of the event loop: take one every few closes, or a flood of
        // connections would pile up closed-but-held descriptors faster than they are freed.
        if (++closedSinceYield >= CLOSES_PER_YIELD) {
          closedSinceYield = 0;
          await this.#pause(0);
        }
        continue;
      }
      this.#start(conn);
    }
  }

  #evictOldestIdle(why = "to make room"): boolean {
    for (const e of this.#open.values()) {
      if (!e.idle || e.closed) continue;
      e.closed = true;
      this.#open.delete(e.conn);
      closeQuietly(e.conn);
      this.stats.evicted++;
      this.#say(
        this.#evictedLog,
        `${this.#opts.name}: ${this.#open.size + 1} connections open (cap ${this.#opts.maxConnections}); ` +
          `closed the oldest one that had not asked anything ${why}`,
      );
      return true;
    }
    return false;
  }

  #refuse(conn: Deno.Conn): void {
    this.stats.refused++;
    this.#say(
      this.#refusedLog,
      `${this.#opts.name}: refused a connection: all ${this.#opts.maxConnections} connections are busy`,
    );
    const message = this.#opts.refusal;
    if (message === undefined || this.#refusing.size >= MAX_REFUSALS_IN_FLIGHT) {
      closeQuietly(conn);
      return;
    }
    const timer = setTimeout(() => closeQuietly(conn), REFUSAL_WRITE_MS);
    const done: Promise<void> = conn.write(message).then(() => {}, () => {}).finally(() => {
      clearTimeout(timer);
      closeQuietly(conn);
      this.#refusing.delete(done);
    });
    this.#refusing.add(done);
  }

  #start(conn: Deno.Conn): void {
    this.stats.accepted++;
    const entry: Entry = { conn, idle: true, closed: false };
    this.#open.set(conn, entry);
    const slot: ConnectionSlot = {
      setIdle: (idle) => entry.idle = idle,
      get closed() {
        return entry.closed;
      },
    };
    let handler: Promise<void>;
    try {
      handler = this.#opts.serve(conn, slot).catch(() => {});
    } catch {
      handler = Promise.resolve();
    }
    const done: Promise<void> = handler.finally(() => {
      if (this.#open.get(conn) === entry) this.#open.delete(conn);
      closeQuietly(conn);
      this.#handlers.delete(done);
    });
    this.#handlers.add(done);
  }
}
