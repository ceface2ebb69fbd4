/**
 * The DSKE agreement core (src/dske/agreement-core.ts and its rounds) on fakes: two cores and three
 * `HubService`s in one process, wired in memory (no socket, no real timer, no sleep), driven by a fake
 * clock, a seeded random source and an in-memory epoch store, with Deno's sanitizers on. The PSRD
 * stores and the hubs are the real ones, so every client ↔ hub frame is sealed, one-time-MAC'd and
 * paid for as in production. k = 2 of 3 hubs; node 0 has the lower key and generates.
 */
import assert from "node:assert/strict";
import { AgreementCore } from "../../src/dske/agreement-core.ts";
import type {
  AgreementClock,
  AgreementCoreOptions,
  DskeEvent,
  EpochStore,
  TimerHandle,
} from "../../src/dske/agreement-types.ts";
import { ABORT_PSRD_EXHAUSTED } from "../../src/dske/agreement-types.ts";
import { TransportError } from "../../src/dske/frame-transport.ts";
import { decodePeerFrame, encodePeerFrame, FrameType, KEY_ID_LEN } from "../../src/dske/frames.ts";
import { type HubLink, hubRequest } from "../../src/dske/hub-client.ts";
import { HubService } from "../../src/dske/hub-service.ts";
import { derivePeerAuthKeys } from "../../src/dske/peer-auth.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { hash } from "../../src/crypto/blake2s.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { toHex } from "../../src/encoding.ts";

const ROTATION_MS = 60_000;
const RETRY_MS = 5_000;
/** Start of the fake clock (unix ms). */
const T0 = 1_800_000_000_000;

/** Lets every pending promise chain run to its end (the fakes never wait on anything else). */
async function settle(): Promise<void> {
  for (let i = 0; i < 2_000; i++) await Promise.resolve();
}

/** A clock whose timers fire only when the test advances it. */
class FakeClock implements AgreementClock {
  t = T0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (in order) and settling after each. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** A deterministic random source (BLAKE2s of a seed and a counter). */
function seededRandom(seed: string): (n: number) => Uint8Array {
  const s = new TextEncoder().encode(seed);
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let pos = 0; pos < n; pos += 32) {
      out.set(
        hash(s, Uint8Array.of(counter >>> 24, counter >>> 16, counter >>> 8, counter++)).subarray(0, n - pos),
        pos,
      );
    }
    return out;
  };
}

/** Epoch counters in memory; counts the writes. */
class MemoryEpochs implements EpochStore {
  data: Record<string, number> = {};
  saves = 0;
  load(): Record<string, number> {
    return { ...this.data };
  }
  save(epochs: Record<string, number>): void {
    this.data = { ...epochs };
    this.saves++;
  }
}

interface FakeHub {
  service: HubService;
  store: PsrdStore;
  hubId: Uint8Array;
  port: number;
  /** Stopped: every request to it fails to connect. */
  down: boolean;
}

interface FakeNode {
  core: AgreementCore;
  store: PsrdStore;
  epochs: MemoryEpochs;
  ip: string;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  installs: { epoch: number; psk: string }[];
  closes: string[];
  events: DskeEvent[];
  /** Drops a node ↔ node frame this node sends when it returns true (a lost message). */
  dropOutgoing: (type: number) => boolean;
  /** Replaces the core by a fresh one (a restart: every agreed key forgotten; epochs kept) and starts it. */
  restart: () => void;
}

interface LabOptions {
  /** PSRD region sizes per node. */
  sizes?: (node: number) => { c2h: number; h2c: number };
  /** Hubs that alter the shares they release (liars). */
  alter?: number[];
  /** Hubs that release a forged sharing derived from the key id (colluders). */
  collude?: number[];
  /** The recoverer (node 1) drops every second KEY_RESULT. */
  dropKeyResults?: boolean;
}

/** Where a frame's type byte is (after magic u16 and version u8). */
const FRAME_TYPE_OFFSET = 3;

const BIG = { c2h: 64 * 1024, h2c: 64 * 1024 };

/** Three hubs and two nodes wired in memory; `run` gets them and cleans everything up afterwards. */
async function withLab(opts: LabOptions, run: (lab: Lab) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dske-core-" });
  const lab = new Lab(opts);
  try {
    await lab.build(dir);
    await run(lab);
  } finally {
    lab.close();
    await Deno.remove(dir, { recursive: true });
  }
}

class Lab {
  readonly clock = new FakeClock();
  readonly hubs: FakeHub[] = [];
  readonly nodes: FakeNode[] = [];
  /** Every install in order, as "node:epoch". */
  readonly installOrder: string[] = [];
  /** The nodes' public keys (node 0 the lower: the generator). */
  keys: Uint8Array[] = [];
  readonly #opts: LabOptions;
  #runs = 0;

  constructor(opts: LabOptions) {
    this.#opts = opts;
  }

  async build(dir: string): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const store = await PsrdStore.open(`${dir}/hub-${i}`, { lowWaterBytes: 0 });
      const hubId = seededRandom(`hub ${i}`)(16);
      const service = new HubService({
        hubId,
        store,
        clock: () => this.clock.now(),
        alterShares: this.#opts.alter?.includes(i),
        colludeShares: this.#opts.collude?.includes(i),
      });
      this.hubs.push({ service, store, hubId, port: 51831 + i, down: false });
    }
    const keys = [0, 1].map(() => {
      const privateKey = generatePrivateKey();
      return { privateKey, publicKey: publicKey(privateKey) };
    }).sort((a, b) => toHex(a.publicKey) < toHex(b.publicKey) ? -1 : 1);
    this.keys = keys.map((k) => k.publicKey);
    for (let n = 0; n < 2; n++) {
      const store = await PsrdStore.open(`${dir}/node-${n}`, { lowWaterBytes: 0 });
      const links: HubLink[] = [];
      for (const [i, h] of this.hubs.entries()) {
        const { c2h, h2c } = (this.#opts.sizes ?? (() => BIG))(n);
        const pair = createPsrdPair({
          hubId: h.hubId,
          hubEndpoint: `10.0.0.${101 + i}:${h.port}`,
          peerId: keys[n].publicKey,
          c2hLen: c2h,
          h2cLen: h2c,
        });
        const b = store.ingest(pair.client);
        h.store.ingest(pair.hub);
        links.push({
          hubId: b.hubId,
          host: `10.0.0.${101 + i}`,
          port: h.port,
          blockId: b.blockId,
          name: `hub-${i}`,
        });
      }
      const node: FakeNode = {
        core: null!,
        store,
        epochs: new MemoryEpochs(),
        ip: `10.0.0.${1 + n}`,
        ...keys[n],
        installs: [],
        closes: [],
        events: [],
        dropOutgoing: () => false,
        restart: () => {
          node.core.close();
          node.core = this.#core(n, links);
          node.core.start();
        },
      };
      this.nodes.push(node);
      node.core = this.#core(n, links);
    }
  }

  #core(n: number, links: HubLink[]): AgreementCore {
    const node = this.nodes[n];
    const opts: AgreementCoreOptions = {
      selfPublicKey: node.publicKey,
      selfPrivateKey: node.privateKey,
      peers: [{ name: `node-${1 - n}`, publicKey: this.keys[1 - n], wgIp: `10.0.0.${2 - n}` }],
      hubs: links,
      k: 2,
      rotationIntervalMs: ROTATION_MS,
      retryDelayMs: RETRY_MS,
      dropKeyResults: n === 1 && this.#opts.dropKeyResults,
      install: (_peer, psk, epoch) => {
        node.installs.push({ epoch, psk: toHex(psk) });
        this.installOrder.push(`${n}:${epoch}`);
        return true;
      },
      closeGate: (_peer, reason) => node.closes.push(reason),
      onEvent: (e) => node.events.push(e),
    };
    return new AgreementCore(opts, {
      clock: this.clock,
      random: seededRandom(`node ${n} run ${++this.#runs}`),
      hub: (hub, request, timeoutMs, expectReply) =>
        hubRequest(node.store, hub, request, timeoutMs, expectReply, (_host, port, frame, _t, expect) => {
          const h = this.hubs.find((x) => x.port === port)!;
          if (h.down) return Promise.reject(new TransportError(`cannot connect to hub ${port}`));
          const reply = h.service.handle(frame);
          if (!expect) return Promise.resolve(null);
          if (!(reply instanceof Uint8Array)) {
            return Promise.reject(new TransportError("closed the connection"));
          }
          return Promise.resolve(reply);
        }),
      peer: async (peer, frame, _timeoutMs, expectReply) => {
        const target = this.nodes.find((x) => x.ip === peer.wgIp)!;
        if (node.dropOutgoing(frame[FRAME_TYPE_OFFSET])) throw new TransportError(`${peer.wgIp}: lost`);
        await Promise.resolve(); // delivered later, as over TCP
        const reply = await target.core.handleFrame(frame, node.ip);
        if (!expectReply) return null;
        if (reply === "close") throw new TransportError(`${peer.wgIp} closed the connection`);
        return reply;
      },
      epochs: node.epochs,
      psrd: node.store,
    });
  }

  start(): void {
    for (const n of this.nodes) n.core.start();
  }

  close(): void {
    for (const n of this.nodes) {
      n.core?.close();
      n.store.close();
    }
    for (const h of this.hubs) h.store.close();
  }
}

const epochsOf = (n: FakeNode) => n.installs.map((i) => i.epoch);
const eventsOf = (n: FakeNode, type: DskeEvent["type"]) => n.events.filter((e) => e.type === type);

Deno.test("dske core: a round agrees one key at one epoch on both sides, generator first, then one per rotation", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    for (const n of lab.nodes) {
      assert.ok(n.core.hubStatus().every((h) => h.reachable === null), "nothing asked yet");
    }
    lab.start();
    await lab.clock.advance(0);
    assert.deepEqual(epochsOf(gen), [T0 / 1000], "epoch = unix seconds");
    assert.deepEqual(rec.installs, gen.installs, "same key, same epoch");
    assert.deepEqual(
      lab.installOrder,
      [`0:${T0 / 1000}`, `1:${T0 / 1000}`],
      "the recoverer installs after the commit",
    );
    assert.equal(gen.epochs.data[toHex(rec.publicKey)], T0 / 1000, "epoch persisted");
    for (const n of lab.nodes) {
      assert.deepEqual(n.closes, []);
      const st = n.core.status()[0];
      assert.equal(st.agreed, 1);
      assert.equal(st.failed, 0);
      assert.equal(st.problem, null);
      for (const h of n.core.hubStatus()) {
        assert.equal(h.reachable, true);
        assert.equal(h.lastAnswerAt, T0);
        assert.equal(h.misbehaving, false);
      }
    }
    assert.equal(gen.core.status()[0].role, "generator");
    assert.equal(rec.core.status()[0].role, "recoverer");
    await lab.clock.advance(ROTATION_MS - 1);
    assert.equal(gen.installs.length, 1, "not before the rotation interval");
    await lab.clock.advance(1);
    await lab.clock.advance(4 * ROTATION_MS);
    assert.equal(gen.installs.length, 6, "one round per rotation interval");
    assert.deepEqual(rec.installs, gen.installs);
    const e = epochsOf(gen);
    assert.ok(e.every((x, i) => i === 0 || x > e[i - 1]), `epochs increase: ${e}`);
    assert.deepEqual(gen.core.status()[0].heldEpochs, e.slice(-4), "the last 4 keys held");
    assert.deepEqual(rec.core.status()[0].heldEpochs, e.slice(-4));
    assert.equal(new Set(gen.installs.map((i) => i.psk)).size, 6, "a fresh key every round");
    for (const h of lab.hubs) assert.equal(h.service.counters.shares, 0, "shares deleted after each round");
  });
});
