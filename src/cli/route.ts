/**
 * `twofold route list|get IP|NAME`: where a running node sends traffic to a peer's address or into a
 * network a peer routes (site-to-site; an advertised network not accepted is said so) — the
 * interface, the peer, why (its class) and, for an AES IP, whether its gate is open — from the node's
 * `GET /v1/routes`. A closed gate is said plainly: that traffic goes nowhere, never to wg0.
 * @module
 */
import type { PeerRoute } from "../admin/model.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";

const USAGE = usageOf("route");
const HELP = helpOf("route");

/**
 * One route as a line: `100.127.0.2/32 dev aes0 peer node-b (aes): why; gate open`; a routed network
 * says whether it is accepted: `192.168.20.0/24 not accepted (would be dev aes0) peer site-b (aes): …`.
 */
export function formatRoute(r: PeerRoute): string {
  if (r.accepted === false) {
    return `${r.destination} not accepted (would be dev ${r.interface}) peer ${r.peer} (${r.peerClass}): ${r.note}`;
  }
  const gate = r.gateOpen === null ? "" : r.gateOpen ? "; gate open" : `; ${r.note ?? "gate closed"}`;
  const accepted = r.accepted === true ? ", accepted" : "";
  return `${r.destination} dev ${r.interface} peer ${r.peer} (${r.peerClass}${accepted}): ${r.why}${gate}`;
}

/** Runs the command; resolves with the exit code. */
export async function runRoute(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP);
  const [sub, target, ...extra] = a.positionals;
  if (sub !== "list" && sub !== "get") {
    throw new CliError(
      `${sub === undefined ? "a subcommand is needed" : `unknown subcommand "${sub}"`} (${USAGE})`,
    );
  }
  if (sub === "get" && target === undefined) {
    throw new CliError(`route get needs an IP or a peer name (${USAGE})`);
  }
  const rest = sub === "list" ? [target, ...extra].filter((x) => x !== undefined) : extra;
  if (rest.length > 0) throw new CliError(`unexpected argument "${rest[0]}" (${USAGE})`);
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  try {
    const path = sub === "get" ? `/v1/routes?target=${encodeURIComponent(target!)}` : "/v1/routes";
    const { routes } = await client.json<{ routes: PeerRoute[] }>("GET", path);
    console.log(
      a.json ? JSON.stringify(routes, null, 2) : routes.map(formatRoute).join("\n") || "no peer routes",
    );
    return 0;
  } finally {
    client.close();
  }
}
