/**
 * The WireGuard cross-platform UAPI text protocol (https://www.wireguard.com/xplatform/): parsing a
 * `set` request and printing a `get` reply byte-for-byte as wireguard-go does.
 *
 * Deliberate difference from wireguard-go: wireguard-go applies a `set` line by line, so a bad line
 * leaves the earlier lines applied. Here the whole request is parsed and validated first and the device
 * sees it only when every line is valid; a bad line leaves the device untouched. The error numbers are
 * the ones wireguard-go reports for the same input (negated errno values).
 * @module
 */
import { clampPrivateKey } from "../crypto/x25519.ts";
import { EADDRINUSE, EINVAL, EIO, ENOANO, EPROTO } from "../../ffi/errno.ts";
import { canonicalCidr, parseDecimal, parseEndpoint } from "./netaddr.ts";
import type { UapiDeviceSnapshot, UapiPeerChange, UapiSetRequest } from "./types.ts";

/** Negated errno values used on the UAPI, as wireguard-go's `ipc` package defines them (Linux numbering). */
export const UapiErrno = {
  /** -EIO: reading the request failed (wireguard-go: scanner error, e.g. an over-long line). */
  IO: -EIO,
  /** -EPROTO: a line without `=`. */
  PROTOCOL: -EPROTO,
  /** -EINVAL: unknown key, bad value, or more peers or allowed IPs than the device holds (wireguard-go: "failed to create new peer"). */
  INVALID: -EINVAL,
  /** -EADDRINUSE: the listen port (or fwmark rebind) could not be applied. */
  PORT_IN_USE: -EADDRINUSE,
  /** -ENOANO (-55): any other failure (wireguard-go's IpcErrorUnknown). */
  UNKNOWN: -ENOANO,
} as const;

/** A rejected `set` request: a negated errno and a message that never contains key material. */
export interface UapiParseError {
  errno: number;
  message: string;
}

/** True when `parseSet` rejected the request. */
export function isParseError(result: UapiSetRequest | UapiParseError): result is UapiParseError {
  return "errno" in result;
}

const KEY_HEX = /^[0-9a-fA-F]{64}$/;

/** Decodes a 32-byte key written as 64 hex digits (either case), like wireguard-go's `FromHex`. */
function keyFromHex(text: string): Uint8Array | null {
  if (!KEY_HEX.test(text)) return null;
  const key = new Uint8Array(32);
  for (let i = 0; i < 32; i++) key[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return key;
}

const HEX_DIGITS = "0123456789abcdef";

/** 64 lowercase hex digits of a 32-byte key. */
function keyToHex(key: Uint8Array): string {
  let out = "";
  for (const b of key) out += HEX_DIGITS[b >> 4] + HEX_DIGITS[b & 15];
  return out;
}

/** Non-negative integer in plain decimal (never exponent notation). */
function decimal(n: number): string {
  return BigInt(Math.max(0, Math.trunc(n))).toString();
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

function newPeerChange(publicKey: Uint8Array): UapiPeerChange {
  return { publicKey, remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps: [] };
}

/** Applies one device-section line to `req`; returns an error message or null. */
function parseDeviceLine(req: UapiSetRequest, key: string, value: string): string | null {
  switch (key) {
    case "private_key": {
      const sk = keyFromHex(value);
      if (!sk) return "invalid private_key";
      if (!isAllZero(sk)) clampPrivateKey(sk);
      req.privateKey = sk;
      return null;
    }
    case "listen_port": {
      const port = parseDecimal(value, 0xffff);
      if (port === null) return "invalid listen_port";
      req.listenPort = port;
      return null;
    }
    case "fwmark": {
      const mark = parseDecimal(value, 0xffffffff);
      if (mark === null) return "invalid fwmark";
      req.fwmark = mark;
      return null;
    }
    case "replace_peers":
      if (value !== "true") return "invalid replace_peers value";
      req.replacePeers = true;
      return null;
    default:
      return "invalid UAPI device key";
  }
}

/** Applies one peer-section line to `peer`; returns an error message or null. */
function parsePeerLine(peer: UapiPeerChange, key: string, value: string): string | null {
  switch (key) {
    case "update_only":
      if (value !== "true") return "invalid update_only value";
      peer.updateOnly = true;
      return null;
    case "remove":
      if (value !== "true") return "invalid remove value";
      peer.remove = true;
      return null;
    case "preshared_key": {
      const psk = keyFromHex(value);
      if (!psk) return "invalid preshared_key";
      peer.presharedKey = psk;
      return null;
    }
    case "endpoint": {
      const endpoint = parseEndpoint(value);
      if (!endpoint) return "invalid endpoint";
      peer.endpoint = endpoint;
      return null;
    }
    case "persistent_keepalive_interval": {
      const secs = parseDecimal(value, 0xffff);
      if (secs === null) return "invalid persistent_keepalive_interval";
      peer.persistentKeepalive = secs;
      return null;
    }
    case "replace_allowed_ips":
      if (value !== "true") return "invalid replace_allowed_ips value";
      // Lines are ordered: allowed IPs given before this line are dropped again.
      peer.replaceAllowedIps = true;
      peer.allowedIps = [];
      return null;
    case "allowed_ip": {
      const cidr = canonicalCidr(value);
      if (cidr === null) return "invalid allowed_ip";
      peer.allowedIps.push(cidr);
      return null;
    }
    case "protocol_version":
      if (value !== "1") return "invalid protocol_version";
      return null;
    default:
      return "invalid UAPI peer key";
  }
}

/**
 * Parses the body of a UAPI `set` (the lines after `set=1`, without their newlines; an empty line ends
 * the request and anything after it is ignored). Device keys (`private_key`, `listen_port`, `fwmark`,
 * `replace_peers`) are accepted only before the first `public_key`; every `public_key` opens a new peer
 * section. Returns the validated request, or the negated errno wireguard-go would report with a
 * message naming the line (never its value).
 */
export function parseSet(lines: string[]): UapiSetRequest | UapiParseError {
  const req: UapiSetRequest = { replacePeers: false, peers: [] };
  let peer: UapiPeerChange | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === "") break;
    const eq = line.indexOf("=");
    if (eq < 0) return { errno: UapiErrno.PROTOCOL, message: `set line ${i + 1}: missing '='` };
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    let problem: string | null;
    if (key === "public_key") {
      const pk = keyFromHex(value);
      if (!pk) {
        problem = "invalid public_key";
      } else {
        peer = newPeerChange(pk);
        req.peers.push(peer);
        problem = null;
      }
    } else if (peer === null) {
      problem = parseDeviceLine(req, key, value);
    } else {
      problem = parsePeerLine(peer, key, value);
    }
    if (problem !== null) return { errno: UapiErrno.INVALID, message: `set line ${i + 1}: ${problem}` };
  }
  return req;
}

/**
 * Prints a UAPI `get` reply as wireguard-go does, including the final `errno=0` and blank line.
 * Device: `private_key` (omitted when none/zero), `listen_port` (omitted when 0), `fwmark` (omitted when
 * 0). Per peer: `public_key`, `preshared_key`, `protocol_version=1`, `endpoint` (when known),
 * `last_handshake_time_sec`/`_nsec`, `tx_bytes`, `rx_bytes`, `persistent_keepalive_interval`, then one
 * `allowed_ip` per prefix.
 */
export function serializeGet(snap: UapiDeviceSnapshot): string {
  const lines: string[] = [];
  if (snap.privateKey && !isAllZero(snap.privateKey)) lines.push(`private_key=${keyToHex(snap.privateKey)}`);
  if (snap.listenPort !== 0) lines.push(`listen_port=${snap.listenPort}`);
  if (snap.fwmark !== 0) lines.push(`fwmark=${snap.fwmark}`);
  for (const p of snap.peers) {
    lines.push(`public_key=${keyToHex(p.publicKey)}`);
    lines.push(`preshared_key=${keyToHex(p.presharedKey)}`);
    lines.push("protocol_version=1");
    if (p.endpoint !== null) lines.push(`endpoint=${p.endpoint}`);
    const ms = Math.max(0, Math.trunc(p.lastHandshakeMs));
    lines.push(`last_handshake_time_sec=${Math.floor(ms / 1000)}`);
    lines.push(`last_handshake_time_nsec=${(ms % 1000) * 1_000_000}`);
    lines.push(`tx_bytes=${decimal(p.txBytes)}`);
    lines.push(`rx_bytes=${decimal(p.rxBytes)}`);
    lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    for (const cidr of p.allowedIps) lines.push(`allowed_ip=${cidr}`);
  }
  lines.push("errno=0", "", "");
  return lines.join("\n");
}
