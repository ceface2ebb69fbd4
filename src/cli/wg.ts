/**
 * `twofold wg [-f|--foreground] [--cipher chacha20-poly1305|aes-256-gcm] IFNAME`: a drop-in for
 * `wireguard-go IFNAME`. Creates the TUN interface and its UAPI socket and, unless `-f`, returns once
 * a background daemon has it up (so `wg-quick` can use it through WG_QUICK_USERSPACE_IMPLEMENTATION).
 * The daemon exits when its interface is deleted or its UAPI socket removed, like wireguard-go.
 * @module
 */
import { twofoldCommand } from "../self-command.ts";
import { parseArgs } from "node:util";
import "../crypto/aead-libcrypto.ts";
import { suiteForCipher } from "../noise/suite.ts";
import { startInterface } from "../wireguard/interface.ts";
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
  if (!/^[A-Za-z0-9_.=+-]{1,15}$/.test(ifname)) {
    throw new CliError(`invalid interface name "${ifname}": 1-15 characters of A-Z a-z 0-9 _ . = + -`);
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
  const sock = `/var/run/wireguard/${ifname}.sock`;
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
  return await runUntilStopped((onEnded) =>
    startInterface({ ifname, suite: suiteForCipher(cipher), onEnded })
  );
}

/** Refuses to start when a live daemon already answers on the interface's UAPI socket. */
async function refuseLiveDaemon(ifname: string): Promise<void> {
  const path = `/var/run/wireguard/${ifname}.sock`;
  if (!(await socketAnswers(path))) return; // no socket, or a stale one (the UAPI server removes it)
  throw new CliError(
    `interface ${ifname} already has a running daemon (socket ${path}); stop it or pick another name`,
  );
}
