/**
 * The DNS server shell on loopback (127.0.0.1, a random high port): UDP and TCP with the same wire
 * library, Deno.resolveDns with a nameServer, dig (package dnsutils), TCP framing with pipelined
 * queries, the connection limit and idle timeout, a busy port, a zone swap, and a 10 000-query burst
 * over each transport with memory figures printed. Traffic goes to loopback only.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import * as dnsPacket from "@leichtgewicht/dns-packet";
import { RCODE } from "../../src/dns/answer.ts";
import { DnsServerError, startDnsServer } from "../../src/dns/server.ts";
import { type DnsZone, zoneFromMap } from "../../src/dns/zone.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { findBinary, integrationTest, requireBinary } from "../../src/lab/prereq.ts";
import { key } from "../unit/netmap_fixtures.ts";

const HOST = "127.0.0.1";

function zone(withNodeB = true): DnsZone {
  const nodes = [
    { name: "node-a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" },
    { name: "printer", publicKey: key(2), wgIp: "100.64.0.3" },
  ];
  if (withNodeB) nodes.push({ name: "node-b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" });
  return zoneFromMap(
    parseNetmap(
      JSON.stringify({ version: 1, serial: 5, domain: "fabric.example", aesSubnet: "100.127.0.0/16", nodes }),
    ),
    "node-a",
  );
}

function query(id: number, name: string, type: dnsPacket.RecordType = "A"): Uint8Array {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
  });
}

function rcodeOf(p: dnsPacket.Packet): number {
  return (p.flags ?? 0) & 0xf;
}

/** A UDP client that matches responses to queries by id. */
async function udpClient(): Promise<{
  ask(q: Uint8Array, port: number): Promise<dnsPacket.Packet>;
  socket: dgram.Socket;
  waiting: Map<number, (p: dnsPacket.Packet) => void>;
  close(): Promise<void>;
}> {
  const socket = dgram.createSocket("udp4");
  const waiting = new Map<number, (p: dnsPacket.Packet) => void>();
  socket.on("message", (msg: Uint8Array) => {
    const p = dnsPacket.decode(msg);
    const done = waiting.get(p.id!);
    if (done) {
      waiting.delete(p.id!);
      done(p);
    }
  });
  await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
  return {
    socket,
    waiting,
    ask(q, port) {
      const id = (q[0] << 8) | q[1];
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no UDP answer to query ${id} within 5 s`));
        }, 5000);
        waiting.set(id, (p) => {
          clearTimeout(timer);
          resolve(p);
        });
        socket.send(q, port, HOST);
      });
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) return null;
    off += got;
  }
  return out;
}

/** Sends `queries` pipelined on one TCP connection and reads the answers in order. */
async function tcpAsk(port: number, queries: Uint8Array[]): Promise<dnsPacket.Packet[]> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    const framed = queries.map((q) => {
      const f = new Uint8Array(2 + q.length);
      f[0] = q.length >> 8;
      f[1] = q.length & 0xff;
      f.set(q, 2);
      return f;
    });
    // Split the stream at odd places: the server must reassemble frames across reads.
    const all = new Uint8Array(framed.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of framed) {
      all.set(f, off);
      off += f.length;
    }
    for (let i = 0; i < all.length; i += 7) await conn.write(all.subarray(i, Math.min(i + 7, all.length)));
    const out: dnsPacket.Packet[] = [];
    for (let i = 0; i < queries.length; i++) {
      const len = await readExactly(conn, 2);
      assert.ok(len, "length prefix");
      const body = await readExactly(conn, (len[0] << 8) | len[1]);
      assert.ok(body, "message");
      out.push(dnsPacket.decode(body));
    }
    return out;
  } finally {
    conn.close();
  }
}

const MiB = 1024 * 1024;

Deno.test("dns server: UDP and TCP answers, pipelined TCP, resolveDns, zone swap, busy port", async () => {
  const server = await startDnsServer({ hostname: HOST, port: 0, zone: zone() });
  const client = await udpClient();
  try {
    const a = await client.ask(query(1, "node-b.fabric.example"), server.port);
    assert.equal(rcodeOf(a), RCODE.NOERROR);
    assert.ok(a.flag_aa);
    assert.deepEqual(a.answers!.map((r) => r.data), ["100.64.0.2"]);
    const nx = await client.ask(query(2, "printer.aes.fabric.example"), server.port);
    assert.equal(rcodeOf(nx), RCODE.NXDOMAIN);
    assert.equal(nx.authorities![0].type, "SOA");

    const [t1, t2, t3, t4] = await tcpAsk(server.port, [
      query(10, "NODE-B.aes.fabric.example"),
      query(11, "node-a.fabric.example", "AAAA"),
      query(12, "example.com"),
      query(13, "nobody.fabric.example"),
    ]);
    assert.deepEqual([t1.id, t2.id, t3.id, t4.id], [10, 11, 12, 13], "answers in order");
    assert.deepEqual(t1.answers!.map((r) => [r.name, r.data]), [[
      "NODE-B.aes.fabric.example",
      "100.127.0.2",
    ]]);
    assert.equal(rcodeOf(t2), RCODE.NOERROR);
    assert.equal(t2.answers!.length, 0);
    assert.equal(t2.authorities![0].type, "SOA");
    assert.equal(rcodeOf(t3), RCODE.REFUSED);
    assert.equal(rcodeOf(t4), RCODE.NXDOMAIN);

    const nameServer = { ipAddr: HOST, port: server.port };
    assert.deepEqual(await Deno.resolveDns("node-b.fabric.example", "A", { nameServer }), ["100.64.0.2"]);
    assert.deepEqual(await Deno.resolveDns("node-a.aes.fabric.example", "A", { nameServer }), [
      "100.127.0.1",
    ]);
    await assert.rejects(
      () => Deno.resolveDns("printer.aes.fabric.example", "A", { nameServer }),
      Deno.errors.NotFound,
    );
    await assert.rejects(
      () => Deno.resolveDns("node-b.fabric.example", "AAAA", { nameServer }),
      Deno.errors.NotFound,
    );

    server.setZone(zone(false));
    await assert.rejects(
      () => Deno.resolveDns("node-b.fabric.example", "A", { nameServer }),
      Deno.errors.NotFound,
    );
    server.setZone(zone());

    await assert.rejects(
      () => startDnsServer({ hostname: HOST, port: server.port, zone: zone() }),
      (e: unknown) => {
        assert.ok(e instanceof DnsServerError);
        assert.match(
          e.message,
          new RegExp(`^DNS cannot listen on 127\\.0\\.0\\.1:${server.port}/udp \\(EADDRINUSE\\);`),
        );
        return true;
      },
    );
    assert.ok(server.stats().udpAnswered >= 2 && server.stats().tcpAnswered === 4);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("dns server: TCP connection limit and idle timeout", async () => {
  const server = await startDnsServer({
    hostname: HOST,
    port: 0,
    zone: zone(),
    maxTcpConnections: 2,
    tcpIdleMs: 1500,
  });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) conns.push(await Deno.connect({ hostname: HOST, port: server.port }));
    // Let the server accept both before the third arrives.
    for (let i = 0; i < 50 && server.stats().tcpOpen < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.stats().tcpOpen, 2);
    const third = await Deno.connect({ hostname: HOST, port: server.port });
    conns.push(third);
    assert.equal(await third.read(new Uint8Array(16)), null, "the connection over the limit is closed");
    assert.equal(server.stats().tcpRejected, 1);
    // The first two send nothing: both are closed after the idle timeout.
    for (const c of conns.slice(0, 2)) assert.equal(await c.read(new Uint8Array(16)), null);
    assert.equal(server.stats().tcpIdleClosed, 2);
    assert.equal(server.stats().tcpOpen, 0);
    const [answered] = await tcpAsk(server.port, [query(7, "node-a.fabric.example")]);
    assert.deepEqual(
      answered.answers!.map((r) => r.data),
      ["100.64.0.1"],
      "a new connection is served again",
    );
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await server.close();
  }
});

/** VmRSS of a process in bytes, from /proc. */
function rssOf(pid: number): number {
  const kb = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
  assert.ok(kb, "VmRSS in /proc/PID/status");
  return Number(kb[1]) * 1024;
}

/** Starts dns_server_agent.ts serving the test zone's map; returns the child, its port and its stdout. */
async function startAgent(dir: string) {
  const map = `${dir}/map.json`;
  await Deno.writeTextFile(
    map,
    JSON.stringify({
      version: 1,
      serial: 5,
      domain: "fabric.example",
      aesSubnet: "100.127.0.0/16",
      nodes: [
        { name: "node-a", publicKey: key(0), wgIp: "100.64.0.1", aesIp: "100.127.0.1" },
        { name: "printer", publicKey: key(2), wgIp: "100.64.0.3" },
        { name: "node-b", publicKey: key(1), wgIp: "100.64.0.2", aesIp: "100.127.0.2" },
      ],
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      new URL("./dns_server_agent.ts", import.meta.url).pathname,
      map,
      "node-a",
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/port (\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the DNS agent exited before listening: ${text}`);
    text += value;
  }
  return { child, port: Number(text.match(/port (\d+)/)![1]), reader };
}

Deno.test("dns server: a 10 000-query burst over UDP and over TCP, every answer right, server memory bounded", async () => {
  const TOTAL = 10_000;
  const WINDOW = 64;
  const CONNECTIONS = 10;
  const dir = await Deno.makeTempDir({ prefix: "tf-dns-burst-" });
  const { child, port, reader } = await startAgent(dir);
  const client = await udpClient();
  const names: [string, string][] = [
    ["node-b.fabric.example", "100.64.0.2"],
    ["node-a.aes.fabric.example", "100.127.0.1"],
    ["printer.fabric.example", "100.64.0.3"],
  ];
  try {
    const udpBurst = async (offset: number) => {
      let wrong = 0;
      let retried = 0;
      for (let base = 0; base < TOTAL; base += WINDOW) {
        const batch = [];
        for (let i = base; i < Math.min(base + WINDOW, TOTAL); i++) {
          const [name, ip] = names[i % names.length];
          const id = (offset + i) & 0xffff;
          batch.push(
            client.ask(query(id, name), port).catch(async () => {
              retried++;
              return await client.ask(query(id, name), port);
            }).then((p) => {
              if (rcodeOf(p) !== RCODE.NOERROR || p.answers?.[0]?.data !== ip) wrong++;
            }),
          );
        }
        await Promise.all(batch);
      }
      return { wrong, retried };
    };
    // A first burst grows the server's heap to its working size (V8 sizes it to the load); the
    // figures that count are the next bursts': they must not keep growing it.
    const idle = rssOf(child.pid);
    const warm = await udpBurst(0);
    const before = rssOf(child.pid);
    const started = performance.now();
    const measured = await udpBurst(TOTAL);
    let wrong = warm.wrong + measured.wrong;
    const retried = warm.retried + measured.retried;
    const udpMs = performance.now() - started;
    const afterUdp = rssOf(child.pid);

    const tcpStarted = performance.now();
    const perConnection = TOTAL / CONNECTIONS;
    const results = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        (_, c) =>
          tcpAsk(
            port,
            Array.from({ length: perConnection }, (_, i) => query(i, names[(c + i) % names.length][0])),
          ),
      ),
    );
    const tcpMs = performance.now() - tcpStarted;
    results.forEach((answers, c) =>
      answers.forEach((p, i) => {
        const ip = names[(c + i) % names.length][1];
        if (p.id !== i || rcodeOf(p) !== RCODE.NOERROR || p.answers?.[0]?.data !== ip) wrong++;
      })
    );
    const after = rssOf(child.pid);
    console.log(
      `dns burst: ${TOTAL} UDP queries in ${udpMs.toFixed(0)} ms (${(TOTAL / udpMs * 1000).toFixed(0)}/s, ` +
        `window ${WINDOW}, ${retried} retried), ${TOTAL} TCP queries pipelined on ${CONNECTIONS} connections in ` +
        `${tcpMs.toFixed(0)} ms; server RSS ${(idle / MiB).toFixed(1)} idle → ${
          (before / MiB).toFixed(1)
        } after a ` +
        `first UDP burst → ${(afterUdp / MiB).toFixed(1)} after the measured UDP burst → ` +
        `${(after / MiB).toFixed(1)} MiB after the TCP burst`,
    );
    assert.equal(wrong, 0, "every answer right");
    assert.ok(
      after - before < 32 * MiB,
      `server RSS grew by ${((after - before) / MiB).toFixed(1)} MiB over 20 000 queries at working size`,
    );
  } finally {
    await client.close();
    child.kill("SIGTERM");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value;
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
    const stats = rest.match(/stats (.*)/);
    if (stats) console.log(`dns burst: server counters ${stats[1]}`);
  }
});

integrationTest(
  "dns server: dig over UDP and TCP (flags, NXDOMAIN, 0x20, EDNS)",
  [requireBinary("dig")],
  async () => {
    const server = await startDnsServer({ hostname: HOST, port: 0, zone: zone() });
    const dig = async (...args: string[]) => {
      const out = await new Deno.Command(findBinary("dig")!, {
        args: [`@${HOST}`, "-p", String(server.port), "+time=2", "+tries=1", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout);
    };
    try {
      for (const transport of ["+notcp", "+tcp"]) {
        assert.equal(
          (await dig(transport, "+short", "node-b.aes.fabric.example", "A")).trim(),
          "100.127.0.2",
        );
        assert.equal((await dig(transport, "+short", "node-a.fabric.example", "A")).trim(), "100.64.0.1");
        const full = await dig(transport, "NoDe-B.FaBrIc.ExAmPlE", "A");
        assert.match(full, /status: NOERROR/);
        assert.match(full, /flags: qr aa rd;/);
        assert.match(full, /NoDe-B\.FaBrIc\.ExAmPlE\.\s+30\s+IN\s+A\s+100\.64\.0\.2/);
        assert.match(full, /EDNS: version: 0, flags:; udp: 1232/, "EDNS answered (dig sends OPT by default)");
        const nx = await dig(transport, "printer.aes.fabric.example", "A");
        assert.match(nx, /status: NXDOMAIN/);
        assert.match(nx, /AUTHORITY: 1/);
        assert.match(
          nx,
          /fabric\.example\.\s+30\s+IN\s+SOA\s+node-a\.fabric\.example\. hostmaster\.fabric\.example\. 5 /,
        );
        assert.match(
          await dig(transport, "node-b.fabric.example", "AAAA"),
          /status: NOERROR[\s\S]*ANSWER: 0, AUTHORITY: 1/,
        );
        assert.match(await dig(transport, "example.org", "A"), /status: REFUSED/);
      }
    } finally {
      await server.close();
    }
  },
);
