/**
 * Messages between a node's main isolate and its Rosenpass worker (the worker owns the
 * RosenpassServer and does all KEM work, so the control and data planes never wait on it).
 * Times are seconds on the main isolate's monotonic clock, passed with every message.
 */
import type { ProfileName } from "./profile.ts";
import type { AdmissionLimits, AdmissionVerdict } from "./admission.ts";
import type { RosenpassAction, RosenpassPeerStatus, RosenpassTimers } from "./server.ts";

/** Everything the worker needs to start. */
export interface RosenpassWorkerInit {
  profile: ProfileName;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  peers: { id: string; publicKey: Uint8Array; psk?: Uint8Array }[];
  timers?: Partial<RosenpassTimers>;
  admission?: Partial<AdmissionLimits>;
}

/** Main isolate → worker. */
export type RosenpassWorkerRequest =
  | { t: "init"; init: RosenpassWorkerInit }
  /** A datagram from `source` (address:port); `knownEndpoint` when it matches a peer's endpoint. */
  | { t: "datagram"; now: number; source: string; knownEndpoint: boolean; bytes: Uint8Array }
  | { t: "tick"; now: number }
  | { t: "initiate"; now: number; peer: string }
  | { t: "status"; id: number };

/** Worker → main isolate. */
export type RosenpassWorkerEvent =
  | { t: "ready" }
  /** The outcome of one request: actions in order, the next timer deadline, and the admission verdict of an InitHello. */
  | {
    t: "actions";
    actions: RosenpassAction[];
    nextDeadline: number | null;
    admission?: AdmissionVerdict;
  }
  | { t: "status"; id: number; peers: Record<string, RosenpassPeerStatus> }
  | { t: "error"; message: string };
