/**
 * `twofold lockdown list|add|remove|set [PROTO/PORT[-PORT] …]`: reads and changes a running node's wg0
 * lockdown extra-port list through its admin API (`/v1/lockdown/ports`). Changes need the admin token
 * (`--token-file`). The node's packet filter enforces the list as soon as it changes; the command
 * says whether the node reports it enforced.
 * @module
 */
import type { LockdownPort, LockdownState } from "../admin/model.ts";
import { formatEntry, formatPort, toEntry } from "../admin/lockdown-schema.ts";
import { parseProtoPort } from "../node/lockdown-list.ts";
import { AdminClient, parseAdminArgs } from "./admin-client.ts";
import { helpOf, usageOf } from "./help.ts";
import { CliError } from "./errors.ts";

const USAGE = usageOf("lockdown");
const HELP = helpOf("lockdown");

/** Parses the PROTO/PORT[-PORT] arguments; a bad one is a CliError (exit 2). */
export function parseSpecs(specs: string[]): LockdownPort[] {
  return specs.map((s) => {
    try {
      return parseProtoPort(s);
    } catch (e) {
      throw new CliError(`${(e as Error).message} (${USAGE})`);
    }
  });
}

/** The API's request form of one entry. */
export function toRequestEntry(p: LockdownPort): { proto: string; port: number | string } {
  const { proto, port } = toEntry(p);
  return { proto, port };
}

/** The list as `twofold lockdown list` prints it. */
export function renderLockdown(s: LockdownState): string {
  const lines = s.ports.map(formatEntry);
  if (lines.length === 0) lines.push("(no extra ports)");
  lines.push(
    s.enforced
      ? "enforced on wg0 between AES peers by twofold's packet filter"
      : "stored, not enforced: this node has no wg0 firewall yet",
  );
  return lines.join("\n");
}

/**
 * An admin API error about the entries of one request, said in the operator's terms: the API's
 * `ports[i]` (or `body`) field names become the entry as typed (tcp/8080), and `unchanged` (e.g.
 * "nothing was added") is added when the API did not already say so.
 */
export function operatorError(e: CliError, ports: LockdownPort[], unchanged: string): CliError {
  let text = e.message
    .replace(
      /\bports\[(\d+)\](?:\.(?:proto|port))?/g,
      (m, i) => ports[Number(i)] ? formatEntry(ports[Number(i)]) : m,
    )
    .replace(/^body(?:\.(?:proto|port))?: /, "");
  // "tcp/9005: tcp/9005 is …" and "overlaps tcp/9000-9010 tcp/9000-9010" say each entry once.
  text = text.replace(/((?:tcp|udp)\/\d+(?:-\d+)?):? \1(?![\d-])/g, "$1");
  if (!text.includes(unchanged)) {
    const http = / \(HTTP \d+\)(?: \(.*\))?$/.exec(text);
    text = http ? `${text.slice(0, http.index)}; ${unchanged}${http[0]}` : `${text}; ${unchanged}`;
  }
  return new CliError(text, e.exitCode);
}

/** Runs the command; resolves with the exit code. */
export async function runLockdown(args: string[]): Promise<number> {
  const a = await parseAdminArgs(args, USAGE, HELP);
  const [action, ...specs] = a.positionals;
  if (action === undefined) throw new CliError(`name an action (${USAGE})`);
  if (!["list", "add", "remove", "set"].includes(action)) {
    throw new CliError(`unknown action "${action}" (${USAGE})`);
  }
  if (action === "list" && specs.length > 0) throw new CliError(`list takes no ports (${USAGE})`);
  if ((action === "add" || action === "remove") && specs.length === 0) {
    throw new CliError(`${action} needs at least one PROTO/PORT[-PORT] (${USAGE})`);
  }
  const ports = parseSpecs(specs);
  const client = new AdminClient(a.target, a.tokenFile, a.source);
  try {
    let state: LockdownState;
    if (action === "list") {
      state = await client.json<LockdownState>("GET", "/v1/lockdown/ports");
    } else if (action === "set") {
      state = await refusedAs(
        ports,
        "the list is unchanged",
        () =>
          client.json<LockdownState>("PUT", "/v1/lockdown/ports", {
            auth: true,
            body: { ports: ports.map(toRequestEntry) },
          }),
      );
    } else if (action === "add") {
      // One request for all entries: the node adds all of them or none.
      state = await refusedAs(
        ports,
        "nothing was added",
        () =>
          client.json<LockdownState>("POST", "/v1/lockdown/ports", {
            auth: true,
            body: { ports: ports.map(toRequestEntry) },
          }),
      );
    } else {
      state = await remove(client, ports);
    }
    console.log(a.json ? JSON.stringify(state, null, 2) : renderLockdown(state));
    return 0;
  } finally {
    client.close();
  }
}

/** Runs one change request; an API error about its entries becomes an {@link operatorError}. */
async function refusedAs(
  ports: LockdownPort[],
  unchanged: string,
  send: () => Promise<LockdownState>,
): Promise<LockdownState> {
  try {
    return await send();
  } catch (e) {
    if (e instanceof CliError && !/no node is listening|cannot reach|no permission/.test(e.message)) {
      throw operatorError(e, ports, unchanged);
    }
    throw e;
  }
}

/** Removes entries one request at a time; when one fails, says exactly which were removed already. */
async function remove(client: AdminClient, ports: LockdownPort[]): Promise<LockdownState> {
  let state: LockdownState | undefined;
  const done: string[] = [];
  for (const p of ports) {
    try {
      state = await client.json<LockdownState>("DELETE", `/v1/lockdown/ports/${p.proto}/${formatPort(p)}`, {
        auth: true,
      });
      done.push(formatEntry(p));
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      const removed = done.length === 0 ? "nothing was removed" : `already removed: ${done.join(", ")}`;
      throw operatorError(e, [p], removed);
    }
  }
  return state!;
}
