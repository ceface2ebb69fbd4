/**
 * The vocabulary of the DSKE key agreement: the peers and events it deals in, the status it reports,
 * the ports (clock, randomness, hub and peer requesters, epoch store, PSRD budget) through which the
 * pure core (agreement-core.ts) reaches the world, and the protocol's timing and size constants.
 * The shell (agreement.ts) binds the ports to TCP, timers and files; tests bind them to fakes.
 * @module
 */
import type { HubMessage } from "./frames.ts";
import { MAC_KEY_LEN, SHARE_LEN } from "./frames.ts";
import type { HubLink } from "./hub-client.ts";

/** A DSKE-managed AES peer. */
export interface DskePeer {
  /** Name (for events). */
  name: string;
  /** WireGuard public key. */
  publicKey: Uint8Array;
  /** wg0 address (its peer channel listens there). */
  wgIp: string;
}

/** Something the key plane did; never carries key material. */
export interface DskeEvent {
  /** What happened. */
  type:
    | "key-agreed"
    | "rotation-failed"
    | "hub-unreachable"
    | "hub-misbehaved"
    | "psrd-exhausted"
    | "key-confirmation-failed"
    | "shares-inconsistent"
    | "epochs-reconciled"
    | "peer-frame-rejected";
  /** Peer name, when the event concerns one. */
  peer?: string;
  /** Key epoch, when known. */
  epoch?: number;
  /** Hub id (hex), when the event concerns one. */
  hub?: string;
  /**
   * Hub ids (hex) the event concerns: for `key-confirmation-failed` the hubs whose shares made the
   * wrong key, for `shares-inconsistent` every hub whose share took part.
   */
  hubs?: string[];
  /** For `shares-inconsistent`: at least this many of those hubs gave a wrong share. */
  lyingAtLeast?: number;
  /** Why, in words. */
  reason: string;
}

/** One hub link as the admin API shows it (PSRD figures: `PsrdStore.blocks`). */
export interface DskeHubStatus {
  /** Hub id, hex. */
  hubId: string;
  /** The hub's DSKE endpoint, "ip:port". */
  endpoint: string;
  /** The client PSRD block used with this hub, hex. */
  blockId: string;
  /** Whether the latest request to it got an authenticated answer; null before any request. */
  reachable: boolean | null;
  /** When (unix ms) it last gave an authenticated answer; null if never. */
  lastAnswerAt: number | null;
  /** True when it was named as misbehaving within the last few rounds. */
  misbehaving: boolean;
}

/** Per-peer status for the admin API and tests. */
export interface DskePeerStatus {
  /** Peer name. */
  peer: string;
  /** "generator" or "recoverer". */
  role: Role;
  /** Last agreed epoch, or null. */
  lastEpoch: number | null;
  /** Rounds that succeeded. */
  agreed: number;
  /** Rounds that failed. */
  failed: number;
  /** Hubs named as misbehaving (hex ids) in the latest round. */
  badHubs: string[];
  /**
   * What went wrong in the latest round when the shares cannot be trusted (a failed key confirmation,
   * inconsistent shares: how many hubs could be lying, which took part), in words; null once a round
   * succeeds.
   */
  problem: string | null;
  /** Epochs of the agreed keys held in memory for reconciliation (oldest first). */
  heldEpochs: number[];
}

/** A node's role towards one peer: the lower public key generates, the other recovers. */
export type Role = "generator" | "recoverer";

/** An armed timer of an {@link AgreementClock}. */
export type TimerHandle = unknown;

/** Time as the core sees it: the current time and one-shot timers (real ones in the shell, fake in tests). */
export interface AgreementClock {
  /** Unix time in ms. */
  now(): number;
  /** Calls `fn` once after `ms`. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired (no-op otherwise). */
  clearTimer(handle: TimerHandle): void;
}

/**
 * Sends one client ↔ hub request and returns the hub's authenticated answer (null when `expectReply` is
 * false). Throws `PsrdExhausted` (nothing was sent), `TransportError` (no answer) or `HubReplyError` (an
 * answer we cannot accept), like `hubRequest`.
 */
export type HubRequester = (
  hub: HubLink,
  request: HubMessage,
  timeoutMs: number,
  expectReply: boolean,
) => Promise<HubMessage | null>;

/**
 * Sends one node ↔ node frame to `peer` and returns its reply frame (null when `expectReply` is false).
 * Throws `TransportError` when the peer does not answer.
 */
export type PeerRequester = (
  peer: DskePeer,
  frame: Uint8Array,
  timeoutMs: number,
  expectReply: boolean,
) => Promise<Uint8Array | null>;

/** Where the per-peer epoch counters live (a state file in the shell): epochs keep increasing across restarts. */
export interface EpochStore {
  /** The stored counters, peer public key (hex) → last epoch used; empty when none. */
  load(): Record<string, number>;
  /** Persists the counters; called before a new epoch is used on the wire. */
  save(epochs: Record<string, number>): void;
}

/** What the core needs to know of a PSRD block: whose it is and how many bytes are left each way. */
export interface PsrdBudget {
  /** The block's client id (hex) and bytes left, or undefined when the block is unknown. */
  block(blockIdHex: string): { clientId: string; txRemaining: number; rxRemaining: number } | undefined;
}

/** Everything the core does I/O through. */
export interface AgreementPorts {
  /** Time and timers. */
  clock: AgreementClock;
  /** `n` fresh random bytes (key ids and secrets). */
  random(n: number): Uint8Array;
  /** Client ↔ hub requests. */
  hub: HubRequester;
  /** Node ↔ node requests. */
  peer: PeerRequester;
  /** The epoch counters. */
  epochs: EpochStore;
  /** PSRD left per block. */
  psrd: PsrdBudget;
}

/** Options of the agreement core (the shell's options minus what it turns into ports). */
export interface AgreementCoreOptions {
  /** Our WireGuard public key. */
  selfPublicKey: Uint8Array;
  /**
   * Our WireGuard private key: with each peer's public key it gives the pair's node ↔ node frame keys
   * (peer-auth.ts), derived once at construction; the derived keys are wiped at close.
   */
  selfPrivateKey: Uint8Array;
  /** The DSKE-managed AES peers. */
  peers: DskePeer[];
  /** The hubs we hold PSRD with. */
  hubs: HubLink[];
  /** Threshold k (≥ 2). */
  k: number;
  /** Rotation interval (ms). */
  rotationIntervalMs: number;
  /** Hands an agreed key to the gate; returns whether it was installed. */
  install(peer: Uint8Array, psk: Uint8Array, epoch: number): boolean;
  /**
   * Closes the peer's gate at once (fail closed) because no further key can be agreed with the peer
   * (PSRD exhausted, or it lost the key in use). `reason` names the cause and holds no secret.
   */
  closeGate?(peer: Uint8Array, reason: string): void;
  /** Event sink. */
  onEvent?: (e: DskeEvent) => void;
  /** Delay before retrying a failed round (ms). Default min(5 000, rotation interval). */
  retryDelayMs?: number;
  /**
   * Test-only fault switch: as recoverer, answer every second KEY_RESULT with nothing (a lost
   * KEY_RESULT). `twofold up` sets it only with `TWOFOLD_TEST_FAULT=drop-key-result`.
   */
  dropKeyResults?: boolean;
  /**
   * The source address node ↔ node frames from `peer` must come from. Default: its wg0 address (the
   * kernel sends from it over wg0). Tests over loopback, where every connection comes from 127.0.0.1,
   * set it.
   */
  expectedSource?: (peer: DskePeer) => string;
}

/** How long a hub has to answer a request. */
export const HUB_TIMEOUT_MS = 5_000;
/** How long a peer has to answer a node ↔ node frame (and how long a KEY_OFFER stays valid). */
export const PEER_TIMEOUT_MS = 15_000;
/** After the k-th good answer, how long to wait for the rest (to check every hub). */
export const STRAGGLER_MS = 300;
/** KEY_ABORT reason: the sender's PSRD is exhausted; no further key can be agreed. */
export const ABORT_PSRD_EXHAUSTED = 4;
/** How long a recoverer waits for the generator's commit (KEY_SYNC) before it asks itself. */
export const COMMIT_WAIT_MS = 1_500;
/** A KEY_SYNC whose clock differs from ours by more than this is stale (a replay) and ignored. */
export const SYNC_MAX_SKEW_MS = 60_000;
/** Start-up KEY_SYNC: tries (the peer may not be reachable yet). */
export const START_SYNC_TRIES = 5;
/** Start-up KEY_SYNC: the pause between tries. */
export const START_SYNC_PAUSE_MS = 1_000;
/** Rejected node ↔ node frames are reported at most this often. */
export const REJECT_REPORT_INTERVAL_MS = 1_000;
/** A hub named as misbehaving stays flagged for this many rotation intervals. */
export const MISBEHAVING_ROUNDS = 3;
/** Longest retry delay after a failed round (ms); shorter when the rotation interval is. */
export const MAX_RETRY_DELAY_MS = 5_000;
/** Bounds of a share's time to live on the hubs (seconds): three rotation intervals, clamped. */
export const SHARE_TTL_MIN_S = 10;
/** See {@link SHARE_TTL_MIN_S}. */
export const SHARE_TTL_MAX_S = 600;
/** Size of an agreed secret (the aes0 PSK), bytes. */
export const SECRET_BYTES = 32;
/** PSRD one round needs per hub, by role: [send region, receive region]. */
export const ROUND_PSRD: Record<Role, [number, number]> = {
  generator: [MAC_KEY_LEN + SHARE_LEN, MAC_KEY_LEN], // SHARE_PUT out, SHARE_PUT_ACK in
  recoverer: [MAC_KEY_LEN, MAC_KEY_LEN + SHARE_LEN], // SHARE_GET out, SHARE_GET_RESP in
};
