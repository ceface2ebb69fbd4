/**
 * Contract between the UAPI server (the `wg` text protocol) and the device it configures.
 * @module
 */

/** One peer as reported by a UAPI `get`. */
export interface UapiPeerSnapshot {
  publicKey: Uint8Array;
  presharedKey: Uint8Array /* 32 zero bytes = none */;
  endpoint: string | null /* "1.2.3.4:51820" or "[v6]:port" */;
  lastHandshakeMs: number /* unix ms, 0 = never */;
  txBytes: number;
  rxBytes: number;
  persistentKeepalive: number /* s */;
  allowedIps: string[] /* "10.0.0.0/24" */;
}

/** The device state reported by a UAPI `get`. */
export interface UapiDeviceSnapshot {
  privateKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: UapiPeerSnapshot[];
}

/**
 * One `public_key=` section of a UAPI `set`, in request order. When `remove` is true the other fields
 * are irrelevant (the peer ends up removed). `updateOnly` means "do not create the peer if absent".
 * When `replaceAllowedIps` is true the peer's allowed IPs become exactly `allowedIps`; otherwise
 * `allowedIps` are added. A change for the device's own public key must be ignored (wireguard-go).
 */
export interface UapiPeerChange {
  publicKey: Uint8Array;
  remove: boolean;
  updateOnly: boolean;
  presharedKey?: Uint8Array;
  endpoint?: { ip: string; port: number };
  persistentKeepalive?: number;
  replaceAllowedIps: boolean;
  allowedIps: string[] /* canonical CIDRs */;
}

/**
 * A fully parsed and validated UAPI `set`. `replacePeers` removes all peers before `peers` are applied;
 * `peers` are applied in order. A non-zero `privateKey` is already clamped.
 */
export interface UapiSetRequest {
  privateKey?: Uint8Array /* all-zero = remove */;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: UapiPeerChange[];
}

/** What a device must offer so the UAPI server can read and configure it. */
export interface UapiDevice {
  /** Current state, for a UAPI `get`. */
  snapshot(): UapiDeviceSnapshot;
  /** Applies a fully parsed request; returns 0 or a NEGATIVE errno (e.g. -EADDRINUSE when the port is busy, -EPERM when a PSK write is refused). */
  apply(req: UapiSetRequest): number | Promise<number>;
}
