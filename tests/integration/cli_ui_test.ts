/**
 * `twofold ui` for real: an admin API on a unix socket (served in this process for a fake node), the
 * command started as a process pointing at it; it prints its URL, serves the status page, the assets,
 * the live fragment and the event stream through the socket, forwards a change only with the token,
 * refuses requests not addressed to it, and ends on SIGINT with exit 0. A node that is not there is one
 * error line and exit 1. Needs no root.
 */
import assert from "node:assert/strict";
import { startAdminServer } from "../../src/admin/server.ts";
import { isOwnHost, newPathKey, proxyHandler, stripPathKey } from "../../src/cli/ui-proxy.ts";
import { FakeBackend, SECRETS, TEST_TOKEN } from "../unit/admin_fake_backend.ts";
import { denoBin } from "../helpers/deno.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Reads `stream` until `pattern` matches the text so far (or it ends); returns the text. */
async function readUntil(reader: ReadableStreamDefaultReader<string>, pattern: RegExp): Promise<string> {
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  return text;
}

Deno.test("twofold ui: serves the page of a node whose admin API is a unix socket", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tfui-" });
  const backend = new FakeBackend();
  const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  const server = await startAdminServer(backend, {
    listen: { kind: "unix", path: `${dir}/admin.sock` },
    token: TEST_TOKEN,
    log: quiet,
  });
  const child = new Deno.Command(denoBin(), {
    args: ["run", "--allow-all", "--quiet", MAIN, "ui", "--admin", `unix:${dir}/admin.sock`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const printed = await readUntil(out, /http:\/\/127\.0\.0\.1:\d+\/.*\n/);
    const url: string = /(http:\/\/127\.0\.0\.1:\d+\/[\w-]{22}\/)/.exec(printed)?.[1] ?? "";
    assert.ok(url, `the URL is printed: ${printed}`);
    assert.match(printed, new RegExp(`shows the node at ${dir}/admin.sock`));

    await t.step("the page, with the snapshot the socket allows and the strict CSP", async () => {
      const r = await fetch(url);
      const html = await r.text();
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-security-policy") ?? "", /^default-src 'self'; script-src 'self'/);
      assert.ok(html.includes('data-peer="alice"') && html.includes("gate open"), "the snapshot");
      assert.match(html, /data-reads-need-token="false"/);
      for (const s of [...SECRETS, TEST_TOKEN]) assert.ok(!html.includes(s), "no secret");
      for (const path of ["ui/app.js", "ui/app.css", "ui/status", "v1/status"]) {
        const a = await fetch(url + path);
        await a.body?.cancel();
        assert.equal(a.status, 200, path);
      }
    });

    await t.step("without this run's path key nothing is served or forwarded", async () => {
      const origin = new URL(url).origin;
      const key = new URL(url).pathname.slice(1, -1);
      for (const path of ["/", "/v1/status", "/ui/app.js", `/${key.slice(0, -1)}x/v1/status`]) {
        const r = await fetch(origin + path);
        assert.equal(r.status, 404, path);
        assert.match((await r.json()).detail, /the URL twofold ui printed/);
      }
      const bare = await fetch(`${origin}/${key}`, { redirect: "manual" });
      await bare.body?.cancel();
      assert.equal(bare.status, 308);
      assert.equal(bare.headers.get("location"), `/${key}/`);
    });

    await t.step("the event stream passes through and resumes with Last-Event-ID", async () => {
      backend.events.publish({ type: "key-rotated", peer: "alice", epoch: 4, reason: "first" });
      const stop = new AbortController();
      const r = await fetch(url + "v1/events", { headers: { "Last-Event-ID": "0" }, signal: stop.signal });
      assert.equal(r.status, 200);
      const events = r.body!.pipeThrough(new TextDecoderStream()).getReader();
      assert.match(await readUntil(events, /"reason":"first"/), /event: key-rotated/);
      backend.events.publish({ type: "gate-stale", peer: "bob", reason: "live one" });
      assert.match(await readUntil(events, /"reason":"live one"/), /event: gate-stale/);
      stop.abort();
      await events.cancel().catch(() => {});
    });

    await t.step("a change needs the token typed into the page; the proxy adds none", async () => {
      const body = JSON.stringify({ proto: "tcp", port: 8080 });
      const ct = { "Content-Type": "application/json" };
      const without = await fetch(url + "v1/lockdown/ports", { method: "POST", headers: ct, body });
      await without.body?.cancel();
      assert.equal(without.status, 401);
      assert.equal(backend.setCalls, 0);
      const withToken = await fetch(url + "v1/lockdown/ports", {
        method: "POST",
        headers: { ...ct, Authorization: `Bearer ${TEST_TOKEN}` },
        body,
      });
      assert.equal(withToken.status, 200, await withToken.text());
      assert.deepEqual(backend.ports, [{ proto: "tcp", from: 8080, to: 8080 }]);
    });

    await t.step("SIGINT ends it with exit 0", async () => {
      child.kill("SIGINT");
      const status = await child.status;
      assert.equal(status.code, 0);
    });
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already ended */ }
    await child.status;
    await out.cancel().catch(() => {});
    const err = await new Response(child.stderr).text().catch(() => "");
    assert.ok(!err.includes(TEST_TOKEN), "the token is never printed");
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("twofold ui: a node that is not there is one line and exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfui-" });
  try {
    const r = await new Deno.Command(denoBin(), {
      args: ["run", "--allow-all", "--quiet", MAIN, "ui", "--admin", `unix:${dir}/none.sock`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 1);
    const err = new TextDecoder().decode(r.stderr).trim();
    assert.match(err, /^twofold: no node is listening on .*none\.sock: is twofold up running\?$/);
    assert.equal(new TextDecoder().decode(r.stdout), "");
    const bad = await new Deno.Command(denoBin(), {
      args: ["run", "--allow-all", "--quiet", MAIN, "ui", "--port", "70000"],
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /--port "70000": a port is 0\.\.65535/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ui proxy: answers only requests addressed to it; a change from another origin is refused", async () => {
  assert.ok(isOwnHost("127.0.0.1:8080", 8080));
  assert.ok(isOwnHost("LOCALHOST:8080", 8080));
  assert.ok(!isOwnHost("evil.example:8080", 8080), "DNS rebinding");
  assert.ok(!isOwnHost("127.0.0.1:8081", 8080));
  assert.ok(!isOwnHost(null, 8080));
  // The node behind is unreachable on purpose: a refusal must come before any forwarding.
  const key = newPathKey();
  assert.match(key, /^[\w-]{22}$/);
  assert.notEqual(key, newPathKey());
  assert.equal(stripPathKey(`/${key}/v1/status`, key), "/v1/status");
  assert.equal(stripPathKey(`/${key}/`, key), "/");
  assert.equal(stripPathKey(`/${key}`, key), null);
  assert.equal(stripPathKey("/v1/status", key), null);
  const handler = proxyHandler({ kind: "tcp", host: "127.0.0.1", port: 9 }, () => 8080, key);
  const info = { completed: Promise.resolve() };
  const rebound = await handler(
    new Request(`http://x/${key}/v1/status`, { headers: { host: "evil.example:8080" } }),
    info,
  );
  assert.equal(rebound.status, 403);
  const crossSite = await handler(
    new Request(`http://x/${key}/v1/lockdown/ports`, {
      method: "POST",
      headers: { host: "127.0.0.1:8080", origin: "http://evil.example" },
      body: "{}",
    }),
    info,
  );
  assert.equal(crossSite.status, 403);
  assert.match((await crossSite.json()).detail, /another origin/);
  const down = await handler(
    new Request(`http://x/${key}/v1/status`, { headers: { host: "127.0.0.1:8080" } }),
    info,
  );
  assert.equal(down.status, 502);
  assert.match((await down.json()).detail, /cannot be reached/);
});
