/**
 * twofold: a double-VPN edge appliance (wg0 ChaCha20-Poly1305 outside, aes0 AES-256-GCM inside).
 * One binary, subcommands.
 * @module
 */
import { CliError } from "./src/cli/errors.ts";
import { helpRequest } from "./src/cli/help.ts";
import { checkEnvironment, EnvError } from "./src/env.ts";

async function main(args: string[]): Promise<number> {
  // Help and the version are answered here, before any command module loads: no side effects.
  const asked = helpRequest(args);
  if (asked.kind === "help") {
    (asked.exitCode === 0 ? console.log : console.error)(asked.text);
    return asked.exitCode;
  }
  if (asked.kind === "version") {
    console.log((await import("./src/cli/version.ts")).versionText());
    return 0;
  }
  try {
    checkEnvironment();
  } catch (e) {
    if (e instanceof EnvError) throw new CliError(e.message);
    throw e;
  }
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "wg":
      return await (await import("./src/cli/wg.ts")).runWg(rest);
    case "up":
      return await (await import("./src/cli/up.ts")).runUp(rest);
    case "hub":
      return await (await import("./src/cli/hub.ts")).runHub(rest);
    case "broker":
      return await (await import("./src/cli/broker.ts")).runBroker(rest);
    case "psrd":
      return await (await import("./src/cli/psrd.ts")).psrdCommand(rest);
    case "status":
      return await (await import("./src/cli/status.ts")).runStatus(rest);
    case "events":
      return await (await import("./src/cli/events.ts")).runEvents(rest);
    case "trace":
      return await (await import("./src/cli/trace.ts")).runTrace(rest);
    case "lockdown":
      return await (await import("./src/cli/lockdown.ts")).runLockdown(rest);
    case "bundle":
      return await (await import("./src/cli/bundle.ts")).runBundle(rest);
    case "ui":
      return await (await import("./src/cli/ui.ts")).runUi(rest);
    case "check":
      return await (await import("./src/cli/check.ts")).runCheck(rest);
    case "audit":
      return await (await import("./src/cli/audit.ts")).runAudit(rest);
    case "rosenpass":
      return await (await import("./src/cli/rosenpass.ts")).runRosenpassCommand(rest);
    case "reload":
      return await (await import("./src/cli/reload.ts")).runReload(rest);
    case "route":
      return await (await import("./src/cli/route.ts")).runRoute(rest);
    case "netmap":
      return await (await import("./src/cli/netmap.ts")).runNetmapCommand(rest);
    case "keygen":
      return (await import("./src/cli/keys.ts")).runKeygen(rest);
    case "pubkey":
      return await (await import("./src/cli/keys.ts")).runPubkey(rest);
    case "demo":
      return await (await import("./src/cli/demo.ts")).runDemo(rest);
    default:
      throw new CliError(`unknown command "${cmd}"; run "twofold help" for the list of commands`);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    if (e instanceof CliError) {
      if (e.message) console.error(e.exitCode === 0 ? e.message : `twofold: ${e.message}`);
      code = e.exitCode;
    } else {
      console.error(`twofold: ${(e as Error)?.message ?? String(e)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
