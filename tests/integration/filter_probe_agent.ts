/**
 * Helper process for tests/integration/filter_lockdown_test.ts, run inside a namespace with the
 * resolved Deno binary. Modes (each prints one JSON line per result):
 * - `serve PORT...`: a TCP listener (answers "ok" and closes) and a UDP echo on each port; prints
 *   `{"ready": true}` and runs until killed.
 * - `tcp HOST PORT TIMEOUT_MS`: one connection attempt; `{"ok": bool}` (ok = the server answered).
 * - `udp HOST PORT TIMEOUT_MS [SRC_PORT]`: one datagram; `{"ok": bool}` (ok = it was echoed back).
 * - `tcp-until HOST PORT DEADLINE_MS`: attempts every few ms (each a fresh connection) until one
 *   succeeds; `{"ok": bool, "at": unix ms of the success}`.
 * @module
 */
import dgram from "node:dgram";

const [mode, ...args] = Deno.args;
const ATTEMPT_MS = 25;

function timeout(ms: number): Promise<"timeout"> {
  return new Promise((r) => setTimeout(() => r("timeout"), ms));
}

async function tcpOnce(host: string, port: number, ms: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  const attempt = (async () => {
    conn = await Deno.connect({ hostname: host, port });
    const buf = new Uint8Array(2);
    const n = await conn.read(buf);
    return n === 2 && new TextDecoder().decode(buf) === "ok";
  })().catch(() => false);
  const r = await Promise.race([attempt, timeout(ms)]);
  try {
    conn?.close();
  } catch { /* already closed */ }
  return r === true;
}

function udpOnce(host: string, port: number, ms: number, srcPort: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket("udp4");
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on("message", () => done(true));
    sock.on("error", () => done(false));
    sock.bind(srcPort, () => sock.send("ping", port, host));
  });
}

if (mode === "serve") {
  for (const p of args.map(Number)) {
    const listener = Deno.listen({ hostname: "0.0.0.0", port: p });
    (async () => {
      for await (const c of listener) {
        c.write(new TextEncoder().encode("ok")).catch(() => {}).finally(() => {
          setTimeout(() => c.close(), 50);
        });
      }
    })();
    const udp = dgram.createSocket("udp4");
    udp.on("message", (data, from) => udp.send(data, from.port, from.address));
    await new Promise<void>((r) => udp.bind(p, "0.0.0.0", () => r()));
  }
  console.log(JSON.stringify({ ready: true }));
} else if (mode === "tcp") {
  console.log(JSON.stringify({ ok: await tcpOnce(args[0], Number(args[1]), Number(args[2])) }));
  Deno.exit(0);
} else if (mode === "udp") {
  const ok = await udpOnce(args[0], Number(args[1]), Number(args[2]), Number(args[3] ?? 0));
  console.log(JSON.stringify({ ok }));
  Deno.exit(0);
} else if (mode === "tcp-until") {
  const deadline = Date.now() + Number(args[2]);
  let ok = false;
  while (!ok && Date.now() < deadline) ok = await tcpOnce(args[0], Number(args[1]), ATTEMPT_MS);
  console.log(JSON.stringify({ ok, at: Date.now() }));
  Deno.exit(0);
} else {
  console.error(`unknown mode ${mode}`);
  Deno.exit(2);
}
