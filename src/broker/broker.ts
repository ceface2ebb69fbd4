/**
 * The SKA key broker (`twofold broker`): wg0 (ChaCha20-Poly1305, a pre-shared key on every peer) to
 * the edge nodes, and the key-request service on TCP 51831 at its wg0 address. It opens the root key
 * (PKCS#11 token or lab file) before anything else, so a wrong PIN or missing key label stops it at
 * start with one line. It carries no application traffic and keeps no key material: every answer is
 * derived on request.
 * @module
 */
import type { BrokerConfig } from "../config/broker-config.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import type { RunningInterface } from "../wireguard/interface.ts";
import { startWg0 } from "../node/wg0-bringup.ts";
import { logger } from "../log.ts";
import { openFileRootKey, openPkcs11RootKey, type RootKey } from "../ska/root-key.ts";
import { type BrokerEvent, BrokerService } from "../ska/broker-service.ts";
import { serveSka, SKA_PORT, type SkaServer } from "../ska/transport.ts";

/** A running broker. */
export interface RunningBroker {
  /** Its wg0. */
  wg0: RunningInterface;
  /** The request logic (status). */
  service: BrokerService;
  /** Stops everything and closes the root key. */
  close(reason?: string): Promise<void>;
}

/** Options for {@link startBroker}. */
export interface BrokerOptions {
  /** Called once when the broker stops by itself. */
  onEnded?: (reason: string) => void;
  /** Broker events (also logged). */
  onEvent?: (e: BrokerEvent) => void;
}

/** Opens the configured root key; throws a one-line RootKeyError. */
export function openRootKey(cfg: BrokerConfig): RootKey {
  return "pkcs11" in cfg.rootKey ? openPkcs11RootKey(cfg.rootKey.pkcs11) : openFileRootKey(cfg.rootKey.file);
}

/** Brings up the broker; throws (with everything removed) when anything fails. */
export async function startBroker(cfg: BrokerConfig, opts: BrokerOptions = {}): Promise<RunningBroker> {
  const log = logger(cfg.broker.name);
  const privateKey = cfg.broker.privateKey;
  if (!privateKey) throw new Error("the broker's private key was not loaded");
  const rootKey = openRootKey(cfg);
  let ended = false;
  let server: SkaServer | null = null;
  let wg0: RunningInterface | null = null;
  const close = async (reason = "stopped") => {
    server?.close();
    await wg0?.close(reason);
    rootKey.close();
  };
  const onEnded = (reason: string) => {
    if (ended) return;
    ended = true;
    void close(reason).then(() => opts.onEnded?.(reason));
  };
  try {
    wg0 = await startWg0({
      ifname: cfg.wg0.name,
      uapiDir: cfg.broker.uapiSocketDir,
      mtu: cfg.wg0.mtu,
      address: cfg.wg0.address.text,
      privateKey: privateKey.bytes(),
      listenPort: cfg.wg0.listenPort,
      peers: cfg.peers,
      onEnded,
    });
    const service = new BrokerService({
      peers: cfg.peers.map((p) => ({ name: p.name, publicKey: p.publicKey, wgIp: formatIp(p.wgIp.addr) })),
      rootKey,
      onEvent: (e) => {
        const line = `broker ${e.type} ${e.requester}${e.peer ? ` pair with ${e.peer}` : ""}${
          e.epoch !== undefined ? ` epoch ${e.epoch}` : ""
        }: ${e.reason}`;
        if (e.type === "refused") log.warn(line);
        else log.debug(line);
        opts.onEvent?.(e);
      },
    });
    const address = formatIp(cfg.wg0.address.ip);
    server = serveSka(address, SKA_PORT, (frame, from) => Promise.resolve(service.handle(frame, from)));
    log.info(
      `broker ${cfg.broker.name} up: wg0 ${cfg.wg0.address.text} udp/${wg0.device.listenPort}, SKA on ` +
        `${address}:${SKA_PORT}, root key in ${
          rootKey.kind === "pkcs11" ? "a PKCS#11 token" : "a file (lab)"
        }, ` +
        `${cfg.peers.length} peer(s)`,
    );
    return { wg0, service, close };
  } catch (e) {
    await close("start-up failed");
    throw e;
  }
}
