/**
 * The control plane's handle on one device's data plane: owns the device's shared state and wake
 * eventfd, attaches the device to a pair of data-plane workers (worker-pair.ts: its own, or one the
 * node shares between wg0 and aes0) and turns the workers' rare messages into callbacks.
 * @module
 */
import { createEventFd, signalEventFd } from "../../../ffi/eventfd.ts";
import { libc } from "../../../ffi/libc.ts";
import { DeviceWord, SharedState } from "./shared-state.ts";
import { type DataplaneOffloads, NO_OFFLOADS, type WorkerEvent, type WorkerInit } from "./worker-protocol.ts";
import type { HandoffChannel } from "./handoff-channel.ts";
import { DataplaneWorkers, WORKERS_PER_PAIR } from "./worker-pair.ts";
import { ConnTracker, connTrackerBytes, DEFAULT_TRACKER_BUCKETS } from "../../filter/conn-tracker.ts";
import { TableWriter } from "../../filter/table-exchange.ts";
import { allowAllRuleTable, RULE_TABLE_CAPACITY_WORDS } from "../../filter/rule-compiler.ts";

/** How long {@link Dataplane.stop} waits for the workers to let the device go (ms). */
const STOP_WAIT_MS = 1000;

/** Callbacks the device supplies. */
export interface DataplaneHandlers {
  /** A peer needs a handshake. */
  onHandshakeNeeded(peer: number): void;
  /** An admitted handshake message arrived from `addr` (raw sockaddr); see worker-protocol.ts. */
  onHandshakeMessage(data: Uint8Array, addr: Uint8Array): void;
  /** A responder keypair got its first packet. */
  onConfirmed(peer: number, slot: number): void;
  /** The TUN device disappeared. */
  onTunClosed(): void;
  /** A worker failed. */
  onWorkerError(message: string): void;
  /** The packet filter dropped `count` packets from peer slot `peer` for `reason` (rate-limited). */
  onFilterDrop?(peer: number, reason: number, count: number): void;
}

/**
 * A device's end of the aes0 → wg0 in-process hand-off (docs/offload.md): wg0 is the `outer` end
 * and publishes its MTU to the channel; aes0 is the `inner` end and attaches with its socket's
 * address (the node's wg0 address) and port once bound, and detaches when it stops.
 */
export type DataplaneHandoff =
  | { role: "outer"; channel: HandoffChannel }
  | { role: "inner"; channel: HandoffChannel; address: Uint8Array };

/** What a device needs of its data plane: the shared state, the fds it runs on, a wake-up and a stop. */
export interface DataplaneHandle {
  /** Shared state (keys, peers, routes, counters). */
  readonly shared: SharedState;
  /** Publishes the UDP socket the data plane uses, bound to `port`. */
  setUdpFd(fd: number, port?: number): void;
  /** Publishes the TUN MTU used for padding. */
  setMtu(mtu: number): void;
  /** Asks the data plane to send staged packets and keepalives now. */
  wake(): void;
  /** Stops the data plane. */
  stop(): Promise<void>;
  /** The packet filter's rule-table exchange (the decrypt worker reads it). */
  readonly filterTables: TableWriter;
  /** The packet filter's connection-tracker table. */
  readonly tracker: SharedArrayBuffer;
}

/** What a device's data plane runs on. */
export interface DataplaneOptions {
  /** The device's TUN fd. */
  tunFd: number;
  /** AEAD algorithm name of the device's suite. */
  aead: string;
  /** Callbacks for the workers' events. */
  handlers: DataplaneHandlers;
  /** When the encrypt worker asks to rekey an initiator's keypair (REKEY_AFTER_TIME). */
  rekeyAfterMs: number;
  /** Whether the workers filter inbound packets with the device's rule tables. */
  packetFilter?: boolean;
  /** How `tunFd` was opened (both paths frame their reads and writes by it) and whether UDP GSO/GRO is used. */
  offloads?: DataplaneOffloads;
  /** This device's end of the aes0 → wg0 hand-off. */
  handoff?: DataplaneHandoff;
  /** The worker pair to run on (the node's shared one); none: the data plane starts a pair of its own. */
  workers?: DataplaneWorkers;
}

/** Starts a data plane for a device (the device's injection point for it). */
export type DataplaneFactory = (opts: DataplaneOptions) => DataplaneHandle;

/** The production data plane: the device's paths in a pair of workers (see {@link Dataplane}). */
export const workerDataplane: DataplaneFactory = (opts) => new Dataplane(opts);

/** One device's paths in the encrypt and the decrypt worker. */
export class Dataplane implements DataplaneHandle {
  /** Shared state (keys, peers, routes, counters). */
  readonly shared = new SharedState();
  /**
   * The packet filter's rule tables: every slot accepts everything until the owner publishes a
   * compiled table (a plain WireGuard device never filters).
   */
  readonly filterTables = new TableWriter(allowAllRuleTable(), RULE_TABLE_CAPACITY_WORDS);
  /** The connection tracker's table, shared by both paths (the send path writes flows). */
  readonly tracker = new SharedArrayBuffer(connTrackerBytes(DEFAULT_TRACKER_BUCKETS));
  readonly #workers: DataplaneWorkers;
  /** Whether {@link #workers} is this data plane's own pair (closed with it). */
  readonly #ownWorkers: boolean;
  readonly #device: number;
  readonly #wakeFd: number;
  /** Workers whose path of this device left. */
  #stopped = 0;
  #onStopped?: () => void;
  #closed = false;
  readonly #handoff?: DataplaneHandoff;

  constructor(opts: DataplaneOptions) {
    const { handlers, handoff } = opts;
    const offloads = opts.offloads ?? NO_OFFLOADS;
    this.#handoff = handoff;
    this.#wakeFd = createEventFd();
    const h = this.shared.header;
    Atomics.store(h, DeviceWord.tunFd, opts.tunFd);
    Atomics.store(h, DeviceWord.tunVnetHdr, offloads.vnetHdr ? 1 : 0);
    Atomics.store(h, DeviceWord.tunOffloadBits, offloads.bits);
    Atomics.store(h, DeviceWord.udpOffloads, offloads.udp ? 1 : 0);
    Atomics.store(h, DeviceWord.udpFd, -1);
    Atomics.store(h, DeviceWord.wakeFd, this.#wakeFd);
    new ConnTracker(this.tracker, DEFAULT_TRACKER_BUCKETS, crypto.getRandomValues(new Int32Array(1))[0]);
    const init: WorkerInit = {
      sab: this.shared.sab,
      aead: opts.aead,
      rekeyAfterMs: opts.rekeyAfterMs,
      packetFilter: opts.packetFilter ?? false,
      filterTables: this.filterTables.sab,
      tracker: this.tracker,
      trackerBuckets: DEFAULT_TRACKER_BUCKETS,
      handoff: handoff && { sab: handoff.channel.sab, role: handoff.role },
    };
    this.#ownWorkers = opts.workers === undefined;
    this.#workers = opts.workers ?? new DataplaneWorkers();
    this.#device = this.#workers.attach(init, (m) => this.#onEvent(m, handlers));
  }

  #onEvent(m: WorkerEvent, handlers: DataplaneHandlers): void {
    switch (m.t) {
      case "handshake":
        handlers.onHandshakeNeeded(m.peer);
        break;
      case "hs":
        Atomics.sub(this.shared.header, DeviceWord.pendingHandshakes, 1);
        handlers.onHandshakeMessage(m.data, m.addr);
        break;
      case "confirm":
        handlers.onConfirmed(m.peer, m.slot);
        break;
      case "filter-drop":
        handlers.onFilterDrop?.(m.peer, m.reason, m.count);
        break;
      case "tun-closed":
        handlers.onTunClosed();
        break;
      case "error":
        handlers.onWorkerError(m.message);
        break;
      case "stopped":
        if (++this.#stopped === WORKERS_PER_PAIR) this.#onStopped?.();
        break;
    }
  }

  /**
   * Publishes the UDP socket the workers use (the decrypt path picks it up within 100 ms); the
   * inner end of a hand-off attaches with its `port`.
   */
  setUdpFd(fd: number, port?: number): void {
    Atomics.store(this.shared.header, DeviceWord.udpFd, fd);
    const handoff = this.#handoff;
    if (handoff?.role === "inner" && port !== undefined) handoff.channel.attach(handoff.address, port);
  }

  /** Publishes the TUN MTU used for padding (the outer end of a hand-off: also the largest handed-off packet). */
  setMtu(mtu: number): void {
    Atomics.store(this.shared.header, DeviceWord.mtu, mtu);
    if (this.#handoff?.role === "outer") this.#handoff.channel.setOuterMtu(mtu);
  }

  /** Wakes the encrypt path to send staged packets and keepalives now. */
  wake(): void {
    signalEventFd(this.#wakeFd);
  }

  /**
   * Stops the device's paths (they leave both workers within ~100 ms; the workers keep serving other
   * devices) and closes the eventfd; a pair of its own is ended.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handoff?.role === "inner") this.#handoff.channel.detach();
    Atomics.store(this.shared.header, DeviceWord.stop, 1);
    this.#workers.nudge();
    if (this.#stopped < WORKERS_PER_PAIR) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#onStopped = r),
        new Promise<void>((r) => timer = setTimeout(r, STOP_WAIT_MS)),
      ]);
      clearTimeout(timer);
    }
    this.#workers.release(this.#device);
    if (this.#ownWorkers) await this.#workers.close();
    // A path that never left may still poll the fd: leave it open rather than close it under the path.
    if (this.#stopped === WORKERS_PER_PAIR) libc.close(this.#wakeFd);
  }
}
