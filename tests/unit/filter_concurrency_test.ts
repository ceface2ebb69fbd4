/**
 * The shared structures of the packet filter under real concurrency (a worker thread against the main
 * thread, as the data-plane workers and the control plane use them): a reader never sees a torn rule
 * table while tables are swapped (the acknowledgement protocol: without it this test fails), and a
 * tracker lookup never matches a key no flow has — one mixed from the flow an entry held and the flow
 * it is being rewritten to — while the writer rewrites entries all the time. (A torn read is rare
 * enough that this second test is not a proof of the seqlock; it does catch a lookup that compares
 * too little of a key.) Bounded: 1.5 s each.
 */
import assert from "node:assert/strict";
import { ConnTracker, connTrackerBytes } from "../../src/filter/conn-tracker.ts";
import { ParsedPacket, parsePacket } from "../../src/filter/packet-parse.ts";
import { encodeRuleTable, NO_RULE, SetKind } from "../../src/filter/rule-table.ts";
import { TableWriter } from "../../src/filter/table-exchange.ts";
import type { WorkerJob } from "./filter_concurrency_worker.ts";

const RUN_MS = 1500;

/** Starts the worker; resolves `ready` once it has attached to the shared buffer (flag 1 of `stop`). */
async function startWorker(job: WorkerJob): Promise<{ done: Promise<Record<string, number>> }> {
  const w = new Worker(new URL("./filter_concurrency_worker.ts", import.meta.url), { type: "module" });
  const done = new Promise<Record<string, number>>((resolve, reject) => {
    w.onmessage = (e) => {
      w.terminate();
      resolve(e.data);
    };
    w.onerror = (e) => {
      w.terminate();
      reject(new Error(e.message));
    };
  });
  w.postMessage(job);
  const flags = new Int32Array(job.stop);
  const t0 = performance.now();
  while (Atomics.load(flags, 1) === 0) {
    if (performance.now() - t0 > 60_000) throw new Error("the worker did not start within 60 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { done };
}

function table(k: number, ranges: number): Int32Array {
  return encodeRuleTable({
    slots: [0],
    sets: [{
      kind: SetKind.policy,
      icmp: k,
      other: NO_RULE,
      tcp: Array.from(
        { length: ranges },
        (_, i) => ({ from: i * 100 + (k % 50), to: i * 100 + (k % 50), rule: k }),
      ),
      udp: [],
    }],
  });
}

Deno.test("concurrency: a worker never sees a torn rule table while the main thread swaps tables", async () => {
  const RANGES = 300;
  const writer = new TableWriter(table(0, RANGES), 4096);
  const stop = new SharedArrayBuffer(8);
  const { done } = await startWorker({ mode: "tables", sab: writer.sab, stop, ranges: RANGES });
  // publish as fast as the worker lets us
  let published = 0, refused = 0;
  const t0 = performance.now();
  let k = 1;
  while (performance.now() - t0 < RUN_MS) {
    if (writer.publish(table(k, RANGES))) {
      published++;
      k++;
    } else {
      refused++;
    }
    await Promise.resolve();
  }
  Atomics.store(new Int32Array(stop), 0, 1);
  const r = await done;
  console.log(
    `tables: ${published} published (${refused} refused while in use), worker ${r.checks} checks, ${r.switches} switches`,
  );
  assert.equal(r.torn, 0, "every table the worker read was whole, and never an older one after a newer");
  assert.ok(published > 10 && r.switches > 10, "tables were really swapped under the worker");
});

Deno.test("concurrency: tracker lookups never match a key mixed from two flows while a worker rewrites them", async () => {
  const buckets = 1; // 8 entries for 200 flows: the writer rewrites entries all the time
  const sab = new SharedArrayBuffer(connTrackerBytes(buckets));
  new ConnTracker(sab, buckets, 42);
  const stop = new SharedArrayBuffer(8);
  const { done } = await startWorker({ mode: "tracker", sab, stop, buckets });
  const tracker = new ConnTracker(sab, buckets);
  // replies: 100.64.1.m:n -> 100.64.0.1:n; real flows have m == n, mixed keys m != n
  const p = new Uint8Array(28);
  p.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 100, 64, 1, 0, 100, 64, 0, 1]);
  const pkt = new ParsedPacket();
  let genuine = 0, mixed = 0, lookups = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < RUN_MS) {
    for (let i = 0; i < 1000; i++) {
      const n = 1 + ((lookups * 7) % 200);
      // with 8 ways and flows written in order, the entry being rewritten to flow n held flow n - 8
      const m = i % 2 === 0 ? n : 1 + ((n - 1 + 200 - 8) % 200);
      p[15] = m;
      p[20] = p[22] = n >> 8;
      p[21] = p[23] = n & 0xff;
      parsePacket(p, 0, 28, pkt);
      if (tracker.isReply(p, pkt, 0, false)) {
        if (m === n) genuine++;
        else mixed++;
      }
      lookups++;
    }
    await Promise.resolve();
  }
  Atomics.store(new Int32Array(stop), 0, 1);
  const r = await done;
  console.log(`tracker: ${r.writes} writes by the worker, ${lookups} lookups, ${genuine} genuine hits`);
  assert.equal(mixed, 0, "a key mixed from two flows never matched");
  assert.ok(genuine > 0, "lookups did find live flows");
});
