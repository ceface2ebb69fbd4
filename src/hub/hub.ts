/**
 * One security hub (`twofold hub`): wg0 (ChaCha20-Poly1305) to the edge nodes, and the DSKE hub
 * service on TCP 51831 on its wg0 address. It carries no application traffic, stores shares in RAM
 * only, and never talks to other hubs. Its id comes from its ingested (hub-role) PSRD blocks.
 * @module
 */
import type { HubConfig } from "../config/hub-config.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import type { RunningInterface } from "../wireguard/interface.ts";
import { startWg0 } from "../node/wg0-bringup.ts";
import { fromHex, toHex } from "../encoding.ts";
import { logger } from "../log.ts";
import { DSKE_PORT, type FrameServer, serveFrames } from "../dske/frame-transport.ts";
import { type HubEvent, HubService } from "../dske/hub-service.ts";
import { PsrdStore } from "../dske/psrd-store.ts";
import { injectForgedPeerFrames } from "../dske/test-faults.ts";
import { hubStartProblem } from "../dske/psrd-provisioning.ts";
import { layerLabel } from "../wireguard/interface-name.ts";

/** A running hub. */
export interface RunningHub {
  /** Its wg0. */
  wg0: RunningInterface;
  /** The hub logic (counters). */
  service: HubService;
  /** Hub id (hex). */
  hubId: string;
  /** Stops everything and wipes the shares. */
  close(reason?: string): Promise<void>;
}

/** Options for {@link startHub}. */
export interface HubOptions {
  /** Called once when the hub stops by itself. */
  onEnded?: (reason: string) => void;
  /**
   * Test-only fault (never in production): "alter-shares" releases altered shares (a lying hub),
   * "collude" releases points of a forged sharing (k such hubs: a consistent forged key), and
   * "inject-peer-frames" sends forged node-to-node frames (KEY_ABORT, KEY_OFFER) for every key id it
   * stores to every peer's wg0 address (a hub attacking the nodes' channel).
   */
  testFault?: HubTestFault;
  /** Hub events (also logged). */
  onEvent?: (e: HubEvent) => void;
}

/** The test-only faults of {@link HubOptions.testFault}. */
export type HubTestFault = "alter-shares" | "collude" | "inject-peer-frames";

/** The fault `TWOFOLD_TEST_FAULT` names for a hub, or undefined (unset or not a hub fault). */
export function hubTestFaultOf(value: string | undefined): HubTestFault | undefined {
  return value === "alter-shares" || value === "collude" || value === "inject-peer-frames"
    ? value
    : undefined;
}

/** Brings up the hub; throws (with everything removed) when anything fails. */
export async function startHub(cfg: HubConfig, opts: HubOptions = {}): Promise<RunningHub> {
  const log = logger(cfg.hub.name);
  // Log lines name a client by its config name: its PSRD block says which node key it belongs to.
  const nameByKeyHex = new Map(cfg.peers.map((p) => [toHex(p.publicKey), p.name]));
  const clientName = (clientId: string, peerHex?: string): string => {
    let key = peerHex;
    try {
      key ??= store.blocks().find((b) => b.role === "hub" && b.clientId === clientId)?.peerId;
    } catch { /* store closed: fall back to the id */ }
    return (key && nameByKeyHex.get(key)) ?? `client ${clientId.slice(0, 8)}`;
  };
  const store: PsrdStore = await PsrdStore.open(cfg.hub.stateDir, {
    onLowWater: (b) => log.warn(`PSRD with ${clientName(b.clientId, b.peerId)} is running low`),
  });
  const blocks = store.blocks().filter((b) => b.role === "hub");
  if (blocks.length === 0) {
    store.close();
    throw new Error(
      `no hub PSRD in ${cfg.hub.stateDir}: create pairs with "twofold psrd new" and ingest the hub copies with ` +
        `"twofold psrd ingest --state-dir ${cfg.hub.stateDir} FILE"`,
    );
  }
  const problem = hubStartProblem(blocks, formatIp(cfg.wg0.address.ip), cfg.hub.stateDir);
  if (problem) {
    store.close();
    throw new Error(problem);
  }
  const hubId = blocks[0].hubId;
  const privateKey = cfg.hub.privateKey;
  if (!privateKey) {
    store.close();
    throw new Error("the hub's private key was not loaded");
  }
  let ended = false;
  let server: FrameServer | null = null;
  let expiry: ReturnType<typeof setInterval> | undefined;
  let service: HubService | null = null;
  let wg0: RunningInterface | null = null;
  const close = async (reason = "stopped") => {
    clearInterval(expiry);
    server?.close();
    service?.clear();
    await wg0?.close(reason);
    store.close();
  };
  const onEnded = (reason: string) => {
    if (ended) return;
    ended = true;
    void close(reason).then(() => opts.onEnded?.(reason));
  };
  try {
    wg0 = await startWg0({
      ifname: cfg.wg0.name,
      uapiDir: cfg.hub.uapiSocketDir,
      mtu: cfg.wg0.mtu,
      address: cfg.wg0.address.text,
      privateKey: privateKey.bytes(),
      listenPort: cfg.wg0.listenPort,
      peers: cfg.peers,
      onEnded,
    });
    service = new HubService({
      hubId: fromHex(hubId),
      store,
      alterShares: opts.testFault === "alter-shares",
      colludeShares: opts.testFault === "collude",
      onEvent: (e) => {
        if (opts.testFault === "inject-peer-frames" && e.type === "share-stored" && e.keyId) {
          const hosts = cfg.peers.map((p) => formatIp(p.wgIp.addr));
          void injectForgedPeerFrames(hosts, fromHex(e.keyId), e.epoch ?? 0);
        }
        const line = `hub ${e.type}${e.keyId ? ` key ${e.keyId.slice(0, 8)}` : ""}${
          e.client ? ` ${clientName(e.client)}` : ""
        }: ${e.reason}`;
        if (e.type === "refused" || e.type === "frame-dropped") log.warn(line);
        else log.debug(line);
        opts.onEvent?.(e);
      },
    });
    const svc = service;
    const address = formatIp(cfg.wg0.address.ip);
    server = serveFrames(address, DSKE_PORT, (frame) => svc.handle(frame));
    expiry = setInterval(() => svc.expire(), 1000);
    log.info(
      `hub ${cfg.hub.name} up: id ${hubId}, ${
        layerLabel("wg0", cfg.wg0.name)
      } ${cfg.wg0.address.text} udp/${wg0.device.listenPort}, DSKE on ` +
        `${address}:${DSKE_PORT}, ${blocks.length} client block(s)${
          opts.testFault ? ` [TEST FAULT: ${opts.testFault}]` : ""
        }`,
    );
    return { wg0, service, hubId, close };
  } catch (e) {
    await close("start-up failed");
    throw e;
  }
}
