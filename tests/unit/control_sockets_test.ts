/**
 * Attacks on the node's local control sockets (issue 10, items 1 and 5), reproduced on loopback and
 * in temporary unix sockets, each bounded in count and time and printing its figures:
 * - descriptor exhaustion: a child process serving the admin API and a UAPI socket under a lowered
 *   open-file limit, with the caps out of the way so accept really fails with EMFILE: it stays alive,
 *   logs the failure at most about once per second, and answers again once the connections go;
 * - an idle-connection flood with the default caps: /healthz and a UAPI get answer during the flood
 *   and the process never runs out of descriptors;
 * - slowloris (a head that never ends) and half-open UAPI requests: closed after the timeout;
 * - never-reading event-stream clients: at most the stream cap are served, they are dropped when
 *   their queue fills, and the child's RSS stays bounded.
 * The pure parts (log throttle, request-head parser) are tested in memory.
 */
import assert from "node:assert/strict";
import { raiseFileDescriptorLimit } from "../../ffi/libc.ts";
import { isHeadProblem, parseRequestHead } from "../../src/admin/http1.ts";
import { DEFAULT_ADMIN_MAX_EVENT_STREAMS, startAdminServer } from "../../src/admin/server.ts";
import { LogThrottle } from "../../src/log-throttle.ts";
import { AcceptLoop } from "../../src/accept-loop.ts";
import { UapiServer } from "../../src/uapi/server.ts";
import type { UapiDevice } from "../../src/uapi/types.ts";
import { FakeBackend, TEST_TOKEN } from "./admin_fake_backend.ts";

const CHILD = new URL("./control_sockets_child.ts", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

try {
  raiseFileDescriptorLimit();
} catch { /* the floods below stay within the usual 1 024 where they must */ }

/** A child serving the admin API and a UAPI socket; its stderr is collected. */
class ControlChild {
  readonly process: Deno.ChildProcess;
  readonly admin: string;
  readonly uapi: string;
  readonly token: string;
  stderr = "";
  exited = false;
  readonly #stderrDone: Promise<void>;

  private constructor(p: Deno.ChildProcess, info: { admin: string; uapi: string; token: string }) {
    this.process = p;
    this.admin = info.admin;
    this.uapi = info.uapi;
    this.token = info.token;
    this.#stderrDone = (async () => {
      for await (const chunk of p.stderr.pipeThrough(new TextDecoderStream())) this.stderr += chunk;
    })();
    p.status.then(() => this.exited = true);
  }

  static async start(
    nofile: number,
    adminCap: number,
    uapiCap: number,
    dir: string,
    adminKind: "tcp" | "unix" = "tcp",
  ): Promise<ControlChild> {
    const p = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", CHILD, String(nofile), String(adminCap), String(uapiCap), dir, adminKind],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the child ended before serving");
      text += value;
    }
    reader.releaseLock();
    p.stdout.cancel().catch(() => {});
    return new ControlChild(p, JSON.parse(text.slice(0, text.indexOf("\n"))));
  }

  /** Resident memory of the child, bytes (from /proc). */
  async rss(): Promise<number> {
    const status = await Deno.readTextFile(`/proc/${this.process.pid}/status`);
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }

  count(re: RegExp): number {
    return this.stderr.split("\n").filter((l) => re.test(l)).length;
  }

  async stop(): Promise<void> {
    await this.process.stdin.close().catch(() => {});
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 10_000);
    await this.process.status;
    clearTimeout(timer);
    await this.#stderrDone;
  }
}

async function openMany(count: number, connect: () => Promise<Deno.Conn>): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) conns.push(await connect());
  return conns;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed by the server */ }
  }
}

/** One HTTP/1.1 GET over a fresh connection; resolves with the status line and the time taken. */
async function rawGet(
  connect: () => Promise<Deno.Conn>,
  path: string,
): Promise<{ status: string; ms: number }> {
  const t0 = performance.now();
  const conn = await connect();
  try {
    await conn.write(encoder.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = "";
    const buf = new Uint8Array(4096);
    const timer = setTimeout(() => conn.close(), 5000);
    try {
      while (!text.includes("\r\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
      }
    } catch {
      /* timed out */
    } finally {
      clearTimeout(timer);
    }
    return { status: text.split("\r\n")[0], ms: performance.now() - t0 };
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** A UAPI `get=1` over a fresh connection: the reply (up to the blank line) and the time taken. */
async function uapiGet(path: string): Promise<{ reply: string; ms: number }> {
  const t0 = performance.now();
  const conn = await Deno.connect({ transport: "unix", path });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await conn.write(encoder.encode("get=1\n\n"));
    let reply = "";
    const buf = new Uint8Array(4096);
    while (!reply.endsWith("\n\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      reply += decoder.decode(buf.subarray(0, n));
    }
    return { reply, ms: performance.now() - t0 };
  } catch {
    return { reply: "", ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** Polls `probe` until it holds or `ms` pass; the time it took, or null. */
async function within(ms: number, probe: () => Promise<boolean> | boolean): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await probe()) return performance.now() - t0;
    await sleep(50);
  }
  return null;
}

/** Milliseconds until the server ends `conn` (EOF or reset), reading and discarding; null after `maxMs`. */
async function closedAfter(conn: Deno.Conn, t0: number, maxMs: number): Promise<number | null> {
  const buf = new Uint8Array(4096);
  const timer = setTimeout(() => conn.close(), maxMs);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
    return performance.now() - t0;
  } catch {
    return performance.now() - t0 >= maxMs - 5 ? null : performance.now() - t0;
  } finally {
    clearTimeout(timer);
  }
}

function hostPort(address: string): { hostname: string; port: number } {
  const i = address.lastIndexOf(":");
  return { hostname: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

Deno.test("log throttle: one line per second, with the count of lines held back", () => {
  const t = new LogThrottle(1000);
  assert.equal(t.admit("refused", 0), "refused");
  assert.equal(t.admit("refused", 10), null);
  assert.equal(t.admit("refused", 999), null);
  assert.equal(t.admit("refused", 1000), "refused (2 more like it not logged)");
  assert.equal(t.admit("refused", 2500), "refused");
});

Deno.test("admin HTTP/1.1 request heads", () => {
  const ok = parseRequestHead("GET /v1/status?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t");
  assert.ok(!isHeadProblem(ok));
  assert.deepEqual(ok, {
    method: "GET",
    target: "/v1/status?x=1",
    minor: 1,
    headers: [["Host", "a"], ["Authorization", "Bearer t"]],
  });
  const abs = parseRequestHead("GET http://localhost/healthz HTTP/1.1");
  assert.ok(!isHeadProblem(abs) && abs.target === "/healthz");
  const old = parseRequestHead("GET / HTTP/1.0");
  assert.ok(!isHeadProblem(old) && old.minor === 0);
  for (
    const [text, status] of [
      ["GET /", 400],
      ["GET  / HTTP/1.1", 400],
      ["GET * HTTP/1.1", 400],
      ["GET / HTTP/2.0", 505],
      ["GET / HTTP/1.1\r\n folded: x", 400],
      ["GET / HTTP/1.1\r\nBad Name: x", 400],
      ["GET / HTTP/1.1\r\nno-colon", 400],
    ] as const
  ) {
    const r = parseRequestHead(text);
    assert.ok(isHeadProblem(r), text);
    assert.equal(r.status, status, text);
  }
});

Deno.test({
  name:
    "control sockets: EMFILE in the accept loops: the process lives, logs it at most once a second, and serves again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tf-ctl-emfile-" });
    // Caps far above the descriptor limit: accept itself must fail.
    const child = await ControlChild.start(96, 100_000, 100_000, dir);
    const admin = hostPort(child.admin);
    const conns: Deno.Conn[] = [];
    try {
      const t0 = performance.now();
      conns.push(...await openMany(300, () => Deno.connect(admin)));
      conns.push(...await openMany(100, () => Deno.connect({ transport: "unix", path: child.uapi })));
      const failedAfter = await within(
        5000,
        () => /admin API: accepting a connection failed/.test(child.stderr),
      );
      const uapiFailedAfter = await within(
        5000,
        () => /UAPI .*accepting a connection failed/.test(child.stderr),
      );
      assert.ok(failedAfter !== null, `the admin accept never failed; child log:\n${child.stderr}`);
      assert.ok(uapiFailedAfter !== null, `the UAPI accept never failed; child log:\n${child.stderr}`);
      assert.match(child.stderr, /Too many open files/);
      await sleep(1500);
      assert.equal(child.exited, false, `the process must survive EMFILE; its log:\n${child.stderr}`);
      closeAll(conns.splice(0));
      let health = { status: "", ms: 0 };
      const healthAfter = await within(10_000, async () => {
        health = await rawGet(() => Deno.connect(admin), "/healthz");
        return health.status.startsWith("HTTP/1.1 200");
      });
      let get = { reply: "", ms: 0 };
      const getAfter = await within(10_000, async () => {
        get = await uapiGet(child.uapi);
        return get.reply.includes("listen_port=51820");
      });
      assert.ok(healthAfter !== null, `/healthz never answered again: ${health.status}`);
      assert.ok(getAfter !== null, "UAPI get never answered again");
      const seconds = (performance.now() - t0) / 1000;
      const adminLines = child.count(/admin API: accepting a connection failed/);
      const uapiLines = child.count(/UAPI .*accepting a connection failed/);
      console.log(
        `  EMFILE (soft limit 96, 300 admin + 100 UAPI connections): child alive; accept-failure lines ` +
          `admin ${adminLines}, UAPI ${uapiLines} over ${seconds.toFixed(1)} s; after release /healthz ` +
          `answered in ${healthAfter.toFixed(0)} ms (request ${health.ms.toFixed(1)} ms), UAPI get in ` +
          `${getAfter.toFixed(0)} ms (request ${get.ms.toFixed(1)} ms)`,
      );
      assert.ok(adminLines <= Math.ceil(seconds) + 1, `${adminLines} admin lines in ${seconds} s`);
      assert.ok(uapiLines <= Math.ceil(seconds) + 1, `${uapiLines} UAPI lines in ${seconds} s`);
      assert.equal(child.exited, false);
    } finally {
      closeAll(conns);
      await child.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "control sockets: an idle-connection flood under the default caps: /healthz and a UAPI get answer during it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tf-ctl-idle-" });
    const child = await ControlChild.start(256, 64, 64, dir);
    const admin = hostPort(child.admin);
    const conns: Deno.Conn[] = [];
    try {
      const t0 = performance.now();
      conns.push(...await openMany(2000, () => Deno.connect(admin)));
      conns.push(...await openMany(500, () => Deno.connect({ transport: "unix", path: child.uapi })));
      const opened = performance.now() - t0;
      const health = await rawGet(() => Deno.connect(admin), "/healthz");
      const get = await uapiGet(child.uapi);
      console.log(
        `  idle flood (2 000 admin + 500 UAPI silent connections held, soft limit 256, caps 64/64, opened in ` +
          `${opened.toFixed(0)} ms): /healthz ${health.status} in ${health.ms.toFixed(1)} ms, UAPI get ` +
          `${get.reply.includes("listen_port=51820") ? "answered" : "FAILED"} in ${get.ms.toFixed(1)} ms; ` +
          `eviction log lines: admin ${child.count(/admin API: .*closed the oldest/)}, UAPI ${
            child.count(/UAPI .*closed the oldest/)
          }`,
      );
      assert.match(health.status, /^HTTP\/1\.1 200/);
      assert.match(get.reply, /listen_port=51820/);
      assert.doesNotMatch(
        child.stderr,
        /accepting a connection failed/,
        `the caps keep it below the limit:\n${child.stderr}`,
      );
      assert.equal(child.exited, false);
    } finally {
      closeAll(conns);
      await child.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "control sockets: never-reading event clients: at most the cap are served, they are dropped, RSS stays bounded",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tf-ctl-sse-" });
    // Over the unix socket: its small fixed buffers fill within a second, so the queues do too.
    const child = await ControlChild.start(4096, 64, 64, dir, "unix");
    const connect = () => Deno.connect({ transport: "unix", path: child.admin.slice("unix:".length) });
    const conns: Deno.Conn[] = [];
    const CLIENTS = 2000;
    try {
      await sleep(1000);
      const before = await child.rss();
      const request = encoder.encode(
        `GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${child.token}\r\n\r\n`,
      );
      let backlogFull = 0;
      for (let i = 0; i < CLIENTS; i++) {
        let c: Deno.Conn | null = null;
        for (let attempt = 0; c === null && attempt < 100; attempt++) {
          try {
            c = await connect();
          } catch (e) {
            // The listen backlog is full (EAGAIN on a unix socket): the kernel's own bound; wait.
            if (!(e instanceof Deno.errors.WouldBlock)) throw e;
            backlogFull++;
            await sleep(10);
          }
        }
        assert.ok(c !== null, "the server never took the connection off its backlog");
        conns.push(c);
        await c.write(request).catch(() => 0);
      }
      // Events keep coming (~600 bytes every 2 ms) while nobody reads.
      let peak = before;
      for (let i = 0; i < 16; i++) {
        await sleep(500);
        peak = Math.max(peak, await child.rss());
      }
      // What each client got first: a stream (200), a refusal (503), or nothing (closed to make room).
      let streams = 0, busy = 0, closed = 0;
      await Promise.all(conns.map(async (c) => {
        const buf = new Uint8Array(16);
        const timer = setTimeout(() => c.close(), 2000);
        try {
          const n = await c.read(buf);
          const line = n === null ? "" : decoder.decode(buf.subarray(0, n));
          if (line.startsWith("HTTP/1.1 200")) streams++;
          else if (line.startsWith("HTTP/1.1 503")) busy++;
          else closed++;
        } catch {
          closed++;
        } finally {
          clearTimeout(timer);
        }
      }));
      const dropped = child.count(/event client dropped/);
      closeAll(conns.splice(0));
      const health = await rawGet(connect, "/healthz");
      const after = await child.rss();
      const mb = (n: number) => (n / 1048576).toFixed(1);
      console.log(
        `  ${CLIENTS} never-reading event clients for 8 s on the unix socket (events ~300 kB/s): ${streams} streams served ` +
          `(cap ${DEFAULT_ADMIN_MAX_EVENT_STREAMS}), ${busy} answered 503 busy, ${closed} closed without an ` +
          `answer (connects that found the backlog full: ${backlogFull}); ${dropped} dropped as too slow; child RSS ${
            mb(before)
          } MB before, peak ${mb(peak)} MB, ` +
          `${mb(after)} MB after; /healthz then ${health.status}`,
      );
      assert.ok(streams <= DEFAULT_ADMIN_MAX_EVENT_STREAMS, `${streams} streams`);
      assert.ok(busy > 0, "clients beyond the stream cap are told busy");
      assert.ok(dropped > 0, "never-reading clients are dropped when their queue fills");
      assert.ok(peak - before < 96 * 1048576, `RSS grew by ${mb(peak - before)} MB`);
      assert.match(health.status, /^HTTP\/1\.1 200/);
      assert.equal(child.exited, false);
    } finally {
      closeAll(conns);
      await child.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("admin API: a request head that never ends (slowloris) is closed after the header timeout", async () => {
  const server = await startAdminServer(new FakeBackend(), {
    listen: { kind: "tcp", host: "127.0.0.1", port: 0 },
    token: TEST_TOKEN,
    log: quietLog,
    limits: { headerTimeoutMs: 500 },
  });
  const addr = hostPort(server.address);
  try {
    // One header byte every 100 ms, never the blank line.
    const conn = await Deno.connect(addr);
    const t0 = performance.now();
    await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    let sending = true;
    const drip = (async () => {
      while (sending) {
        await sleep(100);
        try {
          await conn.write(encoder.encode("a"));
        } catch {
          return;
        }
      }
    })();
    const slowMs = await closedAfter(conn, t0, 5000);
    sending = false;
    await drip;
    closeAll([conn]);
    // A connection that sends nothing at all, and one idle after a first answered request.
    const silent = await Deno.connect(addr);
    const t1 = performance.now();
    const silentMs = await closedAfter(silent, t1, 5000);
    closeAll([silent]);
    const keep = await Deno.connect(addr);
    await keep.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await keep.read(buf);
    const t2 = performance.now();
    assert.match(decoder.decode(buf.subarray(0, n!)), /^HTTP\/1\.1 200/);
    const keepMs = await closedAfter(keep, t2, 5000);
    closeAll([keep]);
    console.log(
      `  header timeout 500 ms: slowloris (1 byte / 100 ms) closed after ${slowMs?.toFixed(0)} ms, silent ` +
        `connection after ${silentMs?.toFixed(0)} ms, idle keep-alive after ${keepMs?.toFixed(0)} ms`,
    );
    for (const ms of [slowMs, silentMs, keepMs]) {
      assert.ok(ms !== null, "the server must close the connection");
      assert.ok(ms >= 450, `closed after only ${ms} ms`);
    }
    // Heads and bodies beyond the caps are refused without being read whole.
    const big = await rawGetWith(
      addr,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431/);
    const huge = await rawGetWith(
      addr,
      `PUT /v1/lockdown/ports HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n`,
    );
    assert.match(huge, /^HTTP\/1\.1 413/);
    const chunked = await rawGetWith(
      addr,
      `PUT /v1/lockdown/ports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    assert.match(chunked, /^HTTP\/1\.1 411/);
  } finally {
    await server.close();
  }
});

async function rawGetWith(addr: { hostname: string; port: number }, request: string): Promise<string> {
  const conn = await Deno.connect(addr);
  try {
    await conn.write(encoder.encode(request)).catch(() => 0);
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf).catch(() => null);
    return n === null ? "" : decoder.decode(buf.subarray(0, n));
  } finally {
    closeAll([conn]);
  }
}

Deno.test("UAPI: half-open requests and silent connections are closed after the request timeout; the socket keeps serving", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-uapi-half-" });
  const device: UapiDevice = {
    snapshot: () => ({ privateKey: null, listenPort: 51820, fwmark: 0, peers: [] }),
    apply: () => 0,
  };
  const lines: string[] = [];
  const server = await UapiServer.listen("tfhalf0", device, {
    dir,
    requestTimeoutMs: 500,
    maxConnections: 8,
    log: (m) => lines.push(m),
  });
  try {
    const half = await Deno.connect({ transport: "unix", path: server.path });
    const t0 = performance.now();
    await half.write(encoder.encode("get=1\n")); // never the blank line
    const setHalf = await Deno.connect({ transport: "unix", path: server.path });
    await setHalf.write(encoder.encode("set=1\nlisten_port=1\n"));
    const silent = await Deno.connect({ transport: "unix", path: server.path });
    const [halfMs, setMs, silentMs] = await Promise.all([
      closedAfter(half, t0, 5000),
      closedAfter(setHalf, t0, 5000),
      closedAfter(silent, t0, 5000),
    ]);
    closeAll([half, setHalf, silent]);
    // Over the cap: 40 silent connections, the newest served by closing the oldest silent ones.
    const flood = await openMany(40, () => Deno.connect({ transport: "unix", path: server.path }));
    const get = await uapiGet(server.path);
    closeAll(flood);
    console.log(
      `  UAPI request timeout 500 ms: half get closed after ${halfMs?.toFixed(0)} ms, half set after ` +
        `${setMs?.toFixed(0)} ms, silent after ${silentMs?.toFixed(0)} ms; 40 silent connections over a ` +
        `cap of 8: get answered in ${
          get.ms.toFixed(1)
        } ms; ${server.openConnections} open after; log lines: ${lines.length}`,
    );
    for (const ms of [halfMs, setMs, silentMs]) {
      assert.ok(ms !== null && ms >= 450, `closed after ${ms} ms`);
    }
    assert.match(get.reply, /listen_port=51820/);
    assert.ok(lines.length <= 4, `at most one line per kind per second: ${lines.join(" | ")}`);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("accept loop: at the cap an idle connection makes room; when all are busy the new one is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = listener.addr as Deno.NetAddr;
  const lines: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const loop = new AcceptLoop(listener, {
    name: "test",
    maxConnections: 2,
    refusal: encoder.encode("busy\n"),
    log: (m) => lines.push(m),
    async serve(conn, slot) {
      const buf = new Uint8Array(16);
      if ((await conn.read(buf).catch(() => null)) === null) return;
      slot.setIdle(false); // asked something: busy until released
      await released;
      await conn.write(encoder.encode("done\n")).catch(() => 0);
    },
  });
  const connect = () => Deno.connect({ hostname: addr.hostname, port: addr.port });
  const conns: Deno.Conn[] = [];
  try {
    const idle = await connect();
    conns.push(idle);
    const busy = await connect();
    conns.push(busy);
    await busy.write(encoder.encode("x"));
    await sleep(100);
    // The idle one is closed to make room for the third, which then asks and is busy too.
    const third = await connect();
    conns.push(third);
    await third.write(encoder.encode("x"));
    assert.equal(await closedAfter(idle, performance.now(), 2000) !== null, true, "the idle one is closed");
    await sleep(100);
    // Both open connections are busy now: a fourth is refused with the message.
    const fourth = await connect();
    conns.push(fourth);
    const buf = new Uint8Array(16);
    const n = await fourth.read(buf);
    assert.equal(decoder.decode(buf.subarray(0, n!)), "busy\n");
    assert.deepEqual({ ...loop.stats }, { accepted: 3, evicted: 1, refused: 1, acceptErrors: 0 });
    assert.equal(loop.openConnections, 2);
    assert.equal(lines.length, 2, lines.join(" | "));
    release();
    const m = await busy.read(buf);
    assert.equal(decoder.decode(buf.subarray(0, m!)), "done\n");
  } finally {
    release();
    closeAll(conns);
    await loop.close();
  }
});
