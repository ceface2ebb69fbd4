/**
 * The node's one TCP 51831 listener on its wg0 address, shared by the two key planes: every
 * connection is handed to SKA or DSKE by its first two bytes, the frame magic ("SK" = 0x53 0x4b for
 * SKA frames, src/ska/frames.ts; "DK" = 0x44 0x4b for DSKE frames, src/dske/frame-types.ts). Each
 * plane's server takes its connections from {@link KeyplaneListener.source} instead of listening
 * itself; it reads the frame from the start, magic included ({@link PrefixedConn}). A connection with
 * another magic, for a plane that is not running, or that sends nothing within a bound is closed and
 * reported (no bytes of it are logged).
 * @module
 */
import { FRAME_MAGIC } from "../dske/frame-types.ts";
import { SKA_MAGIC } from "../ska/frames.ts";
import {
  closeConnQuietly,
  type ConnectionSource,
  type KeyplaneConn,
  PrefixedConn,
} from "./connection-source.ts";

/** A key plane served on TCP 51831. */
export type KeyPlaneName = "ska" | "dske";

/** Bytes that tell the planes apart: the frame magic (u16, big-endian) both frame formats start with. */
export const PLANE_MAGIC_LEN = 2;
/** How long a connection may take to send its magic before it is closed. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

const MAGIC_OF: Record<KeyPlaneName, number> = { ska: SKA_MAGIC, dske: FRAME_MAGIC };

/** The plane whose frames start with `first` (at least {@link PLANE_MAGIC_LEN} bytes), or null. */
export function planeOf(first: Uint8Array): KeyPlaneName | null {
  if (first.length < PLANE_MAGIC_LEN) return null;
  const magic = (first[0] << 8) | first[1];
  for (const plane of Object.keys(MAGIC_OF) as KeyPlaneName[]) if (MAGIC_OF[plane] === magic) return plane;
  return null;
}

/** Options of {@link KeyplaneListener}. */
export interface KeyplaneListenerOptions {
  /** A connection was closed without being handed on: `from` = its source address, `why` in words. */
  onRefused?(from: string, why: string): void;
  /** Default {@link FIRST_BYTES_TIMEOUT_MS}. */
  firstBytesTimeoutMs?: number;
}

/** One plane's share of the listener: the connections whose magic is that plane's, in arrival order. */
class PlaneSource implements ConnectionSource {
  readonly addr: Deno.NetAddr;
  readonly #queue: KeyplaneConn[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(addr: Deno.NetAddr) {
    this.addr = addr;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(conn: KeyplaneConn): void {
    this.#queue.push(conn);
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#queue.splice(0)) closeConnQuietly(c);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<KeyplaneConn> {
    while (!this.#closed) {
      const next = this.#queue.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }
}

/** The shared listener: accepts from `source` and routes each connection to its plane. */
export class KeyplaneListener {
  readonly #source: ConnectionSource;
  readonly #opts: KeyplaneListenerOptions;
  readonly #planes = new Map<KeyPlaneName, PlaneSource>();
  readonly #sniffing = new Set<KeyplaneConn>();
  #closed = false;
  /** Connections handed to each plane, and closed without being handed on. */
  readonly stats = { ska: 0, dske: 0, refused: 0 };

  /** Starts accepting from `source` (e.g. {@link listenTcp} on the wg0 address, port 51831). */
  constructor(source: ConnectionSource, opts: KeyplaneListenerOptions = {}) {
    this.#source = source;
    this.#opts = opts;
    void this.#run();
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#source.addr;
  }

  /** The connection source of `plane` (once per plane); closing it stops routing to that plane. */
  source(plane: KeyPlaneName): ConnectionSource {
    if (this.#planes.has(plane)) throw new Error(`the ${plane} connection source is already taken`);
    const s = new PlaneSource(this.#source.addr);
    this.#planes.set(plane, s);
    return s;
  }

  /** Stops accepting and closes the planes' sources and every connection not yet handed on. */
  close(): void {
    this.#closed = true;
    try {
      this.#source.close();
    } catch { /* already closed */ }
    for (const p of this.#planes.values()) p.close();
    for (const c of this.#sniffing) closeConnQuietly(c);
    this.#sniffing.clear();
  }

  async #run(): Promise<void> {
    try {
      for await (const conn of this.#source) {
        if (this.#closed) {
          closeConnQuietly(conn);
          break;
        }
        void this.#route(conn);
      }
    } catch {
      // listener closed
    }
  }

  async #route(conn: KeyplaneConn): Promise<void> {
    const from = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#sniffing.add(conn);
    const timer = setTimeout(
      () => closeConnQuietly(conn),
      this.#opts.firstBytesTimeoutMs ?? FIRST_BYTES_TIMEOUT_MS,
    );
    let first: Uint8Array | null;
    try {
      first = await readPrefix(conn);
    } catch {
      first = null;
    } finally {
      clearTimeout(timer);
      this.#sniffing.delete(conn);
    }
    if (first === null) return this.#refuse(conn, from, "closed before sending a frame");
    const plane = planeOf(first);
    if (plane === null) return this.#refuse(conn, from, "not a key-plane frame (unknown magic)");
    const target = this.#planes.get(plane);
    if (!target || target.closed || this.#closed) {
      return this.#refuse(conn, from, `${plane} frame, but ${plane} does not run on this node`);
    }
    this.stats[plane]++;
    target.push(new PrefixedConn(conn, first));
  }

  #refuse(conn: KeyplaneConn, from: string, why: string): void {
    this.stats.refused++;
    closeConnQuietly(conn);
    if (!this.#closed) this.#opts.onRefused?.(from, why);
  }
}

/** Reads the first {@link PLANE_MAGIC_LEN} bytes; null when the stream ends first. */
async function readPrefix(conn: KeyplaneConn): Promise<Uint8Array | null> {
  const first = new Uint8Array(PLANE_MAGIC_LEN);
  let off = 0;
  while (off < first.length) {
    const n = await conn.read(first.subarray(off));
    if (n === null) return null;
    off += n;
  }
  return first;
}
