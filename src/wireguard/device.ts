/**
 * A WireGuard device: the control plane of one interface (wg0 or aes0), as the rest of the node and
 * the UAPI server see it. It starts the data plane over the interface's TUN fd, opens the transport
 * socket, and routes the data plane's callbacks and the timer tick to the parts that handle them:
 * - device-uapi.ts: UAPI get/set ↔ device state, so the stock `wg` tool manages it;
 * - handshake-dispatch.ts: Noise IKpsk2 of its suite on the messages the decrypt worker admitted, and
 *   key confirmation;
 * - device-tick.ts: the timers;
 * - device-state.ts: the state they share and the peer lifecycle; keypair-rotation.ts: the keypair
 *   reshuffle.
 *
 * The suite is a parameter: wg0 and aes0 are this same class. The transport and the data plane are
 * injectable (production: kernel UDP and the two workers).
 * @module
 */
import type { Suite } from "../noise/suite.ts";
import { type DataplaneFactory, type DataplaneHandoff, workerDataplane } from "./dataplane/dataplane.ts";
import type { DataplaneWorkers } from "./dataplane/worker-pair.ts";
import type { SharedState } from "./dataplane/shared-state.ts";
import { type DataplaneOffloads, NO_OFFLOADS } from "./dataplane/worker-protocol.ts";
import { closeQuietly } from "../../ffi/libc.ts";
import { DROP_REASONS } from "../filter/verdict.ts";
import type { Logger } from "../log.ts";
import type { UapiDevice, UapiDeviceSnapshot, UapiSetRequest } from "../uapi/types.ts";
import { REKEY_AFTER_TIME } from "./constants.ts";
import { DeviceState, type PskPolicy } from "./device-state.ts";
import { applySet, dataPlaneRoutes, snapshotDevice } from "./device-uapi.ts";
import { tick, TICK_INTERVAL_MS } from "./device-tick.ts";
import {
  confirmKeypair,
  dispatchHandshakeMessage,
  handshakeNeeded,
  sendInitiation,
} from "./handshake-dispatch.ts";
import { type PacketTransport, udpTransport } from "./transport.ts";

export type { DeviceEvent, HandshakeFailureCause, PskPolicy } from "./device-state.ts";
import type { DeviceEvent } from "./device-state.ts";

/** Shortest rekey interval a device accepts (ms). */
const MIN_REKEY_AFTER_MS = 1_000;

/** Options for a device. */
export interface DeviceOptions {
  /** Interface name (also the UAPI socket name). */
  ifname: string;
  /** Cipher suite. */
  suite: Suite;
  /** An open TUN fd for the interface (or any fd that carries one IP packet per read/write). */
  tunFd: number;
  /** Which kernel offloads the data plane uses on the TUN fd and the socket (default: none). */
  dataplaneOffloads?: DataplaneOffloads;
  /** Logger. */
  log: Logger;
  /** Address the UDP socket binds to (default: all, dual-stack); ignored with {@link transport}. */
  bindAddress?: string;
  /**
   * Interface the UDP socket is tied to (SO_BINDTODEVICE): only datagrams that arrived through it are
   * received. aes0 ties its socket to wg0, so nothing reaches it from the underlay. Ignored with
   * {@link transport}.
   */
  bindDevice?: string;
  /** Where the socket comes from (default: kernel UDP per {@link bindAddress}/{@link bindDevice}). */
  transport?: PacketTransport;
  /**
   * This device's end of the aes0 → wg0 in-process hand-off (docs/offload.md; default none: its
   * datagrams cross the kernel's UDP stack).
   */
  handoff?: DataplaneHandoff;
  /**
   * The data-plane worker pair to run on (the node shares one between wg0 and aes0); default: the
   * data plane starts a pair of its own.
   */
  workers?: DataplaneWorkers;
  /** Starts the data plane (default: the device's paths in the data-plane workers). */
  dataplane?: DataplaneFactory;
  /** Clock (unix ms); injectable for tests. */
  clock?: () => number;
  /** PSK policy hooks (aes0 gate). */
  pskPolicy?: PskPolicy;
  /** Event sink. */
  onEvent?: (e: DeviceEvent) => void;
  /**
   * Rekey an initiator's session after this many ms (1 000..120 000; default WireGuard's 120 000).
   * aes0 uses its key rotation interval so that each rotated PSK is in use within one interval.
   */
  rekeyAfterTimeMs?: number;
  /** Called once when the device shuts itself down (interface deleted, fatal worker error). */
  onFatal?: (reason: string) => void;
  /**
   * The packet filter dropped `count` packets from a peer (public key hex) for `reason` (a
   * DROP_REASONS name); at most once per (peer, reason) per second.
   */
  onFilterDrop?: (peer: string, reason: string, count: number) => void;
  /**
   * Run the packet filter (default false: a plain WireGuard device delivers everything). A node's
   * devices run it and publish their rule tables with {@link Device.setFilterTable}.
   */
  packetFilter?: boolean;
}

/** How often {@link Device.setFilterTable} retries while the decrypt worker still reads the old table. */
const FILTER_PUBLISH_RETRY_MS = 5;

/** One WireGuard interface's control plane. */
export class Device implements UapiDevice {
  /** Interface name. */
  readonly ifname: string;
  /** Cipher suite of this device. */
  readonly suite: Suite;
  readonly #state: DeviceState;
  readonly #tick: ReturnType<typeof setInterval>;
  readonly #onFatal?: (reason: string) => void;
  /** Number of the latest setFilterTable call (an older one still retrying gives up). */
  #filterRequest = 0;

  constructor(opts: DeviceOptions) {
    this.ifname = opts.ifname;
    this.suite = opts.suite;
    this.#onFatal = opts.onFatal;
    const rekeyAfterMs = opts.rekeyAfterTimeMs ?? REKEY_AFTER_TIME;
    if (
      !Number.isInteger(rekeyAfterMs) || rekeyAfterMs < MIN_REKEY_AFTER_MS || rekeyAfterMs > REKEY_AFTER_TIME
    ) {
      throw new RangeError(
        `rekeyAfterTimeMs must be an integer from ${MIN_REKEY_AFTER_MS} to ${REKEY_AFTER_TIME}`,
      );
    }
    const startDataplane = opts.dataplane ?? workerDataplane;
    // The handlers run only after the constructor returned (worker messages are asynchronous).
    const dataplane = startDataplane({
      tunFd: opts.tunFd,
      aead: opts.suite.aead.name,
      handlers: {
        onHandshakeNeeded: (id) => handshakeNeeded(this.#state, id),
        onHandshakeMessage: (data, addr) => dispatchHandshakeMessage(this.#state, data, addr),
        onConfirmed: (id, slot) => confirmKeypair(this.#state, id, slot),
        onTunClosed: () => this.#fatal(`interface ${this.ifname} was removed`),
        onWorkerError: (m) => this.#fatal(`data-plane worker failed: ${m}`),
        onFilterDrop: (id, reason, count) => {
          const peer = this.#state.byId[id];
          if (peer) opts.onFilterDrop?.(peer.publicKeyHex, DROP_REASONS[reason] ?? "unknown", count);
        },
      },
      rekeyAfterMs,
      packetFilter: opts.packetFilter ?? false,
      offloads: opts.dataplaneOffloads ?? NO_OFFLOADS,
      handoff: opts.handoff,
      workers: opts.workers,
    });
    this.#state = new DeviceState({
      suite: opts.suite,
      log: opts.log,
      clock: opts.clock ?? Date.now,
      dataplane,
      transport: opts.transport ??
        udpTransport({ bindAddress: opts.bindAddress, bindDevice: opts.bindDevice }),
      pskPolicy: opts.pskPolicy,
      onEvent: opts.onEvent,
    });
    this.#tick = setInterval(() => tick(this.#state), TICK_INTERVAL_MS);
  }

  /** Shared data-plane state (counters, for status and tests). */
  get shared(): SharedState {
    return this.#state.dp.shared;
  }

  /** The bound UDP port (0 until bound). */
  get listenPort(): number {
    return this.#state.listenPort;
  }

  /** Our public key, or null without a private key. */
  get publicKey(): Uint8Array | null {
    return this.#state.identity?.publicKey ?? null;
  }

  /** Publishes the TUN MTU (for padding). */
  setMtu(mtu: number): void {
    this.#state.dp.setMtu(mtu);
  }

  /** Binds the UDP socket to `port` (0 = any); throws SysError (EADDRINUSE) when busy. */
  bind(port: number): void {
    this.#state.bind(port);
  }

  /** Current configuration and counters, as `wg show` reports them. */
  snapshot(): UapiDeviceSnapshot {
    return snapshotDevice(this.#state);
  }

  /** Applies a parsed UAPI set request all or nothing; returns 0 or a negative errno ({@link applySet}). */
  apply(req: UapiSetRequest): number {
    return applySet(this.#state, req);
  }

  /**
   * The routes the data plane uses, read back from shared memory: every published allowed-IP entry
   * whose peer slot still holds the peer it was published for, with that peer's public key. Equal to
   * the allowed IPs of {@link snapshot} whenever no `set` is running (for diagnostics and tests).
   */
  dataPlaneRoutes(): { publicKey: Uint8Array; allowedIp: string }[] {
    return dataPlaneRoutes(this.#state);
  }

  /** Sets a peer's PSK (used by UAPI and by the aes0 gate). Applies at the next handshake. */
  setPresharedKey(peerPublicKey: Uint8Array, psk: Uint8Array, extraPsks: Uint8Array[] = []): boolean {
    const peer = this.#state.peer(peerPublicKey);
    if (!peer || psk.length !== 32) return false;
    this.#state.setPresharedKey(peer, psk, extraPsks);
    return true;
  }

  /** Starts a handshake with a peer now (aes0 gate opening). */
  initiateHandshake(peerPublicKey: Uint8Array): void {
    const peer = this.#state.peer(peerPublicKey);
    if (peer) sendInitiation(this.#state, peer, false, true);
  }

  /** Ends a peer's sessions: its keypairs are wiped; the next packet to it starts a handshake. */
  dropSessions(peerPublicKey: Uint8Array): void {
    const peer = this.#state.peer(peerPublicKey);
    if (peer) this.#state.expireKeypairs(peer);
  }

  /** Per-peer handshake statistics (for status and tests). */
  peerStats(peerPublicKey: Uint8Array): { handshakes: number; failures: number; hasSession: boolean } | null {
    const peer = this.#state.peer(peerPublicKey);
    if (!peer) return null;
    return { handshakes: peer.handshakes, failures: peer.handshakeFailures, hasSession: peer.current >= 0 };
  }

  /** The packet filter's rule-table exchange (a trace reads the table in force through it). */
  get filterTables(): SharedArrayBuffer {
    return this.#state.dp.filterTables.sab;
  }

  /** The packet filter's connection-tracker table (a trace looks flows up in it without changing them). */
  get filterTracker(): SharedArrayBuffer {
    return this.#state.dp.tracker;
  }

  /** The data-plane slot of every peer, by public key (hex): what a compiled rule table is indexed by. */
  peerSlots(): Map<string, number> {
    return new Map([...this.#state.peers.values()].map((p) => [p.publicKeyHex, p.id]));
  }

  /**
   * Makes `words` (a compiled rule table, filter/rule-compiler.ts) the packet filter's table in force,
   * atomically. Resolves once published: the decrypt worker switches before its next packet. While the
   * worker still reads the previous table (it acknowledges within one poll round), it retries every
   * few ms. A newer call supersedes an older one still waiting (which then resolves false).
   */
  async setFilterTable(words: Int32Array): Promise<boolean> {
    const mine = ++this.#filterRequest;
    for (;;) {
      if (this.#state.closed || mine !== this.#filterRequest) return false;
      if (this.#state.dp.filterTables.publish(words)) return true;
      await new Promise((r) => setTimeout(r, FILTER_PUBLISH_RETRY_MS));
    }
  }

  /** Stops the data plane, closes the socket and wipes all keys. */
  async close(): Promise<void> {
    const state = this.#state;
    if (state.closed) return;
    state.closed = true;
    clearInterval(this.#tick);
    await state.dp.stop();
    for (const p of [...state.peers.values()]) state.removePeer(p);
    state.allowed.clear();
    state.identity?.privateKey.fill(0);
    if (state.udpFd >= 0) closeQuietly(state.udpFd);
    state.udpFd = -1;
  }

  #fatal(reason: string): void {
    if (this.#state.closed) return;
    this.#state.log.info(reason);
    this.#onFatal?.(reason);
  }
}
