/**
 * A minimal UAPI client (the `wg` tool's side of the protocol), for the demo and the CLI: sends
 * `get=1` or a `set=1` request over a device's unix socket and parses the reply.
 * @module
 */

/** A reply: the key/value lines and the errno (0 = success). */
export interface UapiReply {
  /** `key=value` pairs in order (keys repeat, e.g. allowed_ip). */
  pairs: [string, string][];
  /** errno from the device (0 on success; positive, as `wg` reports it). */
  errno: number;
}

async function exchange(socketPath: string, request: string): Promise<UapiReply> {
  const conn = await Deno.connect({ transport: "unix", path: socketPath });
  try {
    await conn.write(new TextEncoder().encode(request));
    const chunks: string[] = [];
    const buf = new Uint8Array(65536);
    const dec = new TextDecoder();
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(dec.decode(buf.subarray(0, n), { stream: true }));
      if (chunks.join("").includes("\n\n")) break;
    }
    const text = chunks.join("");
    const pairs: [string, string][] = [];
    let errno = -1;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const eq = line.indexOf("=");
      if (eq < 0) continue;
      const k = line.slice(0, eq), v = line.slice(eq + 1);
      if (k === "errno") errno = Math.abs(Number(v));
      else pairs.push([k, v]);
    }
    return { pairs, errno };
  } finally {
    conn.close();
  }
}

/** `get=1`: the device's configuration and counters. */
export function uapiGet(socketPath: string): Promise<UapiReply> {
  return exchange(socketPath, "get=1\n\n");
}

/** `set=1` with `lines` (each `key=value`); resolves with the reply's errno. */
export async function uapiSet(socketPath: string, lines: string[]): Promise<number> {
  return (await exchange(socketPath, `set=1\n${lines.join("\n")}\n\n`)).errno;
}
