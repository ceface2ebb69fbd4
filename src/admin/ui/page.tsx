/**
 * The status page's HTML, server-rendered with Hono's JSX: the node, both interfaces, every peer with
 * wg0 and aes0 side by side, the DSKE hubs, the SKA broker, the lockdown list and the latest events.
 * The same {@link StatusSection} is the whole page's snapshot (JavaScript off) and the fragment the
 * page's script polls (`GET /ui/status`) and swaps in (JavaScript on), so there is one renderer.
 *
 * It renders only the fields it names from a status that went through the API's schema, so nothing
 * undeclared (a key left on a backend object) can reach the page. Every state is shown as a word with
 * a colour class (never colour alone). No inline script or style: the strict CSP holds.
 * @module
 */
import type { NodeEvent } from "../../events/bus.ts";
import type { z } from "@hono/zod-openapi";
import type { NodeStatusSchema } from "../status-schema.ts";
import { relative, UI_SCRIPT_PATH, UI_STYLE_PATH } from "./assets.ts";

/** The status as the API sends it (declared fields only). */
export type PageStatus = z.infer<typeof NodeStatusSchema>;
type Peer = PageStatus["peers"][number];
type Layer = Peer["wg0"] | NonNullable<Peer["aes0"]>;
type Hub = NonNullable<PageStatus["dske"]>["hubs"][number];

/** Events the snapshot lists (newest first); the script keeps as many. */
export const PAGE_EVENTS = 30;

/** Tone of a state: its colour class. The word always goes with it. */
type Tone = "good" | "warn" | "bad" | "idle";

/** Byte counts as B, KiB, MiB, GiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Seconds as "42 s", "3 min 5 s", "2 h 4 min", "3 d 1 h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const State = (p: { tone: Tone; word: string; title?: string }) => (
  <span class={`state ${p.tone}`} title={p.title}>{p.word}</span>
);

function gateTone(g: NonNullable<Peer["aes0"]>["gate"]): Tone {
  if (g.mismatchSuspected || g.state === "stale") return "bad";
  return g.state === "open" ? "good" : "warn";
}

/** What a key's age is measured against (seconds; null: not applicable). */
export interface KeyAgeLimits {
  /** When the next rotation is expected (null for a manual key). */
  rotationIntervalSeconds: number | null;
  /** When the key expires and the gate closes (null: never). */
  maxAgeSeconds: number | null;
}

/** The tone and the bar's share (0..1) of a key `age` against its limits; share null: nothing to fill. */
export function keyAgeBar(age: number, limits: KeyAgeLimits): { tone: Tone; share: number | null } {
  const { rotationIntervalSeconds: rotation, maxAgeSeconds: max } = limits;
  const tone: Tone = max !== null && age >= max
    ? "bad"
    : rotation !== null && age > rotation
    ? "warn"
    : "good";
  const end = max ?? rotation;
  return { tone, share: end === null ? null : Math.min(age / end, 1) };
}

/**
 * The key's age as a bar that fills towards the key's maximum age (or the rotation interval when it
 * has none), with a tick at the rotation interval; past the interval it turns to a warning, at the
 * maximum age to an error. Drawn with SVG attributes, not inline CSS, so the CSP needs no exception.
 */
const KeyAge = (p: { age: number | null; limits: KeyAgeLimits }) => {
  if (p.age === null) return <span class="muted">no key</span>;
  const { rotationIntervalSeconds: rotation, maxAgeSeconds: max } = p.limits;
  const bar = keyAgeBar(p.age, p.limits);
  const words = [`${formatDuration(p.age)} old`];
  if (rotation !== null) words.push(`rotation every ${formatDuration(rotation)}`);
  words.push(max === null ? "never expires" : `expires at ${formatDuration(max)}`);
  const tick = rotation !== null && max !== null ? (Math.min(rotation / max, 1) * 100).toFixed(1) : null;
  return (
    <span class="keyage">
      {bar.share === null ? "" : (
        <svg
          class={`bar ${bar.tone}`}
          viewBox="0 0 100 6"
          preserveAspectRatio="none"
          role="img"
          aria-hidden="true"
        >
          <rect class="track" x="0" y="0" width="100" height="6" />
          <rect class="fill" x="0" y="0" width={(bar.share * 100).toFixed(1)} height="6" />
          {tick === null ? "" : <rect class="tick" x={tick} y="0" width="0.8" height="6" />}
        </svg>
      )}
      <span>
        {bar.tone === "good"
          ? ""
          : <State tone={bar.tone} word={bar.tone === "bad" ? "expired" : "rotation overdue"} />}
        {words.join(", ")}
      </span>
    </span>
  );
};

const Graph = (p: { id: string; layer: Layer }) => (
  <svg
    class="graph"
    data-graph={p.id}
    data-rx={String(p.layer.rxBytes)}
    data-tx={String(p.layer.txBytes)}
    viewBox="0 0 120 30"
    preserveAspectRatio="none"
    role="img"
    aria-label="throughput, received and sent"
  />
);

const LayerFacts = (p: { peer: string; name: "wg0" | "aes0"; layer: Layer; children?: unknown }) => (
  <div class={`layer ${p.name}`}>
    <h4>{p.name}</h4>
    <dl>
      <dt>endpoint</dt>
      <dd>{p.layer.endpoint ?? <span class="muted">none known</span>}</dd>
      <dt>last handshake</dt>
      <dd>
        {p.layer.lastHandshakeAgeSeconds === null
          ? <State tone="idle" word="never" />
          : `${formatDuration(p.layer.lastHandshakeAgeSeconds)} ago`}
      </dd>
      <dt>received / sent</dt>
      <dd>
        <span class="rx">{formatBytes(p.layer.rxBytes)}</span> /{" "}
        <span class="tx">
          {formatBytes(p.layer.txBytes)}
        </span>
        <Graph id={`${p.peer}/${p.name}`} layer={p.layer} />
      </dd>
      {p.children}
    </dl>
  </div>
);

function pskWords(psk: Peer["wg0"]["psk"]): { tone: Tone; word: string } {
  if (psk.source === "rosenpass") {
    return psk.epoch === null
      ? { tone: "warn", word: "post-quantum (Rosenpass), no key yet" }
      : { tone: "good", word: `post-quantum (Rosenpass), epoch ${psk.epoch}` };
  }
  if (psk.source === "static") return { tone: "idle", word: "static pre-shared key" };
  return { tone: "idle", word: "none" };
}

/** The key's limits as the node reports them; from the key plane's interval when it does not. */
function keyLimits(s: PageStatus, aes: NonNullable<Peer["aes0"]>): KeyAgeLimits {
  if (aes.keyLimits) return aes.keyLimits;
  const rotation = aes.keySource === "dske"
    ? s.dske?.rotationIntervalSeconds ?? null
    : aes.keySource === "ska"
    ? s.ska?.rotationIntervalSeconds ?? null
    : null;
  return { rotationIntervalSeconds: rotation, maxAgeSeconds: null };
}

/** The networks a peer routes for others (site-to-site), each with whether this node accepts it. */
const PeerRoutes = (p: { peer: Peer }) => (
  <p class="routes">
    routed networks: {p.peer.routes.advertised.map((net) =>
      p.peer.routes.accepted.includes(net)
        ? <State key={net} tone="good" word={`${net} accepted`} />
        : <State key={net} tone="idle" word={`${net} not accepted`} />
    )}
  </p>
);

const PeerCard = (p: { s: PageStatus; peer: Peer }) => {
  const { peer } = p;
  const aes = peer.aes0;
  const psk = pskWords(peer.wg0.psk);
  return (
    <article class="peer" data-peer={peer.name}>
      <h3>
        {peer.name} <span class="role">{peer.role}</span>
        {aes
          ? <State tone={gateTone(aes.gate)} word={`gate ${aes.gate.state}`} />
          : <State tone="idle" word="wg0 only" />}
      </h3>
      <div class="layers">
        <LayerFacts peer={peer.name} name="wg0" layer={peer.wg0}>
          <dt>wg0 PSK</dt>
          <dd>
            <State tone={psk.tone} word={psk.word} />
            {peer.wg0.psk.ageSeconds !== null ? ` ${formatDuration(peer.wg0.psk.ageSeconds)} old` : ""}
          </dd>
        </LayerFacts>
        {aes
          ? (
            <LayerFacts peer={peer.name} name="aes0" layer={aes}>
              <dt>gate</dt>
              <dd class="gate">
                <State tone={gateTone(aes.gate)} word={aes.gate.state} />
                {aes.gate.mismatchSuspected ? <State tone="bad" word="PSK mismatch suspected" /> : ""}
                <span class="reason">{aes.gate.reason}</span>
              </dd>
              <dt>key</dt>
              <dd>
                {aes.keySource}
                {aes.keyEpoch !== null ? `, epoch ${aes.keyEpoch}` : ""}
                {aes.dske ? `, ${aes.dske.role}, ${aes.dske.rotationsOk} rotations ok` : ""}
                {aes.dske && aes.dske.rotationsFailed > 0
                  ? <State tone="warn" word={`${aes.dske.rotationsFailed} failed`} />
                  : ""}
                {aes.ska ? `, ${aes.ska.role}, ${aes.ska.rotationsOk} rotations ok` : ""}
                {aes.ska && aes.ska.rotationsFailed > 0
                  ? <State tone="warn" word={`${aes.ska.rotationsFailed} failed`} />
                  : ""}
              </dd>
              {aes.dske?.problem ? <dd class="problem">{aes.dske.problem}</dd> : ""}
              <dt>key age</dt>
              <dd>
                <KeyAge age={aes.keyAgeSeconds} limits={keyLimits(p.s, aes)} />
              </dd>
            </LayerFacts>
          )
          : (
            <div class="layer aes0 none">
              <h4>aes0</h4>
              <p class="muted">not carried over aes0 ({peer.role === "peer" ? "AES-exempt" : peer.role})</p>
            </div>
          )}
      </div>
      {peer.routes.advertised.length > 0 ? <PeerRoutes peer={peer} /> : ""}
    </article>
  );
};

function hubReach(h: Hub): { tone: Tone; word: string } {
  if (h.misbehaving) return { tone: "bad", word: "misbehaving" };
  if (h.reachable === null) return { tone: "idle", word: "not asked yet" };
  return h.reachable ? { tone: "good", word: "reachable" } : { tone: "bad", word: "unreachable" };
}

const Hubs = (p: { s: PageStatus }) => {
  const d = p.s.dske;
  if (!d) return null;
  return (
    <section class="card hubs">
      <h2>DSKE hubs</h2>
      <p class="muted">
        threshold {d.threshold} of {d.hubs.length}, rotation every {formatDuration(d.rotationIntervalSeconds)}
        {d.rejectedPeerFrames > 0 ? `, ${d.rejectedPeerFrames} peer frames rejected` : ""}
      </p>
      <table>
        <thead>
          <tr>
            <th>hub</th>
            <th>endpoint</th>
            <th>state</th>
            <th>last answer</th>
            <th>PSRD left (send / receive)</th>
          </tr>
        </thead>
        <tbody>
          {d.hubs.map((h) => {
            const r = hubReach(h);
            return (
              <tr>
                <td>{h.name}</td>
                <td>{h.endpoint}</td>
                <td>
                  <State tone={r.tone} word={r.word} />
                </td>
                <td>
                  {h.lastAnswerAgeSeconds === null
                    ? "never"
                    : `${formatDuration(h.lastAnswerAgeSeconds)} ago`}
                </td>
                <td>
                  {formatBytes(h.psrd.txRemaining)} / {formatBytes(h.psrd.rxRemaining)}
                  {h.psrd.low ? <State tone="warn" word="low" /> : ""}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
};

const Broker = (p: { s: PageStatus }) => {
  const k = p.s.ska;
  if (!k) return null;
  const r: { tone: Tone; word: string } = k.brokerReachable === null
    ? { tone: "idle", word: "not asked yet" }
    : k.brokerReachable
    ? { tone: "good", word: "reachable" }
    : { tone: "bad", word: "unreachable" };
  return (
    <section class="card broker">
      <h2>SKA broker</h2>
      <p>
        {k.broker} <State tone={r.tone} word={r.word} />{" "}
        <span class="muted">rotation every {formatDuration(k.rotationIntervalSeconds)}</span>
      </p>
    </section>
  );
};

const Lockdown = (p: { s: PageStatus }) => {
  const l = p.s.lockdown;
  return (
    <section class="card lockdown">
      <h2>wg0 lockdown extra ports</h2>
      <p>
        {l.enforced ? <State tone="good" word="enforced" /> : <State tone="warn" word="not enforced" />}{" "}
        <span class="muted">
          {l.enforced
            ? "by the wg0 firewall (beyond ICMP, UDP 51830 and TCP 51831)"
            : "stored only: this node has no wg0 firewall yet"}
        </span>
      </p>
      <ul class="ports">
        {l.ports.length === 0 ? <li class="muted">no extra ports</li> : l.ports.map((e) => {
          const spec = `${e.proto}/${e.from === e.to ? e.from : `${e.from}-${e.to}`}`;
          return (
            <li data-entry={spec}>
              <code>{spec}</code>{" "}
              <button type="button" class="remove needs-token" data-remove={spec} hidden>
                remove
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
};

const Iface = (p: { i: PageStatus["interfaces"]["wg0"] }) => (
  <div class="iface">
    <h3>{p.i.name}</h3>
    <dl>
      <dt>address</dt>
      <dd>{p.i.address}</dd>
      <dt>suite</dt>
      <dd>
        <code>{p.i.cipherSuite}</code>
      </dd>
      <dt>AEAD</dt>
      <dd>
        {p.i.aead} <span class="muted">({p.i.aeadBackend})</span>
      </dd>
      <dt>MTU, port</dt>
      <dd>
        {p.i.mtu}, UDP {p.i.listenPort}
      </dd>
    </dl>
  </div>
);

/** The live part of the page (also `GET /ui/status`): node, interfaces, peers, hubs, broker, lockdown. */
export const StatusSection = (p: { s: PageStatus }) => {
  const { s } = p;
  return (
    <div id="status" data-node={s.node.name}>
      <section class="card node">
        <h2>
          {s.node.name}{" "}
          <span class="muted">twofold {s.node.version}, up {formatDuration(s.node.uptimeSeconds)}</span>
        </h2>
        <div class="ifaces">
          <Iface i={s.interfaces.wg0} />
          <Iface i={s.interfaces.aes0} />
        </div>
      </section>
      <section class="peers">
        <h2>Peers</h2>
        {s.peers.length === 0 ? <p class="muted">no peers configured</p> : ""}
        {s.peers.map((peer) => <PeerCard key={peer.name} s={s} peer={peer} />)}
      </section>
      <Hubs s={s} />
      <Broker s={s} />
      <Lockdown s={s} />
    </div>
  );
};

const EventItem = (p: { e: NodeEvent }) => (
  <li class={`event ${eventTone(p.e.type)}`} data-id={String(p.e.id)}>
    <time datetime={p.e.at}>{p.e.at.slice(11, 19)}</time> <b>{p.e.type}</b>
    {p.e.peer ? ` ${p.e.peer}` : ""}
    {p.e.layer ? ` (${p.e.layer})` : ""} <span class="reason">{p.e.reason}</span>
  </li>
);

/** The colour class of an event type (the type's name is always shown beside it). */
export function eventTone(type: string): Tone {
  if (/failed|stale|refused|mismatch-suspected|unreachable|misbehaving|inconsistent|exhausted/.test(type)) {
    return "bad";
  }
  if (/closed|low/.test(type)) return "warn";
  if (/rotated|opened|completed|cleared/.test(type)) return "good";
  return "idle";
}

/** What the page shows and allows. */
export interface PageOptions {
  /** The status snapshot, or null when reading it needs the token (a TCP listener). */
  status: PageStatus | null;
  /** The latest events, oldest first (empty when reading needs the token). */
  events: NodeEvent[];
  /** Whether reads need the admin token (the page then asks for it before showing anything). */
  readsNeedToken: boolean;
}

/** The whole page. */
export const Page = (p: PageOptions) => {
  const lastId = p.events.length > 0 ? p.events[p.events.length - 1].id : null;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{p.status ? `${p.status.node.name} · twofold` : "twofold"}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={relative(UI_STYLE_PATH)} />
        <script src={relative(UI_SCRIPT_PATH)} defer />
      </head>
      <body data-reads-need-token={p.readsNeedToken ? "true" : "false"}>
        <header>
          <h1>twofold</h1>
          <p id="live" class="muted">snapshot (live updates need JavaScript)</p>
        </header>
        <section class="card auth" id="auth" hidden>
          <form id="token-form" autocomplete="off">
            <label for="token">admin token</label>
            <input id="token" type="password" autocomplete="off" spellcheck={false} />
            <button type="submit">use</button>
            <button type="button" id="forget" hidden>forget</button>
          </form>
          <p id="mode" class="muted">
            {p.readsNeedToken
              ? "This listener needs the admin token to show anything."
              : "Read-only. Type the admin token to change the lockdown list."}{" "}
            The token stays in this page's memory only.
          </p>
        </section>
        <main>
          {p.status ? <StatusSection s={p.status} /> : (
            <div id="status">
              <p class="card">
                This admin API listens on TCP, where reading the status needs the admin token: type it above
                (with JavaScript on), or use <code>twofold ui</code> on the node.
              </p>
            </div>
          )}
          <section class="card lockdown-edit needs-token" hidden>
            <form id="lockdown-add">
              <label for="add-proto">add</label>
              <select id="add-proto">
                <option value="tcp">tcp</option>
                <option value="udp">udp</option>
              </select>
              <input id="add-port" inputmode="numeric" placeholder="8080 or 6000-6010" size={16} />
              <button type="submit">add port</button>
            </form>
            <p id="lockdown-result" role="status" />
          </section>
          <section class="card events">
            <h2>Events</h2>
            <ol id="events" data-last-id={String(lastId ?? 0)}>
              {p.events.slice(-PAGE_EVENTS).reverse().map((e) => <EventItem key={e.id} e={e} />)}
            </ol>
          </section>
        </main>
      </body>
    </html>
  );
};
