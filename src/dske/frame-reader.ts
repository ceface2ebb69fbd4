/**
 * Splits the byte stream of a DSKE TCP connection (docs/design.md §3.4) into frames.
 *
 * Only the header is checked here: magic, version and a length in HEADER_LEN..MAX_FRAME_LEN. Each check
 * runs as soon as its bytes arrive, so garbage is rejected after its first wrong byte and an oversize
 * length before any of the body is buffered. Everything else (type, exact sizes, tag) is the job of
 * `peekHubFrame`/`openHubFrame` and `decodePeerFrame`.
 * @module
 */

import {
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameError,
  HEADER_LEN,
  MAX_FRAME_LEN,
  PEER_FRAME_VERSION,
} from "./frames.ts";

/**
 * Accumulates TCP stream bytes and returns complete frames. The only buffer is one fixed
 * MAX_FRAME_LEN-byte array holding the incomplete frame; chunks are consumed in place. After a
 * FrameError the stream is out of sync: the caller closes the connection, and any further `push` throws
 * the same error.
 */
export class FrameReader {
  readonly #partial = new Uint8Array(MAX_FRAME_LEN);
  #filled = 0;
  /** Total length of the frame being assembled, known once its header is complete (0 before). */
  #frameLength = 0;
  #failure: FrameError | null = null;

  /** Adds `chunk` and returns the frames it completed, each in its own fresh buffer. Throws FrameError. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failure !== null) throw this.#failure;
    try {
      return this.#consume(chunk);
    } catch (e) {
      if (e instanceof FrameError) {
        this.#failure = e;
        this.#partial.fill(0);
      }
      throw e;
    }
  }

  /** Bytes of an incomplete frame currently held (at most MAX_FRAME_LEN − 1). */
  get buffered(): number {
    return this.#filled;
  }

  #consume(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      const target = this.#filled < HEADER_LEN ? HEADER_LEN : this.#frameLength;
      const take = Math.min(target - this.#filled, chunk.length - pos);
      const start = this.#filled;
      this.#partial.set(chunk.subarray(pos, pos + take), start);
      this.#filled += take;
      pos += take;
      if (start < HEADER_LEN) this.#checkHeaderPrefix(start);
      if (this.#filled === this.#frameLength) {
        frames.push(this.#partial.slice(0, this.#frameLength));
        this.#filled = 0;
        this.#frameLength = 0;
      }
    }
    return frames;
  }

  /** Checks the header bytes that arrived since `checkedUpTo`, as far as they go. */
  #checkHeaderPrefix(checkedUpTo: number): void {
    const p = this.#partial;
    const have = this.#filled;
    if (checkedUpTo < 1 && have >= 1 && p[0] !== FRAME_MAGIC >> 8) throw new FrameError("bad-magic");
    if (checkedUpTo < 2 && have >= 2 && p[1] !== (FRAME_MAGIC & 0xff)) throw new FrameError("bad-magic");
    if (checkedUpTo < 3 && have >= 3 && p[2] !== FRAME_VERSION && p[2] !== PEER_FRAME_VERSION) {
      throw new FrameError("bad-version");
    }
    if (have < HEADER_LEN) return;
    const length = ((p[4] << 24) >>> 0) + (p[5] << 16) + (p[6] << 8) + p[7];
    if (length > MAX_FRAME_LEN) throw new FrameError("too-long");
    if (length < HEADER_LEN) throw new FrameError("bad-length", "length smaller than the header");
    this.#frameLength = length;
  }
}
