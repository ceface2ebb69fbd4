/**
 * Packets the send path holds for peers without a usable keypair, until a handshake gives them one
 * (wireguard-go's staged queue): up to {@link MAX_STAGED_PACKETS} per peer slot, the oldest dropped
 * when full, and tied to the slot generation they were routed to, so that a new peer in a reused slot
 * never receives its predecessor's packets. Pure memory; buffers are kept and reused.
 * @module
 */
import { MAX_STAGED_PACKETS } from "../constants.ts";

/** Smallest buffer a staged packet gets (most fit, so a buffer is rarely grown). */
const MIN_STAGED_BUFFER = 2048;

interface Queue {
  /** The peer-slot generation the packets were routed to. */
  generation: number;
  bufs: Uint8Array[];
  lens: Int32Array;
  head: number;
  count: number;
}

/** Per peer slot, a bounded queue of packet copies. */
export class StagedPackets {
  readonly #queues: (Queue | null)[];

  /** Queues for `peerSlots` slots (none allocated until a packet is staged). */
  constructor(peerSlots: number) {
    this.#queues = new Array(peerSlots).fill(null);
  }

  /**
   * Keeps a copy of `src[from, from+len)` for `peer`, routed under slot `generation` (packets of an
   * older generation are forgotten first). Returns true when the queue was full and its oldest packet
   * was dropped to make room.
   */
  stage(peer: number, generation: number, src: Uint8Array, from: number, len: number): boolean {
    let q = this.#queues[peer];
    if (!q) {
      q = { generation, bufs: [], lens: new Int32Array(MAX_STAGED_PACKETS), head: 0, count: 0 };
      this.#queues[peer] = q;
    } else if (q.generation !== generation) { // the slot has a new peer: the old one's packets go
      q.generation = generation;
      q.head = 0;
      q.count = 0;
    }
    let dropped = false;
    if (q.count === MAX_STAGED_PACKETS) { // drop the oldest, like wireguard-go
      q.head = (q.head + 1) % MAX_STAGED_PACKETS;
      q.count--;
      dropped = true;
    }
    const idx = (q.head + q.count) % MAX_STAGED_PACKETS;
    if (!q.bufs[idx] || q.bufs[idx].length < len) {
      q.bufs[idx] = new Uint8Array(Math.max(len, MIN_STAGED_BUFFER));
    }
    q.bufs[idx].set(src.subarray(from, from + len));
    q.lens[idx] = len;
    q.count++;
    return dropped;
  }

  /** Forgets `peer`'s packets unless they were staged for slot `generation` (-1: forget them in any case). */
  keepOnly(peer: number, generation: number): void {
    if (this.#queues[peer] && this.#queues[peer]!.generation !== generation) this.#queues[peer] = null;
  }

  /** Packets staged for `peer`. */
  count(peer: number): number {
    return this.#queues[peer]?.count ?? 0;
  }

  /** Copies `peer`'s oldest packet to `dst[at…]` (it stays queued until {@link shift}); returns its length. */
  peek(peer: number, dst: Uint8Array, at: number): number {
    const q = this.#queues[peer]!;
    const len = q.lens[q.head];
    dst.set(q.bufs[q.head].subarray(0, len), at);
    return len;
  }

  /** Removes `peer`'s oldest packet (after it was sent). */
  shift(peer: number): void {
    const q = this.#queues[peer]!;
    q.head = (q.head + 1) % MAX_STAGED_PACKETS;
    q.count--;
  }
}
