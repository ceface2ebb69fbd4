/**
 * wg0 bring-up, shared by every role (node, hub, broker): the TUN and UAPI socket, then the device
 * configured with the role's static key, listen port and peers (each allowed its wg0 address, with
 * its wg0 pre-shared key when the config names a file). Throws with the interface removed when the
 * device cannot be configured.
 * @module
 */
import type { OffloadMode } from "../wireguard/offload/offload-mode.ts";
import { chachaSuite } from "../noise/suite.ts";
import { formatCidr } from "../wireguard/allowedips.ts";
import { type InterfaceOptions, type RunningInterface, startInterface } from "../wireguard/interface.ts";
import type { Cidr } from "../wireguard/allowedips.ts";
import { readPskFile } from "../keys/psk-file.ts";
import type { UapiPeerChange } from "../uapi/types.ts";

/** A wg0 peer as every role's config describes it. */
export interface Wg0Peer {
  /** The peer's static public key. */
  publicKey: Uint8Array;
  /** The peer's wg0 address (an allowed IP on wg0). */
  wgIp: Cidr;
  /**
   * Every allowed IP on wg0 when there is more than the wg0 address (an edge node's accepted routed
   * networks of an AES-exempt peer, config/steering.ts); absent: the wg0 address alone.
   */
  allowedIps?: readonly string[];
  /** Where to reach it, when known. */
  endpoint?: { ip: string; port: number } | null;
  /** Keepalive interval (s), 0 = off. */
  persistentKeepalive: number;
  /** The file holding the peer's wg0 pre-shared key, when it has one. */
  wgPskFile?: string | null;
}

/** Options of {@link startWg0}. */
export interface Wg0Options {
  /** wg0's interface name. */
  ifname: string;
  /** UAPI socket directory. */
  uapiDir?: string;
  /** TUN MTU. */
  mtu: number;
  /** Whether the data plane may use the kernel's offloads (default "auto"; see offload-mode.ts). */
  offloads?: OffloadMode;
  /** Address with prefix (e.g. "100.64.0.1/10"). */
  address: string;
  /** The role's static private key (copied by the device). */
  privateKey: Uint8Array;
  /** UDP listen port. */
  listenPort: number;
  /** The peers. */
  peers: readonly Wg0Peer[];
  /** Extra device options (events, PSK policy, filter). */
  device?: InterfaceOptions["device"];
  /** Called once when wg0 ends by itself. */
  onEnded?: (reason: string) => void;
  /** Called with wg0 once it runs, before it is configured (device hooks may call back into it then). */
  onStarted?: (wg0: RunningInterface) => void;
}

/** Starts wg0 and configures it; on failure nothing is left behind. */
export async function startWg0(opts: Wg0Options): Promise<RunningInterface> {
  const wg0 = await startInterface({
    ifname: opts.ifname,
    nameField: "wg0.name",
    uapiDir: opts.uapiDir,
    suite: chachaSuite(),
    mtu: opts.mtu,
    offloads: opts.offloads,
    address: opts.address,
    device: opts.device,
    onEnded: opts.onEnded,
  });
  try {
    opts.onStarted?.(wg0);
    await configureWg0(wg0, opts);
    return wg0;
  } catch (e) {
    await wg0.close("start-up failed");
    throw e;
  }
}

async function configureWg0(wg0: RunningInterface, opts: Wg0Options): Promise<void> {
  // The device copies the wg0 PSKs; ours are wiped at once.
  const psks = opts.peers.map((p) => p.wgPskFile ? readPskFile(p.wgPskFile) : undefined);
  let errno: number;
  try {
    errno = await wg0.device.apply({
      privateKey: opts.privateKey,
      listenPort: opts.listenPort,
      replacePeers: true,
      peers: opts.peers.map((p, i) => ({
        ...wgPeerChange(p, p.allowedIps ? [...p.allowedIps] : [formatCidr(p.wgIp)], p.endpoint ?? undefined),
        presharedKey: psks[i],
      })),
    });
  } finally {
    psks.forEach((k) => k?.fill(0));
  }
  if (errno !== 0) {
    throw new Error(`configuring wg0 failed (errno ${-errno}): is UDP port ${opts.listenPort} free?`);
  }
}

/** The UAPI change that sets `p` with its allowed IPs and `endpoint` (used for wg0 and aes0). */
export function wgPeerChange(
  p: Pick<Wg0Peer, "publicKey" | "persistentKeepalive">,
  allowedIps: string[],
  endpoint: { ip: string; port: number } | undefined,
): UapiPeerChange {
  return {
    publicKey: p.publicKey,
    remove: false,
    updateOnly: false,
    endpoint,
    persistentKeepalive: p.persistentKeepalive,
    replaceAllowedIps: true,
    allowedIps,
  };
}
