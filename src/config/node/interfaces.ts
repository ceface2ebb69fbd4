/**
 * The `wg0` and `aes0` sections: interface names, ports, MTUs and addresses, and the rules between
 * them (different names and ports, the aes0 MTU derived from wg0's, wg0 outside the AES subnet).
 * @module
 */
import { z } from "zod";
import { type Cidr, formatCidr, formatIp, parseCidr } from "../../wireguard/allowedips.ts";
import { INTERFACE_NAME_RULE, isValidInterfaceName } from "../../wireguard/interface-name.ts";
import { FieldProblem, quote } from "../zod-errors.ts";
import { inside, portField, sameBytes, splitAddress } from "./fields.ts";
import type { InterfaceAddress, NodeConfig } from "../node-config.ts";
import { WG_NETWORK } from "../wg-network.ts";
import { OFFLOAD_MODES } from "../../wireguard/offload/offload-mode.ts";

export { WG_NETWORK };

/** Default outer interface name. */
export const DEFAULT_WG_NAME = "wg0";
/** Default inner interface name. */
export const DEFAULT_AES_NAME = "aes0";
/** Default wg0 UDP port. */
export const DEFAULT_WG_PORT = 51820;
/** Default aes0 UDP port (bound to the node's wg0 address). */
export const DEFAULT_AES_PORT = 51830;
/** Default wg0 MTU. */
export const DEFAULT_WG_MTU = 1420;
/** Default AES subnet. */
export const DEFAULT_AES_SUBNET = "100.127.0.0/16";
/** Smallest aes0 MTU: the IPv6 minimum, so any inner packet fits. */
export const MIN_AES_MTU = 1280;
/**
 * Bytes an aes0 datagram adds inside wg0: IPv4 header (wg0 addresses are IPv4) + UDP + WireGuard data
 * header + tag.
 */
export const AES_OVERHEAD = 20 + 8 + 16 + 16;
/** Smallest wg0 MTU that leaves aes0 {@link MIN_AES_MTU}. */
export const MIN_WG_MTU = MIN_AES_MTU + AES_OVERHEAD;
/** Largest wg0 MTU (jumbo frames). */
export const MAX_WG_MTU = 9000;

const interfaceName = (fallback: string) => z.string().default(fallback);

/**
 * `offloads`: "auto" (default) lets the data plane use the kernel's TUN and UDP offloads where the
 * kernel accepts them (docs/offload.md); "off" keeps one packet per system call.
 */
const offloadsField = z.enum(OFFLOAD_MODES).default("auto");

/** Schema of the `wg0` section. */
export const wg0Section = z.strictObject({
  name: interfaceName(DEFAULT_WG_NAME),
  listenPort: portField(DEFAULT_WG_PORT),
  /** Absent with a `netmap` (the map gives it); required without one (node/netmap.ts checks). */
  address: z.string().optional(),
  mtu: z.int()
    .min(MIN_WG_MTU, {
      error:
        `must be at least ${MIN_WG_MTU}, so that aes0 keeps ${MIN_AES_MTU} (the IPv6 minimum) after its ` +
        `${AES_OVERHEAD}-byte overhead; the default is ${DEFAULT_WG_MTU}`,
    })
    .max(MAX_WG_MTU, { error: `must be at most ${MAX_WG_MTU}; the default is ${DEFAULT_WG_MTU}` })
    .default(DEFAULT_WG_MTU),
  offloads: offloadsField,
});

/** Schema of the `aes0` section. */
export const aes0Section = z.strictObject({
  name: interfaceName(DEFAULT_AES_NAME),
  listenPort: portField(DEFAULT_AES_PORT),
  /** Absent with a `netmap`; {@link DEFAULT_AES_SUBNET} without one. */
  subnet: z.string().optional(),
  /** Absent with a `netmap` (the map gives it); required without one (node/netmap.ts checks). */
  address: z.string().optional(),
  mtu: z.int().optional(),
  offloads: offloadsField,
});

/** Both interface sections as written (defaults applied). */
export interface RawInterfaces {
  wg0: z.output<typeof wg0Section>;
  aes0: z.output<typeof aes0Section>;
}

/** Both interface sections with the node's addresses known (given, or a map node's stand-ins). */
export interface AddressedInterfaces {
  wg0: RawInterfaces["wg0"] & { address: string };
  aes0: RawInterfaces["aes0"] & { address: string };
}

/** The resolved interfaces plus the node's own addresses, which the peer rules check against. */
export interface ResolvedInterfaces {
  wg0: NodeConfig["wg0"];
  aes0: NodeConfig["aes0"];
  /** This node's wg0 address. */
  wgAddr: Uint8Array;
  /** This node's aes0 address. */
  aesAddr: Uint8Array;
}

/** An interface name under the kernel's and wg's rules; returns it. */
function checkInterfaceName(field: string, name: string, fallback: string): string {
  if (!isValidInterfaceName(name)) {
    throw new FieldProblem(
      field,
      `${quote(name)} is not a usable interface name (${INTERFACE_NAME_RULE}); the default is "${fallback}"`,
    );
  }
  return name;
}

function interfaceAddress(ip: Uint8Array, prefixLength: number): InterfaceAddress {
  return { family: ip.length === 4 ? 4 : 6, ip, prefixLength, text: `${formatIp(ip)}/${prefixLength}` };
}

/** `wg0`: the address must carry a prefix, lie in {@link WG_NETWORK} and be no wider than it. */
function resolveWg0(raw: AddressedInterfaces["wg0"]): NodeConfig["wg0"] {
  const wgNetwork = parseCidr(WG_NETWORK);
  const wgAddr = splitAddress("wg0.address", raw.address, "an address such as 100.64.0.1/10");
  if (wgAddr.bits === null) {
    // No silent default: the prefix decides which peers are on-link, so the operator states it.
    throw new FieldProblem(
      "wg0.address",
      `${quote(raw.address)} needs a prefix length; write ${formatIp(wgAddr.ip)}/${wgNetwork.bits}`,
    );
  }
  const wgBits = wgAddr.bits;
  if (!inside(wgAddr.ip, wgNetwork)) {
    throw new FieldProblem(
      "wg0.address",
      `${quote(raw.address)} is outside ${WG_NETWORK}; pick an address in 100.64.0.0-100.127.255.255`,
    );
  }
  if (wgBits < wgNetwork.bits) {
    throw new FieldProblem(
      "wg0.address",
      `prefix /${wgBits} is wider than ${WG_NETWORK}; use /${wgNetwork.bits}`,
    );
  }
  return {
    name: checkInterfaceName("wg0.name", raw.name, DEFAULT_WG_NAME),
    listenPort: raw.listenPort,
    address: interfaceAddress(wgAddr.ip, wgBits),
    mtu: raw.mtu,
    offloads: raw.offloads,
  };
}

/** `aes0.subnet`: a prefix without host bits. */
function resolveSubnet(text: string): Cidr {
  const subnetParts = splitAddress("aes0.subnet", text, "a subnet such as 100.127.0.0/16");
  if (subnetParts.bits === null) {
    throw new FieldProblem("aes0.subnet", `${quote(text)} needs a prefix length, e.g. 100.127.0.0/16`);
  }
  const subnet = parseCidr(text);
  if (!sameBytes(subnet.addr, subnetParts.ip)) {
    throw new FieldProblem("aes0.subnet", `${quote(text)} has host bits set; use ${formatCidr(subnet)}`);
  }
  return subnet;
}

/** `aes0.mtu`: given (at most wg0.mtu − overhead, at least {@link MIN_AES_MTU}) or derived. */
function resolveAesMtu(given: number | undefined, wgMtu: number): number {
  const overhead = AES_OVERHEAD;
  const derivedMtu = wgMtu - overhead;
  if (given === undefined) return derivedMtu;
  if (given > derivedMtu) {
    throw new FieldProblem(
      "aes0.mtu",
      `${given} does not fit inside wg0 (wg0.mtu ${wgMtu} - ${overhead} = ${derivedMtu}); ` +
        `set it to ${derivedMtu} or less, or omit it to derive it`,
    );
  }
  if (given < MIN_AES_MTU) {
    throw new FieldProblem(
      "aes0.mtu",
      `${given} is below ${MIN_AES_MTU} (IPv6 minimum); raise it or omit it to derive ${derivedMtu}`,
    );
  }
  return given;
}

/** `aes0`, checked against the resolved wg0. */
function resolveAes0(raw: AddressedInterfaces["aes0"], wg0: NodeConfig["wg0"]): NodeConfig["aes0"] {
  if (raw.listenPort === wg0.listenPort) {
    throw new FieldProblem(
      "aes0.listenPort",
      `${raw.listenPort} equals wg0.listenPort; give the two interfaces different ports`,
    );
  }
  const subnet = resolveSubnet(raw.subnet ?? DEFAULT_AES_SUBNET);
  const subnetText = formatCidr(subnet);
  const aesAddr = splitAddress("aes0.address", raw.address, "an address such as 100.127.0.1/16");
  if (!inside(aesAddr.ip, subnet)) {
    throw new FieldProblem(
      "aes0.address",
      `${formatIp(aesAddr.ip)} is outside aes0.subnet ${subnetText}; pick an address inside the subnet`,
    );
  }
  if (aesAddr.bits !== null && aesAddr.bits !== subnet.bits) {
    throw new FieldProblem(
      "aes0.address",
      `prefix /${aesAddr.bits} differs from aes0.subnet ${subnetText}; write /${subnet.bits} or omit it`,
    );
  }
  if (inside(wg0.address.ip, subnet)) {
    throw new FieldProblem(
      "wg0.address",
      `${formatIp(wg0.address.ip)} is inside aes0.subnet ${subnetText}, so it would be routed into aes0; ` +
        "pick a wg0 address outside the AES subnet",
    );
  }
  const mtu = resolveAesMtu(raw.mtu, wg0.mtu);
  const aesName = checkInterfaceName("aes0.name", raw.name, DEFAULT_AES_NAME);
  if (aesName === wg0.name) {
    throw new FieldProblem(
      "aes0.name",
      `"${aesName}" is also wg0.name; give the two interfaces different names`,
    );
  }
  return {
    name: aesName,
    listenPort: raw.listenPort,
    subnet,
    address: interfaceAddress(aesAddr.ip, subnet.bits),
    mtu,
    mtuDerived: raw.mtu === undefined,
    offloads: raw.offloads,
  };
}

/** Resolves `wg0` then `aes0` (the order of their checks is the order of the messages). */
export function resolve(raw: AddressedInterfaces): ResolvedInterfaces {
  const wg0 = resolveWg0(raw.wg0);
  const aes0 = resolveAes0(raw.aes0, wg0);
  return { wg0, aes0, wgAddr: wg0.address.ip, aesAddr: aes0.address.ip };
}
