/**
 * The map's DNS stub on a running node: the authoritative server (UDP and TCP) on the node's wg0
 * address, its zone swapped whenever the map changes, and — where systemd-resolved runs this host's
 * resolver — the zone registered on wg0 (`resolvectl dns/domain ~DOM/default-route no`), reverted at
 * stop. /etc/resolv.conf is never touched. Registration is skipped inside a network namespace other
 * than init's: resolved serves the host, and an interface name there means another interface.
 * @module
 */
import { startDnsServer } from "../dns/server.ts";
import { zoneFromMap } from "../dns/zone.ts";
import type { MapFollower, RunningMap } from "./netmap-part.ts";

/** The DNS part of a map-driven node. */
export interface MapDns {
  /** Follows map changes (zone swap). */
  follower: MapFollower;
  /** "ADDR:PORT" it answers on. */
  address: string;
  /** Stops the server and reverts the resolved registration. */
  close(): Promise<void>;
}

/** Options of {@link startMapDns}. */
export interface MapDnsOptions {
  /** The node's wg0 address. */
  hostname: string;
  /** UDP/TCP port (`dns.port`). */
  port: number;
  /** wg0's interface name, for resolvectl. */
  ifname: string;
  /** The node's own name in the map (the zone's name server). */
  selfName: string;
  /** The map the node starts with. */
  initial: RunningMap;
  log: { info(msg: string): void; debug(msg: string): void; warn(msg: string): void };
}

/** Starts the server; throws DnsServerError (one line) when the port is taken. */
export async function startMapDns(opts: MapDnsOptions): Promise<MapDns> {
  const server = await startDnsServer({
    hostname: opts.hostname,
    port: opts.port,
    zone: zoneFromMap(opts.initial.map, opts.selfName),
  });
  const address = `${opts.hostname}:${server.port}`;
  let registered = false;
  let domain = opts.initial.map.domain;
  const register = async (dom: string) => {
    const ok = await resolvectl(["dns", opts.ifname, address], opts.log) &&
      await resolvectl(["domain", opts.ifname, `~${dom}`], opts.log) &&
      await resolvectl(["default-route", opts.ifname, "no"], opts.log);
    if (ok) {
      registered = true;
      opts.log.info(`DNS: ${dom} registered with systemd-resolved on ${opts.ifname}`);
    }
  };
  if (await resolvedManagesThisNamespace()) await register(domain);
  else opts.log.debug("DNS: systemd-resolved does not serve this network namespace; no registration");
  return {
    address,
    follower: {
      name: "DNS",
      apply: async (next: RunningMap) => {
        server.setZone(zoneFromMap(next.map, next.view.self.name));
        if (registered && next.map.domain !== domain) await register(next.map.domain);
        domain = next.map.domain;
      },
    },
    close: async () => {
      if (registered) await resolvectl(["revert", opts.ifname], opts.log);
      await server.close();
    },
  };
}

/** Whether systemd-resolved runs and this process is in init's network namespace. */
async function resolvedManagesThisNamespace(): Promise<boolean> {
  try {
    Deno.statSync("/run/systemd/resolve/io.systemd.Resolve");
    const [own, init] = await Promise.all([
      Deno.readLink("/proc/self/ns/net"),
      Deno.readLink("/proc/1/ns/net"),
    ]);
    return own === init;
  } catch {
    return false;
  }
}

async function resolvectl(args: string[], log: { warn(msg: string): void }): Promise<boolean> {
  try {
    const out = await new Deno.Command("resolvectl", { args, stdout: "null", stderr: "piped" }).output();
    if (out.success) return true;
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    log.warn(`DNS: resolvectl ${args.join(" ")} failed: ${err}`);
  } catch (e) {
    log.warn(`DNS: resolvectl cannot run: ${(e as Error).message}`);
  }
  return false;
}
