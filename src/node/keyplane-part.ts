/**
 * The node's automatic key planes: DSKE through security hubs (PSRD pools checked against the hub
 * peers, hubs named as the config names them), the SKA broker client, and for `ska+dske` peers the
 * combiner both planes hand their keys to and the TCP 51831 listener they share. Each plane installs
 * its keys into the aes0 gate.
 * @module
 */
import type { NodeConfig, PeerConfig } from "../config/node-config.ts";
import { usesDske } from "../config/key-source.ts";
import { formatIp } from "../wireguard/allowedips.ts";
import type { PskGate } from "../keys/psk-gate.ts";
import type { DskeAgreement, DskeEvent } from "../dske/agreement.ts";
import type { PsrdStore } from "../dske/psrd-store.ts";
import type { SkaAgreement } from "../ska/agreement.ts";
import { startNodeSka } from "../ska/node-ska.ts";
import { openSharedKeyplaneListener, planeInstall, startCombiner } from "../keyplane/node-keyplanes.ts";
import type { KeyplaneListener } from "../keyplane/keyplane-listener.ts";
import type { PskCombiner } from "../keyplane/psk-combiner.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import { toHex } from "../encoding.ts";
import { psrdHubProblem } from "./preflight.ts";
import type { NodeEventTranslator } from "./node-events.ts";

/** The running key planes. */
export interface KeyplanePart {
  /** DSKE key agreement, when any AES peer's key source uses it. */
  dske: DskeAgreement | null;
  /** PSRD pools (client role), when DSKE runs. */
  psrd: PsrdStore | null;
  /** SKA key agreement, when any AES peer's key source uses it. */
  ska: SkaAgreement | null;
  /** Stops every plane (newest first) and closes the PSRD pools. */
  close(): void;
}

/** What {@link startKeyplanePart} needs. */
export interface KeyplanePartOptions {
  config: NodeConfig;
  /** The node's AES peers. */
  aesPeers: PeerConfig[];
  /** The aes0 gate the planes install into. */
  gate: PskGate;
  /** The node's static private key. */
  privateKey: Uint8Array;
  events: EventBus;
  translator: NodeEventTranslator;
  log: Logger;
  /** Every DSKE event, after it is logged and published. */
  onDskeEvent?: (e: DskeEvent) => void;
}

/** Starts the planes the config uses; on failure the ones already started are closed. */
export async function startKeyplanePart(opts: KeyplanePartOptions): Promise<KeyplanePart> {
  const { config: cfg, aesPeers, gate, log } = opts;
  const part: KeyplanePart & { combiner: PskCombiner | null; listener: KeyplaneListener | null } = {
    dske: null,
    psrd: null,
    ska: null,
    combiner: null,
    listener: null,
    close() {
      part.dske?.close();
      part.ska?.close();
      part.listener?.close();
      part.combiner?.close();
      part.psrd?.close();
    },
  };
  try {
    // ska+dske peers: both planes hand their keys to the combiner; both planes share TCP 51831.
    part.combiner = startCombiner(aesPeers, gate, log);
    part.listener = openSharedKeyplaneListener(cfg, aesPeers, log);
    await startDske(opts, part);
    part.ska = startNodeSka(cfg, aesPeers, gate, opts.events, log, undefined, {
      install: planeInstall(gate, part.combiner, "ska"),
      connections: part.listener?.source("ska"),
    });
    return part;
  } catch (e) {
    part.close();
    throw e;
  }
}

async function startDske(
  opts: KeyplanePartOptions,
  part: KeyplanePart & { combiner: PskCombiner | null; listener: KeyplaneListener | null },
): Promise<void> {
  const { config: cfg, log } = opts;
  const dskePeers = opts.aesPeers.filter((p) => usesDske(p.keySource));
  if (dskePeers.length === 0) return;
  // DSKE's modules (agreement, hub client, PSRD pools) load only when a peer uses it.
  const [{ DskeAgreement }, { hubLinksFor }, { PsrdStore }] = await Promise.all([
    import("../dske/agreement.ts"),
    import("../dske/hub-client.ts"),
    import("../dske/psrd-store.ts"),
  ]);
  /** Hub id (hex) → the hub's config name, once the PSRD blocks are matched to the hub peers. */
  const hubNameById = new Map<string, string>();
  const hubName = (hubId: string) => hubNameById.get(hubId) ?? hubId.slice(0, 8);
  const store = part.psrd = await PsrdStore.open(cfg.node.stateDir, {
    onLowWater: (b) => {
      log.warn(`PSRD with hub ${hubName(b.hubId)} is running low: ${b.txRemaining} B left to send`);
      opts.events.publish({
        type: "psrd-low",
        hub: b.hubId,
        reason: `PSRD with hub ${hubName(b.hubId)} is below its low-water mark`,
        data: { txRemaining: b.txRemaining, rxRemaining: b.rxRemaining },
      });
    },
  });
  // Only blocks made for this node's key count; a foreign one (another node's copy) is named.
  const problem = psrdHubProblem(cfg, store.blocks());
  if (problem) throw new Error(problem);
  const selfHex = toHex(cfg.node.publicKey!);
  const hubPeers = cfg.peers.filter((p) => p.role === "hub");
  const links = hubLinksFor(
    store.blocks().filter((b) => b.peerId === selfHex),
    hubPeers.map((h) => formatIp(h.wgIp.addr)),
  );
  for (const h of hubPeers) {
    const link = links.get(formatIp(h.wgIp.addr));
    if (!link) continue;
    link.name = h.name; // DSKE's messages name the hub as the config does
    hubNameById.set(link.hubId, h.name);
  }
  const dropKeyResults = Deno.env.get("TWOFOLD_TEST_FAULT") === "drop-key-result";
  if (dropKeyResults) {
    log.warn("[TEST FAULT: drops every second KEY_RESULT] (TWOFOLD_TEST_FAULT, tests only)");
  }
  const gate = opts.gate;
  part.dske = new DskeAgreement({
    selfPublicKey: cfg.node.publicKey!,
    selfPrivateKey: opts.privateKey,
    dropKeyResults,
    listenHost: formatIp(cfg.wg0.address.ip),
    peers: dskePeers.map((p) => ({ name: p.name, publicKey: p.publicKey, wgIp: formatIp(p.wgIp.addr) })),
    hubs: [...links.values()],
    k: cfg.keys.dskeThreshold,
    rotationIntervalMs: cfg.keys.rotationIntervalSeconds * 1000,
    stateDir: cfg.node.stateDir,
    store,
    install: planeInstall(gate, part.combiner, "dske"),
    connections: part.listener?.source("dske"),
    closeGate: (peer, reason) => gate.close(peer, reason),
    onEvent: (e) => {
      opts.translator.dskeEvent(e, hubName);
      opts.onDskeEvent?.(e);
    },
  });
  part.dske.start();
}
