/**
 * The hubs as the key agreement sees them: per hub whether it answers, whether it was named as
 * misbehaving, whether its PSRD (ours or its own) can still pay for a round; requests that record all
 * that; and the parallel fan-out of one request per hub that returns once k of them succeeded. No I/O
 * of its own: requests and time go through the agreement's ports.
 * @module
 */
import { TransportError } from "./frame-transport.ts";
import type { HubMessage } from "./frames.ts";
import type { HubLink } from "./hub-client.ts";
import { PsrdExhausted } from "./psrd-store.ts";
import {
  type AgreementPorts,
  type DskeEvent,
  type DskeHubStatus,
  HUB_TIMEOUT_MS,
  MISBEHAVING_ROUNDS,
  type Role,
  ROUND_PSRD,
  STRAGGLER_MS,
} from "./agreement-types.ts";

/** A hub answered with a refusal status (not evidence of misbehaviour). */
export class HubDeclined extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HubDeclined";
  }
}

interface HubState {
  reachable: boolean | null;
  lastAnswerAt: number | null;
  misbehavingAt: number | null;
  /** The hub answered PSRD_LOW (authenticated): it cannot send us a share any more. */
  hubExhausted: boolean;
  /** Roles for which exhaustion of this hub was already reported. */
  reported: Set<Role>;
}

/** The hubs of one node and what it knows about them. */
export class HubPool {
  readonly #links: HubLink[];
  readonly #ports: AgreementPorts;
  readonly #emit: (e: DskeEvent) => void;
  readonly #rotationIntervalMs: number;
  readonly #state = new Map<string, HubState>();

  /** Tracks `links`; requests and time through `ports`; events to `emit`. */
  constructor(
    links: HubLink[],
    ports: AgreementPorts,
    emit: (e: DskeEvent) => void,
    rotationIntervalMs: number,
  ) {
    this.#links = links;
    this.#ports = ports;
    this.#emit = emit;
    this.#rotationIntervalMs = rotationIntervalMs;
    for (const h of links) {
      this.#state.set(h.hubId, {
        reachable: null,
        lastAnswerAt: null,
        misbehavingAt: null,
        hubExhausted: false,
        reported: new Set(),
      });
    }
  }

  /** Every hub link. */
  get links(): readonly HubLink[] {
    return this.#links;
  }

  /** The link of hub `hubId` (hex), if we hold PSRD with it. */
  link(hubId: string): HubLink | undefined {
    return this.#links.find((l) => l.hubId === hubId);
  }

  /** A hub as status lines name it: its config name and id prefix (the prefix alone when unnamed). */
  text(hubId: string): string {
    const name = this.link(hubId)?.name;
    return name ? `${name} (${hubId.slice(0, 8)})` : hubId.slice(0, 8);
  }

  /** Hub ids as status lines list them. */
  texts(hubIds: string[]): string {
    return hubIds.map((id) => this.text(id)).join(", ");
  }

  /**
   * Per hub link: id, endpoint, block, whether the latest request got an authenticated answer (null
   * before any) and whether it was named misbehaving within the last few rotation intervals.
   */
  status(): DskeHubStatus[] {
    const now = this.#ports.clock.now();
    const recent = MISBEHAVING_ROUNDS * this.#rotationIntervalMs;
    return this.#links.map((h) => {
      const s = this.#state.get(h.hubId)!;
      return {
        hubId: h.hubId,
        endpoint: `${h.host}:${h.port}`,
        blockId: h.blockId,
        reachable: s.reachable,
        lastAnswerAt: s.lastAnswerAt,
        misbehaving: s.misbehavingAt !== null && now - s.misbehavingAt < recent,
      };
    });
  }

  /** Flags a hub as misbehaving (now). */
  markMisbehaving(hubId: string): void {
    const s = this.#state.get(hubId);
    if (s) s.misbehavingAt = this.#ports.clock.now();
  }

  /** The hub answered PSRD_LOW: it cannot send us a share any more; never asked for one again. */
  markHubExhausted(hubId: string): void {
    const s = this.#state.get(hubId);
    if (s) s.hubExhausted = true;
  }

  /** A request with the hub timeout, recording whether the hub gave an authenticated answer. */
  async request(hub: HubLink, request: HubMessage): Promise<HubMessage | null> {
    const s = this.#state.get(hub.hubId)!;
    try {
      const reply = await this.#ports.hub(hub, request, HUB_TIMEOUT_MS, true);
      s.reachable = true;
      s.lastAnswerAt = this.#ports.clock.now();
      return reply;
    } catch (e) {
      if (!(e instanceof PsrdExhausted)) s.reachable = false; // PsrdExhausted: nothing was sent
      throw e;
    }
  }

  /** Sends without waiting for an answer or recording anything (best effort; failures ignored). */
  notify(hub: HubLink, request: HubMessage): void {
    this.#ports.hub(hub, request, HUB_TIMEOUT_MS, false).catch(() => {});
  }

  /**
   * The hubs of `links` with PSRD for one more round in `role` (both regions, and the hub has not said
   * PSRD_LOW). Reports each hub the first time it drops out for a role.
   */
  usable(links: readonly HubLink[], role: Role): HubLink[] {
    const [tx, rx] = ROUND_PSRD[role];
    return links.filter((h) => {
      const b = this.#ports.psrd.block(h.blockId);
      const s = this.#state.get(h.hubId)!;
      const ok = b !== undefined && b.txRemaining >= tx && b.rxRemaining >= rx &&
        !(role === "recoverer" && s.hubExhausted);
      if (!ok && !s.reported.has(role)) {
        s.reported.add(role);
        this.#emit({
          type: "psrd-exhausted",
          hub: h.hubId,
          reason: s.hubExhausted && role === "recoverer"
            ? `the hub has too little PSRD left to send a share: no longer used`
            : `PSRD with this hub is used up for a ${role} round (${b?.txRemaining ?? 0} B left to send, ` +
              `${b?.rxRemaining ?? 0} B to receive; ${tx} and ${rx} needed): no longer used`,
        });
      }
      return ok;
    });
  }

  /**
   * Runs `tasks` (one per hub of `hubs`) in parallel and resolves with the successful results once
   * `enough` says so (then waits STRAGGLER_MS for the rest) or when all settled. Failures become events.
   */
  async firstK<T>(
    tasks: (() => Promise<T>)[],
    hubs: readonly HubLink[],
    enough: (got: T[]) => boolean,
  ): Promise<T[]> {
    const clock = this.#ports.clock;
    const got: T[] = [];
    let settled = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    let straggler: unknown;
    let waiting = false;
    tasks.forEach((task, i) => {
      task().then((v) => {
        got.push(v);
        if (!waiting && enough(got)) {
          waiting = true;
          straggler = clock.setTimer(done, STRAGGLER_MS);
        }
      }).catch((e) => this.#failed(hubs[i].hubId, e)).finally(() => {
        if (++settled === tasks.length) done();
      });
    });
    if (tasks.length === 0) done();
    await finished;
    if (waiting) clock.clearTimer(straggler);
    return [...got];
  }

  /** A hub task failed: say how (a refusal is not an event). */
  #failed(hub: string, e: unknown): void {
    if (e instanceof HubDeclined) return;
    if (e instanceof PsrdExhausted) {
      this.#emit({ type: "psrd-exhausted", hub, reason: "PSRD with this hub is used up: failing closed" });
    } else if (e instanceof TransportError) {
      this.#emit({ type: "hub-unreachable", hub, reason: e.message });
    } else {
      this.markMisbehaving(hub);
      this.#emit({ type: "hub-misbehaved", hub, reason: (e as Error).message });
    }
  }
}
