/**
 * The network map, live, on a running node: every map a source hands over goes through one guarded
 * path — accept (signature, validation, no rollback), diff against the running view, plan, apply —
 * and either all of it takes effect or none does.
 *
 * Applying a plan is a list of steps, each with its undo: the gate's additions (closed, before aes0
 * creates the peers), wg0's incremental UAPI set, aes0's, then the gate's removals and resets, the node's
 * peer list (names, PSK files), the DNS zone and the routes. UAPI sets are all-or-nothing, so a step that
 * fails changed nothing itself; the steps before it are undone in reverse order (the reverse plan,
 * `planApply(diffViews(next, running))`), and the map is refused with the reason. Only after success is
 * the map kept as the node's last good copy.
 *
 * Changes that cannot apply live (the node's own entry, the aes subnet, the DSKE hubs, a DSKE peer
 * joining or leaving the running key agreement) are applied as far as they go and listed as needing
 * a restart, in the log, the event and the status.
 * @module
 */
import type { PeerConfig } from "../config/node-config.ts";
import { type AcceptedRecord, acceptMap } from "../netmap/accept.ts";
import { type ApplyPlan, planApply, summarizePlan } from "../netmap/apply-plan.ts";
import { diffViews, isEmptyDiff, type ViewDiff } from "../netmap/diff.ts";
import { saveLastGood } from "../netmap/last-good.ts";
import type { Netmap } from "../netmap/schema.ts";
import type { NetmapSource } from "../netmap/source-config.ts";
import { DEFAULT_ROUTE_SETTINGS, type NetmapView, type RouteSettings, viewFor } from "../netmap/view.ts";
import { NetmapError } from "../netmap/schema.ts";
import type { EventBus } from "../events/bus.ts";
import type { NetmapStatus, NodeStatus } from "../admin/model.ts";
import { describeRouteAccept } from "../config/route-accept.ts";
import { formatCidr } from "../wireguard/allowedips.ts";
import type { UapiSetRequest } from "../uapi/types.ts";
import { peersFromView } from "./netmap-config.ts";

/** What the part needs of the running node (a subset of RunningNode, so tests can model it). */
export interface NetmapNodeHandle {
  wg0: { device: { apply(req: UapiSetRequest): number | Promise<number> } };
  aes0: { device: { apply(req: UapiSetRequest): number | Promise<number> } };
  gate: {
    addPeer(peer: Uint8Array, source: PeerConfig["keySource"]): Uint8Array;
    removePeer(peer: Uint8Array): void;
  };
  events: EventBus;
  setPeers(peers: PeerConfig[]): void;
  config: { node: { stateDir: string; publicKey: Uint8Array | null }; aes0: { listenPort: number } };
}

/** A map as it was received: the document's bytes and its detached signature (null: none came). */
export interface ReceivedMap {
  document: Uint8Array;
  signature: Uint8Array | null;
}

/** The map the node runs. */
export interface RunningMap extends ReceivedMap {
  map: Netmap;
  view: NetmapView;
  record: AcceptedRecord;
  /** When it was applied (unix ms). */
  appliedAt: number;
}

/** Other parts that follow the map (DNS zone, routes): each applies a new map and can go back. */
export interface MapFollower {
  /** Its name in messages ("DNS", "routes"). */
  name: string;
  /** Takes `next`; throws when it cannot (the change is then rolled back). */
  apply(next: RunningMap, previous: RunningMap): Promise<void> | void;
}

/** The outcome of {@link NetmapPart.offer}. */
export type OfferResult =
  | { outcome: "applied"; summary: string; restartNeeded: string[] }
  | { outcome: "unchanged" }
  | { outcome: "rejected"; reason: string };

/** Options of {@link NetmapPart}. */
export interface NetmapPartOptions {
  node: NetmapNodeHandle;
  source: NetmapSource;
  /** The map the node started from (already applied by startNode through the config). */
  initial: RunningMap;
  /** Manual PSK files by lower-case peer name. */
  pskFiles: Record<string, string>;
  /** Parts that follow the map. */
  followers?: MapFollower[];
  /** Log lines. */
  log: { info(msg: string): void; warn(msg: string): void };
  /** Clock (unix ms). */
  now?: () => number;
  /** The node's route settings (`routes.accept`, `node.advertise`); default: accept none. */
  routing?: RouteSettings;
}

/** Describes a source for logs and the status. */
export function describeSource(source: NetmapSource): string {
  return source.kind === "file" ? `file ${source.path}` : `url ${source.url}`;
}

/** The running map, its guarded changes and its status. */
export class NetmapPart {
  #running: RunningMap;
  #restartNeeded: string[] = [];
  #lastRejected: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #opts: NetmapPartOptions;
  #routing: RouteSettings;
  readonly #now: () => number;

  constructor(opts: NetmapPartOptions) {
    this.#opts = opts;
    this.#running = opts.initial;
    this.#now = opts.now ?? Date.now;
    this.#routing = opts.routing ?? DEFAULT_ROUTE_SETTINGS;
  }

  /** The running map. */
  get running(): RunningMap {
    return this.#running;
  }

  /** Routed networks for `/v1/status`: what this node advertises (its config, else its map entry), what it accepts. */
  routeStatus(): NodeStatus["routes"] {
    const advertise = this.#routing.advertise ?? this.#running.view.self.routes;
    return {
      advertise: advertise.map(formatCidr),
      accept: describeRouteAccept(this.#routing.accept, formatCidr),
    };
  }

  /** Takes new manual PSK files (a reloaded node config): the peers' files follow at once. */
  setPskFiles(pskFiles: Record<string, string>): Promise<void> {
    const run = this.#queue.then(() => {
      this.#opts.pskFiles = pskFiles;
      this.#opts.node.setPeers(peersFromView(this.#running.view, pskFiles));
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Status for `/v1/status`. */
  status(): NetmapStatus {
    return {
      serial: this.#running.record.serial,
      source: describeSource(this.#opts.source),
      appliedAt: new Date(this.#running.appliedAt).toISOString(),
      ageSeconds: Math.max(0, Math.floor((this.#now() - this.#running.appliedAt) / 1000)),
      restartNeeded: [...this.#restartNeeded],
      lastRejected: this.#lastRejected,
    };
  }

  /** Offers a received map; offers run one at a time, in order. Never throws. */
  offer(received: ReceivedMap, origin: string): Promise<OfferResult> {
    const run = this.#queue.then(() => this.#offer(received, origin));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #offer(received: ReceivedMap, origin: string): Promise<OfferResult> {
    const decision = acceptMap({
      document: received.document,
      signature: received.signature,
      signerPublicKey: this.#opts.source.signerPublicKey,
      last: this.#running.record,
    });
    if (!decision.ok) return this.#reject(origin, decision.reason);
    if (decision.unchanged) return { outcome: "unchanged" };
    const next = this.#nextView(decision.map, received, decision.record, origin);
    if ("outcome" in next) return next;
    return await this.#applyNext(next, origin, { saveCopy: true });
  }

  /** The running map under `map` viewed with the current route settings, or the refusal. */
  #nextView(
    map: Netmap,
    received: ReceivedMap,
    record: AcceptedRecord,
    origin: string,
  ): RunningMap | OfferResult {
    const ownKey = this.#opts.node.config.node.publicKey;
    if (!ownKey) return this.#reject(origin, "the node's public key is not loaded");
    try {
      const view = viewFor(map, ownKey, this.#routing);
      return { ...received, map, view, record, appliedAt: this.#now() };
    } catch (e) {
      if (e instanceof NetmapError) return this.#reject(origin, `invalid map for this node: ${e.message}`);
      throw e;
    }
  }

  /**
   * Takes new route settings (a reloaded node config's `routes.accept` or `node.advertise`): the
   * running map is viewed again and the difference applied through the same guarded path (a refusal
   * keeps the old settings and the running state).
   */
  setRouting(routing: RouteSettings): Promise<OfferResult> {
    const run = this.#queue.then(() => {
      const previous = this.#routing;
      this.#routing = routing;
      const r = this.#running;
      const next = this.#nextView(r.map, r, r.record, "the reloaded config");
      const done = "outcome" in next ? Promise.resolve(next) : this.#applyNext(next, "the reloaded config", {
        saveCopy: false,
      });
      return done.then((o) => {
        if (o.outcome === "rejected") this.#routing = previous;
        return o;
      });
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Diffs, plans and applies `next` over the running map; on success it becomes the running map. */
  async #applyNext(next: RunningMap, origin: string, opts: { saveCopy: boolean }): Promise<OfferResult> {
    const diff = diffViews(this.#running.view, next.view);
    const plan = planApply(diff, { aesPort: this.#opts.node.config.aes0.listenPort });
    const restartNeeded = [...plan.restartNeeded, ...dskeRestartLines(diff)];
    const failure = await this.#apply(next, plan);
    if (failure) return this.#reject(origin, failure);
    const previous = this.#running.record.serial;
    this.#running = next;
    this.#restartNeeded = restartNeeded;
    this.#lastRejected = null;
    if (opts.saveCopy) {
      try {
        saveLastGood(this.#opts.node.config.node.stateDir, {
          document: next.document,
          signature: next.signature,
          record: next.record,
        });
      } catch (e) {
        this.#opts.log.warn(`netmap: the last good copy was not saved: ${(e as Error).message}`);
      }
    }
    const summary = isEmptyDiff(diff)
      ? `serial ${previous} → ${next.record.serial}; no change for this node`
      : summarizePlan(diff, plan);
    this.#opts.log.info(`netmap applied from ${origin}: ${summary}`);
    for (const line of restartNeeded) this.#opts.log.warn(`netmap: ${line}`);
    this.#opts.node.events.publish({
      type: "netmap-applied",
      reason: summary,
      data: {
        serial: next.record.serial,
        added: diff.added.length,
        removed: diff.removed.length,
        changed: diff.changed.length,
        restartNeeded: restartNeeded.length,
      },
    });
    return { outcome: "applied", summary, restartNeeded };
  }

  #reject(origin: string, reason: string): OfferResult {
    const line =
      `netmap from ${origin} refused: ${reason}; serial ${this.#running.record.serial} keeps running`;
    this.#lastRejected = line;
    this.#opts.log.warn(line);
    this.#opts.node.events.publish({
      type: "netmap-rejected",
      reason: line,
      data: { runningSerial: this.#running.record.serial },
    });
    return { outcome: "rejected", reason };
  }

  /** Applies `plan` step by step; on a failure undoes the steps done and returns why (null: applied). */
  async #apply(next: RunningMap, plan: ApplyPlan): Promise<string | null> {
    const node = this.#opts.node;
    const previous = this.#running;
    const reverse = planApply(diffViews(next.view, previous.view), { aesPort: node.config.aes0.listenPort });
    const undo: { name: string; run: () => Promise<void> | void }[] = [];
    const uapi = async (layer: "wg0" | "aes0", req: UapiSetRequest) => {
      if (req.peers.length === 0) return;
      const errno = await node[layer].device.apply(req);
      if (errno !== 0) throw new Error(`${layer} refused the change (errno ${-errno})`);
    };
    const steps: { name: string; run: () => Promise<void> | void; undo: () => Promise<void> | void }[] = [
      {
        name: "gate additions",
        run: () => {
          for (const g of plan.gate.add) node.gate.addPeer(g.publicKey, g.keySource);
        },
        undo: () => {
          for (const g of plan.gate.add) node.gate.removePeer(g.publicKey);
        },
      },
      { name: "wg0", run: () => uapi("wg0", plan.wg0), undo: () => uapi("wg0", reverse.wg0) },
      { name: "aes0", run: () => uapi("aes0", plan.aes0), undo: () => uapi("aes0", reverse.aes0) },
      {
        name: "gate removals",
        run: () => {
          for (const key of plan.gate.remove) node.gate.removePeer(key);
          for (const g of plan.gate.reset) node.gate.addPeer(g.publicKey, g.keySource);
        },
        // A removed peer comes back closed, keyed again by its source (its old key is gone for good).
        undo: () => {
          for (const g of reverse.gate.add) node.gate.addPeer(g.publicKey, g.keySource);
          for (const g of reverse.gate.reset) node.gate.addPeer(g.publicKey, g.keySource);
        },
      },
      {
        name: "peer list",
        run: () => node.setPeers(peersFromView(next.view, this.#opts.pskFiles)),
        undo: () => node.setPeers(peersFromView(previous.view, this.#opts.pskFiles)),
      },
      ...(this.#opts.followers ?? []).map((f) => ({
        name: f.name,
        run: () => f.apply(next, previous),
        undo: () => f.apply(previous, next),
      })),
    ];
    for (const step of steps) {
      try {
        await step.run();
      } catch (e) {
        const why = `applying serial ${next.record.serial} failed at ${step.name} (${(e as Error).message})`;
        const notUndone: string[] = [];
        for (const u of undo.reverse()) {
          try {
            await u.run();
          } catch (e2) {
            notUndone.push(`${u.name}: ${(e2 as Error).message}`);
          }
        }
        const rolled = notUndone.length === 0
          ? `rolled back to serial ${previous.record.serial}`
          : `rollback incomplete (${notUndone.join("; ")}); restart the node`;
        return `${why}; ${rolled}`;
      }
      undo.push({ name: step.name, run: step.undo });
    }
    return null;
  }
}

/** DSKE runs with the peer set it started with: a DSKE peer joining or leaving waits for a restart. */
function dskeRestartLines(diff: ViewDiff): string[] {
  const lines: string[] = [];
  for (const p of diff.added) {
    if (p.aesIp !== null && p.role === "peer" && p.keySource === "dske") {
      lines.push(
        `DSKE peer ${p.name} added: its gate stays closed until a restart starts key agreement with it`,
      );
    }
  }
  for (const c of diff.changed) {
    if (c.fields.includes("keySource") && c.after.keySource === "dske" && c.after.aesIp !== null) {
      lines.push(`peer ${c.after.name} now uses DSKE: its gate stays closed until a restart`);
    }
  }
  return lines;
}
