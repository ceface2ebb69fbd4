/**
 * A TCP tool for the site-to-site namespace test, run inside a LAN host's namespace:
 * - `serve PORT FILE`: prints "listening", then sends FILE to every connection and closes it;
 * - `fetch HOST PORT OUT TIMEOUT_MS`: connects (exit 2 when no connection within TIMEOUT_MS), writes
 *   what arrives to OUT, prints the byte count; exit 0.
 */
const [mode, ...args] = Deno.args;

if (mode === "serve") {
  const [port, file] = args;
  const listener = Deno.listen({ hostname: "0.0.0.0", port: Number(port) });
  console.log("listening");
  for await (const conn of listener) {
    (async () => {
      const f = await Deno.open(file);
      await f.readable.pipeTo(conn.writable).catch(() => {});
    })();
  }
} else if (mode === "fetch") {
  const [host, port, out, timeoutMs] = args;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), Number(timeoutMs)));
  const conn = await Promise.race([Deno.connect({ hostname: host, port: Number(port) }), timeout]).catch(
    () => null,
  );
  clearTimeout(timer);
  if (conn === null) {
    console.log("no connection");
    Deno.exit(2);
  }
  const f = await Deno.create(out);
  let bytes = 0;
  await conn.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        bytes += chunk.length;
        ctl.enqueue(chunk);
      },
    }),
  ).pipeTo(f.writable);
  console.log(`received ${bytes}`);
} else {
  console.error("usage: serve PORT FILE | fetch HOST PORT OUT TIMEOUT_MS");
  Deno.exit(64);
}
