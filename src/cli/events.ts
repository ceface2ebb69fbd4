/**
 * `twofold events [--json] [--since ID]`: follows a running node's event stream (Server-Sent Events
 * from `GET /v1/events`), one line per event. A dropped connection is re-opened with `Last-Event-ID`, so
 * nothing the node still holds in its history is missed or shown twice. Ctrl-C (or SIGTERM) ends it with
 * exit code 0.
 * @module
 */
import type { NodeEvent } from "../events/bus.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";

const USAGE = usageOf("events");
const HELP = helpOf("events");

/** One dispatched SSE message. */
export interface SseMessage {
  /** `id:` (the last one seen), or null. */
  id: string | null;
  /** `event:`, default "message". */
  event: string;
  /** `data:` lines joined with "\n". */
  data: string;
}

/**
 * An incremental Server-Sent Events parser (the WHATWG rules that matter here): `push` text as it
 * arrives, complete messages come out. Comments (`:` lines, e.g. heartbeats) and `retry:` are skipped.
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #lastId: string | null = null;
  #sawCr = false;

  /** The last `id:` seen (what to send as `Last-Event-ID`). */
  get lastId(): string | null {
    return this.#lastId;
  }

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (this.#sawCr && text.startsWith("\n")) text = text.slice(1);
    this.#sawCr = text.endsWith("\r");
    this.#buffer += text;
    const out: SseMessage[] = [];
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    this.#buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (this.#data.length > 0) {
          out.push({ id: this.#lastId, event: this.#event || "message", data: this.#data.join("\n") });
        }
        this.#data = [];
        this.#event = "";
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id" && !value.includes("\0")) this.#lastId = value;
    }
    return out;
  }
}

/** Options of {@link followEvents}. */
export interface FollowOptions {
  /** The node's admin API. */
  client: AdminClient;
  /** Resume after this event id (sent as `Last-Event-ID` on the first connection too). */
  lastEventId?: string | null;
  /** Called for every event, in order. */
  onEvent: (e: NodeEvent) => void;
  /** Ends the stream. */
  signal: AbortSignal;
  /** Called when the connection dropped and is being re-opened (for a note on stderr). */
  onReconnect?: (reason: string, lastEventId: string | null) => void;
  /** First delay before re-opening (ms, doubled up to 5 s while it keeps failing). Default 500. */
  reconnectDelayMs?: number;
}

const MAX_RECONNECT_DELAY_MS = 5_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Follows `/v1/events` until `signal` aborts, re-opening a dropped connection with `Last-Event-ID`.
 * The first connection failing (no node) and any error status are CliErrors (exit 1); after a first
 * success, connection failures are retried.
 */
export async function followEvents(opts: FollowOptions): Promise<void> {
  let lastId = opts.lastEventId ?? null;
  let connectedOnce = false;
  const firstDelay = opts.reconnectDelayMs ?? 500;
  let delay = firstDelay;
  const decoder = new TextDecoder();
  while (!opts.signal.aborted) {
    let reason: string;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (lastId !== null) headers["last-event-id"] = lastId;
      const r = await opts.client.request("GET", "/v1/events", { headers, signal: opts.signal });
      if (!r.ok) throw opts.client.apiError(r.status, await r.text());
      if (!r.body) throw new CliError("the admin API answered /v1/events without a body", 1);
      connectedOnce = true;
      delay = firstDelay;
      const parser = new SseParser();
      if (lastId !== null) parser.push(`id: ${lastId}\n`);
      // Cancel the body explicitly on abort: an aborted signal does not always end a long-open body.
      const reader = r.body.getReader();
      const cancel = () => void reader.cancel().catch(() => {});
      opts.signal.addEventListener("abort", cancel, { once: true });
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.push(decoder.decode(value, { stream: true }))) {
            lastId = m.id;
            let e: NodeEvent;
            try {
              e = JSON.parse(m.data) as NodeEvent;
            } catch {
              continue;
            }
            opts.onEvent(e);
          }
        }
      } finally {
        opts.signal.removeEventListener("abort", cancel);
        reader.releaseLock();
      }
      if (opts.signal.aborted) return;
      reason = "the node closed the stream";
    } catch (e) {
      if (opts.signal.aborted) return;
      if (e instanceof CliError && (!connectedOnce || !/no node is listening|cannot reach/.test(e.message))) {
        throw e;
      }
      reason = e instanceof CliError ? e.message : `connection lost (${(e as Error).message})`;
    }
    if (opts.signal.aborted) return;
    opts.onReconnect?.(reason, lastId);
    await sleep(delay, opts.signal);
    delay = Math.min(delay * 2, MAX_RECONNECT_DELAY_MS);
  }
}

/** One event as `twofold events` prints it without `--json`. */
export function formatEventLine(e: NodeEvent): string {
  const parts = [e.at, e.type];
  if (e.layer) parts.push(e.layer);
  if (e.peer) parts.push(`peer ${e.peer}`);
  else if (e.publicKey) parts.push(`peer ${e.publicKey.slice(0, 8)}…`);
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch}`);
  if (e.hub) parts.push(`hub ${e.hub.length > 16 ? e.hub.slice(0, 16) : e.hub}`);
  return `${parts.join(" ")}: ${e.reason}`;
}

/** Runs the command; resolves with the exit code. */
export async function runEvents(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP, ["since"]);
  if (a.positionals.length > 0) throw new CliError(`unexpected argument "${a.positionals[0]}" (${USAGE})`);
  const since = a.strings.since;
  if (since !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(since)) {
    throw new CliError(`--since ${JSON.stringify(since)} is not an event id (a whole number) (${USAGE})`);
  }
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  const ac = new AbortController();
  const stop = () => ac.abort();
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    await followEvents({
      client,
      lastEventId: since ?? null,
      signal: ac.signal,
      onEvent: (e) => console.log(a.json ? JSON.stringify(e) : formatEventLine(e)),
      onReconnect: (reason, id) =>
        console.error(
          `twofold: ${reason}; reconnecting${id !== null ? ` (resuming after event ${id})` : ""}`,
        ),
    });
    return 0;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
    client.close();
  }
}
