/**
 * Unix-socket housekeeping shared by the UAPI server and the admin API: before binding a socket path,
 * find out whether something already lives there.
 * @module
 */

/** What is at a socket path: nothing, a file that is not a socket, a stale socket, or a live server. */
export type SocketPathState = "absent" | "not-socket" | "stale" | "live";

/** Probes `path`: a socket that refuses connections is stale (its process is gone). */
export async function probeSocketPath(path: string): Promise<SocketPathState> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "absent";
    throw e;
  }
  if (!info.isSocket) return "not-socket";
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return "live";
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound) return "stale";
    throw e;
  }
}

/**
 * Makes room for a new socket at `path`: removes a stale socket; throws the error `refuse` builds
 * when the path is a live server's socket or not a socket at all.
 */
export async function claimSocketPath(
  path: string,
  refuse: (state: "not-socket" | "live") => Error,
): Promise<void> {
  const state = await probeSocketPath(path);
  if (state === "absent") return;
  if (state !== "stale") throw refuse(state);
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
