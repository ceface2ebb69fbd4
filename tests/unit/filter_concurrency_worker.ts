/**
 * Worker side of filter_concurrency_test.ts: either reads rule tables from a TableExchange while the
 * main thread publishes (mode "tables"), or writes flows into a shared ConnTracker while the main
 * thread looks them up (mode "tracker"). Sets flag 1 of `stop` once attached; runs until the main thread
 * sets flag 0.
 * @module
 */
/// <reference lib="deno.worker" />
import { ConnTracker } from "../../src/filter/conn-tracker.ts";
import { PacketFilter } from "../../src/filter/packet-filter.ts";
import { FragmentTable } from "../../src/filter/fragment-table.ts";
import { ProtoClass, type RuleTable } from "../../src/filter/rule-table.ts";
import { TableReader } from "../../src/filter/table-exchange.ts";

/** Message the test sends. */
export interface WorkerJob {
  mode: "tables" | "tracker";
  sab: SharedArrayBuffer;
  stop: SharedArrayBuffer;
  buckets?: number;
  ranges?: number;
}

/** A table published in the test: `ranges` ranges, range i = [i*100 + k%50, same] with rule k. */
export function tableConsistent(t: RuleTable, ranges: number): number {
  const k = t.lookup(0, ProtoClass.tcp, 0 * 100 + (t.lookup(0, ProtoClass.icmp, 0) % 50));
  for (let i = 0; i < ranges; i++) {
    const port = i * 100 + (k % 50);
    if (t.lookup(0, ProtoClass.tcp, port) !== k) return -1;
  }
  return k;
}

self.onmessage = (e: MessageEvent<WorkerJob>) => {
  const job = e.data;
  const stop = new Int32Array(job.stop);
  if (job.mode === "tables") {
    const reader = new TableReader(job.sab, 0);
    Atomics.store(stop, 1, 1);
    let checks = 0, torn = 0, switches = 0, last = -1;
    while (Atomics.load(stop, 0) === 0) {
      if (reader.sync()) switches++;
      const k = tableConsistent(reader.table, job.ranges ?? 0);
      if (k < 0 || k < last) torn++;
      last = k;
      checks++;
    }
    reader.close();
    self.postMessage({ checks, torn, switches });
  } else {
    const tracker = new ConnTracker(job.sab, job.buckets);
    const filter = new PacketFilter({
      rules: { table: null as unknown as RuleTable }, // outbound observation never reads rules
      tracker,
      fragments: new FragmentTable(1),
    });
    Atomics.store(stop, 1, 1);
    // UDP 100.64.0.1:n -> 100.64.1.n:n, for n in 1..200, again and again (evicting each other)
    const p = new Uint8Array(28);
    p.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 100, 64, 0, 1, 100, 64, 1, 0]);
    let writes = 0;
    let now = 1;
    while (Atomics.load(stop, 0) === 0) {
      for (let n = 1; n <= 200; n++) {
        p[19] = n;
        p[20] = p[22] = n >> 8;
        p[21] = p[23] = n & 0xff;
        filter.observeOutbound(p, 0, 28, now);
        writes++;
      }
      now++;
    }
    self.postMessage({ writes });
  }
};
