import assert from "node:assert/strict";
import {
  type ConnectionSource,
  type KeyplaneConn,
  PrefixedConn,
} from "../../src/keyplane/connection-source.ts";
import { KeyplaneListener, planeOf } from "../../src/keyplane/keyplane-listener.ts";
import { decodeSkaFrame, encodeSkaFrame, SkaType } from "../../src/ska/frames.ts";
import { serveSka } from "../../src/ska/transport.ts";
import { serveFrames } from "../../src/dske/frame-transport.ts";
import { encodePeerFrame, FRAME_MAGIC, FRAME_VERSION, FrameType } from "../../src/dske/frames.ts";

const SYNC_KEY = new Uint8Array(32).fill(5);
function dskeSync(): Uint8Array {
  return encodePeerFrame({ type: FrameType.KEY_SYNC, timeMs: 1, epochs: [3] }, SYNC_KEY);
}

/** An in-memory connection: reads return the scripted chunks, then end; writes are recorded. */
class MemoryConn implements KeyplaneConn {
  readonly written: Uint8Array[] = [];
  closed = false;
  readonly #chunks: Uint8Array[];
  readonly remoteAddr: Deno.NetAddr;
  #waiters: (() => void)[] = [];

  constructor(from: string, chunks: Uint8Array[], readonly keepOpen = false) {
    this.remoteAddr = { transport: "tcp", hostname: from, port: 40000 };
    this.#chunks = [...chunks];
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0 && this.keepOpen && !this.closed) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    if (this.closed) return null;
    const c = this.#chunks.shift();
    if (!c) return null;
    const n = Math.min(p.length, c.length);
    p.set(c.subarray(0, n));
    if (n < c.length) this.#chunks.unshift(c.subarray(n));
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    this.written.push(p.slice());
    return Promise.resolve(p.length);
  }

  close(): void {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** A listener whose connections the test pushes. */
class MemorySource implements ConnectionSource {
  readonly addr: Deno.NetAddr = { transport: "tcp", hostname: "100.64.0.1", port: 51831 };
  readonly #queue: KeyplaneConn[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  push(c: KeyplaneConn): void {
    this.#queue.push(c);
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<KeyplaneConn> {
    while (!this.#closed) {
      const c = this.#queue.shift();
      if (c) {
        yield c;
        continue;
      }
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

function skaOffer(epoch: number): Uint8Array {
  return encodeSkaFrame({ type: SkaType.DH_OFFER, epoch, ephemeral: new Uint8Array(32).fill(7) });
}

Deno.test("planeOf: SKA and DSKE frames by their magic; anything else and short prefixes are nobody's", () => {
  assert.equal(planeOf(skaOffer(1)), "ska");
  assert.equal(planeOf(dskeSync()), "dske");
  assert.equal(planeOf(Uint8Array.of(FRAME_MAGIC >> 8, FRAME_MAGIC & 0xff)), "dske");
  assert.equal(planeOf(Uint8Array.of(0x16, 0x03)), null); // a TLS record
  assert.equal(planeOf(Uint8Array.of(0x53)), null);
  assert.equal(planeOf(new TextEncoder().encode("GET / HTTP/1.1")), null);
});

Deno.test("PrefixedConn: the bytes read to route come back first, then the rest, across small reads", async () => {
  const conn = new MemoryConn("100.64.0.2", [Uint8Array.of(3, 4, 5)]);
  const p = new PrefixedConn(conn, Uint8Array.of(1, 2));
  const got: number[] = [];
  const buf = new Uint8Array(1);
  for (;;) {
    const n = await p.read(buf);
    if (n === null) break;
    got.push(...buf.subarray(0, n));
  }
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
});

Deno.test("KeyplaneListener: each connection reaches its plane's server whole, with its sender address", async () => {
  const source = new MemorySource();
  const refused: string[] = [];
  const listener = new KeyplaneListener(source, {
    onRefused: (from, why) => refused.push(`${from}: ${why}`),
  });
  const skaSeen: { epoch: number; from: string }[] = [];
  const dskeSeen: { len: number; from: string }[] = [];
  const ska = serveSka("unused", 0, (frame, from) => {
    const m = decodeSkaFrame(frame);
    skaSeen.push({ epoch: (m as { epoch: number }).epoch, from });
    return encodeSkaFrame({ type: SkaType.DH_ANSWER, status: 0, epoch: 9, ephemeral: new Uint8Array(32) });
  }, listener.source("ska"));
  const dske = serveFrames(
    "unused",
    0,
    (frame, remote) => {
      dskeSeen.push({ len: frame.length, from: remote.hostname });
      return "close";
    },
    undefined,
    listener.source("dske"),
  );
  try {
    // The SKA frame arrives one byte at a time: the magic is split over two reads.
    const offer = skaOffer(42);
    const skaConn = new MemoryConn("100.64.0.2", [...offer].map((b) => Uint8Array.of(b)));
    const dskeFrame = dskeSync();
    const dskeConn = new MemoryConn("100.64.0.3", [dskeFrame.subarray(0, 1), dskeFrame.subarray(1)], true);
    source.push(skaConn);
    source.push(dskeConn);
    await settle();
    assert.deepEqual(skaSeen, [{ epoch: 42, from: "100.64.0.2" }]);
    assert.equal(skaConn.written.length, 1);
    assert.equal(decodeSkaFrame(skaConn.written[0]).type, SkaType.DH_ANSWER);
    assert.deepEqual(dskeSeen, [{ len: dskeFrame.length, from: "100.64.0.3" }]);
    assert.deepEqual(listener.stats, { ska: 1, dske: 1, refused: 0 });
    assert.deepEqual(refused, []);
  } finally {
    ska.close();
    dske.close();
    listener.close();
  }
});

Deno.test("KeyplaneListener: unknown magic, a plane that does not run and an empty connection are closed and reported", async () => {
  const source = new MemorySource();
  const refused: string[] = [];
  const listener = new KeyplaneListener(source, {
    onRefused: (from, why) => refused.push(`${from}: ${why}`),
  });
  const seen: string[] = [];
  const ska = serveSka("unused", 0, () => {
    seen.push("ska");
    return null;
  }, listener.source("ska"));
  try {
    const garbage = new MemoryConn("100.64.0.4", [new TextEncoder().encode("GET / HTTP/1.1\r\n")], true);
    const dskeHere = new MemoryConn("100.64.0.5", [
      Uint8Array.of(FRAME_MAGIC >> 8, FRAME_MAGIC & 0xff, FRAME_VERSION),
    ], true);
    const empty = new MemoryConn("100.64.0.6", []);
    source.push(garbage);
    source.push(dskeHere);
    source.push(empty);
    await settle();
    assert.deepEqual(seen, []);
    assert.ok(garbage.closed && dskeHere.closed && empty.closed);
    assert.deepEqual(listener.stats, { ska: 0, dske: 0, refused: 3 });
    assert.deepEqual(refused.sort(), [
      "100.64.0.4: not a key-plane frame (unknown magic)",
      "100.64.0.5: dske frame, but dske does not run on this node",
      "100.64.0.6: closed before sending a frame",
    ]);
    assert.throws(() => listener.source("ska"), /already taken/);
  } finally {
    ska.close();
    listener.close();
  }
});

Deno.test("KeyplaneListener: close closes a connection still waiting to send its first bytes", async () => {
  const source = new MemorySource();
  const listener = new KeyplaneListener(source);
  listener.source("ska");
  const silent = new MemoryConn("100.64.0.7", [], true);
  source.push(silent);
  await settle();
  assert.equal(silent.closed, false);
  listener.close();
  assert.equal(silent.closed, true);
});
