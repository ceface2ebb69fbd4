/**
 * Messages between the control plane and the data-plane workers. Per-packet state travels through
 * shared memory (shared-state.ts); these messages are for rare events only.
 * @module
 */

/**
 * Reader slots of an interface's rule-table exchange (filter/table-exchange.ts): the decrypt worker
 * decides with the table; a trace reads it briefly from the control plane.
 */
export const FILTER_TABLE_READER = { decrypt: 0, trace: 2 } as const;

/**
 * Which kernel offloads the data plane uses (docs/offload.md): whether the TUN fd both workers share
 * was opened with a virtio_net_hdr in front of every packet (IFF_VNET_HDR), the TUN_F_* bits the
 * kernel accepted (ffi/tun.ts), and whether the workers may turn on UDP_SEGMENT / UDP_GRO on the
 * underlay socket. Both workers read it from the shared header, so they agree on the framing of
 * every TUN read and write.
 */
export interface DataplaneOffloads {
  /** Every read and write on the TUN carries a virtio_net_hdr. */
  vnetHdr: boolean;
  /** TUN_F_* bits in force (0 without offloads). */
  bits: number;
  /** UDP GSO on send and GRO on receive, where the kernel accepts them. */
  udp: boolean;
}

/** No offloads: one plain packet per TUN read and write, one datagram per UDP message. */
export const NO_OFFLOADS: DataplaneOffloads = Object.freeze({ vnetHdr: false, bits: 0, udp: false });

/**
 * A device's end of the aes0 → wg0 hand-off (handoff-channel.ts): wg0 is the `outer` end (its
 * encrypt worker seals what aes0 hands it, its decrypt worker hands aes0 its datagrams), aes0 the
 * `inner` end.
 */
export interface HandoffInit {
  /** The channel's shared buffer. */
  sab: SharedArrayBuffer;
  /** Which end this device is. */
  role: "outer" | "inner";
}

/** What a worker needs to serve one device: where its shared state is and which AEAD to use. */
export interface WorkerInit {
  /** The shared buffer of `SharedState`. */
  sab: SharedArrayBuffer;
  /** AEAD algorithm name for this device's suite. */
  aead: string;
  /** When an initiator's keypair is rekeyed on send (ms; WireGuard's REKEY_AFTER_TIME by default). */
  rekeyAfterMs: number;
  /** Whether the workers run the packet filter (a plain WireGuard device does not). */
  packetFilter: boolean;
  /** The packet filter's rule-table exchange (filter/table-exchange.ts); the decrypt worker reads it. */
  filterTables: SharedArrayBuffer;
  /** The connection tracker's table (filter/conn-tracker.ts), already seeded by the control plane. */
  tracker: SharedArrayBuffer;
  /** Buckets of the tracker's table. */
  trackerBuckets: number;
  /** This device's end of the aes0 → wg0 hand-off (none: every datagram crosses the kernel). */
  handoff?: HandoffInit;
}

/** Messages a worker posts to the control plane. */
export type WorkerEvent =
  /** A peer needs a (new) handshake: no usable keypair, or the current one is getting old. */
  | { t: "handshake"; peer: number }
  /**
   * A handshake message (type 1, 2 or 3) the decrypt worker admitted (valid mac1; under load a valid
   * mac2 within its source's rate; for 2 and 3 a handshake of ours in flight), with its raw sockaddr.
   */
  | { t: "hs"; data: Uint8Array; addr: Uint8Array }
  /** The first packet arrived on a responder's "next" keypair: promote it (key confirmation). */
  | { t: "confirm"; peer: number; slot: number }
  /** The packet filter dropped `count` packets from `peer` for `reason` (a DROP_REASONS index), rate-limited. */
  | { t: "filter-drop"; peer: number; reason: number; count: number }
  /** The TUN device is gone (interface deleted). */
  | { t: "tun-closed" }
  /** The worker hit a fatal error. */
  | { t: "error"; message: string }
  /** The device's path left the worker (its stop flag was set, its TUN went or it failed). */
  | { t: "stopped" };

/** The `device` of a {@link WorkerReport} about the worker itself (devices are numbered from 1). */
export const WORKER_ITSELF = 0;

/**
 * Messages a data-plane worker receives (worker-pair.ts): first `host` (the shared words the owner
 * counts its messages in, one per worker, and the eventfd it signals after posting one), then one
 * `attach` per device whose path the worker serves, and `close` at the end (the worker lets every
 * path go, never polls again and answers with a `stopped` report about {@link WORKER_ITSELF}).
 */
export type WorkerMessage =
  | { t: "host"; posted: SharedArrayBuffer; index: number; controlFd: number }
  | { t: "attach"; device: number; init: WorkerInit }
  | { t: "close" };

/** What a worker posts: an event of the device it serves under the id the owner gave it. */
export interface WorkerReport {
  /** The device id from the `attach` message ({@link WORKER_ITSELF}: the worker closed). */
  device: number;
  /** What happened. */
  event: WorkerEvent;
}
