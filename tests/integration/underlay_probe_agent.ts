/**
 * Helper process for tests/integration/uapi_isolation_test.ts, run inside the attacker's namespace
 * (`ip netns exec NS <deno> run -A underlay_probe_agent.ts IP PORT RESPONDER_PUBKEY_B64 COUNT WAIT_MS`):
 * sends COUNT junk datagrams and COUNT handshake-initiation-shaped datagrams with a valid mac1 for
 * the responder's public key (what an attacker without keys can make; under load they earn cookie
 * replies) to IP:PORT as fast as it can, then listens WAIT_MS for anything coming back. Prints one JSON
 * line `{"sent": N, "replies": N, "replyBytes": N}`.
 * @module
 */
import { EAGAIN, errno, POLLIN, POLLOUT } from "../../ffi/libc.ts";
import { pollOne } from "../../ffi/poll.ts";
import { encodeSockaddr, openUdp, recvFrom, sendTo } from "../../ffi/udp.ts";
import { decodeBase64 } from "../../src/encoding.ts";
import { CookieGenerator } from "../../src/wireguard/cookie.ts";

const [ip, portText, responderB64, countText, waitText] = Deno.args;
const port = Number(portText), count = Number(countText), waitMs = Number(waitText);
const INITIATION_LEN = 148;
const TYPE_INITIATION = 1;
const JUNK_LEN = 64;

const sock = openUdp(0, { family: 4, nonBlocking: true });
const addr = new Uint8Array(32);
const addrLen = encodeSockaddr(ip, port, addr, 0);
const macs = new CookieGenerator(decodeBase64(responderB64), Date.now);
let sent = 0;

function send(msg: Uint8Array): void {
  for (let tries = 0; tries < 100; tries++) {
    if (sendTo(sock.fd, msg, 0, msg.length, addr, addrLen) === msg.length) {
      sent++;
      return;
    }
    if (errno() !== EAGAIN) return;
    pollOne(sock.fd, POLLOUT, 10);
  }
}

for (let i = 0; i < count; i++) {
  const junk = crypto.getRandomValues(new Uint8Array(JUNK_LEN));
  junk[0] = 0xaa; // no WireGuard message type
  send(junk);
  const init = crypto.getRandomValues(new Uint8Array(INITIATION_LEN));
  init[0] = TYPE_INITIATION;
  init[1] = init[2] = init[3] = 0;
  macs.addMacs(init);
  send(init);
}

let replies = 0, replyBytes = 0;
const buf = new Uint8Array(2048);
const from = new Uint8Array(32);
const deadline = Date.now() + waitMs;
while (Date.now() < deadline) {
  if (pollOne(sock.fd, POLLIN, Math.max(1, deadline - Date.now())) <= 0) continue;
  const n = recvFrom(sock.fd, buf, 0, buf.length, from);
  if (n > 0) {
    replies++;
    replyBytes += n;
  }
}
console.log(JSON.stringify({ sent, replies, replyBytes }));
