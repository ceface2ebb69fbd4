/**
 * One side of a TCP bulk transfer for offload_transfer_test.ts, run inside a namespace; prints one
 * JSON line `{ "bytes": n, "sha256": hex }` when done.
 *
 * - `sink HOST PORT`: accepts one connection, reads it to the end, hashes what arrived.
 * - `source HOST PORT BYTES SEED`: connects and writes BYTES of a stream derived from SEED (pseudo-random,
 *   so a reordered, lost or corrupted segment changes the hash), hashing what it wrote.
 */
import { createHash } from "node:crypto";

/** Bytes per write: large, so the sender's TCP stack builds super-packets. */
const CHUNK = 1 << 20;

/** Fills `buf` with a xorshift32 stream continuing from `state`; returns the next state. */
function fill(buf: Uint8Array, state: number): number {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = state >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return x;
}

async function sink(host: string, port: number): Promise<void> {
  const listener = Deno.listen({ hostname: host, port });
  console.log(JSON.stringify({ listening: true }));
  const conn = await listener.accept();
  listener.close();
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK);
  let bytes = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    bytes += n;
  }
  conn.close();
  console.log(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
}

async function source(host: string, port: number, total: number, seed: number): Promise<void> {
  const conn = await Deno.connect({ hostname: host, port });
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK);
  let state = seed;
  let bytes = 0;
  while (bytes < total) {
    state = fill(buf, state);
    const chunk = buf.subarray(0, Math.min(CHUNK, total - bytes));
    hash.update(chunk);
    for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
    bytes += chunk.length;
  }
  await conn.closeWrite();
  // Wait for the sink to close: everything written has then been read.
  await conn.read(new Uint8Array(1));
  conn.close();
  console.log(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
}

const [mode, host, port, total, seed] = Deno.args;
if (mode === "sink") await sink(host, Number(port));
else if (mode === "source") await source(host, Number(port), Number(total), Number(seed));
else throw new Error("usage: sink HOST PORT | source HOST PORT BYTES SEED");
