/**
 * The data plane's two worker threads (docs/offload.md, "One worker pair"): one encrypt worker (the
 * send paths: TUN → seal → UDP) and one decrypt worker (the receive paths: UDP → open → TUN), each
 * serving every device attached to the pair. `twofold up` shares one pair between wg0 and aes0 (two
 * isolates fewer, and the aes0 → wg0 hand-off becomes a call within one thread); a device started
 * on its own (`twofold wg`, hubs, tests) gets a pair of its own.
 *
 * The workers run synchronous poll loops and read messages only between turns: to attach a device
 * the owner counts the message in shared memory, posts it and signals the worker's control eventfd;
 * the worker's loop sees the count move and returns to its event loop to take the message
 * (worker-loop.ts).
 * @module
 */
import { createEventFd, signalEventFd } from "../../../ffi/eventfd.ts";
import { libc } from "../../../ffi/libc.ts";
import { workerModuleUrl } from "../../worker-url.ts";
import {
  WORKER_ITSELF,
  type WorkerEvent,
  type WorkerInit,
  type WorkerMessage,
  type WorkerReport,
} from "./worker-protocol.ts";

/** The two worker modules, next to this one (see worker-url.ts for the release bundle). */
const WORKER_URLS = [
  workerModuleUrl(import.meta.url, "./send.ts", "encrypt-worker"),
  workerModuleUrl(import.meta.url, "./receive.ts", "decrypt-worker"),
];

/** How long {@link DataplaneWorkers.close} waits for the workers to answer (ms). */
const CLOSE_WAIT_MS = 1000;

/** How many workers a pair runs (each attached device gets one "stopped" per worker). */
export const WORKERS_PER_PAIR = WORKER_URLS.length;

/** The encrypt and the decrypt worker, and the devices they serve. */
export class DataplaneWorkers {
  readonly #workers: Worker[] = [];
  readonly #controlFds: number[] = [];
  /** Per worker: messages posted to it (its loop compares with what it handled). */
  readonly #posted: Int32Array;
  /** Workers that answered `close` (they never touch their control fd again). */
  #closedWorkers = 0;
  #onClosed?: () => void;
  readonly #devices = new Map<number, (event: WorkerEvent) => void>();
  #nextDevice = 1;
  #closed = false;

  /** Starts both workers (idle until a device attaches). */
  constructor() {
    this.#posted = new Int32Array(new SharedArrayBuffer(WORKERS_PER_PAIR * 4));
    WORKER_URLS.forEach((url, index) => {
      const controlFd = createEventFd();
      this.#controlFds.push(controlFd);
      const w = new Worker(url, { type: "module" });
      w.onmessage = (e: MessageEvent<WorkerReport>) => {
        if (e.data.device !== WORKER_ITSELF) this.#devices.get(e.data.device)?.(e.data.event);
        else if (++this.#closedWorkers === WORKERS_PER_PAIR) this.#onClosed?.();
      };
      w.onerror = (e) => {
        e.preventDefault();
        for (const onEvent of this.#devices.values()) onEvent({ t: "error", message: e.message });
      };
      this.#workers.push(w);
      this.#post(index, { t: "host", posted: this.#posted.buffer as SharedArrayBuffer, index, controlFd });
    });
  }

  /**
   * Hands a device to both workers; `onEvent` gets its events until {@link release}. Returns the
   * device's id.
   */
  attach(init: WorkerInit, onEvent: (event: WorkerEvent) => void): number {
    if (this.#closed) throw new Error("the data-plane workers were closed");
    const device = this.#nextDevice++;
    this.#devices.set(device, onEvent);
    for (let index = 0; index < WORKERS_PER_PAIR; index++) this.#post(index, { t: "attach", device, init });
    return device;
  }

  /** Wakes both workers' loops now (a device set its stop flag: its paths leave at once). */
  nudge(): void {
    if (this.#closed) return; // the fds are closed (and their numbers maybe reused)
    for (const fd of this.#controlFds) signalEventFd(fd);
  }

  /** Forgets a device whose paths left both workers. */
  release(device: number): void {
    this.#devices.delete(device);
  }

  /**
   * Ends both workers (after every device stopped; a device still attached is dropped: its paths send
   * nothing more). Each worker is asked to close and answers once its loop can no longer touch its
   * control eventfd; only then are the fds closed (a worker that does not answer within
   * {@link CLOSE_WAIT_MS} is terminated and its fd left open, never closed under it).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (let index = 0; index < WORKERS_PER_PAIR; index++) this.#post(index, { t: "close" });
    this.#closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => this.#onClosed = r),
      new Promise<void>((r) => timer = setTimeout(r, CLOSE_WAIT_MS)),
    ]);
    clearTimeout(timer);
    for (const w of this.#workers) w.terminate();
    if (this.#closedWorkers === WORKERS_PER_PAIR) { for (const fd of this.#controlFds) libc.close(fd); }
    this.#devices.clear();
  }

  #post(index: number, m: WorkerMessage): void {
    Atomics.add(this.#posted, index, 1); // first: the loop then yields until it has the message
    this.#workers[index].postMessage(m);
    signalEventFd(this.#controlFds[index]);
  }
}
