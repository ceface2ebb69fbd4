/**
 * The node's packet filter (docs/filter.md): compiles the rule table of wg0 and of aes0 from the peers
 * in each device's slots, the lockdown list and the access policies, and publishes it to that
 * interface's data plane. It recompiles when the lockdown list changes (in force within one
 * publish, well under 100 ms), and when the peers in a device's slots change (checked every
 * {@link PEER_CHECK_INTERVAL_MS}).
 *
 * This node runs aes0, so it is AES-capable; a remote peer is AES-capable when it has an AES IP
 * (`isAesPeer`). A peer a device holds that the config does not name (added through UAPI) is treated
 * as AES-exempt under its public key (hex) as name, so no policy names it.
 * @module
 */
import type { LockdownPort } from "../admin/model.ts";
import { isAesPeer, type NodeConfig, type PeerConfig } from "../config/node-config.ts";
import { toHex } from "../encoding.ts";
import { compileRuleTable, type FilterPeer } from "../filter/rule-compiler.ts";
import type { FilterInterface } from "../filter/placement.ts";
import type { Device } from "../wireguard/device.ts";
import type { Cidr } from "../wireguard/allowedips.ts";

/** What the filter needs of a device. */
export type FilterDevice = Pick<Device, "peerSlots" | "setFilterTable">;

/** How often the filter checks whether the peers in the devices' slots changed (ms). */
export const PEER_CHECK_INTERVAL_MS = 1_000;

/** The filter of a running node. */
export class NodeFilter {
  readonly #cfg: NodeConfig;
  #peers: readonly PeerConfig[];
  readonly #devices: Record<FilterInterface, FilterDevice>;
  #lockdown: LockdownPort[];
  #networks: readonly Cidr[];
  readonly #signature: Record<FilterInterface, string> = { wg0: "", aes0: "" };
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A filter over the two devices, starting from `lockdown` (the list in force). */
  constructor(
    cfg: NodeConfig,
    devices: Record<FilterInterface, FilterDevice>,
    lockdown: readonly LockdownPort[],
  ) {
    this.#cfg = cfg;
    this.#peers = cfg.peers;
    this.#devices = devices;
    this.#lockdown = lockdown.map((p) => ({ ...p }));
    this.#networks = cfg.node.advertise ?? [];
  }

  /** Publishes the first tables and starts watching the devices' peers. */
  async start(): Promise<void> {
    await this.refresh(true);
    this.#timer = setInterval(() => void this.refresh(false), PEER_CHECK_INTERVAL_MS);
  }

  /**
   * The node's peers changed live (a network map change): classify the devices' slots from `peers`
   * (AES-capable, hub) and publish both tables now, so a peer that joined is locked down on wg0 from
   * its first packets rather than at the next periodic check.
   */
  async setPeers(peers: readonly PeerConfig[]): Promise<void> {
    this.#peers = peers;
    await this.refresh(true);
  }

  /** The lockdown list in force changed: recompile and publish both tables now. */
  async setLockdown(ports: readonly LockdownPort[]): Promise<void> {
    this.#lockdown = ports.map((p) => ({ ...p }));
    await this.refresh(true);
  }

  /**
   * The networks this node routes changed (a reloaded `node.advertise` on a map-driven node): recompile
   * with their destination classes and publish both tables now.
   */
  async setNetworks(networks: readonly Cidr[]): Promise<void> {
    this.#networks = [...networks];
    await this.refresh(true);
  }

  /** The lockdown list the tables were compiled from. */
  get lockdownPorts(): LockdownPort[] {
    return this.#lockdown.map((p) => ({ ...p }));
  }

  /** The filter's view of the peers in `iface`'s slots. */
  peersOf(iface: FilterInterface): FilterPeer[] {
    const byHex = new Map(this.#peers.map((p) => [toHex(p.publicKey), p]));
    return [...this.#devices[iface].peerSlots()].map(([hex, slot]) => {
      const p = byHex.get(hex);
      return p
        ? { slot, name: p.name, aesCapable: isAesPeer(p), hub: p.role === "hub" || p.role === "broker" }
        : { slot, name: hex, aesCapable: false, hub: false };
    });
  }

  /** The table `iface` enforces now, compiled from its peers, the lockdown list and the policies. */
  compile(iface: FilterInterface, peers: FilterPeer[] = this.peersOf(iface)): Int32Array {
    return compileRuleTable({
      iface,
      local: { name: this.#cfg.node.name, aesCapable: true, wgAddress: this.#cfg.wg0.address.ip },
      peers,
      lockdown: {
        aesUdpPort: this.#cfg.aes0.listenPort,
        extraPorts: this.#lockdown,
        // A map-driven node's DNS on the wg0 address is infrastructure, like the aes0 and key-plane ports.
        ...(this.#cfg.netmap ? { dnsPort: this.#cfg.dns.port } : {}),
      },
      policy: this.#cfg.policies,
      networks: this.#networks,
    });
  }

  /** Recompiles and publishes each table whose inputs changed (all of them with `force`). */
  async refresh(force: boolean): Promise<void> {
    await Promise.all((["wg0", "aes0"] as const).map(async (iface) => {
      const peers = this.peersOf(iface);
      const signature = JSON.stringify(peers);
      if (!force && signature === this.#signature[iface]) return;
      this.#signature[iface] = signature;
      await this.#devices[iface].setFilterTable(this.compile(iface, peers));
    }));
  }

  /** Stops watching (the devices keep their last table until they close). */
  close(): void {
    clearInterval(this.#timer);
  }
}
