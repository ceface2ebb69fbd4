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

Deno.test("dske core: a stopped hub is unreachable and k of n still agree; fewer than k: the round fails and is retried", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.hubs[0].down = true;
    lab.start();
    await lab.clock.advance(0);
    assert.equal(gen.installs.length, 1, "agreed through the 2 hubs left");
    assert.deepEqual(rec.installs, gen.installs);
    const down = toHex(lab.hubs[0].hubId);
    assert.equal(gen.core.hubStatus().find((h) => h.hubId === down)!.reachable, false);
    assert.ok(eventsOf(gen, "hub-unreachable").some((e) => e.hub === down));
    assert.equal(
      rec.core.hubStatus().find((h) => h.hubId === down)!.reachable,
      null,
      "not offered to the recoverer",
    );
    lab.hubs[1].down = true;
    await lab.clock.advance(ROTATION_MS);
    assert.equal(gen.installs.length, 1, "one hub is not enough");
    assert.match(
      eventsOf(gen, "rotation-failed").at(-1)!.reason,
      /^only 1 of 3 hubs stored a share \(k = 2\)/,
    );
    assert.equal(gen.core.status()[0].failed, 1);
    assert.deepEqual(gen.closes, [], "the previous key stays");
    lab.hubs[0].down = false;
    await lab.clock.advance(RETRY_MS - 1);
    assert.equal(gen.installs.length, 1);
    await lab.clock.advance(1);
    assert.equal(gen.installs.length, 2, "retried after the retry delay");
    assert.deepEqual(rec.installs, gen.installs);
  });
});

Deno.test("dske core: a lying hub is named by both sides and keys are still agreed", async () => {
  await withLab({ alter: [2] }, async (lab) => {
    lab.start();
    await lab.clock.advance(0);
    const liar = toHex(lab.hubs[2].hubId);
    for (const n of lab.nodes) {
      assert.equal(n.installs.length, 1);
      for (const h of n.core.hubStatus()) assert.equal(h.misbehaving, h.hubId === liar, `hub ${h.hubId}`);
      assert.deepEqual(eventsOf(n, "hub-misbehaved").map((e) => e.hub), [liar]);
      assert.deepEqual(n.core.status()[0].badHubs, [liar]);
    }
    assert.deepEqual(lab.nodes[1].installs, lab.nodes[0].installs);
    await lab.clock.advance(3 * ROTATION_MS + 1);
    assert.ok(
      lab.nodes[0].core.hubStatus().find((h) => h.hubId === liar)!.misbehaving,
      "named again each round",
    );
  });
});

Deno.test("dske core: two of three hubs lying: shares-inconsistent says how many could be lying, nothing installed", async () => {
  await withLab({ alter: [0, 1] }, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    const e = eventsOf(rec, "shares-inconsistent");
    assert.equal(e.length, 1);
    assert.equal(e[0].lyingAtLeast, 2);
    assert.deepEqual([...e[0].hubs!].sort(), lab.hubs.map((h) => toHex(h.hubId)).sort());
    assert.match(
      rec.core.status()[0].problem!,
      /^shares inconsistent for epoch \d+: no 2 of the 3 shares \(hubs hub-\d \([0-9a-f]{8}\).*at least 2 of these 3 hubs gave a wrong share/,
    );
    assert.match(gen.core.status()[0].problem!, /^peer node-1 found the shares of epoch \d+ inconsistent/);
    for (const n of lab.nodes) {
      assert.deepEqual(n.installs, []);
      assert.deepEqual(n.closes, []);
      assert.equal(n.core.status()[0].failed, 1);
    }
  });
});

Deno.test("dske core: k colluding hubs: key-confirmation-failed names them, nothing installed, nobody named a liar", async () => {
  await withLab({ collude: [0, 1] }, async (lab) => {
    lab.start();
    await lab.clock.advance(0);
    await lab.clock.advance(RETRY_MS);
    const colluders = [toHex(lab.hubs[0].hubId), toHex(lab.hubs[1].hubId)].sort();
    for (const n of lab.nodes) {
      const failed = eventsOf(n, "key-confirmation-failed");
      assert.equal(failed.length, 2, "every round, on both sides");
      for (const e of failed) assert.deepEqual([...e.hubs!].sort(), colluders, "names the colluders");
      assert.deepEqual(n.installs, [], "nothing installed");
      assert.deepEqual(eventsOf(n, "hub-misbehaved"), [], "nobody named a liar");
      assert.ok(n.core.hubStatus().every((h) => !h.misbehaving));
      assert.match(
        n.core.status()[0].problem!,
        /^key confirmation failed for epoch \d+: .*nothing installed/,
      );
    }
  });
});

Deno.test("dske core: a lost KEY_RESULT: the generator installs nothing, the recoverer stays on the key both hold", async () => {
  await withLab({ dropKeyResults: true }, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    assert.equal(gen.installs.length, 1);
    await lab.clock.advance(ROTATION_MS); // the recoverer drops this round's KEY_RESULT
    assert.equal(gen.installs.length, 1, "no confirmation, no install");
    assert.match(eventsOf(gen, "rotation-failed").at(-1)!.reason, /did not complete the exchange/);
    assert.equal(rec.installs.length, 1, "held, not installed");
    assert.equal(rec.core.status()[0].heldEpochs.length, 2);
    await lab.clock.advance(1_500); // no commit: the recoverer asks, and both hold only the old key in common
    assert.equal(rec.installs.length, 1);
    assert.equal(rec.installs.at(-1)!.epoch, gen.installs.at(-1)!.epoch, "no epoch mismatch");
    assert.deepEqual(rec.closes, []);
    await lab.clock.advance(RETRY_MS);
    assert.equal(gen.installs.length, 2, "the retry succeeds");
    assert.deepEqual(rec.installs, gen.installs, "the recoverer followed every generator epoch, same keys");
  });
});

Deno.test("dske core: a lost commit: the recoverer asks after the commit wait; reconcile() catches up on demand", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    gen.dropOutgoing = (type) => type === FrameType.KEY_SYNC;
    lab.start();
    await lab.clock.advance(1_499);
    assert.equal(gen.installs.length, 1);
    assert.deepEqual(rec.installs, [], "no commit yet");
    await lab.clock.advance(1);
    assert.deepEqual(rec.installs, gen.installs, "asked after min(1.5 s, rotation / 2) and installed");
    rec.dropOutgoing = (type) => type === FrameType.KEY_SYNC;
    await lab.clock.advance(ROTATION_MS);
    assert.equal(gen.installs.length, 2);
    assert.equal(rec.installs.length, 1, "cannot hear or ask: stays on the older key");
    rec.dropOutgoing = () => false;
    rec.core.reconcile(gen.publicKey);
    await lab.clock.advance(0);
    assert.deepEqual(rec.installs, gen.installs);
    const moved = eventsOf(rec, "epochs-reconciled").at(-1)!;
    assert.equal(
      moved.reason,
      `moved from epoch ${gen.installs[0].epoch} to ${gen.installs[1].epoch}, the newest both sides hold`,
    );
  });
});

Deno.test("dske core: a restarted recoverer: the generator closes at once and agrees a new key", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    const first = gen.installs[0].epoch;
    await lab.clock.advance(10_000);
    rec.restart();
    await lab.clock.advance(0);
    assert.equal(gen.closes.length, 1);
    assert.match(
      gen.closes[0],
      new RegExp(`^the peer node-1 does not hold key epoch ${first} .*aes0 gate closed`),
    );
    assert.equal(gen.installs.length, 2, "a new round at once");
    assert.deepEqual(rec.installs.at(-1), gen.installs.at(-1));
    assert.ok(gen.installs[1].epoch > first);
  });
});

Deno.test("dske core: a restarted generator: the recoverer closes at once; epochs keep increasing", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    const first = gen.installs[0].epoch;
    gen.restart(); // same second: the epoch counter, not the clock, makes the next epoch newer
    await lab.clock.advance(0);
    assert.equal(rec.closes.length, 1);
    assert.match(rec.closes[0], /^the peer node-0 does not hold key epoch/);
    assert.deepEqual(epochsOf(gen), [first, first + 1]);
    assert.deepEqual(rec.installs, gen.installs);
  });
});

Deno.test("dske core: forged, replayed and misdirected node frames are dropped, counted, reported once per second", async () => {
  await withLab({}, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    const epoch = gen.installs[0].epoch;
    const asGen = derivePeerAuthKeys(gen.privateKey, gen.publicKey, rec.publicKey)!.send;
    const abort = (keyId: Uint8Array, key: Uint8Array) =>
      encodePeerFrame({ type: FrameType.KEY_ABORT, keyId, epoch, reason: ABORT_PSRD_EXHAUSTED }, key);
    const before = rec.core.rejectedFrames();
    const events = eventsOf(rec, "peer-frame-rejected").length;
    const forged = abort(new Uint8Array(KEY_ID_LEN), new Uint8Array(32).fill(9));
    assert.equal(await rec.core.handleFrame(forged, "10.0.0.1"), "close", "a tag under another key");
    assert.equal(
      await rec.core.handleFrame(abort(new Uint8Array(KEY_ID_LEN), asGen), "10.0.0.9"),
      "close",
      "another address",
    );
    assert.equal(
      await rec.core.handleFrame(abort(new Uint8Array(KEY_ID_LEN), asGen), "10.0.0.1"),
      "close",
      "a key not in use",
    );
    const stale = encodePeerFrame(
      { type: FrameType.KEY_SYNC, timeMs: lab.clock.now() - 61_000, epochs: [] },
      asGen,
    );
    assert.equal(await rec.core.handleFrame(stale, "10.0.0.1"), "close", "a replayed KEY_SYNC");
    assert.equal(rec.core.rejectedFrames(), before + 4);
    assert.equal(eventsOf(rec, "peer-frame-rejected").length, events + 1, "reported once within a second");
    assert.deepEqual(rec.closes, [], "never acted on");
    assert.deepEqual(rec.installs, gen.installs);
    await lab.clock.advance(1_000);
    await rec.core.handleFrame(forged, "10.0.0.1");
    const last = eventsOf(rec, "peer-frame-rejected").at(-1)!;
    assert.match(
      last.reason,
      /^dropped \d+ node-to-node frame\(s\) \(5 in all\), latest: from node-0 \(10\.0\.0\.1\): /,
    );
    const fresh = encodePeerFrame(
      { type: FrameType.KEY_SYNC, timeMs: lab.clock.now(), epochs: [epoch] },
      asGen,
    );
    const reply = await rec.core.handleFrame(fresh, "10.0.0.1");
    assert.ok(reply instanceof Uint8Array, "an authenticated KEY_SYNC is answered");
    const keys = derivePeerAuthKeys(gen.privateKey, gen.publicKey, rec.publicKey)!;
    const answer = decodePeerFrame(reply, keys.receive);
    assert.equal(answer.type, FrameType.KEY_SYNC);
    assert.deepEqual(answer.type === FrameType.KEY_SYNC && answer.epochs, [epoch]);
  });
});

Deno.test("dske core: generator PSRD exhausted: both gates close at once (KEY_ABORT), nothing more is sent", async () => {
  // 1024 B to send per hub: 8 generator rounds of SHARE_PUT 96 + SHARE_DELETE 32.
  await withLab({ sizes: (n) => n === 0 ? { c2h: 1024, h2c: 64 * 1024 } : BIG }, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    await lab.clock.advance(8 * ROTATION_MS);
    assert.equal(gen.installs.length, 8, "exactly the rounds the PSRD pays for");
    assert.deepEqual(rec.installs, gen.installs);
    assert.equal(gen.closes.length, 1);
    assert.equal(rec.closes.length, 1);
    assert.match(
      gen.closes[0],
      /^PSRD exhausted: only 0 of 3 hub\(s\) have PSRD left for a generator round, k = 2/,
    );
    assert.match(rec.closes[0], /^PSRD exhausted: the generator node-0 has no PSRD left/);
    for (const n of lab.nodes) assert.ok(eventsOf(n, "psrd-exhausted").some((e) => e.peer !== undefined));
    assert.equal(
      eventsOf(gen, "psrd-exhausted").filter((e) => e.hub !== undefined).length,
      3,
      "each hub once",
    );
    for (const b of gen.store.blocks()) assert.equal(b.txRemaining, 0, "used to the last byte, no wrap");
    const handled = lab.hubs.map((h) => h.service.counters.handled);
    await lab.clock.advance(6 * ROTATION_MS);
    assert.deepEqual(lab.hubs.map((h) => h.service.counters.handled), handled, "no frame after exhaustion");
    assert.equal(gen.closes.length, 1, "closed once");
    assert.equal(rec.installs.length, 8);
  });
});

Deno.test("dske core: recoverer PSRD exhausted: it answers PSRD_LOW and both gates close", async () => {
  // 1024 B to receive per hub: 10 SHARE_GET_RESP of 96 B.
  await withLab({ sizes: (n) => n === 1 ? { c2h: 64 * 1024, h2c: 1024 } : BIG }, async (lab) => {
    const [gen, rec] = lab.nodes;
    lab.start();
    await lab.clock.advance(0);
    await lab.clock.advance(12 * ROTATION_MS);
    assert.equal(rec.installs.length, 10, "exactly the rounds the PSRD pays for");
    assert.deepEqual(rec.installs, gen.installs);
    assert.match(rec.closes[0], /^PSRD exhausted: only 0 of 3 hub\(s\) have PSRD left for a recoverer round/);
    assert.match(gen.closes[0], /^PSRD exhausted: peer node-1 has too little PSRD left/);
    const tx = rec.store.blocks().map((b) => b.txNext);
    const rx = rec.store.blocks().map((b) => b.rxNext);
    await lab.clock.advance(4 * ROTATION_MS);
    assert.deepEqual(rec.store.blocks().map((b) => b.txNext), tx, "the recoverer sends nothing more");
    assert.deepEqual(rec.store.blocks().map((b) => b.rxNext), rx);
    assert.equal(rec.installs.length, 10);
    assert.equal(rec.closes.length, 1);
  });
});

Deno.test("dske core: close stops every timer and wipes the held keys; k below 2 is refused", async () => {
  await withLab({}, async (lab) => {
    lab.start();
    await lab.clock.advance(0);
    assert.ok(lab.clock.pending > 0);
    for (const n of lab.nodes) n.core.close();
    assert.equal(lab.clock.pending, 0);
    for (const n of lab.nodes) assert.deepEqual(n.core.status()[0].heldEpochs, []);
    await lab.clock.advance(10 * ROTATION_MS);
    assert.equal(lab.nodes[0].installs.length, 1, "no round after close");
    const o = lab.nodes[0];
    assert.throws(
      () =>
        new AgreementCore({
          selfPublicKey: o.publicKey,
          selfPrivateKey: o.privateKey,
          peers: [],
          hubs: [],
          k: 1,
          rotationIntervalMs: ROTATION_MS,
          install: () => true,
        }, {
          clock: lab.clock,
          random: seededRandom("x"),
          hub: () => Promise.resolve(null),
          peer: () => Promise.resolve(null),
          epochs: new MemoryEpochs(),
          psrd: o.store,
        }),
      RangeError,
    );
  });
});
