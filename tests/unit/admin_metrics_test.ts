/**
 * `GET /metrics` parses line by line as Prometheus text exposition (a small checker below) and holds
 * the node's numbers; `GET /v1/openapi.json` describes every route.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import { escapeLabelValue } from "../../src/admin/metrics.ts";
import type { Logger } from "../../src/log.ts";
import { call, FakeBackend, SECRETS, TEST_TOKEN } from "./admin_fake_backend.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses and checks an exposition; throws naming the first bad line. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const series = new Set<string>();
  const samples: Sample[] = [];
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  text.slice(0, -1).split("\n").forEach((line, n) => {
    const where = `line ${n + 1}: ${line}`;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      assert.match(m[1], NAME, where);
      assert.ok(!helps.has(m[1]), `duplicate HELP, ${where}`);
      helps.add(m[1]);
      return;
    }
    if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]), `duplicate TYPE, ${where}`);
      assert.ok(helps.has(m[1]), `HELP before TYPE, ${where}`);
      types.set(m[1], m[2]);
      return;
    }
    assert.ok(!line.startsWith("#"), `unknown comment, ${where}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample, ${where}`);
    const [, name, labelText, valueText] = m;
    assert.ok(types.has(name), `sample before its TYPE, ${where}`);
    const labels: Record<string, string> = {};
    if (labelText !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/gy;
      let pos = 0;
      while (pos < labelText.length) {
        re.lastIndex = pos;
        const l = re.exec(labelText);
        assert.ok(l, `bad label set at ${pos}, ${where}`);
        assert.ok(!(l[1] in labels), `duplicate label, ${where}`);
        labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === "n" ? "\n" : c));
        pos = re.lastIndex;
      }
    }
    assert.match(valueText, /^(NaN|[+-]Inf|-?\d+(\.\d+)?([eE][+-]?\d+)?)$/, where);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(",")}}`;
    assert.ok(!series.has(key), `duplicate series, ${where}`);
    series.add(key);
    samples.push({ name, labels, value: Number(valueText.replace("Inf", "Infinity")) });
  });
  return { samples, types };
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function setup(readsNeedToken = false) {
  const backend = new FakeBackend();
  const app = createAdminApp(backend, { token: TEST_TOKEN, readsNeedToken, log: quiet });
  return { backend, app };
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) =>
    s.name === name && Object.keys(labels).length === Object.keys(s.labels).length &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )?.value;
}

Deno.test("admin metrics: /metrics", async (t) => {
  await t.step("the checker rejects malformed expositions (it can fail)", () => {
    const bad = [
      "twofold_x 1\n", // no TYPE
      '# HELP twofold_x h\n# TYPE twofold_x gauge\ntwofold_x{a="1} 1\n',
      "# HELP twofold_x h\n# TYPE twofold_x gauge\ntwofold_x one\n",
      "# HELP twofold_x h\n# TYPE twofold_x gauge\ntwofold_x 1\ntwofold_x 2\n",
      "# HELP twofold_x h\n# TYPE twofold_x gauge\ntwofold_x 1",
    ];
    for (const b of bad) assert.throws(() => parseExposition(b), assert.AssertionError, b);
  });

  await t.step("every line parses; names start with twofold_; counters end in _total", async () => {
    const { app } = setup();
    const r = await call(app, "GET", "/metrics");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const { samples, types } = parseExposition(r.text);
    assert.ok(samples.length > 20);
    for (const [name, type] of types) {
      assert.match(name, /^twofold_/);
      if (type === "counter") assert.match(name, /_total$/);
    }
    for (const s of [...SECRETS, TEST_TOKEN]) assert.ok(!r.text.includes(s));
  });

  await t.step(
    "per-peer bytes, handshake age, key epoch/age per layer, gate one-hot, rotations, drops",
    async () => {
      const { app, backend } = setup();
      const { samples } = parseExposition((await call(app, "GET", "/metrics")).text);
      const v = (n: string, l: Record<string, string>) => value(samples, n, l);
      assert.equal(v("twofold_peer_rx_bytes_total", { peer: "alice", layer: "wg0" }), 1234);
      assert.equal(v("twofold_peer_tx_bytes_total", { peer: "alice", layer: "wg0" }), 5678);
      assert.equal(v("twofold_peer_rx_bytes_total", { peer: "alice", layer: "aes0" }), 111);
      assert.equal(v("twofold_peer_tx_bytes_total", { peer: "carol", layer: "wg0" }), 20);
      assert.equal(
        v("twofold_peer_rx_bytes_total", { peer: "carol", layer: "aes0" }),
        undefined,
        "exempt: no aes0",
      );
      assert.equal(v("twofold_peer_last_handshake_age_seconds", { peer: "alice", layer: "aes0" }), 12);
      assert.equal(v("twofold_peer_key_epoch", { peer: "alice", layer: "aes0" }), 3);
      assert.equal(v("twofold_peer_key_age_seconds", { peer: "alice", layer: "aes0" }), 17);
      assert.equal(v("twofold_peer_key_epoch", { peer: "bob", layer: "aes0" }), undefined, "closed: no key");
      for (const [peer, open] of [["alice", 1], ["bob", 0]] as const) {
        assert.equal(v("twofold_peer_gate_state", { peer, layer: "aes0", state: "open" }), open);
        assert.equal(v("twofold_peer_gate_state", { peer, layer: "aes0", state: "closed" }), 1 - open);
        assert.equal(v("twofold_peer_gate_state", { peer, layer: "aes0", state: "stale" }), 0);
      }
      // wg0's post-quantum key (Rosenpass-managed alice and bob; carol is off: no pq series).
      assert.equal(v("twofold_pq_key_exchanges_total", { peer: "alice" }), 2);
      assert.equal(v("twofold_pq_key_age_seconds", { peer: "alice" }), 30);
      assert.equal(v("twofold_pq_state", { peer: "alice", state: "exchanged" }), 1);
      assert.equal(v("twofold_pq_state", { peer: "alice", state: "stale" }), 0);
      assert.equal(v("twofold_peer_key_epoch", { peer: "alice", layer: "wg0" }), 2);
      assert.equal(
        v("twofold_pq_key_exchanges_total", { peer: "carol" }),
        undefined,
        "mode off: no pq series",
      );
      assert.equal(v("twofold_key_rotations_total", { peer: "bob" }), 5);
      assert.equal(v("twofold_key_rotations_failed_total", { peer: "bob" }), 2);
      assert.equal(v("twofold_drops_total", { layer: "wg0", reason: "replay" }), 3);
      assert.equal(v("twofold_drops_total", { layer: "aes0", reason: "gate_closed" }), 7);
      assert.equal(v("twofold_hub_psrd_remaining_bytes", { hub: "hub-1", direction: "rx" }), 2048);
      assert.equal(v("twofold_lockdown_enforced", {}), 0);
      assert.equal(v("twofold_uptime_seconds", {}), 42);
      backend.events.publish({ type: "config-reloaded", reason: "test" });
      const again = parseExposition((await call(app, "GET", "/metrics")).text).samples;
      assert.equal(value(again, "twofold_events_published_total", {}), 1);
    },
  );

  await t.step("label values are escaped (quote, backslash, newline) and parse back", async () => {
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
    const { app, backend } = setup();
    backend.peers[0].name = 'we"ird\\na\nme';
    const { samples } = parseExposition((await call(app, "GET", "/metrics")).text);
    assert.equal(
      value(samples, "twofold_peer_rx_bytes_total", { peer: 'we"ird\\na\nme', layer: "wg0" }),
      1234,
    );
  });

  await t.step("over TCP /metrics needs the token", async () => {
    const { app } = setup(true);
    assert.equal((await call(app, "GET", "/metrics", { token: null })).status, 401);
    assert.equal((await call(app, "GET", "/metrics")).status, 200);
  });
});

Deno.test("admin OpenAPI: /v1/openapi.json describes every route", async () => {
  const { app } = setup();
  const r = await call(app, "GET", "/v1/openapi.json");
  assert.equal(r.status, 200);
  const doc = r.json as {
    openapi: string;
    paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
    components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { scheme: string }> };
  };
  assert.match(doc.openapi, /^3\./);
  const want: [string, string][] = [
    ["/v1/status", "get"],
    ["/v1/events", "get"],
    ["/v1/lockdown/ports", "get"],
    ["/v1/lockdown/ports", "put"],
    ["/v1/lockdown/ports", "post"],
    ["/v1/lockdown/ports/{proto}/{port}", "delete"],
    ["/metrics", "get"],
    ["/healthz", "get"],
    ["/readyz", "get"],
    ["/v1/openapi.json", "get"],
    ["/v1/debug/bundle", "get"],
    ["/v1/trace", "post"],
    ["/v1/routes", "get"],
    ["/v1/reload", "post"],
  ];
  for (const [path, method] of want) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`);
  const ops = Object.values(doc.paths).flatMap((p) => Object.values(p));
  assert.equal(ops.length, want.length, "no undocumented extras");
  for (const status of ["400", "401", "403", "415", "422"]) {
    assert.ok(doc.paths["/v1/lockdown/ports"].put.responses[status], `PUT documents ${status}`);
  }
  assert.ok(doc.paths["/v1/lockdown/ports"].post.responses["409"]);
  assert.ok(doc.paths["/v1/lockdown/ports/{proto}/{port}"].delete.responses["404"]);
  assert.ok(doc.paths["/readyz"].get.responses["503"]);
  for (const status of ["400", "401", "403", "422"]) {
    assert.ok(doc.paths["/v1/trace"].post.responses[status], `POST /v1/trace documents ${status}`);
  }
  for (
    const name of [
      "Error",
      "NodeStatus",
      "NodeEvent",
      "LockdownState",
      "LockdownReplace",
      "LockdownEntryInput",
    ]
  ) {
    assert.ok(doc.components.schemas[name], `schema ${name}`);
  }
  assert.equal(doc.components.securitySchemes.bearerAuth.scheme, "bearer");
  assert.ok(doc.paths["/v1/lockdown/ports"].put.security);
  assert.equal(doc.paths["/healthz"].get.security, undefined, "/healthz needs no token");
});
