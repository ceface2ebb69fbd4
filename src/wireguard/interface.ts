/**
 * Bringing one WireGuard interface up and down: the suite's start-up self-test, the TUN device,
 * the control plane (`Device`), its UAPI socket, the MTU and optional address, and a watcher that
 * ends it when the interface is deleted or its socket removed (as wireguard-go does). Used by
 * `twofold wg` for one interface and by a node for wg0 and aes0 in one process.
 * @module
 */
import { enableTunOffloads, openTun, TUN_F_TSO4, TUN_F_USO4 } from "../../ffi/tun.ts";
import {
  addAddress,
  disableIpv6AutoAddresses,
  getLink,
  getMtu,
  setLinkUp,
  setMtu,
  watchLinkDeleted,
} from "../../ffi/netlink.ts";
import { closeQuietly, EBUSY, EEXIST, EINVAL, SysError } from "../../ffi/libc.ts";
import { aeadBackendInUse } from "../crypto/backend.ts";
import type { Suite } from "../noise/suite.ts";
import { assertSuiteSelfTest } from "../noise/selftest.ts";
import { UapiServer, UapiSocketInUseError } from "../uapi/server.ts";
import { logger } from "../log.ts";
import { Device, type DeviceOptions } from "./device.ts";
import { envChoice } from "../env.ts";
import { type OffloadMode, offloadsWanted } from "./offload/offload-mode.ts";
import { type DataplaneOffloads, NO_OFFLOADS } from "./dataplane/worker-protocol.ts";

/** Default TUN MTU, as wireguard-go. */
export const DEFAULT_MTU = 1420;

/**
 * The interface name is taken: a link of that name exists (held by another process, or not a TUN
 * device at all, e.g. a kernel WireGuard), or another daemon answers on its UAPI socket (possibly from
 * another network namespace: the socket directory is shared). The message ends with the fix: set the
 * config field that names the interface, or (without one) stop the other or pick another name.
 */
export class InterfaceInUseError extends Error {
  /** `ifname` is the name asked for; `socket` the UAPI socket that answers, when that is the clash. */
  constructor(readonly ifname: string, readonly socket: string | null, nameField?: string) {
    const fix = nameField
      ? `set ${nameField} in the config to a name no other interface on this host uses`
      : "stop the other one or pick another name";
    super(
      socket !== null
        ? `interface ${ifname} is already run by another daemon: its UAPI socket ${socket} answers ` +
          `(another twofold or WireGuard on this host, maybe in another namespace?); ${fix}`
        : `interface ${ifname} already exists (another twofold or WireGuard on this host?); ${fix}`,
    );
    this.name = "InterfaceInUseError";
  }
}

/** Errnos of TUNSETIFF that mean "a link of that name exists and is not ours to attach to". */
const TUN_NAME_TAKEN = new Set([EBUSY, EINVAL, EEXIST]);

/** What to bring up. */
export interface InterfaceOptions {
  /** Interface name (also the UAPI socket name). */
  ifname: string;
  /** The config field that sets `ifname` (e.g. "wg0.name"), named in the error when the name is taken. */
  nameField?: string;
  /** Cipher suite (self-tested before anything is created). */
  suite: Suite;
  /** TUN MTU (default 1420). The operator may change it later; padding follows. */
  mtu?: number;
  /** Whether the data plane may use the kernel's offloads (default "auto"; TWOFOLD_OFFLOADS=off overrides). */
  offloads?: OffloadMode;
  /** Address to add and bring the link up with (e.g. "100.64.0.1/10"); none = leave it to wg-quick. */
  address?: string;
  /** Extra device options (bind address, PSK policy, events). */
  device?: Pick<
    DeviceOptions,
    | "bindAddress"
    | "bindDevice"
    | "pskPolicy"
    | "onEvent"
    | "rekeyAfterTimeMs"
    | "onFilterDrop"
    | "packetFilter"
    | "handoff"
    | "workers"
  >;
  /** UAPI socket directory (default /var/run/wireguard). */
  uapiDir?: string;
  /** Called once when the interface ends by itself (deleted, socket removed, worker failure). */
  onEnded?: (reason: string) => void;
}

/** A running interface. */
export interface RunningInterface {
  /** The control plane. */
  device: Device;
  /** UAPI socket path. */
  uapiPath: string;
  /**
   * Packets the kernel dropped because the TUN queue was full (the data plane did not read them in
   * time): the link's `tx_dropped`. 0 once the interface is gone.
   */
  tunQueueDrops(): number;
  /** Stops everything and removes the interface; idempotent. */
  close(reason?: string): Promise<void>;
}

/**
 * Self-tests the suite, creates the TUN and the UAPI socket and starts the device. On any failure
 * everything created so far is removed and the error (with a message naming the problem) is thrown.
 */
export async function startInterface(opts: InterfaceOptions): Promise<RunningInterface> {
  const { ifname, suite } = opts;
  const log = logger(ifname);
  const report = assertSuiteSelfTest(suite);
  log.debug(`self-test passed in ${report.elapsedMs.toFixed(1)} ms`);
  const wanted = offloadsWanted(opts.offloads ?? "auto", envChoice("TWOFOLD_OFFLOADS"));
  let tun;
  try {
    tun = openTun(ifname, { nonBlocking: true, vnetHdr: wanted });
  } catch (e) {
    if (e instanceof SysError && TUN_NAME_TAKEN.has(e.errno)) {
      throw new InterfaceInUseError(ifname, null, opts.nameField);
    }
    throw new Error(`cannot create TUN interface ${ifname}: ${(e as Error).message}`);
  }
  let device: Device | undefined;
  let uapi: UapiServer | undefined;
  let watcher: { close(): void } | undefined;
  let mtuTimer: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  let up = false;
  const close = async (reason = "stopped") => {
    if (closed) return;
    closed = true;
    // An interface that never came up says nothing: the start-up error is the one line that matters.
    (up ? log.info : log.debug)(`shutting down: ${reason}`);
    clearInterval(mtuTimer);
    watcher?.close();
    await uapi?.close().catch(() => {});
    await device?.close().catch(() => {});
    closeQuietly(tun.fd);
  };
  const ended = (reason: string) => {
    if (closed) return;
    void close(reason).then(() => opts.onEnded?.(reason));
  };
  let offloads: DataplaneOffloads = NO_OFFLOADS;
  try {
    if (wanted) offloads = { vnetHdr: true, bits: enableTunOffloads(tun.fd, { uso: true }), udp: true };
    device = new Device({
      ifname,
      suite,
      tunFd: tun.fd,
      dataplaneOffloads: offloads,
      log,
      ...opts.device,
      onFatal: ended,
    });
    uapi = await UapiServer.listen(ifname, device, {
      dir: opts.uapiDir,
      onRemoved: () => ended("UAPI socket removed"),
      log: (m) => log.warn(m),
    });
    // No automatic IPv6 link-local address: it would make the kernel route IPv6 (router and neighbour
    // solicitations) into the tunnel, where no peer's allowed IPs match (txNoRoute drops). Addresses
    // configured explicitly are unaffected. A host without IPv6 has nothing to disable.
    try {
      disableIpv6AutoAddresses(ifname);
    } catch (e) {
      log.debug(`IPv6 automatic addresses not disabled: ${(e as Error).message}`);
    }
    try {
      setMtu(ifname, opts.mtu ?? DEFAULT_MTU);
    } catch (e) {
      if (opts.mtu !== undefined) throw e; // an explicit MTU must apply
    }
    if (opts.address) {
      addAddress(ifname, opts.address);
      setLinkUp(ifname);
    }
    const dev = device;
    dev.setMtu(currentMtu(ifname, opts.mtu));
    mtuTimer = setInterval(() => dev.setMtu(currentMtu(ifname, opts.mtu)), 1000);
    watcher = watchLinkDeleted(ifname, () => ended(`interface ${ifname} was deleted`));
  } catch (e) {
    await close("start-up failed");
    if (e instanceof UapiSocketInUseError) throw new InterfaceInUseError(ifname, e.path, opts.nameField);
    throw e;
  }
  up = true;
  log.info(
    `interface ${ifname} up: ${suite.construction}, AEAD ${suite.aead.name} (${
      aeadBackendInUse() ?? suite.aead.backend
    }), self-test ok, offloads ${describeOffloads(offloads)}, UAPI ${uapi.path}`,
  );
  const tunQueueDrops = () => {
    try {
      return getLink(ifname)?.txDropped ?? 0;
    } catch {
      return 0;
    }
  };
  return { device, uapiPath: uapi.path, tunQueueDrops, close };
}

/** The TUN offloads in force, for the start-up log line ("off", "TSO", "TSO+USO", "none accepted"). */
function describeOffloads(t: DataplaneOffloads): string {
  if (!t.vnetHdr) return "off";
  const udp = t.udp ? ", UDP GSO/GRO where accepted" : "";
  if ((t.bits & TUN_F_USO4) !== 0) return `TSO+USO${udp}`;
  if ((t.bits & TUN_F_TSO4) !== 0) return `TSO${udp}`;
  return `none accepted${udp}`;
}

function currentMtu(ifname: string, fallback = DEFAULT_MTU): number {
  try {
    return getMtu(ifname);
  } catch {
    return fallback;
  }
}
