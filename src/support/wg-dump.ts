/**
 * `wg show all dump` for the support bundle, built from the devices' UAPI snapshots in process, in
 * the tool's tab-separated layout, with the secrets replaced: an interface's private key and every
 * peer's pre-shared key print as `(redacted)` when set (`(none)` when not), so a reader still sees
 * whether a PSK is installed. Public keys, endpoints, allowed IPs, handshakes and counters stay.
 * @module
 */
import { publicKey as derivePublicKey } from "../crypto/x25519.ts";
import { encodeBase64 } from "../encoding.ts";
import type { UapiDeviceSnapshot } from "../uapi/types.ts";

/** What a set secret prints as. */
export const DUMP_REDACTED = "(redacted)";
/** What an unset key or value prints as (as `wg` does). */
export const DUMP_NONE = "(none)";

/** One interface to dump. */
export interface DumpInterface {
  /** Interface name. */
  name: string;
  /** Its UAPI snapshot (the secret fields are only tested for being set). */
  snapshot: UapiDeviceSnapshot;
}

function isSet(b: Uint8Array | null): boolean {
  return b !== null && b.some((x) => x !== 0);
}

/**
 * The dump of `interfaces`: per interface one line `name private-key public-key listen-port fwmark`,
 * then per peer `name public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive`
 * (handshake in unix seconds, 0 = never; keepalive `off` when 0), as `wg show all dump` prints them.
 */
export function formatWgDump(interfaces: readonly DumpInterface[]): string {
  const lines: string[] = [];
  for (const { name, snapshot: s } of interfaces) {
    const priv = s.privateKey;
    const pub = priv && isSet(priv) ? encodeBase64(derivePublicKey(priv)) : DUMP_NONE;
    lines.push(
      [name, isSet(priv) ? DUMP_REDACTED : DUMP_NONE, pub, s.listenPort, s.fwmark === 0 ? "off" : s.fwmark]
        .join("\t"),
    );
    for (const p of s.peers) {
      lines.push([
        name,
        encodeBase64(p.publicKey),
        isSet(p.presharedKey) ? DUMP_REDACTED : DUMP_NONE,
        p.endpoint ?? DUMP_NONE,
        p.allowedIps.length > 0 ? p.allowedIps.join(",") : DUMP_NONE,
        Math.floor(p.lastHandshakeMs / 1000),
        p.rxBytes,
        p.txBytes,
        p.persistentKeepalive === 0 ? "off" : p.persistentKeepalive,
      ].join("\t"));
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
