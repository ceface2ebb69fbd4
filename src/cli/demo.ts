/**
 * `twofold demo`: shows twofold working on this machine without touching its real network. It builds
 * two network namespaces joined by a veth pair, runs a twofold wg0 in one and a Debian wireguard-go
 * peer in the other (or a second twofold when wireguard-go is not installed), configures both through
 * the UAPI, pings across the tunnel both ways, prints what `wg show` would, and removes everything
 * it made — also on Ctrl-C.
 * @module
 */
import { parseArgs } from "node:util";
import { toHex } from "../encoding.ts";
import { generatePrivateKey, publicKey } from "../crypto/x25519.ts";
import { type Netns, Topology, vethPair, waitUntil } from "../lab/netns.ts";
import { findBinary, requireBinary, requireRoot, requireTun } from "../lab/prereq.ts";
import { ping } from "../lab/measure.ts";
import { uapiGet, uapiSet } from "../uapi/client.ts";
import { CliError } from "./errors.ts";

const NS_A = "tfdemo-a";
const NS_B = "tfdemo-b";

interface Side {
  ns: Netns;
  name: string;
  impl: string;
  privateKey: Uint8Array;
  wgIp: string;
  underlayIp: string;
}

function say(msg: string): void {
  console.log(msg);
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: "boolean", short: "h" } } });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\nusage: twofold demo`);
  }
  if (parsed.values.help) {
    throw new CliError("usage: twofold demo   (as root; builds and removes its own namespaces)", 0);
  }
  for (const reason of [requireRoot(), requireTun(), requireBinary("ip")]) {
    if (reason) throw new CliError(`demo: ${reason}`);
  }
  const started = Date.now();
  const topo = new Topology();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    say("\ninterrupted: removing the demo's namespaces and processes …");
    topo.cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const peerImpl = findBinary("wireguard-go") ? "wireguard-go" : "twofold";
    say("twofold demo — a userspace WireGuard (wg0, Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s) on this machine");
    say(`  1. namespaces ${NS_A} and ${NS_B}, joined by a veth pair 10.250.0.1 <-> 10.250.0.2`);
    const a: Side = {
      ns: await topo.netns(NS_A, { replaceExisting: true }),
      name: "twofold",
      impl: "twofold",
      privateKey: generatePrivateKey(),
      wgIp: "100.64.0.1",
      underlayIp: "10.250.0.1",
    };
    const b: Side = {
      ns: await topo.netns(NS_B, { replaceExisting: true }),
      name: peerImpl === "wireguard-go" ? "wireguard-go (Debian)" : "twofold (wireguard-go not installed)",
      impl: peerImpl,
      privateKey: generatePrivateKey(),
      wgIp: "100.64.0.2",
      underlayIp: "10.250.0.2",
    };
    await vethPair(a.ns, "tfdemo-va", "10.250.0.1/24", b.ns, "tfdemo-vb", "10.250.0.2/24");
    say(`  2. wg0 in ${NS_A}: twofold; wg0 in ${NS_B}: ${b.name}`);
    const psk = crypto.getRandomValues(new Uint8Array(32));
    await startSide(a, b, psk);
    await startSide(b, a, psk);
    say("  3. both sides configured over their UAPI sockets (the same protocol `wg` speaks), with a PSK");
    const ab = await ping(a.ns, b.wgIp, { count: 5, interval: 0.2, timeoutS: 3 });
    const ba = await ping(b.ns, a.wgIp, { count: 5, interval: 0.2, timeoutS: 3 });
    say(
      `  4. ping twofold -> ${b.impl}: ${ab.received}/${ab.sent} replies, avg ${ab.rttAvgMs.toFixed(2)} ms`,
    );
    say(
      `     ping ${b.impl} -> twofold: ${ba.received}/${ba.sent} replies, avg ${ba.rttAvgMs.toFixed(2)} ms`,
    );
    const show = await uapiGet(`${a.ns.runDir}/wg0.sock`);
    const get = (k: string) => show.pairs.find(([key]) => key === k)?.[1] ?? "-";
    say("  5. `wg show wg0` on the twofold side (read through its UAPI socket):");
    say(`       listening port: ${get("listen_port")}`);
    say(`       peer endpoint:  ${get("endpoint")}`);
    say(`       allowed ips:    ${get("allowed_ip")}`);
    const hs = Number(get("last_handshake_time_sec"));
    say(
      `       last handshake: ${hs ? `${Math.max(0, Math.round(Date.now() / 1000 - hs))} s ago` : "never"}`,
    );
    say(`       transfer:       ${get("rx_bytes")} B received, ${get("tx_bytes")} B sent`);
    const ok = ab.received > 0 && ba.received > 0 && hs > 0;
    say("");
    say(
      ok
        ? `summary: OK — twofold and ${b.impl} completed a WireGuard handshake and exchanged traffic both ways.`
        : "summary: FAILED — the tunnel did not carry traffic both ways (see above).",
    );
    return ok ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (!interrupted) {
      await topo.cleanup();
      say(
        `cleaned up: namespaces and processes removed (${
          ((Date.now() - started) / 1000).toFixed(1)
        } s in all)`,
      );
    }
  }
}

async function startSide(self: Side, peer: Side, psk: Uint8Array): Promise<void> {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const command = self.impl === "wireguard-go"
    ? ["wireguard-go", "-f", "wg0"]
    : [Deno.execPath(), "run", "--allow-all", "--quiet", main, "wg", "-f", "wg0"];
  const proc = self.ns.spawn(command, { env: { LOG_LEVEL: "error", WG_PROCESS_FOREGROUND: "1" } });
  const sock = `${self.ns.runDir}/wg0.sock`;
  const up = await waitUntil(() => {
    try {
      return proc.exited || Deno.statSync(sock).isSocket === true;
    } catch {
      return false;
    }
  }, 15_000);
  if (!up || proc.exited) {
    throw new CliError(`${self.impl} did not start in ${self.ns.name}:\n${proc.output()}`, 1);
  }
  const errno = await uapiSet(sock, [
    `private_key=${toHex(self.privateKey)}`,
    "listen_port=51820",
    `public_key=${toHex(publicKey(peer.privateKey))}`,
    `preshared_key=${toHex(psk)}`,
    `endpoint=${peer.underlayIp}:51820`,
    `allowed_ip=${peer.wgIp}/32`,
  ]);
  if (errno !== 0) throw new CliError(`configuring ${self.impl} failed: errno ${errno}`, 1);
  await self.ns.exec(["ip", "addr", "add", `${self.wgIp}/10`, "dev", "wg0"]);
  await self.ns.exec(["ip", "link", "set", "wg0", "mtu", "1420", "up"]);
}
