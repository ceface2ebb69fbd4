/**
 * `GET /v1/events` as a Server-Sent Events stream of the node's {@link EventBus}.
 *
 * Each event is `id: <event id>`, `event: <type>`, `data: <NodeEvent as JSON>`. On connect the
 * client first gets what it missed (`bus.since(lastId)`, when it gave a last id), then live events, with
 * no gap and no duplicate: the listener is attached and the history read in the same synchronous
 * step. A comment line (`: heartbeat`) every `heartbeatMs` keeps idle connections alive.
 *
 * Each client has a bounded queue: a client that does not read while `queueLimit` chunks or
 * `queueBytesLimit` bytes wait is dropped (its stream errors and the connection ends) instead of buffering without end; it can
 * reconnect with `Last-Event-ID`. Disconnecting (the body cancelled, the request aborted, or the
 * app's shutdown signal) removes the listener and the heartbeat timer.
 * @module
 */
import type { EventBus, NodeEvent } from "../events/bus.ts";

/** Options of {@link eventStream}. */
export interface EventStreamOptions {
  /** Replay events after this id first (null: live events only). */
  since: number | null;
  /** Heartbeat comment interval, ms. */
  heartbeatMs: number;
  /** Most chunks that may wait for a slow client before it is dropped (the replay counts as one). */
  queueLimit: number;
  /** Most bytes that may wait for a slow client before it is dropped (default {@link SSE_QUEUE_BYTES}). */
  queueBytesLimit?: number;
  /** Any of these aborting ends the stream (the request's signal, the server's shutdown signal). */
  signals: AbortSignal[];
  /** Called once when the stream ends, with why (for logs and counts; never data). */
  onEnd?: (why: "cancelled" | "aborted" | "too-slow") => void;
}

const encoder = new TextEncoder();

/** Default bound on the bytes waiting for one event client (the replay is let through whole). */
export const SSE_QUEUE_BYTES = 1024 * 1024;

/** The error a dropped (too slow) client's stream ends with; the server does not log it again. */
export class SlowClientError extends Error {
  /** Creates the error. */
  constructor() {
    super("event client too slow: dropped");
    this.name = "SlowClientError";
  }
}

/** The SSE frame of one event. */
export function formatEvent(e: NodeEvent): string {
  // JSON.stringify never emits a raw newline, so `data:` is one line.
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** A byte stream of SSE frames following `bus`; see the module doc. */
export function eventStream(bus: EventBus, opts: EventStreamOptions): ReadableStream<Uint8Array> {
  let cleanup: ((why: "cancelled" | "aborted" | "too-slow") => void) | null = null;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (opts.signals.some((s) => s.aborted)) {
        controller.close();
        opts.onEnd?.("aborted");
        return;
      }
      let done = false;
      const bytesLimit = opts.queueBytesLimit ?? SSE_QUEUE_BYTES;
      // Sizes of the chunks enqueued and maybe not yet read, oldest first, and their sum.
      const sizes: number[] = [];
      let sizesStart = 0;
      let queuedBytes = 0;
      const push = (text: string) => {
        if (done) return;
        // desiredSize is the highWaterMark (0) minus the chunks waiting for the client: the
        // waiting ones are the newest that many, so the older sizes are of chunks already read.
        const waiting = -(controller.desiredSize ?? 0);
        while (sizes.length - sizesStart > waiting) queuedBytes -= sizes[sizesStart++];
        if (sizesStart > 1024) {
          sizes.splice(0, sizesStart);
          sizesStart = 0;
        }
        if (waiting >= opts.queueLimit || (waiting > 0 && queuedBytes >= bytesLimit)) {
          end("too-slow");
          controller.error(new SlowClientError());
          return;
        }
        const bytes = encoder.encode(text);
        sizes.push(bytes.length);
        queuedBytes += bytes.length;
        controller.enqueue(bytes);
      };
      // Subscribing and reading the history happen in one synchronous step: nothing is published
      // in between, so the replay and the live events neither overlap nor leave a gap.
      const unsubscribe = bus.subscribe((e) => push(formatEvent(e)));
      const timer = setInterval(() => push(": heartbeat\n\n"), opts.heartbeatMs);
      const onAbort = () => end("aborted");
      const end = (why: "cancelled" | "aborted" | "too-slow") => {
        if (done) return;
        done = true;
        unsubscribe();
        clearInterval(timer);
        for (const s of opts.signals) s.removeEventListener("abort", onAbort);
        if (why === "aborted") {
          try {
            controller.close();
          } catch { /* already closed or errored */ }
        }
        opts.onEnd?.(why);
      };
      cleanup = end;
      for (const s of opts.signals) s.addEventListener("abort", onAbort, { once: true });
      const missed = opts.since === null ? [] : bus.since(opts.since);
      push(": connected\n\n" + missed.map(formatEvent).join(""));
    },
    cancel() {
      cleanup?.("cancelled");
    },
  }, new CountQueuingStrategy({ highWaterMark: 0 }));
}
