/**
 * The status page in process (`app.request()`): the HTML of the snapshot, the strict CSP on every UI
 * response, no secret or token anywhere, read-only without a token, and the TCP listener's page that
 * shows nothing until its script holds the token. The live behaviour in a browser is
 * tests/integration/admin_ui_browser_test.ts.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import { UI_SCRIPT } from "../../src/admin/ui/script.ts";
import { eventTone, formatBytes, formatDuration, keyAgeBar } from "../../src/admin/ui/page.tsx";
import type { Logger } from "../../src/log.ts";
import { call, FakeBackend, SECRETS, seenBodies, TEST_TOKEN } from "./admin_fake_backend.ts";

const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function setup(readsNeedToken = false) {
  const backend = new FakeBackend();
  const app = createAdminApp(backend, { token: TEST_TOKEN, readsNeedToken, log: quiet });
  return { backend, app };
}

/** The CSP directives of a response, by name. */
function csp(headers: Headers): Map<string, string> {
  const text = headers.get("Content-Security-Policy") ?? "";
  return new Map(
    text.split(";").map((d) => d.trim()).filter((d) => d !== "").map((d) => {
      const [name, ...rest] = d.split(/\s+/);
      return [name, rest.join(" ")];
    }),
  );
}

function assertStrictCsp(headers: Headers, what: string) {
  const d = csp(headers);
  assert.equal(d.get("default-src"), "'self'", `${what}: default-src`);
  assert.equal(d.get("script-src"), "'self'", `${what}: script-src`);
  assert.equal(d.get("style-src"), "'self'", `${what}: style-src`);
  assert.equal(d.get("object-src"), "'none'", what);
  assert.equal(d.get("frame-ancestors"), "'none'", what);
  assert.doesNotMatch(headers.get("Content-Security-Policy")!, /unsafe|\*|https?:/, `${what}: nothing loose`);
  assert.equal(headers.get("X-Content-Type-Options"), "nosniff", what);
}

/** Opening tags of `name` in `html`. */
function tags(html: string, name: string): string[] {
  return [...html.matchAll(new RegExp(`<${name}\\b[^>]*>`, "gi"))].map((m) => m[0]);
}

Deno.test("status page on the unix socket: a complete snapshot, read-only, strict CSP", async (t) => {
  const { app, backend } = setup(false);
  backend.ports = [{ proto: "tcp", from: 8080, to: 8080 }, { proto: "udp", from: 6000, to: 6010 }];
  backend.events.publish({ type: "key-rotated", peer: "alice", layer: "aes0", epoch: 3, reason: "rotated" });
  backend.events.publish({
    type: "gate-closed",
    peer: "bob",
    layer: "aes0",
    reason: "<script>alert(1)</script> no key",
  });
  const r = await call(app, "GET", "/", { token: null });

  await t.step("200 HTML with the CSP and no caching", () => {
    assert.equal(r.status, 200);
    assert.match(r.headers.get("Content-Type") ?? "", /^text\/html; charset=utf-8/);
    assert.match(r.text, /^<!doctype html><html lang="en">/);
    assertStrictCsp(r.headers, "GET /");
    assert.equal(r.headers.get("Cache-Control"), "no-store");
  });

  await t.step("the node, both interfaces, every peer with both layers, the hub, the lockdown list", () => {
    for (
      const text of [
        "node-a",
        "twofold 0.1.0",
        "up 42 s",
        "Noise_IKpsk2_25519_AESGCM_BLAKE2s",
        "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
        "AES-256-GCM",
        "(noble)",
        "1360, UDP 51830",
        "1420, UDP 51820",
        'data-peer="alice"',
        'data-peer="bob"',
        'data-peer="carol"',
        "agreed key installed",
        "no agreed key yet",
        "gate open",
        "gate closed",
        "wg0 only",
        "manual, epoch 3",
        "dske, generator, 5 rotations ok",
        "2 failed",
        "static pre-shared key",
        "hub-1",
        "reachable",
        "4.0 KiB / 2.0 KiB",
        "threshold 2 of 1",
        "tcp/8080",
        "udp/6000-6010",
        "not enforced",
        "192.168.40.0/24 accepted",
      ]
    ) assert.ok(r.text.includes(text), `the page shows ${text}`);
  });

  await t.step("states are words with a colour class, never colour alone", () => {
    const states = [...r.text.matchAll(/<span class="state (\w+)"[^>]*>([^<]*)<\/span>/g)];
    assert.ok(states.length >= 6, `${states.length} states`);
    for (const [, tone, word] of states) {
      assert.ok(["good", "warn", "bad", "idle"].includes(tone), tone);
      assert.ok(word.trim().length > 1, `a word for ${tone}`);
    }
    assert.match(r.text, /<span class="state good"[^>]*>gate open<\/span>/);
    assert.match(r.text, /<span class="state warn"[^>]*>gate closed<\/span>/);
  });

  await t.step(
    "the key age bar fills towards the maximum age, with a tick at the rotation interval",
    async () => {
      backend.peers[1].aes0!.keyAgeSeconds = 90;
      backend.peers[1].aes0!.keyEpoch = 7;
      const page = (await call(app, "GET", "/", { token: null })).text;
      assert.match(page, /<svg class="bar good"/);
      assert.match(page, /<rect class="fill" x="0" y="0" width="25.0" height="6"/);
      assert.match(page, /<rect class="tick" x="33.3"/);
      assert.ok(page.includes("1 min 30 s old, rotation every 2 min 0 s, expires at 6 min 0 s"));
      assert.ok(page.includes("17 s old, never expires"), "a manual key: no bar, words only");
      backend.peers[1].aes0!.keyAgeSeconds = 200;
      const overdue = (await call(app, "GET", "/", { token: null })).text;
      assert.match(overdue, /<svg class="bar warn"/);
      assert.match(overdue, /<span class="state warn"[^>]*>rotation overdue<\/span>/);
    },
  );

  await t.step("the latest events, newest first, escaped; the stream resumes after the last", () => {
    const i = r.text.indexOf("gate-closed");
    const j = r.text.indexOf("key-rotated");
    assert.ok(i > 0 && j > i, "newest first");
    assert.ok(!r.text.includes("<script>alert"), "event text is escaped");
    assert.ok(r.text.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.match(r.text, /<ol id="events" data-last-id="2">/);
  });

  await t.step("no inline script, style or handler: only the node's own script and stylesheet", () => {
    const scripts = tags(r.text, "script");
    assert.deepEqual(scripts, ['<script src="ui/app.js" defer>']);
    assert.match(r.text, /<script src="ui\/app.js" defer><\/script>/, "the script tag is empty");
    assert.equal(tags(r.text, "style").length, 0);
    assert.doesNotMatch(r.text, /\sstyle=/i);
    assert.doesNotMatch(r.text, /\son[a-z]+=/i);
    assert.doesNotMatch(r.text, /\skey=/, "no JSX key leaks into the markup");
    assert.deepEqual(
      tags(r.text, "link").map((l) => /href="([^"]*)"/.exec(l)?.[1]),
      ["data:,", "ui/app.css"],
    );
    assert.doesNotMatch(r.text, /https?:\/\//, "nothing from elsewhere");
  });

  await t.step("read-only without a token: the change controls are hidden until the script holds one", () => {
    for (const tag of tags(r.text, "[a-z]+").filter((x) => /class="[^"]*needs-token/.test(x))) {
      assert.match(tag, /\shidden(=""|\s|>)/, tag);
    }
    assert.equal(tags(r.text, "button").filter((b) => b.includes("data-remove")).length, 2);
    assert.match(r.text, /Read-only\. Type the admin token/);
    assert.match(r.text, /<input id="token" type="password" autocomplete="off"/);
    assert.doesNotMatch(r.text, /<form[^>]*(action|method)=/, "no form posts anywhere");
  });

  await t.step("a change without a token is still refused", async () => {
    const add = await call(app, "POST", "/v1/lockdown/ports", {
      token: null,
      json: { proto: "tcp", port: 9 },
    });
    assert.equal(add.status, 401);
    assert.equal(backend.setCalls, 0);
  });
});

Deno.test("status page assets and fragment: types, CSP, a script that never stores the token", async (t) => {
  const { app } = setup(false);
  await t.step("the script and the stylesheet", async () => {
    const js = await call(app, "GET", "/ui/app.js", { token: null });
    assert.equal(js.status, 200);
    assert.match(js.headers.get("Content-Type") ?? "", /^text\/javascript/);
    assertStrictCsp(js.headers, "app.js");
    const css = await call(app, "GET", "/ui/app.css", { token: null });
    assert.equal(css.status, 200);
    assert.match(css.headers.get("Content-Type") ?? "", /^text\/css/);
    assert.match(css.text, /@media \(min-width: 700px\)/, "a wide layout");
  });
  await t.step("the script parses and keeps the token in memory only", () => {
    new Function(UI_SCRIPT); // a syntax error throws here
    assert.doesNotMatch(UI_SCRIPT, /localStorage|sessionStorage|indexedDB|document\.cookie/);
    assert.doesNotMatch(UI_SCRIPT, /[?&]token=|location\.(hash|search)\s*=/, "never in a URL");
    assert.match(UI_SCRIPT, /Authorization = "Bearer " \+ token/);
    assert.match(UI_SCRIPT, /"Last-Event-ID"/, "the event stream resumes");
    assert.doesNotMatch(
      UI_SCRIPT,
      /fetch\("\/|"\/v1\/|"\/ui\//,
      "relative URLs only (the page works under a prefix)",
    );
    assert.doesNotMatch(UI_SCRIPT, /innerHTML\s*=(?!\s*html;)/, "events are never parsed as HTML");
  });
  await t.step("the fragment the script polls is the status section", async () => {
    const f = await call(app, "GET", "/ui/status", { token: null });
    assert.equal(f.status, 200);
    assert.match(f.text, /^<div id="status" data-node="node-a">/);
    assert.ok(f.text.includes('data-graph="alice/aes0" data-rx="111" data-tx="222"'));
    assertStrictCsp(f.headers, "fragment");
  });
});

Deno.test("status page on a TCP listener: the shell is open, the status needs the token", async (t) => {
  const { app } = setup(true);
  await t.step("GET / without a token: the page asks for the token and shows no status", async () => {
    const r = await call(app, "GET", "/", { token: null });
    assert.equal(r.status, 200);
    assertStrictCsp(r.headers, "GET / over TCP");
    assert.match(r.text, /data-reads-need-token="true"/);
    assert.match(r.text, /reading the status needs the admin token/);
    for (const hidden of ["node-a", "alice", "hub-1", "Noise_"]) assert.ok(!r.text.includes(hidden), hidden);
  });
  await t.step("assets are open; the fragment and the API need the token", async () => {
    assert.equal((await call(app, "GET", "/ui/app.js", { token: null })).status, 200);
    assert.equal((await call(app, "GET", "/ui/app.css", { token: null })).status, 200);
    assert.equal((await call(app, "GET", "/ui/status", { token: null })).status, 401);
    assert.equal((await call(app, "GET", "/ui/status", { token: "wrong" })).status, 403);
    assert.equal((await call(app, "GET", "/v1/events", { token: null })).status, 401);
    const f = await call(app, "GET", "/ui/status");
    assert.equal(f.status, 200);
    assert.ok(f.text.includes('data-peer="alice"'));
  });
  await t.step("POST / is a mutation: 401 without the token", async () => {
    assert.equal((await call(app, "POST", "/", { token: null })).status, 401);
  });
});

Deno.test("status page: no secret and no token in anything it served", () => {
  const all = seenBodies.join("\n");
  assert.ok(all.includes("node-a"), "the pages were recorded");
  for (const s of [...SECRETS, TEST_TOKEN]) assert.ok(!all.includes(s), "a secret or the token leaked");
});

Deno.test("status page formatting helpers", () => {
  const dske = { rotationIntervalSeconds: 120, maxAgeSeconds: 360 };
  assert.deepEqual(keyAgeBar(60, dske), { tone: "good", share: 60 / 360 });
  assert.deepEqual(keyAgeBar(121, dske), { tone: "warn", share: 121 / 360 });
  assert.deepEqual(keyAgeBar(400, dske), { tone: "bad", share: 1 });
  assert.deepEqual(keyAgeBar(5, { rotationIntervalSeconds: null, maxAgeSeconds: null }), {
    tone: "good",
    share: null,
  });
  assert.deepEqual(keyAgeBar(50, { rotationIntervalSeconds: null, maxAgeSeconds: 100 }), {
    tone: "good",
    share: 0.5,
  });
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(50 * 1024 * 1024), "50 MiB");
  assert.equal(formatDuration(59.9), "59 s");
  assert.equal(formatDuration(125), "2 min 5 s");
  assert.equal(formatDuration(7260), "2 h 1 min");
  assert.equal(formatDuration(90000), "1 d 1 h");
  assert.equal(eventTone("key-rotated"), "good");
  assert.equal(eventTone("gate-stale"), "bad");
  assert.equal(eventTone("gate-closed"), "warn");
  assert.equal(eventTone("psrd-low"), "warn");
  assert.equal(eventTone("lockdown-changed"), "idle");
});
