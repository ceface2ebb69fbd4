/**
 * twofold: a double-VPN edge appliance (wg0 ChaCha20-Poly1305 outside, aes0 AES-256-GCM inside).
 * One binary, subcommands.
 * @module
 */
import { CliError } from "./src/cli/errors.ts";

const USAGE = `usage: twofold <command> [options]

commands:
  wg [-f] [--cipher chacha20-poly1305|aes-256-gcm] IFNAME
                 run a WireGuard interface (drop-in for wireguard-go; works with wg and wg-quick)
  up --config node.json
                 run an edge node: wg0 + aes0 (AES-256-GCM inside wg0) with the PSK security gate
  hub --config hub.json
                 run a DSKE security hub (wg0 only; shares in RAM, TCP 51831 on its wg0 address)
  psrd new|ingest|list
                 provision pre-shared random data for one (node, hub) pair; import it; show pools
  status [--json]
                 show a running node: both interfaces and, per peer, wg0 and aes0 side by side
  events [--json] [--since ID]
                 follow a running node's events (rotations, gate, handshakes, hubs, lockdown)
  lockdown list|add|remove|set [PROTO/PORT[-PORT] ...]
                 show or change a running node's wg0 lockdown extra ports (e.g. tcp/8080 udp/6000-6010)
                 (status, events and lockdown take --admin ADDR and --token-file FILE)
  keygen         print a new private key (base64, like wg genkey)
  pubkey         read a private key on stdin, print its public key (like wg pubkey)
  demo           build namespaces on this machine and show twofold working (needs root)
`;

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "wg":
      return await (await import("./src/cli/wg.ts")).runWg(rest);
    case "up":
      return await (await import("./src/cli/up.ts")).runUp(rest);
    case "hub":
      return await (await import("./src/cli/hub.ts")).runHub(rest);
    case "psrd":
      return await (await import("./src/cli/psrd.ts")).psrdCommand(rest);
    case "status":
      return await (await import("./src/cli/status.ts")).runStatus(rest);
    case "events":
      return await (await import("./src/cli/events.ts")).runEvents(rest);
    case "lockdown":
      return await (await import("./src/cli/lockdown.ts")).runLockdown(rest);
    case "keygen":
      return (await import("./src/cli/keys.ts")).runKeygen();
    case "pubkey":
      return await (await import("./src/cli/keys.ts")).runPubkey();
    case "demo":
      return await (await import("./src/cli/demo.ts")).runDemo(rest);
    case undefined:
    case "help":
    case "-h":
    case "--help":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
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
