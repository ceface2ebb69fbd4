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
import type { WorkerEvent, WorkerInit, WorkerMessage, WorkerReport } from "./worker-protocol.ts";

/** The two worker modules, next to this one (see worker-url.ts for the release bundle). */
const WORKER_URLS = [
  workerModuleUrl(import.meta.url, "./send.ts", "encrypt-worker"),
  workerModuleUrl(import.meta.url, "./receive.ts", "decrypt-worker"),
];

/** How many workers a pair runs (each attached device gets one "stopped" per worker). */
export const WORKERS_PER_PAIR = WORKER_URLS.length;

/** The encrypt and the decrypt worker, and the devices they serve. */
export class DataplaneWorkers {
  readonly #workers: Worker[] = [];
  readonly #controlFds: number[] = [];
  /** Per worker: messages posted to it (its loop compares with what it handled). */
  readonly #posted: Int32Array;
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
      w.onmessage = (e: MessageEvent<WorkerReport>) => this.#devices.get(e.data.device)?.(e.data.event);
      w.onerror = (e) => {
        e.preventDefault();
        for (const onEvent of this.#devices.values()) onEvent({ t: "error", message: e.message });
      };
      this.#workers.push(w);
      this.#post(index, { t: "host", control: this.#posted.buffer as SharedArrayBuffer, index, controlFd });
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
    for (const fd of this.#controlFds) signalEventFd(fd);
  }

  /** Forgets a device whose paths left both workers. */
  release(device: number): void {
    this.#devices.delete(device);
  }

  /** Ends both workers and closes their control eventfds (after every device stopped). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    for (const fd of this.#controlFds) libc.close(fd);
    this.#devices.clear();
  }

  #post(index: number, m: WorkerMessage): void {
    Atomics.add(this.#posted, index, 1); // before the message: the loop then yields until it has it
    this.#workers[index].postMessage(m);
    signalEventFd(this.#controlFds[index]);
  }
}
