/**
 * A fake {@link AdminBackend} for the admin API tests: a fixed node with three peers (an open AES
 * peer, a DSKE peer whose gate is closed, an AES-exempt peer) and one hub, on a real
 * {@link EventBus}. It holds generated secret strings the way a node holds keys, and never returns
 * them; the tests check that no response contains any of them.
 * @module
 */
import { EventBus } from "../../src/events/bus.ts";
import type {
  AdminBackend,
  LockdownPort,
  LockdownState,
  NodeCounters,
  NodeStatus,
  PeerRoute,
  PeerStatus,
} from "../../src/admin/model.ts";
import { encodeBase64, toHex } from "../../src/encoding.ts";

const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));

/** A fake node backend; fields are public so tests can steer it. */
export class FakeBackend implements AdminBackend {
  /** The real bus the app streams. */
  readonly events: EventBus;
  /** Secret strings the fake "holds" (private key, PSK, PSRD) in the forms a leak would take. */
  readonly secrets: string[];
  /** Current lockdown list. */
  ports: LockdownPort[] = [];
  /** When set, the next setLockdown throws this message. */
  failNextSet: string | null = null;
  /** When set, status() throws this (an internal error). */
  statusThrows: Error | null = null;
  /** Calls of setLockdown. */
  setCalls = 0;
  /** Peers reported by status(). */
  peers: PeerStatus[];
  /** aes0's listen port. */
  aesPort = 51830;
  /** When set (the default), status() objects carry undeclared secret fields, as a sloppy node might. */
  leakySecrets = true;

  /** Creates the fake with fresh secrets and a bus of `historySize`. */
  constructor(historySize = 100) {
    this.events = new EventBus({ historySize });
    this.secrets = SECRETS;
    this.peers = [peer("alice", "open"), peer("bob", "closed", "dske"), exempt("carol")];
  }

  /** Sets every AES peer's gate state. */
  setGates(state: "closed" | "open" | "stale"): void {
    for (const p of this.peers) {
      if (p.aes0) p.aes0.gate = { state, reason: `test set ${state}`, mismatchSuspected: false };
    }
  }

  status(): NodeStatus {
    if (this.statusThrows) throw this.statusThrows;
    const iface = (name: string, port: number) => ({
      name,
      cipherSuite: name === "aes0"
        ? "Noise_IKpsk2_25519_AESGCM_BLAKE2s"
        : "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
      aead: name === "aes0" ? "AES-256-GCM" : "ChaCha20-Poly1305",
      aeadBackend: "noble",
      listenPort: port,
      mtu: name === "aes0" ? 1360 : 1420,
      address: name === "aes0" ? "100.96.0.1/16" : "100.64.0.1/10",
      publicKey: PUB.node,
    });
    const peers = structuredClone(this.peers);
    if (this.leakySecrets) {
      // A sloppy node leaves secret fields on its objects: the API must answer declared fields only.
      const p0 = peers[0] as unknown as Record<string, Record<string, unknown>>;
      if (p0) p0.presharedKey = encodeBase64(psk) as never;
      if (p0?.aes0) p0.aes0.psk = toHex(psk);
    }
    const node = {
      name: "node-a",
      publicKey: PUB.node,
      version: "0.1.0",
      startedAt: "2025-01-01T00:00:00.000Z",
      uptimeSeconds: 42,
    };
    const wg0 = iface("wg0", 51820);
    if (this.leakySecrets) {
      Object.assign(node, { privateKey: encodeBase64(priv) });
      Object.assign(wg0, { privateKeyHex: toHex(priv), psrd: toHex(psrd) });
    }
    return {
      node,
      interfaces: { wg0, aes0: iface("aes0", this.aesPort) },
      peers,
      dske: {
        threshold: 2,
        rotationIntervalSeconds: 120,
        rejectedPeerFrames: 0,
        hubs: [{
          name: "hub-1",
          hubId: "0a0b",
          endpoint: "100.64.0.101:51831",
          reachable: true,
          lastAnswerAgeSeconds: 4.2,
          misbehaving: false,
          psrd: { txRemaining: 4096, rxRemaining: 2048, low: false },
        }],
      },
      lockdown: this.lockdown(),
      netmap: null,
      routes: { advertise: ["192.168.10.0/24"], accept: "all" },
    };
  }

  counters(): NodeCounters {
    return {
      drops: { wg0: { replay: 3, "no-session": 1 }, aes0: { gate_closed: 7 } },
      rotations: { bob: { ok: 5, failed: 2 } },
    };
  }

  routes(): PeerRoute[] {
    return [];
  }

  lockdown(): LockdownState {
    return { ports: this.ports.map((p) => ({ ...p })), enforced: false };
  }

  setLockdown(ports: LockdownPort[]): Promise<LockdownState> {
    this.setCalls++;
    if (this.failNextSet !== null) {
      const msg = this.failNextSet;
      this.failNextSet = null;
      return Promise.reject(new Error(msg));
    }
    this.ports = ports.map((p) => ({ ...p }));
    return Promise.resolve(this.lockdown());
  }
}

const PUB = { node: encodeBase64(rand(32)) };
const [priv, psk, psrd] = [rand(32), rand(32), rand(48)];
/** Generated secrets every FakeBackend holds (one set per test process). */
export const SECRETS: string[] = [
  encodeBase64(priv),
  toHex(priv),
  encodeBase64(psk),
  toHex(psk),
  toHex(psrd),
  encodeBase64(psrd),
];

function layer(rx: number, tx: number) {
  return {
    endpoint: "192.0.2.2:51820",
    allowedIps: ["100.64.0.2/32"],
    lastHandshake: "2025-01-01T00:00:30.000Z",
    lastHandshakeAgeSeconds: 12,
    rxBytes: rx,
    txBytes: tx,
  };
}

function peer(name: string, gate: "open" | "closed", keySource: "manual" | "dske" = "manual"): PeerStatus {
  return {
    name,
    publicKey: encodeBase64(rand(32)),
    role: "peer",
    aes: true,
    wg0: {
      ...layer(1234, 5678),
      psk: { source: "rosenpass", epoch: 2, ageSeconds: 30 },
      pq: { mode: "strict", state: "exchanged", epoch: 2, ageSeconds: 30, exchanges: 2 },
    },
    aes0: {
      ...layer(111, 222),
      keySource,
      gate: {
        state: gate,
        reason: gate === "open" ? "agreed key installed" : "no agreed key yet",
        mismatchSuspected: false,
      },
      keyEpoch: gate === "open" ? 3 : null,
      keyAgeSeconds: gate === "open" ? 17 : null,
      lastHandshakeEpoch: gate === "open" ? 3 : null,
      keyLimits: keySource === "manual"
        ? { rotationIntervalSeconds: null, maxAgeSeconds: null }
        : { rotationIntervalSeconds: 120, maxAgeSeconds: 360 },
      dske: keySource === "dske"
        ? {
          role: "generator",
          lastEpoch: null,
          rotationsOk: 5,
          rotationsFailed: 2,
          badHubs: [],
          problem: null,
          heldEpochs: [],
        }
        : null,
    },
    routes: { advertised: [], accepted: [] },
  };
}

function exempt(name: string): PeerStatus {
  return {
    name,
    publicKey: encodeBase64(rand(32)),
    role: "peer",
    aes: false,
    wg0: {
      ...layer(10, 20),
      psk: { source: "static", epoch: null, ageSeconds: null },
      pq: { mode: "off", state: "off", epoch: null, ageSeconds: null, exchanges: 0 },
    },
    aes0: null,
    routes: { advertised: ["192.168.40.0/24"], accepted: ["192.168.40.0/24"] },
  };
}

/** The admin token the tests use (a generated secret too: it must never be echoed). */
export const TEST_TOKEN = "tok-" + toHex(rand(16));

/** Every response body the helpers saw, for the no-secrets check. */
export const seenBodies: string[] = [];

/** Something with Hono's `request`. */
export interface Requestable {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** Sends a request to `app`, records the body and returns status, headers, text and JSON (if any). */
export async function call(
  app: Requestable,
  method: string,
  path: string,
  opts: { token?: string | null; json?: unknown; body?: string; contentType?: string | null } = {},
): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> }> {
  const headers = new Headers();
  const token = opts.token === undefined ? TEST_TOKEN : opts.token;
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) body = JSON.stringify(opts.json);
  const ct = opts.contentType === undefined
    ? (body !== undefined ? "application/json" : null)
    : opts.contentType;
  if (ct !== null) headers.set("Content-Type", ct);
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  seenBodies.push(text);
  for (const [k, v] of res.headers) seenBodies.push(`${k}: ${v}`);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}
