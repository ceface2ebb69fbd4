/**
 * Helper process for tests/integration/site_router_test.ts, run inside the router namespace with
 * `ip netns exec NS <deno> run -A site_router_agent.ts <mode> <options JSON>` (a Deno test cannot
 * enter a namespace itself). Reports JSON lines on stdout.
 *
 * Modes:
 * - `run OPTIONS`: starts the site router part, prints `{"event":"ready","plan":…}`, puts the table
 *   back when it is removed (`{"event":"table-restored"}`), and on SIGTERM closes it, prints
 *   `{"event":"closed"}` and exits 0.
 * - `fail-after-writes N OPTIONS`: starts it over the real kernel, but the switch write after N real
 *   ones fails; prints `{"event":"failed","message":…}` (the part's one line).
 * - `connect HOST PORT`: one TCP connection attempt (its SYN is what the test captures).
 * OPTIONS: `{lan, tunnels, mssClamp, masqueradeSources: ["cidr", …], stateDir}`.
 * @module
 */
import {
  type SiteRouterIo,
  type SiteRouterOptions,
  startSiteRouter,
  SYSTEM_SITE_ROUTER_IO,
} from "../../src/node/site-router-part.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";

/** How often `run` checks that the table is still there (ms). */
const TABLE_CHECK_MS = 200;

function report(event: string, data: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...data }));
}

function options(json: string): SiteRouterOptions {
  const raw = JSON.parse(json);
  return { ...raw, masqueradeSources: (raw.masqueradeSources as string[]).map(parseCidr) };
}

/** The real kernel, except that write number `n` + 1 fails. */
function failingAfter(n: number): SiteRouterIo {
  let writes = 0;
  return {
    runNft: SYSTEM_SITE_ROUTER_IO.runNft,
    sysctl: {
      read: SYSTEM_SITE_ROUTER_IO.sysctl.read,
      write: (key, value) => {
        if (value === "1" && writes++ === n) return Promise.reject(new Error("injected failure"));
        return SYSTEM_SITE_ROUTER_IO.sysctl.write(key, value);
      },
    },
  };
}

const [mode, ...args] = Deno.args;
if (mode === "run") {
  try {
    const router = await startSiteRouter(options(args[0]));
    const closed = Promise.withResolvers<void>();
    Deno.addSignalListener("SIGTERM", () => closed.resolve());
    report("ready", { plan: router.plan });
    // What the node part does every few seconds, faster: put the table back when it was removed.
    const check = setInterval(() => {
      if (router.ensureTable()) report("table-restored");
    }, TABLE_CHECK_MS);
    await closed.promise;
    clearInterval(check);
    await router.close();
    report("closed");
    Deno.exit(0);
  } catch (e) {
    report("failed", { message: (e as Error).message });
    Deno.exit(2);
  }
} else if (mode === "fail-after-writes") {
  try {
    await startSiteRouter(options(args[1]), failingAfter(Number(args[0])));
    report("started");
  } catch (e) {
    report("failed", { message: (e as Error).message });
  }
} else if (mode === "connect") {
  try {
    const conn = await Deno.connect({ hostname: args[0], port: Number(args[1]) });
    conn.close();
    report("connected");
  } catch (e) {
    report("refused", { message: (e as Error).message });
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
