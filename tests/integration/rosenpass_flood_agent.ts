/**
 * Helper process for tests/integration/rosenpass_wg0_test.ts, run inside the attacker's namespace with
 * `ip netns exec NS <deno> run -A rosenpass_flood_agent.ts HOST PORT PUBLIC_KEY_FILE MS`: builds a
 * pool of InitHellos with a valid envelope MAC for the target's Rosenpass public key (anyone can: the
 * MAC key is derived from the public key) from a throw-away identity the target does not know, and
 * sends them at HOST:PORT as fast as it can for MS milliseconds. Each one the target admits costs it
 * a McEliece decapsulation before it finds the sender unknown.
 *
 * Prints one JSON line at the end: `{"sent","seconds","pps"}`.
 * @module
 */
import dgram from "node:dgram";
import { SKEM_PK_LEN } from "../../src/rosenpass/constants.ts";
import { SECRET_KEY_LEN } from "../../src/rosenpass/key-files.ts";
import { PROFILE_V02 } from "../../src/rosenpass/profile.ts";
import { RosenpassServer } from "../../src/rosenpass/server.ts";

/** Distinct InitHellos cycled through. */
const POOL = 16;
/** Datagrams handed to the socket before yielding to the event loop. */
const BURST = 256;

const [host, portText, keyFile, msText] = Deno.args;
if (!host || !portText || !keyFile || !msText) {
  console.error("usage: rosenpass_flood_agent.ts HOST PORT PUBLIC_KEY_FILE MS");
  Deno.exit(2);
}

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

// A throw-away identity (random bytes of the right sizes: building an InitHello never uses our secret key).
const server = new RosenpassServer({
  profile: PROFILE_V02,
  secretKey: random(SECRET_KEY_LEN.v02),
  publicKey: random(SKEM_PK_LEN),
});
server.addPeer({ id: "target", publicKey: Deno.readFileSync(keyFile) });
const pool: Uint8Array[] = [];
for (let i = 0; i < POOL; i++) {
  const action = server.initiate("target", i)[0];
  if (action.kind !== "send") throw new Error("no InitHello");
  pool.push(action.message);
}

const socket = dgram.createSocket("udp4");
const port = Number(portText);
const started = performance.now();
const end = started + Number(msText);
let sent = 0;
let inFlight = 0;
while (performance.now() < end) {
  for (let i = 0; i < BURST; i++) {
    inFlight++;
    socket.send(pool[sent % POOL], port, host, () => inFlight--);
    sent++;
  }
  // Let the socket drain: never more than a few bursts queued.
  while (inFlight > 4 * BURST) await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
}
const seconds = (performance.now() - started) / 1000;
socket.close();
console.log(JSON.stringify({ sent, seconds, pps: Math.round(sent / seconds) }));
