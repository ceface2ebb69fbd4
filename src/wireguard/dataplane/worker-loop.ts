/**
 * The loop of a data-plane worker that serves several devices (docs/offload.md, "One worker pair"):
 * `twofold up` runs wg0's and aes0's send paths in one encrypt worker and their receive paths in one
 * decrypt worker, so an aes0 datagram crosses to wg0 by a function call instead of a thread wake-up,
 * and the node carries two worker isolates instead of four.
 *
 * Each device's path (encrypt or decrypt) is a {@link DevicePath}: it names the fds it waits on, is
 * told what poll reported, and leaves when its device's stop flag is set. The loop polls every path's
 * fds plus the worker's control eventfd in one `poll`. New devices arrive as messages; since the loop
 * is synchronous, the owner counts the messages it posts in shared memory and signals the control fd,
 * and the loop returns to the event loop whenever messages are pending (see worker-pair.ts).
 * @module
 */
/// <reference lib="deno.worker" />
import { PollSet } from "../../../ffi/poll.ts";
import { drainEventFd } from "../../../ffi/eventfd.ts";
import { POLLIN } from "../../../ffi/libc.ts";
import {
  WORKER_ITSELF,
  type WorkerEvent,
  type WorkerInit,
  type WorkerMessage,
  type WorkerReport,
} from "./worker-protocol.ts";

/** How long poll waits before the paths re-sync their view of the shared state (ms). */
export const IDLE_POLL_MS = 100;
/** Poll entry of the worker's control eventfd (the paths' entries follow it). */
const CONTROL_ENTRY = 0;

/** Which end of the aes0 → wg0 hand-off a path is, and of which channel. */
export interface HandoffEnd {
  /** The channel's id (handoff-channel.ts): both ends of one channel carry the same. */
  channel: number;
  /** wg0 is the outer end, aes0 the inner. */
  role: "outer" | "inner";
}

/** One device's send or receive path, as the worker loop drives it. */
export interface DevicePath {
  /** Poll entries this path uses. */
  readonly pollEntries: number;
  /** This path's end of the hand-off, or null. */
  readonly handoffEnd: HandoffEnd | null;
  /** True once the device asked its data plane to stop. */
  stopRequested(): boolean;
  /** Writes this path's poll entries from `at` (before every poll). */
  arm(poll: PollSet, at: number): void;
  /**
   * Handles what poll reported in this path's entries (`ready`: poll returned > 0; false on a
   * timeout, when the path does its periodic work). Returns false when the path ended (its TUN is gone).
   */
  service(poll: PollSet, at: number, ready: boolean, now: number): boolean;
  /**
   * Pairs this path with the other end of its hand-off in the same worker (null: none, or it left):
   * the two then call each other instead of waking each other through the channel's eventfds.
   */
  pairWith(other: DevicePath | null): void;
  /** Sends what is left and frees native resources (the path is leaving). */
  finish(): void;
}

/** Builds a device's path from its init message; `post` reports its rare events to the owner. */
export type PathFactory = (init: WorkerInit, post: (event: WorkerEvent) => void) => DevicePath;

interface Hosted {
  device: number;
  path: DevicePath;
  at: number;
}

/** The worker's set of paths and its poll loop. */
class WorkerLoop {
  readonly #makePath: PathFactory;
  /** Per worker, the messages its owner posted (shared with the owner). */
  #posted: Int32Array | null = null;
  #index = 0;
  /** Set by the `close` message: every path was let go and the loop never runs again. */
  #closed = false;
  #controlFd = -1;
  /** Messages handled (compared with what the owner posted, in shared memory). */
  #applied = 0;
  #hosted: Hosted[] = [];
  #poll = new PollSet(1);

  constructor(makePath: PathFactory) {
    this.#makePath = makePath;
  }

  /** Handles one message from the owner, then (re)enters the loop unless more messages are on the way. */
  receive(m: WorkerMessage): void {
    if (m.t === "host") {
      this.#posted = new Int32Array(m.posted);
      this.#index = m.index;
      this.#controlFd = m.controlFd;
    } else if (m.t === "attach") this.#attach(m.device, m.init);
    else this.#close();
    this.#applied++;
    // #run is synchronous, so a message is only ever handled while no loop runs.
    if (!this.#messagesPending() && !this.#closed) this.#run();
  }

  /** Lets every path go (its device was stopped or is dropped) and answers the owner. */
  #close(): void {
    this.#closed = true;
    for (const h of this.#hosted) {
      try {
        h.path.finish();
      } catch { /* the worker ends either way */ }
    }
    this.#hosted = [];
    self.postMessage({ device: WORKER_ITSELF, event: { t: "stopped" } } satisfies WorkerReport);
    self.close(); // the worker ends itself: its owner's terminate() is then only a formality
  }

  #attach(device: number, init: WorkerInit): void {
    try {
      const path = this.#makePath(init, (event) => post(device, event));
      this.#hosted.push({ device, path, at: 0 });
      this.#layout();
    } catch (err) {
      post(device, { t: "error", message: describe(err) });
    }
  }

  #messagesPending(): boolean {
    return this.#posted !== null && Atomics.load(this.#posted, this.#index) !== this.#applied;
  }

  /** Poll entries: the control fd, then each path's; and the hand-off pairs among the paths. */
  #layout(): void {
    let at = CONTROL_ENTRY + 1;
    for (const h of this.#hosted) {
      h.at = at;
      at += h.path.pollEntries;
    }
    if (this.#poll.capacity < at) this.#poll = new PollSet(at);
    this.#poll.setCount(at);
    for (const h of this.#hosted) {
      const end = h.path.handoffEnd;
      const other = end &&
        this.#hosted.find((o) =>
          o.path.handoffEnd?.channel === end.channel && o.path.handoffEnd.role !== end.role
        );
      h.path.pairWith(other?.path ?? null);
    }
  }

  /** Polls and serves the paths until a message is pending or no path is left. */
  #run(): void {
    while (this.#hosted.length > 0 && !this.#messagesPending()) this.#turn();
  }

  /** One poll and what follows it (allocates nothing unless a path leaves). */
  #turn(): void {
    const hosted = this.#hosted;
    for (let i = hosted.length - 1; i >= 0; i--) { // a device that asked to stop leaves first
      if (hosted[i].path.stopRequested()) this.#leave(hosted[i]);
    }
    if (hosted.length === 0) return;
    const poll = this.#poll;
    poll.set(CONTROL_ENTRY, this.#controlFd, POLLIN);
    let ended: [Hosted, WorkerEvent][] | null = null;
    for (const h of hosted) {
      try {
        h.path.arm(poll, h.at);
      } catch (err) {
        (ended ??= []).push([h, { t: "error", message: describe(err) }]);
      }
    }
    if (ended === null) {
      const ready = poll.wait(IDLE_POLL_MS) > 0;
      if (poll.revents(CONTROL_ENTRY) & POLLIN) drainEventFd(this.#controlFd);
      const now = Date.now();
      for (const h of hosted) {
        try {
          if (!h.path.service(poll, h.at, ready, now)) (ended ??= []).push([h, { t: "tun-closed" }]);
        } catch (err) {
          (ended ??= []).push([h, { t: "error", message: describe(err) }]);
        }
      }
    }
    if (ended === null) return;
    for (const [h, why] of ended) this.#leave(h, why); // only after every path read its poll entries
  }

  #leave(h: Hosted, why?: WorkerEvent): void {
    const i = this.#hosted.indexOf(h);
    if (i < 0) return;
    this.#hosted.splice(i, 1);
    try {
      h.path.finish();
    } catch { /* the path is gone either way; its device hears why below */ }
    if (why) post(h.device, why);
    post(h.device, { t: "stopped" });
    this.#layout();
  }
}

function post(device: number, event: WorkerEvent): void {
  const report: WorkerReport = { device, event };
  self.postMessage(report);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Installs the worker's entry: its messages build paths from `makePath` and drive their loop. */
export function hostDevicePaths(makePath: PathFactory): void {
  const loop = new WorkerLoop(makePath);
  self.onmessage = (e: MessageEvent<WorkerMessage>) => loop.receive(e.data);
}
