/**
 * `twofold trace PEER [PROTO[/PORT]] [--to wg0|aes0] [--destination IP] [--packet BASE64]`: asks a running node
 * (`POST /v1/trace`, token required) what it does with a packet from PEER (to this node, or with
 * `--destination` to a host in a network it routes) — route steering, the packet
 * filter's verdict with the deciding rule or lockdown entry, the aes0 gate, the session, the MTU —
 * and prints it step by step (or the API's JSON with `--json`).
 * @module
 */
import type { TraceQuestionBody, TraceResultBody } from "../admin/routes/trace.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { CliError } from "./errors.ts";
import { helpOf, usageOf } from "./help.ts";

const USAGE = usageOf("trace");
const HELP = helpOf("trace");
const PROBE = /^(tcp|udp|icmp)(?:\/([0-9]{1,5}))?$/;

/** The question `args` (after the options) ask; throws a CliError for bad usage. */
export function traceQuestion(
  positionals: string[],
  to?: string,
  packet?: string,
  destination?: string,
): TraceQuestionBody {
  const [peer, probe, ...rest] = positionals;
  if (peer === undefined) throw new CliError(`name the sending peer (name, wg0 IP or AES IP) (${USAGE})`);
  if (rest.length > 0) throw new CliError(`unexpected ${JSON.stringify(rest[0])} (${USAGE})`);
  if (to !== undefined && to !== "wg0" && to !== "aes0") {
    throw new CliError(`--to must be wg0 or aes0, not ${JSON.stringify(to)}`);
  }
  const q: TraceQuestionBody = {
    peer,
    ...(to ? { to: to as "wg0" | "aes0" } : {}),
    ...(destination !== undefined ? { destination } : {}),
  };
  if (packet !== undefined) {
    if (probe !== undefined) throw new CliError("give either PROTO[/PORT] or --packet, not both");
    if (destination !== undefined) throw new CliError("give either --destination or --packet, not both");
    return { ...q, packet };
  }
  const m = PROBE.exec((probe ?? "tcp").toLowerCase());
  if (!m) throw new CliError(`${JSON.stringify(probe)} is not PROTO[/PORT]; e.g. tcp/8080, udp/53 or icmp`);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (m[1] === "icmp" || port > 65535)) {
    throw new CliError(`${probe}: ${m[1] === "icmp" ? "ICMP has no port" : "ports go up to 65535"}`);
  }
  if (port === undefined && m[1] !== "icmp") throw new CliError(`${probe}: give a port, e.g. ${m[1]}/8080`);
  return { ...q, proto: m[1] as "tcp" | "udp" | "icmp", ...(port !== undefined ? { port } : {}) };
}

/** The trace as `twofold trace` prints it. */
export function renderTrace(q: TraceQuestionBody, r: TraceResultBody): string {
  const what = q.packet !== undefined
    ? "the given packet"
    : q.proto === "icmp"
    ? "an ICMP echo"
    : `${q.proto}/${q.port}`;
  const out = [
    `${what} from ${r.peer.name} (wg0 ${r.peer.wgIp}${r.peer.aesIp ? `, AES ${r.peer.aesIp}` : ""}; ${
      r.peer.hub ? "security hub" : r.peer.aesCapable ? "AES-capable" : "AES-exempt"
    })`,
  ];
  r.layers.forEach((l, i) => {
    const v = l.verdict;
    out.push(
      "",
      `${i + 1}. to ${l.destination} on ${l.layer}`,
      `   route:   ${l.steering}`,
      `   filter:  ${
        l.enforcement === "lockdown" ? "wg0 lockdown (both peers AES-capable)" : "access policies"
      } → ${v.accept ? "ACCEPT" : "DROP"}${v.accept ? ` by ${v.match}` : ` (${v.reason})`}${
        v.rule ? `: ${v.rule}` : ""
      }`,
      `   session: ${
        l.session ? "a keypair is in use" : "no session yet (a packet would start a handshake)"
      }`,
      `   mtu:     ${l.mtu}`,
    );
  });
  if (r.gate) out.push("", `aes0 gate for ${r.peer.name}: ${r.gate.state} (${r.gate.reason})`);
  return out.join("\n");
}

/** Runs the command; resolves with the exit code. */
export async function runTrace(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP, ["to", "packet", "destination"]);
  const q = traceQuestion(a.positionals, a.strings.to, a.strings.packet, a.strings.destination);
  const client = new AdminClient(a.target, a.tokenFile);
  try {
    const r = await client.json<TraceResultBody>("POST", "/v1/trace", { auth: true, body: q });
    console.log(a.json ? JSON.stringify(r, null, 2) : renderTrace(q, r));
    return 0;
  } finally {
    client.close();
  }
}
