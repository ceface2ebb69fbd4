/**
 * `twofold wg [-f|--foreground] [--cipher chacha20-poly1305|aes-256-gcm] IFNAME`: a drop-in for
 * `wireguard-go IFNAME`. Creates the TUN interface and its UAPI socket and, unless `-f`, returns once
 * a background daemon has it up (so `wg-quick` can use it through WG_QUICK_USERSPACE_IMPLEMENTATION).
 * The daemon exits when its interface is deleted or its UAPI socket removed, like wireguard-go.
 * Unlike wireguard-go (which dies on SIGHUP, exit 129, leaving its socket behind) it logs a SIGHUP and
 * keeps running: it has no file to re-read, wg and wg-quick configure it through the UAPI.
 * @module
 */
import { twofoldCommand } from "../self-command.ts";
import { parseArgs } from "node:util";
import { suiteForCipher } from "../noise/suite.ts";
import { InterfaceInUseError, startInterface } from "../wireguard/interface.ts";
import { INTERFACE_NAME_RULE, isValidInterfaceName } from "../wireguard/interface-name.ts";
import { DEFAULT_UAPI_DIR } from "../uapi/server.ts";
import { logger } from "../log.ts";
import { concatBytes } from "../encoding.ts";
import { usageOf } from "./help.ts";
import { CIPHERS, envChoice, EnvError, type EnvReader, processEnv } from "../env.ts";
import { CliError, optionError } from "./errors.ts";
import { runUntilStopped } from "./foreground.ts";

const USAGE = usageOf("wg");

/** Parses and validates the command line (throws CliError). */
export function parseWgArgs(
  args: string[],
  env: EnvReader = processEnv,
): { foreground: boolean; cipher: typeof CIPHERS[number]; ifname: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        foreground: { type: "boolean", short: "f" },
        cipher: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw optionError("wg", e);
  }
  if (parsed.values.help) throw new CliError(USAGE, 0);
  let cipher: string;
  try {
    cipher = parsed.values.cipher ?? envChoice("TWOFOLD_CIPHER", env) ?? "chacha20-poly1305";
  } catch (e) {
    if (e instanceof EnvError) throw new CliError(e.message);
    throw e;
  }
  if (!(CIPHERS as readonly string[]).includes(cipher)) {
    throw new CliError(`unknown cipher "${cipher}": use chacha20-poly1305 (wg0) or aes-256-gcm (aes0)`);
  }
  if (parsed.positionals.length !== 1) throw new CliError(USAGE);
  const ifname = parsed.positionals[0];
  if (!isValidInterfaceName(ifname)) {
    throw new CliError(`invalid interface name "${ifname}": ${INTERFACE_NAME_RULE}`);
  }
  return { foreground: parsed.values.foreground ?? false, cipher: cipher as typeof CIPHERS[number], ifname };
}

/** Runs the command; resolves with the exit code. */
export async function runWg(args: string[]): Promise<number> {
  const opts = parseWgArgs(args);
  if (!opts.foreground) return await daemonize(args, opts.ifname);
  return await runForeground(opts.ifname, opts.cipher);
}

async function daemonize(args: string[], ifname: string): Promise<number> {
  await refuseLiveDaemon(ifname);
  const logFile = await Deno.makeTempFile({ prefix: `twofold-${ifname}-`, suffix: ".log" });
  const child = new Deno.Command(twofoldCommand()[0], {
    args: [...selfArgs(), "wg", "--foreground", ...args],
    env: { TWOFOLD_LOG_FILE: logFile },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  } as Deno.CommandOptions).spawn();
  const sock = uapiSocketPath(ifname);
  let exited: number | null = null;
  child.status.then((s) => exited = s.code);
  // Start-up errors arrive on stderr; once the daemon is up it logs to `logFile` instead.
  const errChunks: Uint8Array[] = [];
  const reader = child.stderr.getReader();
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done || !value) break;
      errChunks.push(value);
    }
  })();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && exited === null) {
    if (await socketAnswers(sock)) {
      await reader.cancel().catch(() => {});
      child.unref();
      return 0;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await pump;
  if (exited === null) {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    throw new CliError(`the ${ifname} daemon did not come up within 20 s (log: ${logFile})`, 1);
  }
  const text = new TextDecoder().decode(concatBytes(errChunks)).trim();
  if (text) Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));
  return exited || 1;
}

async function socketAnswers(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function selfArgs(): string[] {
  // The same twofold (source, bundle or compiled binary) with the same permissions, minus the executable.
  return twofoldCommand().slice(1);
}

async function runForeground(ifname: string, cipher: typeof CIPHERS[number]): Promise<number> {
  await refuseLiveDaemon(ifname);
  return await runUntilStopped(
    (onEnded) => startInterface({ ifname, suite: suiteForCipher(cipher), onEnded }),
    logger(ifname),
  );
}

/** Where the daemon for `ifname` listens: the directory wireguard-go and `wg` use. */
function uapiSocketPath(ifname: string): string {
  return `${DEFAULT_UAPI_DIR}/${ifname}.sock`;
}

/** Refuses to start when a live daemon already answers on the interface's UAPI socket. */
async function refuseLiveDaemon(ifname: string): Promise<void> {
  const path = uapiSocketPath(ifname);
  if (!(await socketAnswers(path))) return; // no socket, or a stale one (the UAPI server removes it)
  throw new CliError(new InterfaceInUseError(ifname, path).message);
}
