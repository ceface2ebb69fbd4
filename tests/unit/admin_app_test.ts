/**
 * The admin app in process (`app.request()`): auth, every endpoint, every error status, the
 * lockdown event, and that no response carries a secret or the token.
 */
import assert from "node:assert/strict";
import { createAdminApp } from "../../src/admin/app.ts";
import type { Logger } from "../../src/log.ts";
import { call, FakeBackend, SECRETS, seenBodies, TEST_TOKEN } from "./admin_fake_backend.ts";

function captureLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (m: string) => void lines.push(m);
  return { lines, debug: put, info: put, warn: put, error: put };
}

function setup(readsNeedToken = false) {
  const backend = new FakeBackend();
  const log = captureLog();
  const app = createAdminApp(backend, { token: TEST_TOKEN, readsNeedToken, log });
  return { backend, app, log };
}

function assertError(r: { status: number; json: Record<string, unknown> }, status: number, code: string) {
  assert.equal(r.status, status, `status ${r.status} body ${JSON.stringify(r.json)}`);
  assert.equal(r.json.error, code);
  assert.equal(typeof r.json.detail, "string");
  assert.ok((r.json.detail as string).length > 5);
  assert.deepEqual(Object.keys(r.json).sort(), ["detail", "error"]);
}

Deno.test("admin app: auth", async (t) => {
  await t.step("unix socket mode: reads need no token", async () => {
    const { app } = setup(false);
    for (
      const path of [
        "/v1/status",
        "/v1/lockdown/ports",
        "/metrics",
        "/healthz",
        "/readyz",
        "/v1/openapi.json",
      ]
    ) {
      const r = await call(app, "GET", path, { token: null });
      assert.equal(r.status, 200, path);
    }
  });
  await t.step("a mutation without a token is 401 with WWW-Authenticate: Bearer", async () => {
    const { app, backend } = setup(false);
    const r = await call(app, "PUT", "/v1/lockdown/ports", { token: null, json: { ports: [] } });
    assertError(r, 401, "unauthorized");
    assert.match(r.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
    const d = await call(app, "DELETE", "/v1/lockdown/ports/tcp/80", { token: null });
    assertError(d, 401, "unauthorized");
    assert.equal(backend.setCalls, 0);
  });
  await t.step("a non-bearer Authorization header is 401", async () => {
    const { app } = setup(false);
    const res = await app.request("/v1/lockdown/ports", {
      method: "POST",
      headers: { Authorization: "Basic dXNlcjpwYXNz", "Content-Type": "application/json" },
      body: JSON.stringify({ proto: "tcp", port: 80 }),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, "unauthorized");
  });
  await t.step("a wrong token is 403, also one differing only in length or last char", async () => {
    const { app, backend } = setup(false);
    for (const wrong of ["nope", TEST_TOKEN + "x", TEST_TOKEN.slice(0, -1) + "!"]) {
      const r = await call(app, "POST", "/v1/lockdown/ports", {
        token: wrong,
        json: { proto: "tcp", port: 80 },
      });
      assertError(r, 403, "forbidden");
      assert.ok(!r.text.includes(wrong), "the presented token is not echoed");
    }
    assert.equal(backend.setCalls, 0);
  });
  await t.step(
    "TCP mode: reads need the token (401 without, 403 wrong, 200 right); /healthz stays open",
    async () => {
      const { app } = setup(true);
      for (
        const path of [
          "/v1/status",
          "/v1/events",
          "/v1/lockdown/ports",
          "/metrics",
          "/readyz",
          "/v1/openapi.json",
        ]
      ) {
        assertError(await call(app, "GET", path, { token: null }), 401, "unauthorized");
        assertError(await call(app, "GET", path, { token: "wrong" }), 403, "forbidden");
      }
      assert.equal((await call(app, "GET", "/v1/status")).status, 200);
      assert.equal((await call(app, "GET", "/healthz", { token: null })).status, 200);
    },
  );
  await t.step(
    "an unknown route without a token over TCP is 401 (nothing is revealed before auth)",
    async () => {
      const { app } = setup(true);
      assertError(await call(app, "GET", "/v1/nothing", { token: null }), 401, "unauthorized");
    },
  );
});

Deno.test("admin app: status, health, readiness, unknown routes, internal errors", async (t) => {
  await t.step("GET /v1/status returns the snapshot, lockdown entries with port", async () => {
    const { app, backend } = setup();
    backend.ports = [{ proto: "udp", from: 6000, to: 6010 }];
    const r = await call(app, "GET", "/v1/status");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("Content-Type") ?? "", /application\/json/);
    const s = r.json as unknown as ReturnType<FakeBackend["status"]>;
    assert.equal(s.node.name, "node-a");
    assert.deepEqual(s.peers.map((p) => p.name), ["alice", "bob", "carol"]);
    assert.equal(s.peers[0].aes0?.gate.state, "open");
    assert.equal(s.interfaces.aes0.cipherSuite, "Noise_IKpsk2_25519_AESGCM_BLAKE2s");
    assert.deepEqual(s.lockdown, {
      ports: [{ proto: "udp", port: "6000-6010", from: 6000, to: 6010 }],
      enforced: false,
    });
  });
  await t.step("undeclared fields a backend leaves on its objects are not answered", async () => {
    const { app, backend } = setup();
    assert.ok(backend.leakySecrets);
    const raw = JSON.stringify(backend.status());
    assert.ok(SECRETS.some((s) => raw.includes(s)), "the fake really carries secrets");
    const r = await call(app, "GET", "/v1/status");
    assert.equal(r.status, 200);
    for (const k of ['"privateKey"', '"privateKeyHex"', '"presharedKey"', '"psk":"', '"psrd":"']) {
      assert.ok(!r.text.includes(k), k);
    }
    for (const s of SECRETS) assert.ok(!r.text.includes(s));
  });
  await t.step("a snapshot that breaks the schema is a 500, logged with the field path", async () => {
    const { app, backend, log } = setup();
    (backend.peers[0].wg0 as unknown as Record<string, unknown>).rxBytes = "lots";
    assertError(await call(app, "GET", "/v1/status"), 500, "internal");
    assert.match(log.lines.join("\n"), /status snapshot does not match its schema: peers\[0\]\.wg0\.rxBytes/);
  });
  await t.step("GET /healthz is 200", async () => {
    const { app } = setup();
    const r = await call(app, "GET", "/healthz");
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ok");
  });
  await t.step(
    "GET /readyz: 200 with one gate open, 503 with reasons when none (or a mismatch), 200 with no AES peers",
    async () => {
      const { app, backend } = setup();
      const ok = await call(app, "GET", "/readyz");
      assert.equal(ok.status, 200);
      assert.match(ok.json.detail as string, /alice/);
      backend.setGates("closed");
      const no = await call(app, "GET", "/readyz");
      assertError(no, 503, "not_ready");
      assert.match(no.json.detail as string, /alice closed \(test set closed\)/);
      assert.match(no.json.detail as string, /bob closed/);
      backend.setGates("stale");
      assertError(await call(app, "GET", "/readyz"), 503, "not_ready");
      backend.setGates("open");
      for (const p of backend.peers) if (p.aes0) p.aes0.gate.mismatchSuspected = true;
      const mismatch = await call(app, "GET", "/readyz");
      assertError(mismatch, 503, "not_ready");
      assert.match(mismatch.json.detail as string, /alice open, PSK mismatch suspected \(test set open\)/);
      backend.peers = backend.peers.filter((p) => p.aes0 === null);
      const none = await call(app, "GET", "/readyz");
      assert.equal(none.status, 200);
      assert.equal(none.json.detail, "no AES peers");
    },
  );
  await t.step("an unknown route or method is 404 JSON", async () => {
    const { app } = setup();
    assertError(await call(app, "GET", "/v2/status"), 404, "not_found");
    assertError(await call(app, "GET", "/v1"), 404, "not_found");
    assertError(await call(app, "PATCH", "/v1/status", { json: {} }), 404, "not_found");
  });
  await t.step("an exception is 500 JSON without the stack; only its message is logged", async () => {
    const { app, backend, log } = setup();
    backend.statusThrows = new Error("snapshot exploded");
    const r = await call(app, "GET", "/v1/status");
    assertError(r, 500, "internal");
    assert.ok(!r.text.includes("snapshot exploded"));
    assert.ok(!/at .*\.ts:\d+/.test(r.text), "no stack frame in the body");
    assert.equal(log.lines.length, 1);
    assert.match(log.lines[0], /GET \/v1\/status failed: snapshot exploded$/);
    assert.ok(!log.lines[0].includes("\n"), "no stack in the log line");
  });
});

Deno.test("admin app: lockdown list", async (t) => {
  await t.step("GET lists the empty list, enforced false", async () => {
    const { app } = setup();
    const r = await call(app, "GET", "/v1/lockdown/ports");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ports: [], enforced: false });
  });

  await t.step(
    "PUT replaces, normalizes and sorts; one lockdown-changed event with added/removed/count",
    async () => {
      const { app, backend } = setup();
      backend.ports = [{ proto: "tcp", from: 22, to: 22 }];
      const r = await call(app, "PUT", "/v1/lockdown/ports", {
        json: {
          ports: [{ proto: "udp", port: "6000-6010" }, { proto: "TCP", port: 8080 }, {
            proto: "tcp",
            port: "443",
          }],
        },
      });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, {
        ports: [
          { proto: "tcp", port: 443, from: 443, to: 443 },
          { proto: "tcp", port: 8080, from: 8080, to: 8080 },
          { proto: "udp", port: "6000-6010", from: 6000, to: 6010 },
        ],
        enforced: false,
      });
      assert.deepEqual(backend.ports, [
        { proto: "tcp", from: 443, to: 443 },
        { proto: "tcp", from: 8080, to: 8080 },
        { proto: "udp", from: 6000, to: 6010 },
      ]);
      const evs = backend.events.since(0);
      assert.equal(evs.length, 1);
      assert.equal(evs[0].type, "lockdown-changed");
      assert.deepEqual(evs[0].data, {
        added: "tcp/443 tcp/8080 udp/6000-6010",
        removed: "tcp/22",
        count: 3,
        enforced: false,
        caller: "admin token via in-process request",
      });
      assert.match(
        evs[0].reason,
        /replaced via the admin API: \+tcp\/443 \+tcp\/8080 \+udp\/6000-6010 -tcp\/22/,
      );
    },
  );

  await t.step(
    "a listed entry can be PUT back as is (extra fields ignored); no change, no event",
    async () => {
      const { app, backend } = setup();
      backend.ports = [{ proto: "udp", from: 6000, to: 6010 }];
      const listed = await call(app, "GET", "/v1/lockdown/ports");
      const r = await call(app, "PUT", "/v1/lockdown/ports", { json: { ports: listed.json.ports } });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, listed.json);
      assert.equal(backend.events.lastId, 0);
    },
  );

  await t.step("PUT [] empties the list", async () => {
    const { app, backend } = setup();
    backend.ports = [{ proto: "tcp", from: 80, to: 80 }];
    const r = await call(app, "PUT", "/v1/lockdown/ports", { json: { ports: [] } });
    assert.deepEqual(r.json, { ports: [], enforced: false });
    assert.equal(backend.events.since(0)[0].data?.removed, "tcp/80");
  });

  await t.step("POST adds one entry; the same again is 409, an overlapping one 409", async () => {
    const { app, backend } = setup();
    const r = await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: "6000-6010" } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {
      ports: [{ proto: "udp", port: "6000-6010", from: 6000, to: 6010 }],
      enforced: false,
    });
    assert.equal(backend.events.since(0)[0].data?.added, "udp/6000-6010");
    assertError(
      await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: "6000-6010" } }),
      409,
      "already_present",
    );
    const o = await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: 6005 } });
    assertError(o, 409, "conflict");
    assert.match(o.json.detail as string, /udp\/6005 overlaps udp\/6000-6010/);
    // The same port on the other protocol is no overlap.
    assert.equal(
      (await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "tcp", port: 6005 } })).status,
      200,
    );
    assert.equal(backend.ports.length, 2);
    assert.equal(backend.events.lastId, 2);
  });

  await t.step("POST {ports: [...]} adds several in one change, or none when any is refused", async () => {
    const { app, backend } = setup();
    backend.ports = [{ proto: "tcp", from: 80, to: 80 }];
    const several = { ports: [{ proto: "udp", port: "6000-6010" }, { proto: "tcp", port: 8080 }] };
    const r = await call(app, "POST", "/v1/lockdown/ports", { json: several });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.json.ports as { port: unknown }[]).map((p) => p.port), [80, 8080, "6000-6010"]);
    assert.equal(backend.setCalls, 1, "one save for the whole request");
    assert.equal(backend.events.since(0).length, 1, "one lockdown-changed event");
    assert.equal(backend.events.since(0)[0].data?.added, "tcp/8080 udp/6000-6010");

    const before = structuredClone(backend.ports);
    const present = await call(app, "POST", "/v1/lockdown/ports", {
      json: { ports: [{ proto: "tcp", port: 9000 }, { proto: "tcp", port: 8080 }] },
    });
    assertError(present, 409, "already_present");
    assert.match(
      present.json.detail as string,
      /^tcp\/8080 is already in the lockdown list; nothing was added$/,
    );
    const overlapping = await call(app, "POST", "/v1/lockdown/ports", {
      json: { ports: [{ proto: "tcp", port: 9000 }, { proto: "udp", port: 6005 }] },
    });
    assertError(overlapping, 409, "conflict");
    assert.match(overlapping.json.detail as string, /udp\/6005 overlaps udp\/6000-6010.*nothing was added/);
    const among = await call(app, "POST", "/v1/lockdown/ports", {
      json: { ports: [{ proto: "tcp", port: "9000-9010" }, { proto: "tcp", port: 9005 }] },
    });
    assertError(among, 422, "invalid_value");
    assert.match(among.json.detail as string, /ports\[1\]: tcp\/9005 overlaps ports\[0\] tcp\/9000-9010/);
    assertError(await call(app, "POST", "/v1/lockdown/ports", { json: { ports: [] } }), 400, "invalid_body");
    assert.deepEqual(backend.ports, before, "a refused request changed nothing");
    assert.equal(backend.setCalls, 1);

    const doc = (await call(app, "GET", "/v1/openapi.json")).json as {
      components: { schemas: Record<string, unknown> };
    };
    assert.ok(doc.components.schemas.LockdownAdd, "the OpenAPI document describes the list form");
  });

  await t.step("DELETE removes an entry as listed; an absent one is 404; bad paths 400/422", async () => {
    const { app, backend } = setup();
    backend.ports = [{ proto: "tcp", from: 80, to: 80 }, { proto: "udp", from: 6000, to: 6010 }];
    const r = await call(app, "DELETE", "/v1/lockdown/ports/udp/6000-6010");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ports: [{ proto: "tcp", port: 80, from: 80, to: 80 }], enforced: false });
    const ev = backend.events.since(0)[0];
    assert.deepEqual(ev.data, {
      added: "",
      removed: "udp/6000-6010",
      count: 1,
      enforced: false,
      caller: "admin token via in-process request",
    });
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/udp/6000-6010"), 404, "not_found");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/udp/80"), 404, "not_found");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/sctp/80"), 400, "bad_request");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/tcp/http"), 400, "bad_request");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/tcp/70000"), 422, "invalid_value");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/tcp/90-80"), 422, "invalid_value");
    assertError(await call(app, "DELETE", "/v1/lockdown/ports/tcp"), 404, "not_found");
    assert.equal(backend.ports.length, 1);
  });

  await t.step("415 when a PUT/POST body is not declared application/json", async () => {
    const { app, backend } = setup();
    const body = JSON.stringify({ ports: [] });
    for (const ct of [null, "text/plain", "application/x-www-form-urlencoded"]) {
      const r = await call(app, "PUT", "/v1/lockdown/ports", { body, contentType: ct });
      assertError(r, 415, "unsupported_media_type");
    }
    assertError(
      await call(app, "POST", "/v1/lockdown/ports", {
        body: '{"proto":"tcp","port":1}',
        contentType: "text/json",
      }),
      415,
      "unsupported_media_type",
    );
    const ok = await call(app, "PUT", "/v1/lockdown/ports", {
      body,
      contentType: "application/json; charset=utf-8",
    });
    assert.equal(ok.status, 200);
    assert.equal(backend.setCalls, 1);
  });

  await t.step("400 for malformed JSON and for a body of the wrong shape", async () => {
    const { app, backend } = setup();
    assertError(await call(app, "PUT", "/v1/lockdown/ports", { body: "{ports: [" }), 400, "malformed_json");
    assertError(await call(app, "PUT", "/v1/lockdown/ports", { body: "" }), 400, "malformed_json");
    for (
      const json of [
        {},
        { ports: "tcp/80" },
        { ports: [{ proto: "tcp" }] },
        { ports: [{ proto: 6, port: 80 }] },
        { ports: [{ proto: "tcp", port: true }] },
        [],
        null,
      ]
    ) {
      const r = await call(app, "PUT", "/v1/lockdown/ports", { json });
      assertError(r, 400, "invalid_body");
    }
    const r = await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "tcp" } });
    assertError(r, 400, "invalid_body");
    assert.match(r.json.detail as string, /port/);
    assert.equal(backend.setCalls, 0);
  });

  await t.step("422 for well-formed input with invalid values, naming the entry", async () => {
    const { app, backend } = setup();
    const cases: [unknown, RegExp][] = [
      [{ proto: "tcp", port: 0 }, /ports\[0\]\.port: 0 is outside 1\.\.65535/],
      [{ proto: "tcp", port: 65536 }, /65536 is outside/],
      [{ proto: "tcp", port: 80.5 }, /not a whole port/],
      [{ proto: "udp", port: "10-5" }, /reversed: write 5-10/],
      [{ proto: "udp", port: "1-70000" }, /70000 is outside/],
      [{ proto: "udp", port: "http" }, /not a port or a range/],
      [{ proto: "sctp", port: 80 }, /ports\[0\]\.proto: protocol "sctp"/],
      [{ proto: "udp", port: 51830 }, /udp\/51830 is always allowed/],
      [{ proto: "tcp", port: "51831" }, /tcp\/51831 is always allowed/],
    ];
    for (const [entry, re] of cases) {
      const r = await call(app, "PUT", "/v1/lockdown/ports", { json: { ports: [entry] } });
      assertError(r, 422, "invalid_value");
      assert.match(r.json.detail as string, re);
    }
    const overlap = await call(app, "PUT", "/v1/lockdown/ports", {
      json: { ports: [{ proto: "tcp", port: 80 }, { proto: "tcp", port: "1-1024" }] },
    });
    assertError(overlap, 422, "invalid_value");
    assert.match(overlap.json.detail as string, /ports\[1\]: tcp\/1-1024 overlaps ports\[0\] tcp\/80/);
    const many = Array.from({ length: 257 }, (_, i) => ({ proto: "tcp", port: 1000 + i }));
    assertError(
      await call(app, "PUT", "/v1/lockdown/ports", { json: { ports: many } }),
      422,
      "invalid_value",
    );
    const post = await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "tcp", port: 99999 } });
    assertError(post, 422, "invalid_value");
    assert.match(post.json.detail as string, /^body\.port: 99999/);
    // A range that merely contains an always-allowed port is fine, and 256 entries are allowed.
    const wide = await call(app, "PUT", "/v1/lockdown/ports", {
      json: { ports: [{ proto: "udp", port: "50000-60000" }] },
    });
    assert.equal(wide.status, 200);
    const max = await call(app, "PUT", "/v1/lockdown/ports", { json: { ports: many.slice(0, 256) } });
    assert.equal(max.status, 200);
    assertError(
      await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: 9 } }),
      422,
      "invalid_value",
    );
    assert.equal(backend.setCalls, 2);
  });

  await t.step("the always-allowed UDP port follows aes0's listen port", async () => {
    const { app, backend } = setup();
    backend.aesPort = 40000;
    assert.equal(
      (await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: 51830 } })).status,
      200,
    );
    assertError(
      await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "udp", port: 40000 } }),
      422,
      "invalid_value",
    );
  });

  await t.step("413 for a body over 64 KiB", async () => {
    const { app, backend } = setup();
    const r = await call(app, "PUT", "/v1/lockdown/ports", {
      body: JSON.stringify({ ports: [], pad: "x".repeat(70_000) }),
    });
    assertError(r, 413, "body_too_large");
    assert.equal(backend.setCalls, 0);
  });

  await t.step("a failed save is 500 lockdown_not_saved; the list stays; no event", async () => {
    const { app, backend, log } = setup();
    backend.ports = [{ proto: "tcp", from: 80, to: 80 }];
    backend.failNextSet = "ENOSPC writing lockdown.json";
    const r = await call(app, "POST", "/v1/lockdown/ports", { json: { proto: "tcp", port: 443 } });
    assertError(r, 500, "lockdown_not_saved");
    assert.match(r.json.detail as string, /ENOSPC writing lockdown\.json.*previous list stays in force/);
    assert.deepEqual(backend.ports, [{ proto: "tcp", from: 80, to: 80 }]);
    assert.equal(backend.events.lastId, 0);
    assert.ok(log.lines.some((l) => /lockdown list not saved/.test(l)));
  });

  await t.step("concurrent POSTs are serialized: none is lost", async () => {
    const { app, backend } = setup();
    const rs = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => call(app, "POST", "/v1/lockdown/ports", { json: { proto: "tcp", port: 2000 + i } }),
      ),
    );
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(backend.ports.length, 20);
    assert.equal(backend.events.lastId, 20);
  });
});

Deno.test("admin app: no response carries a secret or the token", async () => {
  // Every body and header the tests above saw, plus one more round of every read here.
  const { app } = setup();
  for (const p of ["/v1/status", "/metrics", "/v1/lockdown/ports", "/readyz", "/v1/openapi.json"]) {
    await call(app, "GET", p);
  }
  assert.ok(seenBodies.length > 100, `checked ${seenBodies.length} bodies`);
  for (const s of [...SECRETS, TEST_TOKEN]) {
    for (const b of seenBodies) assert.ok(!b.includes(s), "a response contains a secret or the token");
  }
});
