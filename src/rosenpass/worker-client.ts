/**
 * The main-isolate side of the Rosenpass worker: posts datagrams, initiations and timer ticks with
 * the current time, schedules the next tick at the deadline the worker reports, and bounds what is
 * in flight so a flood cannot queue unbounded work: InitHellos from unknown sources beyond
 * `maxPendingInitHellos` are dropped here, while known peer endpoints keep `knownInitHelloReserve` more
 * slots, so a flood from elsewhere cannot crowd a real peer out of the queue. Dropped InitHellos are
 * dropped here (counted), before they cost the worker anything.
 */
import { MessageType } from "./constants.ts";
import type { AdmissionVerdict } from "./admission.ts";
import type { RosenpassAction, RosenpassPeerStatus } from "./server.ts";
import type { RosenpassWorkerEvent, RosenpassWorkerInit, RosenpassWorkerRequest } from "./worker-protocol.ts";
import { workerModuleUrl } from "../worker-url.ts";

/** Counters of the worker's front door. */
export interface RosenpassWorkerCounters {
  droppedQueueFull: number;
  admitted: number;
  sourceRateLimited: number;
  overCapacity: number;
}

/** Options of a worker client. */
export interface RosenpassWorkerOptions {
  /**
   * Receives every batch of actions (send, key-exchanged, key-stale, handshake-failed, rejected), with
   * the `context` given to {@link RosenpassWorkerClient.datagram} when the batch answers a datagram
   * (e.g. where to send a reply).
   */
  onActions: (actions: RosenpassAction[], context?: unknown) => void;
  /** Monotonic seconds (default: performance.now() / 1000). */
  clock?: () => number;
  /** InitHellos from unknown sources queued to the worker at most (default 4). */
  maxPendingInitHellos?: number;
  /** Extra InitHello slots only known peer endpoints may use (default 4). */
  knownInitHelloReserve?: number;
  /** Other requests queued at most (default 64). */
  maxPending?: number;
}

const DEFAULT_MAX_PENDING_INIT_HELLOS = 4;
const DEFAULT_KNOWN_INIT_HELLO_RESERVE = 4;
const DEFAULT_MAX_PENDING = 64;
/** Upper bound of a timer so that a far deadline never overflows setTimeout. */
const MAX_TIMER_MS = 60_000;

/** A running Rosenpass worker. */
export class RosenpassWorkerClient {
  readonly counters: RosenpassWorkerCounters = {
    droppedQueueFull: 0,
    admitted: 0,
    sourceRateLimited: 0,
    overCapacity: 0,
  };
  readonly #worker: Worker;
  readonly #options: Required<RosenpassWorkerOptions>;
  readonly #kinds: { initHello: boolean; known: boolean; context?: unknown }[] = [];
  readonly #statusWaiters = new Map<number, (peers: Record<string, RosenpassPeerStatus>) => void>();
  #pendingInitHellos = 0;
  #pendingUnknownInitHellos = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextStatusId = 1;
  #closed = false;

  private constructor(worker: Worker, options: RosenpassWorkerOptions) {
    this.#worker = worker;
    this.#options = {
      clock: () => performance.now() / 1000,
      maxPendingInitHellos: DEFAULT_MAX_PENDING_INIT_HELLOS,
      knownInitHelloReserve: DEFAULT_KNOWN_INIT_HELLO_RESERVE,
      maxPending: DEFAULT_MAX_PENDING,
      ...options,
    };
  }

  /** Starts the worker with its keys and peers; resolves once it is ready. */
  static start(init: RosenpassWorkerInit, options: RosenpassWorkerOptions): Promise<RosenpassWorkerClient> {
    const worker = new Worker(workerModuleUrl(import.meta.url, "./worker.ts", "rosenpass-worker"), {
      type: "module",
    });
    const client = new RosenpassWorkerClient(worker, options);
    return new Promise((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<RosenpassWorkerEvent>) => {
        if (e.data.t === "ready") {
          worker.onmessage = (ev: MessageEvent<RosenpassWorkerEvent>) => client.#onEvent(ev.data);
          resolve(client);
        } else if (e.data.t === "error") {
          worker.terminate();
          reject(new Error(e.data.message));
        }
      };
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        reject(new Error(`rosenpass worker failed: ${e.message}`));
      };
      worker.postMessage({ t: "init", init } satisfies RosenpassWorkerRequest);
    });
  }

  /**
   * Hands a received datagram to the worker (`source`: the address the admission counts per); false
   * when it was dropped because the queue is full. `context` comes back with the answering actions.
   */
  datagram(source: string, knownEndpoint: boolean, bytes: Uint8Array, context?: unknown): boolean {
    const initHello = bytes[0] === MessageType.InitHello;
    const o = this.#options;
    const refused = !initHello
      ? this.#full()
      : knownEndpoint
      ? this.#pendingInitHellos >= o.maxPendingInitHellos + o.knownInitHelloReserve
      : this.#pendingUnknownInitHellos >= o.maxPendingInitHellos;
    if (refused) {
      this.counters.droppedQueueFull++;
      return false;
    }
    if (initHello) this.#pendingInitHellos++;
    if (initHello && !knownEndpoint) this.#pendingUnknownInitHellos++;
    this.#post(
      { t: "datagram", now: this.#options.clock(), source, knownEndpoint, bytes },
      initHello,
      context,
      knownEndpoint,
    );
    return true;
  }

  /** Starts an exchange with `peer` now. */
  initiate(peer: string): void {
    this.#post({ t: "initiate", now: this.#options.clock(), peer }, false);
  }

  /** Runs the timers now (the client also does this by itself at each deadline). */
  tick(): void {
    this.#post({ t: "tick", now: this.#options.clock() }, false);
  }

  /** The key state of every peer. */
  status(): Promise<Record<string, RosenpassPeerStatus>> {
    const id = this.#nextStatusId++;
    return new Promise((resolve) => {
      this.#statusWaiters.set(id, resolve);
      this.#worker.postMessage({ t: "status", id } satisfies RosenpassWorkerRequest);
    });
  }

  /** Stops the timer and the worker. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#worker.terminate();
  }

  #full(): boolean {
    return this.#kinds.length - this.#pendingInitHellos >= this.#options.maxPending;
  }

  #post(req: RosenpassWorkerRequest, initHello: boolean, context?: unknown, known = true): void {
    if (this.#closed) return;
    this.#kinds.push({ initHello, known, context });
    this.#worker.postMessage(req);
  }

  #onEvent(event: RosenpassWorkerEvent): void {
    if (event.t === "status") {
      this.#statusWaiters.get(event.id)?.(event.peers);
      this.#statusWaiters.delete(event.id);
      return;
    }
    const request = this.#kinds.shift();
    if (request?.initHello) this.#pendingInitHellos--;
    if (request?.initHello && !request.known) this.#pendingUnknownInitHellos--;
    if (event.t === "error") {
      this.#options.onActions([{ kind: "rejected", reason: `worker: ${event.message}` }], request?.context);
      return;
    }
    if (event.t !== "actions") return;
    this.#count(event.admission);
    this.#schedule(event.nextDeadline);
    if (event.actions.length > 0) this.#options.onActions(event.actions, request?.context);
  }

  #count(verdict: AdmissionVerdict | undefined): void {
    if (verdict === "admitted") this.counters.admitted++;
    else if (verdict === "source-rate-limited") this.counters.sourceRateLimited++;
    else if (verdict === "over-capacity") this.counters.overCapacity++;
  }

  #schedule(deadline: number | null): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (deadline === null || this.#closed) return;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, (deadline - this.#options.clock()) * 1000));
    this.#timer = setTimeout(() => this.tick(), ms);
  }
}
