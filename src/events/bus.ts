/**
 * The node's internal event bus: every notable thing the key plane, the gate, the devices and the
 * admin surface do is published here as a typed {@link NodeEvent}. Events get increasing ids, a
 * bounded history is kept so a client can resume after a reconnect (`Last-Event-ID`), and listeners
 * are called synchronously in publish order. Events never carry key material: publishers put names,
 * public keys, epochs, hub ids and reasons in words only.
 * @module
 */

/** What happened. One name per kind of event; the admin API streams these as SSE `event:` names. */
export type NodeEventType =
  /** An agreed aes0 key was installed for a peer (DSKE round, PSK file, UAPI write): a rotation. */
  | "key-rotated"
  /** A key-agreement round failed; the previous key stays in use. */
  | "rotation-failed"
  /** A peer's aes0 gate opened (first agreed key). */
  | "gate-opened"
  /** A peer's aes0 gate closed (fail closed: max key age, mismatch, PSRD exhausted). */
  | "gate-closed"
  /** A peer's aes0 key is older than 2 × the rotation interval. */
  | "gate-stale"
  /** A key was offered to the gate and refused (replayed epoch, bad length, …). */
  | "key-refused"
  /** aes0 handshakes keep failing while the gate is open: the two sides hold different keys. */
  | "mismatch-suspected"
  /** A suspected mismatch ended (a handshake under the agreed key succeeded). */
  | "mismatch-cleared"
  /** A handshake completed on wg0 or aes0. */
  | "handshake-completed"
  /** A handshake message was refused on wg0 or aes0. */
  | "handshake-failed"
  /** A security hub did not answer. */
  | "hub-unreachable"
  /** The SKA key broker did not answer. */
  | "broker-unreachable"
  /** A security hub returned a share that does not fit, or an answer contradicting the offer. */
  | "hub-misbehaving"
  /**
   * A DSKE key failed its confirmation (the recoverer's reconstruction does not match the generator's
   * key, or the other way round): nothing was installed. `data.hubs` lists the hubs whose shares made
   * the wrong key (k or more colluding hubs, or shares of another round); none is named a liar for it.
   */
  | "key-confirmation-failed"
  /**
   * No k of the shares a recoverer got make a valid key: `data.hubs` lists the hubs that took part,
   * `data.lyingAtLeast` how many of them at least gave a wrong share.
   */
  | "shares-inconsistent"
  /** A PSRD pool with a hub is below its low-water mark. */
  | "psrd-low"
  /** A PSRD pool is used up: agreement through that hub stops (fail closed). */
  | "psrd-exhausted"
  /** The wg0 lockdown extra-port list changed. */
  | "lockdown-changed"
  /** The configuration (or netmap) was reloaded. */
  | "config-reloaded"
  /** A Rosenpass exchange completed: its key is wg0's PSK for the peer from the next wg0 handshake. */
  | "pq-key-exchanged"
  /** No Rosenpass exchange with the peer for 180 s: strict mode replaced wg0's PSK by random bytes. */
  | "pq-key-stale"
  /** A Rosenpass handshake with the peer failed (authentication, or no answer in time). */
  | "pq-handshake-failed"
  /**
   * The packet filter dropped packets from a peer (`layer`, `peer`, `reason` = lockdown, policy,
   * malformed or fragment, `data.count` = drops since the previous such event): at most one per
   * (layer, peer, reason) per second.
   */
  | "packet-dropped"
  /** A new network map was applied live (`data`: serial, added/removed/changed counts). */
  | "netmap-applied"
  /** A network map was refused or could not be applied (rolled back); the running map stays. */
  | "netmap-rejected";

/** Every {@link NodeEventType}, in a stable order (for schemas and docs). */
export const NODE_EVENT_TYPES: readonly NodeEventType[] = [
  "key-rotated",
  "rotation-failed",
  "gate-opened",
  "gate-closed",
  "gate-stale",
  "key-refused",
  "mismatch-suspected",
  "mismatch-cleared",
  "handshake-completed",
  "handshake-failed",
  "hub-unreachable",
  "broker-unreachable",
  "hub-misbehaving",
  "key-confirmation-failed",
  "shares-inconsistent",
  "psrd-low",
  "psrd-exhausted",
  "lockdown-changed",
  "config-reloaded",
  "pq-key-exchanged",
  "pq-key-stale",
  "pq-handshake-failed",
  "packet-dropped",
  "netmap-applied",
  "netmap-rejected",
];

/** Fields a publisher supplies; the bus adds `id` and `at`. */
export interface NodeEventInput {
  /** What happened. */
  type: NodeEventType;
  /** Interface concerned, when one is. */
  layer?: "wg0" | "aes0";
  /** Peer name (from the config), when the event concerns a peer. */
  peer?: string;
  /** The peer's WireGuard public key, base64 (public). */
  publicKey?: string;
  /** Key epoch, when one applies. */
  epoch?: number;
  /** Hub id (hex) or hub name, when the event concerns a hub. */
  hub?: string;
  /** Why, in words. Never key material. */
  reason: string;
  /** Extra scalar facts (counts, bytes left, source), never secrets. */
  data?: Record<string, string | number | boolean | null>;
}

/** A published event. */
export interface NodeEvent extends NodeEventInput {
  /** Increasing id, unique within one run of the node (starts at 1). */
  id: number;
  /** Time of publication, ISO 8601 (UTC). */
  at: string;
}

/** A listener; exceptions it throws are caught and do not reach the publisher. */
export type EventListener = (e: NodeEvent) => void;

/** Options of an {@link EventBus}. */
export interface EventBusOptions {
  /** How many past events to keep for resuming clients (default 1 000). */
  historySize?: number;
  /** Clock (unix ms), for tests. Default `Date.now`. */
  clock?: () => number;
}

/** A bounded, resumable, synchronous event bus. */
export class EventBus {
  readonly #history: NodeEvent[] = [];
  readonly #size: number;
  readonly #clock: () => number;
  readonly #listeners = new Set<EventListener>();
  #nextId = 1;

  /** Creates an empty bus. */
  constructor(opts: EventBusOptions = {}) {
    const size = opts.historySize ?? 1_000;
    if (!Number.isInteger(size) || size < 1) throw new RangeError("historySize must be a positive integer");
    this.#size = size;
    this.#clock = opts.clock ?? Date.now;
  }

  /** Publishes an event to every listener and the history; returns it. */
  publish(input: NodeEventInput): NodeEvent {
    const e: NodeEvent = { id: this.#nextId++, at: new Date(this.#clock()).toISOString(), ...input };
    this.#history.push(e);
    if (this.#history.length > this.#size) this.#history.shift();
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch {
        // A faulty listener must not break the publisher or the other listeners.
      }
    }
    return e;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Number of current listeners (for leak checks and metrics). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** The id of the newest event, or 0 when none was published. */
  get lastId(): number {
    return this.#nextId - 1;
  }

  /**
   * Kept events with an id greater than `lastId`, oldest first. An id newer than anything published
   * (a client resuming against a restarted node) returns the whole history.
   */
  since(lastId: number): NodeEvent[] {
    if (lastId >= this.#nextId) return [...this.#history];
    return this.#history.filter((e) => e.id > lastId);
  }
}
