/**
 * Load on the admin API, in process and on loopback: `startAdminServer` on 127.0.0.1 (TCP, so every
 * request carries the token) serving a NodeAdminBackend over a live fake node (its byte counters move,
 * its gate rotates, events are published all the time). 10 000 `GET /v1/status` requests and 100
 * event subscribers that stay connected for 30 s. Asserts: no error, every subscriber sees every event
 * published while it is connected exactly once and in order, RSS grows by less than 20 MB after warm-up,
 * and the bus is back to its own listeners once the subscribers are gone (test sanitizers on: no
 * leaked ops, resources or timers).
 *
 * Memory is measured in the same quiet state before and after the measured run (subscribers connected,
 * publishing paused for 2 s, two full garbage collections, freed C heap returned with malloc_trim), so
 * that it shows what is kept, not how far V8 lets garbage pile up between collections or how much freed
 * memory the allocator holds on to. Without a warm-up of the same load, RSS still climbs for the first
 * ~20 s (JIT, buffer pools) and falls later, so the warm-up is 10 000 requests and 20 s of events.
 * Forcing a collection needs `--v8-flags=--expose-gc`: without it (as under `deno task test`) the test
 * runs itself in a child `deno test` with the flag and passes when the child does.
 */
import assert from "node:assert/strict";
import type { NodeStatus } from "../../src/admin/model.ts";
import { startAdminServer } from "../../src/admin/server.ts";
import { SseParser } from "../../src/cli/events.ts";
import { parseNodeConfig } from "../../src/config/node-config.ts";
import { generatePrivateKey, publicKey as derivePublicKey } from "../../src/crypto/x25519.ts";
import { DeviceWord, type StatName, STATS } from "../../src/wireguard/dataplane/shared-state.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { EventBus, type NodeEvent } from "../../src/events/bus.ts";
import { PskGate } from "../../src/keys/psk-gate.ts";
import { aesSuite, chachaSuite } from "../../src/noise/suite.ts";
import { type AdminDeviceView, NodeAdminBackend } from "../../src/node/admin-backend.ts";
import { LockdownList } from "../../src/node/lockdown-list.ts";

const STATUS_REQUESTS = 10_000;
/** Warm-up, not counted: the same mix for this many requests and this long before the first reading. */
const WARMUP_REQUESTS = 10_000;
const WARMUP_MS = 20_000;
const STATUS_CONCURRENCY = 8;
const SUBSCRIBERS = 100;
const SUBSCRIBE_MS = 30_000;
const PUBLISH_EVERY_MS = 20;
const GROWTH_LIMIT = 20 * 1024 * 1024;
const NAME = "admin API load: 10 000 status requests and 100 event subscribers for 30 s";
const gc = (globalThis as { gc?: () => void }).gc;

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS and JS heap in use after two full collections and a malloc_trim, in a quiet moment. */
async function quietMemory(trim: () => void): Promise<{ rss: number; heap: number }> {
  await sleepMs(1000);
  gc!();
  gc!();
  await sleepMs(1000);
  gc!();
  gc!();
  trim();
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const PEERS = 8;

/** A live fake node: counters grow on every snapshot, the gate holds real state. */
function liveNode(stateDir: string) {
  const keys = Array.from({ length: PEERS }, () => derivePublicKey(generatePrivateKey()));
  const cfg = parseNodeConfig(
    JSON.stringify({
      node: { name: "load", privateKeyFile: "./k", stateDir },
      wg0: { address: "100.64.0.1/10" },
      aes0: { address: "100.127.0.1/16" },
      peers: keys.map((k, i) => ({
        name: `peer-${i}`,
        publicKey: encodeBase64(k),
        wgIp: `100.64.0.${i + 2}`,
        aesIp: `100.127.0.${i + 2}`,
        endpoint: `192.0.2.${i + 2}:51820`,
      })),
    }),
    { baseDir: stateDir, checkFiles: false },
  );
  cfg.node.publicKey = derivePublicKey(generatePrivateKey());
  const events = new EventBus();
  const gate = new PskGate({
    setPresharedKey: () => true,
    initiateHandshake: () => {},
    dropSessions: () => {},
  }, {
    onEvent: (e) => {
      if (e.type === "key-installed") {
        events.publish({ type: "key-rotated", layer: "aes0", epoch: e.epoch!, reason: e.reason });
      }
    },
  });
  for (const k of keys) gate.addPeer(k, "manual");
  let bytes = 0;
  const device = (suite: AdminDeviceView["suite"], port: number): AdminDeviceView => {
    const header = new Int32Array(16);
    header[DeviceWord.mtu] = port === 51820 ? 1420 : 1360;
    return {
      suite,
      listenPort: port,
      snapshot: () => {
        bytes += 1500;
        return {
          privateKey: null,
          listenPort: port,
          fwmark: 0,
          peers: keys.map((k, i) => ({
            publicKey: k,
            presharedKey: new Uint8Array(32),
            endpoint: `192.0.2.${i + 2}:51820`,
            lastHandshakeMs: Date.now() - 1000 * i,
            rxBytes: bytes * (i + 1),
            txBytes: bytes,
            persistentKeepalive: 0,
            allowedIps: [`100.64.0.${i + 2}/32`],
          })),
        };
      },
      shared: {
        statsSnapshot: () =>
          Object.fromEntries(STATS.map((n) => [n, bytes % 97])) as Record<StatName, number>,
        header,
      },
    };
  };
  return {
    node: {
      wg0: { device: device(chachaSuite(), 51820) },
      aes0: { device: device(aesSuite(), 51830) },
      gate,
      dske: null,
      psrd: null,
      events,
      config: cfg,
      startedAt: Date.now(),
    },
    keys,
    gate,
    events,
  };
}

interface Subscriber {
  ids: number[];
  firstLive: number;
  errors: string[];
  done: Promise<void>;
  close(): void;
}

async function runLoad(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tfa-load-" });
  const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
  const trim = () => void libc.symbols.malloc_trim(0n);
  const live = liveNode(dir);
  const backend = new NodeAdminBackend(live.node, LockdownList.open(dir));
  const ownListeners = live.events.listenerCount;
  const token = "load-" + encodeBase64(crypto.getRandomValues(new Uint8Array(18)));
  const server = await startAdminServer(backend, {
    listen: { kind: "tcp", host: "127.0.0.1", port: 0 },
    token,
    sseHeartbeatMs: 1_000,
    // Above the defaults (64 connections, 16 streams): this test measures load, not the caps.
    maxConnections: SUBSCRIBERS + 4 * STATUS_CONCURRENCY,
    maxEventStreams: SUBSCRIBERS,
  });
  const base = `http://${server.address}`;
  const http = Deno.createHttpClient({});
  const auth = { authorization: `Bearer ${token}` };
  let epoch = 0;
  let paused = false;
  const errors: string[] = [];
  // Events all the time: rotations through the real gate, and handshake events.
  let publisher: ReturnType<typeof setInterval> | undefined = setInterval(() => {
    if (paused) return;
    epoch++;
    if (epoch % 2 === 0) {
      live.gate.install(
        live.keys[epoch % PEERS],
        crypto.getRandomValues(new Uint8Array(32)),
        epoch,
        "manual",
      );
    } else {
      live.events.publish({
        type: "handshake-completed",
        layer: "wg0",
        peer: `peer-${epoch % PEERS}`,
        reason: "load",
      });
    }
  }, PUBLISH_EVERY_MS);
  try {
    let statusDone = 0;
    const statusWorker = async (count: number) => {
      for (let i = 0; i < count; i++) {
        try {
          const r = await fetch(`${base}/v1/status`, { headers: auth, client: http });
          const text = await r.text();
          if (r.status !== 200) errors.push(`status ${r.status}: ${text.slice(0, 200)}`);
          else if ((JSON.parse(text) as NodeStatus).peers.length !== PEERS) errors.push("wrong peer count");
        } catch (e) {
          errors.push(`status request: ${(e as Error).message}`);
        }
        statusDone++;
      }
    };
    const statusLoad = (total: number) =>
      Promise.all(
        Array.from(
          { length: STATUS_CONCURRENCY },
          (_, i) =>
            statusWorker(Math.floor(total / STATUS_CONCURRENCY) + (i < total % STATUS_CONCURRENCY ? 1 : 0)),
        ),
      );

    const subscribe = (): Subscriber => {
      let closed = false;
      let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
      const sub: Subscriber = {
        ids: [],
        firstLive: live.events.lastId + 1,
        errors: [],
        done: Promise.resolve(),
        // Cancel the body itself: aborting a fetch does not reliably end a long-open body.
        close: () => {
          closed = true;
          void reader?.cancel().catch(() => {});
        },
      };
      sub.done = (async () => {
        try {
          const r = await fetch(`${base}/v1/events`, {
            headers: { ...auth, accept: "text/event-stream" },
            client: http,
          });
          if (r.status !== 200 || !r.body) {
            sub.errors.push(`events ${r.status}`);
            await r.body?.cancel();
            return;
          }
          const parser = new SseParser();
          const decoder = new TextDecoder();
          reader = r.body.getReader();
          if (closed) await reader.cancel();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            for (const m of parser.push(decoder.decode(value, { stream: true }))) {
              sub.ids.push((JSON.parse(m.data) as NodeEvent).id);
            }
          }
          if (!closed) sub.errors.push("the stream ended before the client closed it");
        } catch (e) {
          if (!closed) sub.errors.push(`events: ${(e as Error).message}`);
        }
      })();
      return sub;
    };
    const quiet = async () => {
      paused = true;
      try {
        return await quietMemory(trim);
      } finally {
        paused = false;
      }
    };

    // Every subscriber connected.
    const subs = Array.from({ length: SUBSCRIBERS }, subscribe);
    const connected = Date.now();
    while (live.events.listenerCount < ownListeners + SUBSCRIBERS && Date.now() - connected < 10_000) {
      await sleepMs(20);
    }
    assert.equal(live.events.listenerCount, ownListeners + SUBSCRIBERS, "every subscriber is attached");
    const allAttached = live.events.lastId;

    // Warm-up: the same mix, then the first reading.
    const warmStart = Date.now();
    await statusLoad(WARMUP_REQUESTS);
    await sleepMs(WARMUP_MS - (Date.now() - warmStart));
    const warm = await quiet();
    statusDone = 0;

    // The measured run: 10 000 status requests while the subscribers stay connected for 30 s.
    const started = Date.now();
    await statusLoad(STATUS_REQUESTS);
    const statusMs = Date.now() - started;
    await sleepMs(SUBSCRIBE_MS - (Date.now() - started));
    const end = await quiet();
    clearInterval(publisher);
    publisher = undefined;
    const lastPublished = live.events.lastId;
    // Let the last events reach every subscriber, then close them all.
    await sleepMs(300);
    for (const s of subs) s.close();
    await Promise.all(subs.map((s) => s.done));
    const closedAt = Date.now();
    while (live.events.listenerCount > ownListeners && Date.now() - closedAt < 5_000) await sleepMs(20);

    assert.equal(statusDone, STATUS_REQUESTS);
    assert.deepEqual(errors, [], "no status request failed");
    for (const [i, s] of subs.entries()) {
      assert.deepEqual(s.errors, [], `subscriber ${i} had no error`);
      // Every event from its connection on, exactly once and in order (no gap, no duplicate).
      const first = s.ids[0];
      assert.ok(
        first >= s.firstLive && first <= allAttached + 1,
        `subscriber ${i} started at ${first}; it connected after ${
          s.firstLive - 1
        }, attached by ${allAttached}`,
      );
      assert.equal(s.ids[s.ids.length - 1], lastPublished, `subscriber ${i} got up to the last event`);
      assert.equal(s.ids.length, lastPublished - first + 1, `subscriber ${i}: no gap, no duplicate`);
    }
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    const delivered = subs.reduce((n, s) => n + s.ids.length, 0);
    console.log(
      `load: ${STATUS_REQUESTS} status requests in ${statusMs} ms (after ${WARMUP_REQUESTS} warm-up), ` +
        `${SUBSCRIBERS} subscribers for ${SUBSCRIBE_MS / 1000} s (after ${WARMUP_MS / 1000} s warm-up), ` +
        `${lastPublished} events published, ${delivered} delivered; RSS ${mib(warm.rss)} -> ${
          mib(end.rss)
        } MiB ` +
        `(growth ${mib(end.rss - warm.rss)} MiB), JS heap ${mib(warm.heap)} -> ${mib(end.heap)} MiB; ` +
        `listeners after close ${live.events.listenerCount - ownListeners}`,
    );
    assert.ok(end.rss - warm.rss < GROWTH_LIMIT, `RSS grew by ${mib(end.rss - warm.rss)} MiB after warm-up`);
    assert.ok(end.heap - warm.heap < GROWTH_LIMIT, `the JS heap grew by ${mib(end.heap - warm.heap)} MiB`);
    assert.equal(live.events.listenerCount, ownListeners, "every subscriber's listener is removed");
    backend.close();
    assert.equal(live.events.listenerCount, 0, "no listener left on the bus");
  } finally {
    if (publisher !== undefined) clearInterval(publisher);
    backend.close();
    await server.close();
    http.close();
    libc.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (gc !== undefined) {
  Deno.test(NAME, runLoad);
} else {
  Deno.test(`${NAME} (in a child deno test with --expose-gc)`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--no-check", // this file was just type-checked by the parent
        "--v8-flags=--expose-gc",
        "--allow-all",
        "--filter",
        NAME,
        new URL(import.meta.url).pathname,
      ],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    console.log(text.split("\n").filter((l) => /^load:/.test(l)).join("\n"));
    assert.equal(out.code, 0, `the load test failed in the child:\n${text.slice(-4000)}`);
    assert.match(text, /1 passed/);
  });
}
