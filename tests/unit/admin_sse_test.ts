/**
 * `GET /v1/events` in process: frames carry ids and types, Last-Event-ID / ?since= resume with exactly
 * the missed events, heartbeats, and every way a client goes away (body cancelled, request aborted,
 * server shutdown, too slow) removes its bus listener.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import type { NodeEvent } from "../../src/events/bus.ts";
import type { Logger } from "../../src/log.ts";
import { FakeBackend, SECRETS, TEST_TOKEN } from "./admin_fake_backend.ts";

interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

/** Reads SSE frames from a response body. */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  text = "";

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
  }

  /** Complete frames so far. */
  frames(): Frame[] {
    const parts = this.text.split("\n\n");
    parts.pop();
    return parts.map((p) => {
      const f: Frame = {};
      for (const line of p.split("\n")) {
        if (line.startsWith(":")) f.comment = line.slice(1).trim();
        else {
          const i = line.indexOf(": ");
          (f as Record<string, string>)[line.slice(0, i)] = line.slice(i + 2);
        }
      }
      return f;
    });
  }

  /** Events (frames with data) so far. */
  events(): NodeEvent[] {
    return this.frames().filter((f) => f.data !== undefined).map((f) => {
      const e = JSON.parse(f.data!) as NodeEvent;
      assert.equal(f.id, String(e.id), "id: is the event id");
      assert.equal(f.event, e.type, "event: is the event type");
      return e;
    });
  }

  /** Reads until `pred` holds (fails after `ms`). */
  async until(pred: (r: SseReader) => boolean, ms = 3000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`SSE condition not met in ${ms} ms; got ${this.text.slice(-300)}`)),
        ms,
      );
    });
    try {
      while (!pred(this)) {
        const r = await Promise.race([this.#reader.read(), timeout]);
        if (r.done) throw new Error("stream ended");
        this.text += this.#decoder.decode(r.value, { stream: true });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads one more chunk: its result. */
  read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    return this.#reader.read();
  }

  /** Cancels the body (the client goes away). */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function setup(opts: { heartbeatMs?: number; queueLimit?: number; signal?: AbortSignal; log?: Logger } = {}) {
  const backend = new FakeBackend(50);
  const app = createAdminApp(backend, {
    token: TEST_TOKEN,
    readsNeedToken: false,
    sseHeartbeatMs: opts.heartbeatMs ?? 60_000,
    sseQueueLimit: opts.queueLimit,
    signal: opts.signal,
    log: opts.log ?? quiet,
  });
  return { backend, app };
}

const publishN = (b: FakeBackend, n: number, peer = "alice") => {
  for (let i = 0; i < n; i++) {
    b.events.publish({ type: "key-rotated", layer: "aes0", peer, epoch: i + 1, reason: "test" });
  }
};

Deno.test("admin SSE: /v1/events", async (t) => {
  await t.step(
    "live events arrive in order with id: and event: fields and the NodeEvent as data",
    async () => {
      const { app, backend } = setup();
      publishN(backend, 2); // before connecting: not replayed without Last-Event-ID
      const res = await app.request("/v1/events");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/event-stream/);
      const sse = new SseReader(res);
      await sse.until((r) => r.frames().length >= 1);
      assert.equal(sse.frames()[0].comment, "connected");
      assert.equal(backend.events.listenerCount, 1);
      backend.events.publish({
        type: "gate-opened",
        layer: "aes0",
        peer: "bob",
        epoch: 7,
        reason: "agreed key installed",
      });
      backend.events.publish({ type: "lockdown-changed", reason: "x", data: { count: 2, enforced: false } });
      await sse.until((r) => r.events().length >= 2);
      const evs = sse.events();
      assert.deepEqual(evs.map((e) => [e.id, e.type]), [[3, "gate-opened"], [4, "lockdown-changed"]]);
      assert.equal(evs[0].peer, "bob");
      assert.equal(evs[0].epoch, 7);
      assert.deepEqual(evs[1].data, { count: 2, enforced: false });
      assert.equal(typeof evs[0].at, "string");
      await sse.cancel();
      assert.equal(backend.events.listenerCount, 0);
    },
  );

  await t.step("Last-Event-ID resumes with exactly the missed events, then live, no duplicate", async () => {
    const { app, backend } = setup();
    const first = new SseReader(await app.request("/v1/events"));
    publishN(backend, 3);
    await first.until((r) => r.events().length >= 3);
    const lastSeen = first.events().at(-1)!.id;
    await first.cancel();
    publishN(backend, 4); // missed while disconnected: ids 4..7
    const res = await app.request("/v1/events", { headers: { "Last-Event-ID": String(lastSeen) } });
    const again = new SseReader(res);
    await again.until((r) => r.events().length >= 4);
    assert.deepEqual(again.events().map((e) => e.id), [4, 5, 6, 7]);
    publishN(backend, 1);
    await again.until((r) => r.events().length >= 5);
    assert.deepEqual(again.events().map((e) => e.id), [4, 5, 6, 7, 8]);
    await again.cancel();
    assert.equal(backend.events.listenerCount, 0);
  });

  await t.step("?since= works like Last-Event-ID; the header wins when both are given", async () => {
    const { app, backend } = setup();
    publishN(backend, 5);
    const q = new SseReader(await app.request("/v1/events?since=3"));
    await q.until((r) => r.events().length >= 2);
    assert.deepEqual(q.events().map((e) => e.id), [4, 5]);
    await q.cancel();
    const both = new SseReader(
      await app.request("/v1/events?since=0", { headers: { "Last-Event-ID": "4" } }),
    );
    await both.until((r) => r.events().length >= 1);
    assert.deepEqual(both.events().map((e) => e.id), [5]);
    await both.cancel();
    const all = new SseReader(await app.request("/v1/events?since=0"));
    await all.until((r) => r.events().length >= 5);
    assert.deepEqual(all.events().map((e) => e.id), [1, 2, 3, 4, 5]);
    await all.cancel();
    assert.equal(backend.events.listenerCount, 0);
  });

  await t.step("a resume past the bounded history gets what is kept (the newest 50)", async () => {
    const { app, backend } = setup();
    publishN(backend, 80);
    const r = new SseReader(await app.request("/v1/events", { headers: { "Last-Event-ID": "5" } }));
    await r.until((x) => x.events().length >= 50);
    const ids = r.events().map((e) => e.id);
    assert.equal(ids[0], 31);
    assert.equal(ids.at(-1), 80);
    assert.equal(ids.length, 50);
    await r.cancel();
  });

  await t.step("a malformed Last-Event-ID or since is 400 JSON, and no listener is left", async () => {
    const { app, backend } = setup();
    for (const init of [{ headers: { "Last-Event-ID": "abc" } }, { headers: { "Last-Event-ID": "-1" } }]) {
      const res = await app.request("/v1/events", init);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, "bad_request");
    }
    const res = await app.request("/v1/events?since=1.5");
    assert.equal(res.status, 400);
    assert.match((await res.json()).detail, /since must be a non-negative integer/);
    assert.equal(backend.events.listenerCount, 0);
  });

  await t.step("heartbeat comments arrive on an idle stream", async () => {
    const { app, backend } = setup({ heartbeatMs: 20 });
    const r = new SseReader(await app.request("/v1/events"));
    await r.until((x) => x.frames().filter((f) => f.comment === "heartbeat").length >= 2);
    assert.equal(r.events().length, 0);
    await r.cancel();
    assert.equal(backend.events.listenerCount, 0);
  });

  await t.step("aborting the request removes the listener and ends the stream", async () => {
    const { app, backend } = setup({ heartbeatMs: 20 });
    const ac = new AbortController();
    const res = await app.request("/v1/events", { signal: ac.signal });
    const r = new SseReader(res);
    await r.until((x) => x.frames().length >= 1);
    assert.equal(backend.events.listenerCount, 1);
    ac.abort();
    assert.equal(backend.events.listenerCount, 0);
    let done = false;
    while (!done) done = (await r.read()).done;
  });

  await t.step("the app's shutdown signal ends every stream", async () => {
    const ac = new AbortController();
    const { app, backend } = setup({ signal: ac.signal });
    const rs = await Promise.all([1, 2, 3].map(async () => new SseReader(await app.request("/v1/events"))));
    await Promise.all(rs.map((r) => r.until((x) => x.frames().length >= 1)));
    assert.equal(backend.events.listenerCount, 3);
    ac.abort();
    assert.equal(backend.events.listenerCount, 0);
    for (const r of rs) {
      let done = false;
      while (!done) done = (await r.read()).done;
    }
    // A stream opened after shutdown ends at once.
    const late = await app.request("/v1/events");
    assert.equal((await late.body!.getReader().read()).done, true);
    assert.equal(backend.events.listenerCount, 0);
  });

  await t.step(
    "a client that does not read is dropped once its queue is full; others are unaffected",
    async () => {
      const warnings: string[] = [];
      const log: Logger = { ...quiet, warn: (m) => void warnings.push(m) };
      const { app, backend } = setup({ queueLimit: 8, log });
      const slow = new SseReader(await app.request("/v1/events"));
      const fast = new SseReader(await app.request("/v1/events"));
      await fast.until((x) => x.frames().length >= 1);
      assert.equal(backend.events.listenerCount, 2);
      for (let i = 0; i < 20; i++) {
        publishN(backend, 1);
        await fast.until((x) => x.events().length >= i + 1);
      }
      assert.equal(backend.events.listenerCount, 1, "the slow client's listener is gone");
      assert.equal(fast.events().length, 20);
      assert.ok(warnings.some((w) => /event client dropped/.test(w)));
      // The slow client gets an error instead of an endless buffer.
      await assert.rejects(async () => {
        for (;;) if ((await slow.read()).done) break;
      });
      await fast.cancel();
      assert.equal(backend.events.listenerCount, 0);
    },
  );

  await t.step("streamed events carry no secret or token", async () => {
    const { app, backend } = setup();
    const r = new SseReader(await app.request("/v1/events?since=0"));
    publishN(backend, 3);
    await r.until((x) => x.events().length >= 3);
    await r.cancel();
    for (const s of [...SECRETS, TEST_TOKEN]) assert.ok(!r.text.includes(s));
  });
});
