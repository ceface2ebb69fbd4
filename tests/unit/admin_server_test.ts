/**
 * The admin listener: address parsing (loopback only), token files (0600), a real unix-socket server
 * (mode 0660, stale socket handling, SSE clients cleaned up) and a loopback TCP server (reads need the
 * token).
 */
import assert from "node:assert/strict";
import {
  AdminListenError,
  AdminTokenError,
  DEFAULT_ADMIN_SOCKET,
  ensureTokenFile,
  parseAdminListen,
  readTokenFile,
  startAdminServer,
} from "../../src/admin/server.ts";
import type { Logger } from "../../src/log.ts";
import { FakeBackend, SECRETS, TEST_TOKEN } from "./admin_fake_backend.ts";

Deno.test("admin server: parseAdminListen", async (t) => {
  await t.step("unix forms", () => {
    assert.deepEqual(parseAdminListen("unix:/run/twofold/admin.sock"), {
      kind: "unix",
      path: "/run/twofold/admin.sock",
    });
    assert.deepEqual(parseAdminListen("/tmp/a.sock"), { kind: "unix", path: "/tmp/a.sock" });
    assert.deepEqual(parseAdminListen(DEFAULT_ADMIN_SOCKET), {
      kind: "unix",
      path: "/run/twofold/admin.sock",
    });
  });
  await t.step("loopback TCP forms", () => {
    assert.deepEqual(parseAdminListen("127.0.0.1:9090"), { kind: "tcp", host: "127.0.0.1", port: 9090 });
    assert.deepEqual(parseAdminListen("127.1.2.3:80"), { kind: "tcp", host: "127.1.2.3", port: 80 });
    assert.deepEqual(parseAdminListen("[::1]:9090"), { kind: "tcp", host: "::1", port: 9090 });
    assert.deepEqual(parseAdminListen("[0:0:0:0:0:0:0:1]:1"), {
      kind: "tcp",
      host: "0:0:0:0:0:0:0:1",
      port: 1,
    });
    assert.deepEqual(parseAdminListen("localhost:9090"), { kind: "tcp", host: "127.0.0.1", port: 9090 });
    assert.deepEqual(parseAdminListen("127.0.0.1:0"), { kind: "tcp", host: "127.0.0.1", port: 0 });
  });
  await t.step("non-loopback hosts are refused with a message naming the fix", () => {
    for (
      const bad of [
        "0.0.0.0:9090",
        "10.0.0.5:9090",
        "192.168.1.1:9090",
        "[::]:9090",
        "[fe80::1]:9090",
        "admin.example.com:9090",
        "128.0.0.1:9090",
      ]
    ) {
      assert.throws(() => parseAdminListen(bad), (e: unknown) => {
        assert.ok(e instanceof AdminListenError, bad);
        assert.match(e.message, /is not loopback/);
        assert.match(e.message, /127\.0\.0\.1:PORT/);
        return true;
      });
    }
  });
  await t.step("malformed addresses are refused", () => {
    const cases: [string, RegExp][] = [
      ["", /empty/],
      ["unix:relative.sock", /not absolute/],
      ["./admin.sock", /not absolute/],
      ["127.0.0.1", /no port/],
      ["127.0.0.1:70000", /port must be 0\.\.65535/],
      ["127.0.0.1:http", /port must be/],
      ["::1:9090", /in brackets/],
      ["300.0.0.1:80", /not loopback/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => parseAdminListen(text),
        (e: unknown) => e instanceof AdminListenError && re.test(e.message),
      );
    }
  });
});

Deno.test("admin server: token files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-admin-" });
  try {
    await t.step(
      "ensureTokenFile creates a random 0600 token (directory 0700) and then reads it back",
      async () => {
        const path = `${dir}/sub/admin.token`;
        const a = await ensureTokenFile(path);
        assert.match(a, /^[A-Za-z0-9_-]{43}$/);
        assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
        assert.equal((await Deno.stat(`${dir}/sub`)).mode! & 0o777, 0o700);
        assert.equal(await ensureTokenFile(path), a);
        assert.equal(await readTokenFile(path), a);
        const other = await ensureTokenFile(`${dir}/sub/other.token`);
        assert.notEqual(other, a);
      },
    );
    await t.step("readTokenFile trims the newline and accepts 0400", async () => {
      const path = `${dir}/ro.token`;
      await Deno.writeTextFile(path, "s3cret-token\n", { mode: 0o600 });
      await Deno.chmod(path, 0o400);
      assert.equal(await readTokenFile(path), "s3cret-token");
    });
    await t.step(
      "a file open to group or others is refused with the chmod fix, without the token",
      async () => {
        for (const mode of [0o640, 0o604, 0o644, 0o660]) {
          const path = `${dir}/open-${mode.toString(8)}.token`;
          await Deno.writeTextFile(path, "open-token-value");
          await Deno.chmod(path, mode);
          await assert.rejects(readTokenFile(path), (e: unknown) => {
            assert.ok(e instanceof AdminTokenError);
            assert.match(
              e.message,
              new RegExp(`permissions 0${mode.toString(8)}, wider than 0600.*chmod 600`),
            );
            assert.ok(!e.message.includes("open-token-value"));
            return true;
          });
          // ensureTokenFile refuses it too rather than replacing it.
          await assert.rejects(ensureTokenFile(path), AdminTokenError);
        }
      },
    );
    await t.step("missing, empty or multi-word token files are refused", async () => {
      await assert.rejects(readTokenFile(`${dir}/absent.token`), /does not exist/);
      await Deno.writeTextFile(`${dir}/empty.token`, " \n", { mode: 0o600 });
      await assert.rejects(readTokenFile(`${dir}/empty.token`), /is empty/);
      await Deno.writeTextFile(`${dir}/two.token`, "a b\n", { mode: 0o600 });
      await assert.rejects(readTokenFile(`${dir}/two.token`), /without spaces/);
      await Deno.mkdir(`${dir}/adir.token`, { mode: 0o700 });
      await assert.rejects(readTokenFile(`${dir}/adir.token`), /not a regular file/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** One HTTP/1.1 request over a unix socket with a raw connection; returns status, headers and body. */
async function unixRequest(
  path: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = "",
): Promise<{ status: number; head: string; body: string }> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    const lines = [`${method} ${target} HTTP/1.1`, "Host: localhost", "Connection: close"];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== "") lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n" + body));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const [head, ...rest] = text.split("\r\n\r\n");
    let payload = rest.join("\r\n\r\n");
    if (/transfer-encoding: chunked/i.test(head)) {
      let out = "";
      while (payload.length > 0) {
        const i = payload.indexOf("\r\n");
        const size = parseInt(payload.slice(0, i), 16);
        if (!size) break;
        out += payload.slice(i + 2, i + 2 + size);
        payload = payload.slice(i + 4 + size);
      }
      payload = out;
    }
    return { status: Number(head.split(" ")[1]), head, body: payload };
  } finally {
    conn.close();
  }
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const quietError = () => {};
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

Deno.test("admin server: unix socket", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-admin-" });
  const path = `${dir}/run/admin.sock`;
  const backend = new FakeBackend();
  try {
    const server = await startAdminServer(backend, {
      listen: { kind: "unix", path },
      token: TEST_TOKEN,
      onError: quietError,
      log: quiet,
    });
    try {
      await t.step("the socket is 0660 in a created directory and answers /healthz", async () => {
        assert.equal(server.address, `unix:${path}`);
        const info = await Deno.lstat(path);
        assert.ok(info.isSocket);
        assert.equal(info.mode! & 0o777, 0o660);
        const r = await unixRequest(path, "GET", "/healthz");
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).status, "ok");
      });
      await t.step("reads need no token; a mutation needs one (401, then 200 with it)", async () => {
        const s = await unixRequest(path, "GET", "/v1/status");
        assert.equal(s.status, 200);
        assert.equal(JSON.parse(s.body).node.name, "node-a");
        const body = JSON.stringify({ proto: "tcp", port: 8080 });
        const no = await unixRequest(path, "POST", "/v1/lockdown/ports", {
          "Content-Type": "application/json",
        }, body);
        assert.equal(no.status, 401);
        assert.match(no.head, /www-authenticate: Bearer/i);
        const yes = await unixRequest(path, "POST", "/v1/lockdown/ports", {
          "Content-Type": "application/json",
          Authorization: `Bearer ${TEST_TOKEN}`,
        }, body);
        assert.equal(yes.status, 200, yes.body);
        assert.deepEqual(backend.ports, [{ proto: "tcp", from: 8080, to: 8080 }]);
        for (const x of [...SECRETS, TEST_TOKEN]) assert.ok(!(s.body + no.body + yes.body).includes(x));
      });
      await t.step("fetch through Deno.createHttpClient over the socket works too", async () => {
        const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
        try {
          const res = await fetch("http://localhost/v1/lockdown/ports", { client });
          assert.equal(res.status, 200);
          assert.deepEqual((await res.json()).ports, [{ proto: "tcp", port: 8080, from: 8080, to: 8080 }]);
        } finally {
          client.close();
        }
      });
      await t.step("an SSE client that disconnects leaves no listener behind", async () => {
        const conn = await Deno.connect({ transport: "unix", path });
        await conn.write(new TextEncoder().encode("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        const buf = new Uint8Array(4096);
        let got = "";
        while (!got.includes(": connected")) {
          got += new TextDecoder().decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
        }
        assert.equal(backend.events.listenerCount, 1);
        backend.events.publish({
          type: "key-rotated",
          peer: "alice",
          layer: "aes0",
          epoch: 9,
          reason: "test",
        });
        while (!got.includes("event: key-rotated")) {
          got += new TextDecoder().decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
        }
        conn.close();
        await waitFor(() => backend.events.listenerCount === 0);
      });
      await t.step("an SSE client that stops reading is dropped, not buffered without end", async () => {
        const slowPath = `${dir}/slow.sock`;
        const warnings: string[] = [];
        const errors: string[] = [];
        const s = await startAdminServer(backend, {
          listen: { kind: "unix", path: slowPath },
          token: TEST_TOKEN,
          sseQueueLimit: 16,
          onError: (m) => void errors.push(m),
          log: { ...quiet, warn: (m) => void warnings.push(m) },
        });
        const conn = await Deno.connect({ transport: "unix", path: slowPath });
        try {
          await conn.write(new TextEncoder().encode("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n"));
          await waitFor(() => backend.events.listenerCount === 1);
          // Publish until the kernel buffers and the 16-chunk queue are full (bounded: 1 MB of events).
          for (let i = 0; i < 2000 && backend.events.listenerCount > 0; i++) {
            backend.events.publish({ type: "key-rotated", peer: "alice", reason: "x".repeat(500) });
            if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
          }
          await waitFor(() => backend.events.listenerCount === 0);
          assert.ok(warnings.some((w) => /event client dropped/.test(w)));
          assert.deepEqual(errors, [], "the drop is a warning, not an error");
        } finally {
          conn.close();
          await s.close();
        }
      });
      await t.step("a second server on the same live socket is refused", async () => {
        await assert.rejects(
          startAdminServer(backend, {
            listen: { kind: "unix", path },
            token: TEST_TOKEN,
            onError: quietError,
            log: quiet,
          }),
          (e: unknown) => e instanceof AdminListenError && /already serves/.test(e.message),
        );
      });
      await t.step("close() ends an open event stream instead of waiting for it", async () => {
        const conn = await Deno.connect({ transport: "unix", path });
        try {
          await conn.write(new TextEncoder().encode("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n"));
          const buf = new Uint8Array(4096);
          let got = "";
          while (!got.includes(": connected")) {
            got += new TextDecoder().decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
          }
          await server.close();
          assert.equal(backend.events.listenerCount, 0);
          await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
        } finally {
          conn.close();
        }
      });
    } finally {
      await server.close();
    }
    await t.step("a stale socket file is replaced; a non-socket file is refused", async () => {
      const stale = `${dir}/stale.sock`;
      // A process that bound the socket and died without cleaning up leaves the file.
      const script = `Deno.listen({ transport: "unix", path: ${JSON.stringify(stale)} }); Deno.exit(0);`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "null",
        stderr: "null",
      })
        .output();
      assert.ok(out.success);
      assert.ok((await Deno.lstat(stale)).isSocket);
      const s = await startAdminServer(backend, {
        listen: { kind: "unix", path: stale },
        token: TEST_TOKEN,
        onError: quietError,
        log: quiet,
      });
      try {
        assert.equal((await unixRequest(stale, "GET", "/healthz")).status, 200);
      } finally {
        await s.close();
      }
      const file = `${dir}/file.sock`;
      await Deno.writeTextFile(file, "not a socket");
      await assert.rejects(
        startAdminServer(backend, {
          listen: { kind: "unix", path: file },
          token: TEST_TOKEN,
          onError: quietError,
          log: quiet,
        }),
        (e: unknown) => e instanceof AdminListenError && /is not a socket/.test(e.message),
      );
      assert.equal(await Deno.readTextFile(file), "not a socket");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("admin server: loopback TCP", async (t) => {
  const backend = new FakeBackend();
  await t.step("a non-loopback TCP address is refused at start", async () => {
    for (const host of ["0.0.0.0", "10.1.2.3", "::"]) {
      await assert.rejects(
        startAdminServer(backend, {
          listen: { kind: "tcp", host, port: 0 },
          token: TEST_TOKEN,
          onError: quietError,
          log: quiet,
        }),
        (e: unknown) => e instanceof AdminListenError && /not loopback/.test(e.message),
      );
    }
  });
  const server = await startAdminServer(backend, {
    listen: parseAdminListen("127.0.0.1:0"),
    token: TEST_TOKEN,
    onError: quietError,
    log: quiet,
  });
  try {
    await t.step("port 0 binds a free port; reads need the token; /healthz does not", async () => {
      assert.match(server.address, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(server.address, "127.0.0.1:0");
      const base = `http://${server.address}`;
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const no = await fetch(`${base}/v1/status`);
      assert.equal(no.status, 401);
      assert.equal((await no.json()).error, "unauthorized");
      const wrong = await fetch(`${base}/v1/status`, { headers: { Authorization: "Bearer nope" } });
      assert.equal(wrong.status, 403);
      await wrong.body?.cancel();
      const yes = await fetch(`${base}/v1/status`, { headers: { Authorization: `Bearer ${TEST_TOKEN}` } });
      assert.equal(yes.status, 200);
      assert.equal((await yes.json()).node.name, "node-a");
    });
    await t.step("an SSE client over TCP is cleaned up when it goes away", async () => {
      const ac = new AbortController();
      const res = await fetch(`http://${server.address}/v1/events?since=0`, {
        headers: { Authorization: `Bearer ${TEST_TOKEN}` },
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read();
      assert.equal(backend.events.listenerCount, 1);
      ac.abort();
      await reader.cancel().catch(() => {});
      await waitFor(() => backend.events.listenerCount === 0);
    });
  } finally {
    await server.close();
  }
});
