/**
 * Rosenpass inside `twofold up`: the thin shell between the Rosenpass worker (all protocol and KEM
 * work, off the main isolate), one UDP socket on the underlay (`rosenpass.listenPort`, all addresses,
 * outside wg0 — so the wg0 lockdown list is not involved) and the wg0 PSKs ({@link RosenpassPskManager}).
 * Replies go to where the datagram came from; a peer's endpoint is learned from the source of a
 * completed exchange, and until then is the peer's wg0 endpoint address with this node's Rosenpass
 * port. Datagrams from a known peer endpoint are served first by the worker's admission.
 *
 * Test-only knob: `TWOFOLD_TEST_ROSENPASS_TIMERS` (JSON, e.g. `{"rekeyAfterResponder":3,
 * "rekeyAfterInitiator":3.5,"rejectAfter":12,"wg0RekeyAfterSeconds":2}`) shortens the protocol timers
 * and wg0's rekey interval (so the rotated PSKs are used within the test). Never set it in production.
 * @module
 */
import dgram from "node:dgram";
import type { NodeConfig } from "../config/node-config.ts";
import type { Logger } from "../log.ts";
import { RosenpassWorkerClient, type RosenpassWorkerCounters } from "../rosenpass/worker-client.ts";
import type { RosenpassAction, RosenpassTimers } from "../rosenpass/server.ts";
import { type PqEvent, type PqPeerStatus, RosenpassPskManager, type Wg0PskTarget } from "./rosenpass-psk.ts";

/** The environment variable of the test-only timer knob. */
export const ROSENPASS_TEST_TIMERS_ENV = "TWOFOLD_TEST_ROSENPASS_TIMERS";

/** Largest Rosenpass datagram accepted (RespHello, the largest message, is 1132 B). */
const MAX_DATAGRAM = 2048;

/** A running Rosenpass part. */
export interface RosenpassPart {
  /** Post-quantum status per peer name (managed or not). */
  status(name: string): PqPeerStatus | undefined;
  /** The worker's front-door counters (admission, drops). */
  counters(): RosenpassWorkerCounters;
  /** Stops the worker and closes the socket; wipes held keys. */
  close(): void;
}

/** Builds the PSK manager for `cfg` (before wg0 starts: its PSK policy goes into the device). */
export function rosenpassPskManagerFor(
  cfg: NodeConfig,
  target: Wg0PskTarget,
  onEvent: (e: PqEvent) => void,
): RosenpassPskManager {
  return new RosenpassPskManager(
    target,
    cfg.peers.map((p) => ({
      name: p.name,
      publicKey: p.publicKey,
      mode: cfg.rosenpass.node ? cfg.rosenpass.peers.get(p.name)?.mode ?? "off" : "off",
    })),
    {
      random: (n) => crypto.getRandomValues(new Uint8Array(n)),
      clock: Date.now,
      onEvent,
    },
  );
}

/** Options of {@link startRosenpassPart}. */
export interface RosenpassPartOptions {
  config: NodeConfig;
  manager: RosenpassPskManager;
  log: Logger;
  /** The peer's current wg0 endpoint address (learned or configured), or null. */
  wg0EndpointAddress: (peerName: string) => string | null;
}

interface Source {
  address: string;
  port: number;
}

/** Strips the IPv4-mapped prefix a dual-stack socket reports. */
function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** The test-only knob's contents: shorter Rosenpass timers and wg0 rekey interval. */
export type RosenpassTestKnob = Partial<RosenpassTimers> & { wg0RekeyAfterSeconds?: number };

let knobLogged = false;

/** Reads the test-only knob (undefined when unset; logged once as a test knob). */
export function rosenpassTestKnob(log: Logger): RosenpassTestKnob | undefined {
  const text = Deno.env.get(ROSENPASS_TEST_TIMERS_ENV);
  if (!text) return undefined;
  if (!knobLogged) {
    log.warn(`[TEST KNOB: Rosenpass timers ${text}] (${ROSENPASS_TEST_TIMERS_ENV}, tests only)`);
  }
  knobLogged = true;
  return JSON.parse(text) as RosenpassTestKnob;
}

function testTimers(log: Logger): Partial<RosenpassTimers> | undefined {
  const knob = rosenpassTestKnob(log);
  if (!knob) return undefined;
  const { wg0RekeyAfterSeconds: _, ...timers } = knob;
  return timers;
}

async function openSocket(port: number): Promise<dgram.Socket> {
  const bind = (socket: dgram.Socket, address: string) =>
    new Promise<dgram.Socket>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, address, () => {
        socket.off("error", reject);
        resolve(socket);
      });
    });
  try {
    return await bind(dgram.createSocket({ type: "udp6", ipv6Only: false }), "::");
  } catch {
    return await bind(dgram.createSocket("udp4"), "0.0.0.0");
  }
}

/**
 * Starts Rosenpass for the managed peers of `opts.config` (nothing when the node has no Rosenpass key
 * or no managed peer: returns null). Every managed peer's wg0 PSK is made random first (fail closed).
 */
export async function startRosenpassPart(opts: RosenpassPartOptions): Promise<RosenpassPart | null> {
  const { config: cfg, manager, log } = opts;
  const node = cfg.rosenpass.node;
  const managed = manager.managedPeers();
  if (node === null || managed.length === 0 || !node.secretKey || !node.publicKey) {
    node?.secretKey?.fill(0); // not needed: no peer is managed
    return null;
  }
  manager.closeAll();
  const learned = new Map<string, Source>();
  const endpointOf = (peer: string): Source | null => {
    const known = learned.get(peer);
    if (known) return known;
    const address = opts.wg0EndpointAddress(peer);
    return address ? { address, port: node.listenPort } : null;
  };
  const knownAddress = (address: string) => managed.some((p) => endpointOf(p)?.address === address);
  let socket: dgram.Socket | null = null;
  const send = (message: Uint8Array, to: Source) => {
    socket?.send(message, to.port, to.address, (err) => {
      if (err) log.debug(`rosenpass: send to ${to.address}:${to.port} failed: ${err.message}`);
    });
  };
  const onActions = (actions: RosenpassAction[], context?: unknown) => {
    const source = context as Source | undefined;
    for (const a of actions) {
      if (a.kind === "send") {
        const to = source ?? endpointOf(a.peer);
        if (to) send(a.message, to);
      } else if (a.kind === "key-exchanged") {
        if (source) learned.set(a.peer, source);
        manager.keyExchanged(a.peer, a.key);
        a.key.fill(0);
      } else if (a.kind === "key-stale") {
        manager.keyStale(a.peer);
      } else if (a.kind === "handshake-failed") {
        manager.handshakeFailed(a.peer, a.reason);
      }
    }
  };
  const client = await RosenpassWorkerClient.start({
    profile: node.profile,
    secretKey: node.secretKey,
    publicKey: node.publicKey,
    peers: managed.map((name) => ({ id: name, publicKey: cfg.rosenpass.peers.get(name)!.publicKey! })),
    timers: testTimers(log),
  }, { onActions });
  node.secretKey.fill(0); // the worker holds its copy
  try {
    socket = await openSocket(node.listenPort);
  } catch (e) {
    client.close();
    throw new Error(`rosenpass: cannot bind UDP port ${node.listenPort} (${(e as Error).message})`);
  }
  socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    if (msg.length > MAX_DATAGRAM) return;
    const address = plainAddress(rinfo.address);
    client.datagram(address, knownAddress(address), new Uint8Array(msg), { address, port: rinfo.port });
  });
  socket.on("error", (e: Error) => log.warn(`rosenpass: socket error: ${e.message}`));
  client.tick(); // peers without a key start their first exchange now
  log.info(
    `rosenpass (${node.profile}) on udp/${node.listenPort} for ${managed.length} peer(s): ${
      managed.map((n) => `${n} ${manager.status(n)!.mode}`).join(", ")
    }; their wg0 PSKs are random until the first exchange`,
  );
  return {
    status: (name) => manager.status(name),
    counters: () => ({ ...client.counters }),
    close: () => {
      client.close();
      socket?.close();
      manager.close();
    },
  };
}
