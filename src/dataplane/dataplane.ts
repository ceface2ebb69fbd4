/**
 * The control plane's handle on the data plane: owns the shared state, the wake eventfd and the two
 * workers (TUN→UDP and UDP→TUN), and turns their rare messages into callbacks.
 * @module
 */
import { bigLen, check, EFD_CLOEXEC, EFD_NONBLOCK, libc } from "../../ffi/libc.ts";
import { DeviceWord, SharedState } from "./shared-state.ts";
import { type DataplaneOffloads, NO_OFFLOADS, type WorkerEvent, type WorkerInit } from "./worker-protocol.ts";
import { workerModuleUrl } from "../worker-url.ts";
import type { HandoffChannel } from "./handoff-channel.ts";

/** The two worker modules, next to this one (see worker-url.ts for the release bundle). */
const WORKER_URLS = [
  workerModuleUrl(import.meta.url, "./encrypt-worker.ts", "encrypt-worker"),
  workerModuleUrl(import.meta.url, "./decrypt-worker.ts", "decrypt-worker"),
];
import { ConnTracker, connTrackerBytes, DEFAULT_TRACKER_BUCKETS } from "../filter/conn-tracker.ts";
import { TableWriter } from "../filter/table-exchange.ts";
import { allowAllRuleTable, RULE_TABLE_CAPACITY_WORDS } from "../filter/rule-compiler.ts";

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

/** Starts a data plane over `tunFd` for the AEAD `aead` (the device's injection point for it). */
export type DataplaneFactory = (
  tunFd: number,
  aead: string,
  handlers: DataplaneHandlers,
  rekeyAfterMs: number,
  packetFilter?: boolean,
  offloads?: DataplaneOffloads,
  handoff?: DataplaneHandoff,
) => DataplaneHandle;

/** The production data plane: the two workers (see {@link Dataplane}). */
export const workerDataplane: DataplaneFactory = (
  tunFd,
  aead,
  handlers,
  rekeyAfterMs,
  packetFilter,
  offloads,
  handoff,
) => new Dataplane(tunFd, aead, handlers, rekeyAfterMs, packetFilter ?? false, offloads, handoff);

/** Runs the two data-plane workers over one TUN fd and one UDP fd. */
export class Dataplane implements DataplaneHandle {
  /** Shared state (keys, peers, routes, counters). */
  readonly shared = new SharedState();
  /**
   * The packet filter's rule tables: every slot accepts everything until the owner publishes a
   * compiled table (a plain WireGuard device never filters).
   */
  readonly filterTables = new TableWriter(allowAllRuleTable(), RULE_TABLE_CAPACITY_WORDS);
  /** The connection tracker's table, shared by both workers (the encrypt worker writes flows). */
  readonly tracker = new SharedArrayBuffer(connTrackerBytes(DEFAULT_TRACKER_BUCKETS));
  #workers: Worker[] = [];
  #wakeFd: number;
  #wakeBuf = new BigUint64Array([1n]);
  #stopped = 0;
  #onStopped?: () => void;
  readonly #handoff?: DataplaneHandoff;

  /**
   * `rekeyAfterMs`: when the encrypt worker asks to rekey an initiator's keypair (REKEY_AFTER_TIME);
   * `packetFilter`: whether the workers filter inbound packets with {@link filterTables};
   * `offloads`: how `tunFd` was opened (both workers frame their reads and writes by it) and
   * whether the workers use UDP GSO/GRO; `handoff`: this device's end of the aes0 → wg0 hand-off.
   */
  constructor(
    tunFd: number,
    aead: string,
    handlers: DataplaneHandlers,
    rekeyAfterMs: number,
    packetFilter = false,
    offloads: DataplaneOffloads = NO_OFFLOADS,
    handoff?: DataplaneHandoff,
  ) {
    this.#handoff = handoff;
    this.#wakeFd = check(libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
    const h = this.shared.header;
    Atomics.store(h, DeviceWord.tunFd, tunFd);
    Atomics.store(h, DeviceWord.tunVnetHdr, offloads.vnetHdr ? 1 : 0);
    Atomics.store(h, DeviceWord.tunOffloadBits, offloads.bits);
    Atomics.store(h, DeviceWord.udpOffloads, offloads.udp ? 1 : 0);
    Atomics.store(h, DeviceWord.udpFd, -1);
    Atomics.store(h, DeviceWord.wakeFd, this.#wakeFd);
    new ConnTracker(this.tracker, DEFAULT_TRACKER_BUCKETS, crypto.getRandomValues(new Int32Array(1))[0]);
    const init: WorkerInit = {
      sab: this.shared.sab,
      aead,
      rekeyAfterMs,
      packetFilter,
      filterTables: this.filterTables.sab,
      tracker: this.tracker,
      trackerBuckets: DEFAULT_TRACKER_BUCKETS,
      handoff: handoff && { sab: handoff.channel.sab, role: handoff.role },
    };
    for (const url of WORKER_URLS) {
      const w = new Worker(url, { type: "module" });
      w.onmessage = (e: MessageEvent<WorkerEvent>) => {
        const m = e.data;
        switch (m.t) {
          case "handshake":
            handlers.onHandshakeNeeded(m.peer);
            break;
          case "hs":
            Atomics.sub(h, DeviceWord.pendingHandshakes, 1);
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
            if (++this.#stopped === this.#workers.length) this.#onStopped?.();
            break;
        }
      };
      w.onerror = (e) => {
        e.preventDefault();
        handlers.onWorkerError(e.message);
      };
      w.postMessage(init);
      this.#workers.push(w);
    }
  }

  /**
   * Publishes the UDP socket the workers use (the decrypt worker picks it up within 100 ms); the
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

  /** Wakes the encrypt worker to send staged packets and keepalives now. */
  wake(): void {
    libc.write(this.#wakeFd, new Uint8Array(this.#wakeBuf.buffer), bigLen(8));
  }

  /** Stops both workers (they leave their loops within ~100 ms) and closes the eventfd. */
  async stop(): Promise<void> {
    if (this.#handoff?.role === "inner") this.#handoff.channel.detach();
    Atomics.store(this.shared.header, DeviceWord.stop, 1);
    this.wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => this.#onStopped = r),
      new Promise<void>((r) => timer = setTimeout(r, 1000)),
    ]);
    clearTimeout(timer);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    libc.close(this.#wakeFd);
  }
}
