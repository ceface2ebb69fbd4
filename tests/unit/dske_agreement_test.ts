/**
 * DSKE key agreement in one process over loopback: two `DskeAgreement`s (127.0.0.2 and 127.0.0.3) and
 * three in-process hubs (`HubService` behind `serveFrames` on 127.0.0.1), k = 2. Covers the per-hub
 * status the admin API shows, a lying hub, a stopped hub, and PSRD exhaustion on either side: the gate
 * closes at once (not at the maximum key age), `psrd-exhausted` is reported, and no further frame is
 * sent on a used-up block.
 */
import assert from "node:assert/strict";
import { DskeAgreement, type DskeEvent } from "../../src/dske/agreement.ts";
import { type FrameServer, requestFrame, serveFrames } from "../../src/dske/frame-transport.ts";
import { encodePeerFrame, FrameType } from "../../src/dske/frames.ts";
import type { HubLink } from "../../src/dske/hub-client.ts";
import { HubService } from "../../src/dske/hub-service.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { toHex } from "../../src/encoding.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";

const ROTATION_MS = 150;

interface Node {
  agreement: DskeAgreement;
  store: PsrdStore;
  installs: { epoch: number; psk: string }[];
  closes: string[];
  events: DskeEvent[];
  /** Replaces the agreement by a fresh one (a restart: every agreed key forgotten) and starts it. */
  restart: () => Promise<void>;
}

interface Hub {
  service: HubService;
  store: PsrdStore;
  server: FrameServer | null;
  port: number;
  hubId: Uint8Array;
  alter: boolean;
}

/** Picks a TCP port free on both peer-channel addresses. */
function freePort(): number {
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.2", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    try {
      Deno.listen({ hostname: "127.0.0.3", port }).close();
      return port;
    } catch {
      // taken on the other address: try another
    }
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Builds 3 hubs and 2 nodes; PSRD regions per (node, hub) from `sizes(nodeIndex)`. Node 0 has the lower
 * key, so it generates.
 */
async function lab(
  dir: string,
  sizes: (node: number) => { c2h: number; h2c: number },
  opts: {
    /** Hubs that alter the shares they release (liars). */
    alter?: number[];
    /** Hubs that release a forged sharing derived from the key id (colluders). */
    collude?: number[];
    /** The recoverer (node 1) drops every second KEY_RESULT. */
    dropKeyResults?: boolean;
    /** Source address node frames must come from (default 127.0.0.1, where loopback sends from). */
    source?: string;
  } = {},
) {
  const hubs: Hub[] = [];
  for (let i = 0; i < 3; i++) {
    const store = await PsrdStore.open(`${dir}/hub-${i}`, { lowWaterBytes: 0 });
    const hubId = crypto.getRandomValues(new Uint8Array(16));
    const alter = opts.alter?.includes(i) ?? false;
    const service = new HubService({
      hubId,
      store,
      alterShares: alter,
      colludeShares: opts.collude?.includes(i),
    });
    const server = serveFrames("127.0.0.1", 0, (f) => service.handle(f));
    hubs.push({ service, store, server, port: server.addr.port, hubId, alter });
  }
  // Real X25519 key pairs (the node-to-node frame keys come from their Diffie-Hellman); node 0 has the
  // lower public key, so it generates.
  const pairs = [generatePrivateKey(), generatePrivateKey()].map((priv) => ({ priv, pub: publicKey(priv) }))
    .sort((a, b) => toHex(a.pub) < toHex(b.pub) ? -1 : 1);
  const keys = pairs.map((p) => p.pub);
  const port = freePort();
  const nodes: Node[] = [];
  for (let n = 0; n < 2; n++) {
    const store = await PsrdStore.open(`${dir}/node-${n}`, { lowWaterBytes: 0 });
    const links: HubLink[] = [];
    for (const h of hubs) {
      const { c2h, h2c } = sizes(n);
      const pair = createPsrdPair({
        hubId: h.hubId,
        hubEndpoint: `127.0.0.1:${h.port}`,
        peerId: keys[n],
        c2hLen: c2h,
        h2cLen: h2c,
      });
      const b = store.ingest(pair.client);
      h.store.ingest(pair.hub);
      links.push({ hubId: b.hubId, host: "127.0.0.1", port: h.port, blockId: b.blockId });
    }
    const node: Node = { agreement: null!, store, installs: [], closes: [], events: [], restart: null! };
    node.restart = async () => {
      node.agreement.close();
      node.agreement = make();
      for (let tries = 0;; tries++) {
        try {
          node.agreement.start();
          return;
        } catch (e) {
          if (!(e instanceof Deno.errors.AddrInUse) || tries > 50) throw e;
          await sleep(50); // the old listener lets go of the port
        }
      }
    };
    const make = () =>
      new DskeAgreement({
        selfPublicKey: keys[n],
        selfPrivateKey: pairs[n].priv,
        expectedSource: () => opts.source ?? "127.0.0.1", // loopback: every connection comes from 127.0.0.1
        dropKeyResults: n === 1 && opts.dropKeyResults,
        listenHost: `127.0.0.${2 + n}`,
        port,
        peers: [{ name: `node-${1 - n}`, publicKey: keys[1 - n], wgIp: `127.0.0.${3 - n}` }],
        hubs: links,
        k: 2,
        rotationIntervalMs: ROTATION_MS,
        retryDelayMs: ROTATION_MS,
        stateDir: `${dir}/node-${n}`,
        store,
        install: (_peer, psk, epoch) => {
          node.installs.push({ epoch, psk: toHex(psk) });
          return true;
        },
        closeGate: (_peer, reason) => node.closes.push(reason),
        onEvent: (e) => node.events.push(e),
      });
    node.agreement = make();
    nodes.push(node);
  }
  const close = async () => {
    for (const n of nodes) n.agreement.close();
    for (const h of hubs) h.server?.close();
    await sleep(50);
    for (const n of nodes) n.store.close();
    for (const h of hubs) h.store.close();
  };
  return { hubs, nodes, close, port };
}

const BIG = { c2h: 64 * 1024, h2c: 64 * 1024 };

Deno.test({
  name: "DSKE agreement over loopback: hub status, faults, PSRD exhaustion fails closed",
  // In-flight hub requests of a closed agreement may still be settling when the test ends.
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "dske-agreement-" });
  try {
    await t.step("keys agreed on both sides; hubStatus: reachable, not misbehaving", async () => {
      const { hubs, nodes, close } = await lab(`${dir}/1`, () => BIG);
      try {
        for (const n of nodes) {
          const st = n.agreement.hubStatus();
          assert.equal(st.length, 3);
          for (const s of st) assert.equal(s.reachable, null, "nothing asked yet");
        }
        for (const n of nodes) n.agreement.start();
        assert.ok(
          await waitFor(() => nodes.every((n) => n.installs.length >= 2), 5_000),
          "two rounds agreed",
        );
        const common = nodes[1].installs.map((i) => `${i.epoch}/${i.psk}`);
        for (const i of nodes[0].installs) {
          assert.ok(common.includes(`${i.epoch}/${i.psk}`), "same key, same epoch");
        }
        for (const n of nodes) {
          const st = n.agreement.hubStatus();
          assert.deepEqual(
            st.map((s) => s.endpoint).sort(),
            hubs.map((h) => `127.0.0.1:${h.port}`).sort(),
          );
          assert.deepEqual(st.map((s) => s.hubId).sort(), hubs.map((h) => toHex(h.hubId)).sort());
          for (const s of st) {
            assert.equal(s.reachable, true);
            assert.equal(s.misbehaving, false);
            assert.match(s.blockId, /^[0-9a-f]{32}$/);
          }
          assert.deepEqual(n.closes, []);
        }
      } finally {
        await close();
      }
    });

    await t.step("a lying hub is named misbehaving; a stopped hub becomes unreachable", async () => {
      const { hubs, nodes, close } = await lab(`${dir}/2`, () => BIG, { alter: [2] });
      try {
        for (const n of nodes) n.agreement.start();
        const liar = toHex(hubs[2].hubId);
        const named = (n: Node) => n.agreement.hubStatus().find((s) => s.hubId === liar)!.misbehaving;
        assert.ok(await waitFor(() => named(nodes[0]) && named(nodes[1]), 5_000), "both sides name the liar");
        assert.ok(nodes[0].installs.length >= 1, "keys are still agreed");
        for (const n of nodes) {
          for (const s of n.agreement.hubStatus().filter((s) => s.hubId !== liar)) {
            assert.equal(s.misbehaving, false, "honest hubs are not named");
          }
        }
        hubs[0].server!.close();
        hubs[0].server = null;
        const down = toHex(hubs[0].hubId);
        const reach = (n: Node) => n.agreement.hubStatus().find((s) => s.hubId === down)!.reachable;
        assert.ok(await waitFor(() => reach(nodes[0]) === false, 5_000), "the stopped hub is unreachable");
      } finally {
        await close();
      }
    });

    await t.step("generator PSRD exhausted: both gates close at once, nothing more is sent", async () => {
      // 1024 B to send per hub: 8 generator rounds of SHARE_PUT 96 + SHARE_DELETE 32.
      const { hubs, nodes, close } = await lab(
        `${dir}/3`,
        (n) => n === 0 ? { c2h: 1024, h2c: 64 * 1024 } : BIG,
      );
      try {
        for (const n of nodes) n.agreement.start();
        assert.ok(
          await waitFor(() => nodes.every((n) => n.closes.length > 0), 10_000),
          `both gates closed: ${nodes.map((n) => n.closes.length)}`,
        );
        assert.equal(nodes[0].installs.length, 8, "exactly the rounds the PSRD pays for");
        assert.equal(nodes[1].installs.length, 8);
        assert.match(nodes[0].closes[0], /^PSRD exhausted: only 0 of 3 hub\(s\) have PSRD left/);
        assert.match(nodes[1].closes[0], /^PSRD exhausted: the generator node-0 has no PSRD left/);
        for (const n of nodes) {
          assert.ok(
            n.events.some((e) => e.type === "psrd-exhausted" && e.peer !== undefined),
            "psrd-exhausted names the peer",
          );
        }
        assert.equal(
          nodes[0].events.filter((e) => e.type === "psrd-exhausted" && e.hub !== undefined).length,
          3,
          "each used-up hub reported once",
        );
        for (const b of nodes[0].store.blocks()) {
          assert.equal(b.txRemaining, 0, "used to the last byte, no wrap");
        }
        const handled = hubs.map((h) => h.service.counters.handled);
        const txNext = nodes[0].store.blocks().map((b) => b.txNext);
        await sleep(6 * ROTATION_MS);
        assert.deepEqual(hubs.map((h) => h.service.counters.handled), handled, "no frame after exhaustion");
        assert.deepEqual(nodes[0].store.blocks().map((b) => b.txNext), txNext);
        assert.equal(nodes[0].closes.length, 1, "closed once");
        assert.equal(nodes[1].installs.length, 8);
      } finally {
        await close();
      }
    });

    await t.step("recoverer PSRD exhausted: it answers PSRD_LOW and both gates close", async () => {
      // 1024 B to receive per hub: 10 SHARE_GET_RESP of 96 B.
      const { nodes, close } = await lab(`${dir}/4`, (n) => n === 1 ? { c2h: 64 * 1024, h2c: 1024 } : BIG);
      try {
        for (const n of nodes) n.agreement.start();
        assert.ok(
          await waitFor(() => nodes.every((n) => n.closes.length > 0), 10_000),
          `both gates closed: ${nodes.map((n) => n.closes.length)}`,
        );
        assert.equal(nodes[1].installs.length, 10, "exactly the rounds the PSRD pays for");
        assert.match(
          nodes[1].closes[0],
          /^PSRD exhausted: only 0 of 3 hub\(s\) have PSRD left for a recoverer/,
        );
        assert.match(nodes[0].closes[0], /^PSRD exhausted: peer node-1 has too little PSRD left/);
        const rx = nodes[1].store.blocks().map((b) => b.rxNext);
        const tx = nodes[1].store.blocks().map((b) => b.txNext);
        await sleep(4 * ROTATION_MS);
        assert.deepEqual(
          nodes[1].store.blocks().map((b) => b.txNext),
          tx,
          "the recoverer sends nothing more",
        );
        assert.deepEqual(nodes[1].store.blocks().map((b) => b.rxNext), rx);
        assert.equal(nodes[1].installs.length, 10);
      } finally {
        await close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The epochs a node installed, in order. */
const epochsOf = (n: Node) => n.installs.map((i) => i.epoch);

Deno.test({
  name: "DSKE agreement over loopback: forged frames, collusion, inconsistent shares, lost results, restarts",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "dske-agreement-faults-" });
  try {
    await t.step("frames from another address or under another key are dropped and counted", async () => {
      const { nodes, close } = await lab(`${dir}/1`, () => BIG, { source: "127.0.0.9" });
      try {
        for (const n of nodes) n.agreement.start();
        assert.ok(
          await waitFor(() => nodes.every((n) => n.agreement.rejectedFrames() >= 1), 5_000),
          "every node frame comes from 127.0.0.1, not the peer's address: dropped",
        );
        await sleep(3 * ROTATION_MS);
        for (const n of nodes) {
          assert.deepEqual(n.installs, [], "nothing installed");
          assert.deepEqual(n.closes, [], "nothing closed");
        }
        assert.ok(nodes.some((n) => n.events.some((e) => e.type === "peer-frame-rejected")), "reported");
      } finally {
        await close();
      }
      const ok = await lab(`${dir}/1b`, () => BIG);
      try {
        for (const n of ok.nodes) n.agreement.start();
        assert.ok(await waitFor(() => ok.nodes[1].installs.length >= 1, 5_000), "agreed");
        const before = ok.nodes[1].agreement.rejectedFrames();
        const installs = ok.nodes[1].installs.length;
        // A forged KEY_ABORT for the key in use, tagged under a key that is not the pair's.
        const keyId = new Uint8Array(16);
        const forged = encodePeerFrame(
          { type: FrameType.KEY_ABORT, keyId, epoch: ok.nodes[1].installs.at(-1)!.epoch, reason: 4 },
          new Uint8Array(32).fill(9),
        );
        await requestFrame("127.0.0.3", ok.port, forged, 1_000, false);
        assert.ok(await waitFor(() => ok.nodes[1].agreement.rejectedFrames() > before, 2_000), "counted");
        assert.deepEqual(ok.nodes[1].closes, [], "never acted on");
        assert.ok(await waitFor(() => ok.nodes[1].installs.length > installs, 5_000), "rounds go on");
      } finally {
        await ok.close();
      }
    });

    await t.step(
      "k colluding hubs: key-confirmation-failed, nothing installed, no honest hub named",
      async () => {
        const { hubs, nodes, close } = await lab(`${dir}/2`, () => BIG, { collude: [0, 1] });
        try {
          for (const n of nodes) n.agreement.start();
          const failed = (n: Node) => n.events.filter((e) => e.type === "key-confirmation-failed");
          assert.ok(
            await waitFor(() => nodes.every((n) => failed(n).length >= 2), 5_000),
            "both sides report it",
          );
          const colluders = [toHex(hubs[0].hubId), toHex(hubs[1].hubId)].sort();
          for (const e of failed(nodes[1])) {
            assert.deepEqual([...e.hubs!].sort(), colluders, "names the colluders");
          }
          for (const e of failed(nodes[0])) {
            assert.deepEqual([...e.hubs!].sort(), colluders);
          }
          for (const n of nodes) {
            assert.deepEqual(n.installs, [], "nothing installed");
            assert.ok(n.events.every((e) => e.type !== "hub-misbehaved"), "nobody named a liar");
            assert.ok(n.agreement.hubStatus().every((h) => !h.misbehaving));
            assert.match(n.agreement.status()[0].problem ?? "", /^key confirmation failed for epoch \d+/);
          }
        } finally {
          await close();
        }
      },
    );

    await t.step("two of three hubs lying: shares-inconsistent says how many could be lying", async () => {
      const { hubs, nodes, close } = await lab(`${dir}/3`, () => BIG, { alter: [0, 1] });
      try {
        for (const n of nodes) n.agreement.start();
        const inconsistent = () => nodes[1].events.find((e) => e.type === "shares-inconsistent");
        assert.ok(await waitFor(() => inconsistent() !== undefined, 5_000));
        const e = inconsistent()!;
        assert.equal(e.lyingAtLeast, 2);
        assert.deepEqual([...e.hubs!].sort(), hubs.map((h) => toHex(h.hubId)).sort());
        assert.match(
          nodes[1].agreement.status()[0].problem!,
          /^shares inconsistent for epoch \d+: no 2 of the 3 shares .* at least 2 of these 3 hubs gave a wrong share/,
        );
        const generatorSays = () => nodes[0].agreement.status()[0].problem ?? "";
        assert.ok(
          await waitFor(() => /found the shares of epoch \d+ inconsistent/.test(generatorSays()), 3_000),
        );
        for (const n of nodes) assert.deepEqual(n.installs, []);
      } finally {
        await close();
      }
    });

    await t.step("lost KEY_RESULTs: neither side ever installs a key the other does not hold", async () => {
      const { nodes, close } = await lab(`${dir}/4`, () => BIG, { dropKeyResults: true });
      try {
        for (const n of nodes) n.agreement.start();
        assert.ok(await waitFor(() => nodes[0].installs.length >= 4, 10_000), "rounds still succeed");
        await sleep(ROTATION_MS);
        const gen = epochsOf(nodes[0]);
        const rec = epochsOf(nodes[1]);
        for (const e of rec) {
          assert.ok(gen.includes(e), `recoverer epoch ${e} is one the generator installed`);
        }
        assert.ok(
          gen.slice(0, -1).every((e) => rec.includes(e)),
          `the recoverer followed every generator epoch: ${gen} / ${rec}`,
        );
        assert.ok(nodes[0].events.some((e) => e.type === "rotation-failed"), "some rounds lost their result");
        const common = nodes[1].installs.map((i) => `${i.epoch}/${i.psk}`);
        for (const i of nodes[0].installs.filter((i) => rec.includes(i.epoch))) {
          assert.ok(common.includes(`${i.epoch}/${i.psk}`), "same key, same epoch");
        }
      } finally {
        await close();
      }
    });

    await t.step("a restarted recoverer: the generator closes at once and agrees a new key", async () => {
      const { nodes, close } = await lab(`${dir}/5`, () => BIG);
      try {
        for (const n of nodes) n.agreement.start();
        assert.ok(await waitFor(() => nodes[1].installs.length >= 1, 5_000));
        const before = nodes[1].installs.length;
        await nodes[1].restart();
        assert.ok(
          await waitFor(() => nodes[0].closes.some((r) => /does not hold key epoch/.test(r)), 5_000),
          `the generator closes the gate for the key the restarted peer lost: ${nodes[0].closes}`,
        );
        assert.ok(await waitFor(() => nodes[1].installs.length > before, 5_000), "a new key agreed");
        const last = nodes[1].installs.at(-1)!;
        assert.ok(nodes[0].installs.some((i) => i.epoch === last.epoch && i.psk === last.psk));
      } finally {
        await close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
