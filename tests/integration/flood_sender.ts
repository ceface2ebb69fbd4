/**
 * Helper process for tests/integration/handshake_flood_test.ts, run inside the attacker's namespace
 * with `ip netns exec NS <deno> run -A flood_sender.ts MODE HOST PORT PPS MS [PUBKEY]`: sends 148-byte
 * handshake-initiation-shaped datagrams at HOST:PORT at PPS packets per second for MS milliseconds,
 * batched with sendmmsg, and counts the cookie replies (64-byte type-3 messages) that come back.
 *
 * Modes:
 * - `junk`: type 1, everything else random (mac1 invalid) — the unauthenticated flood;
 * - `mac1`: type 1 with a correct mac1 for the target's public key PUBKEY (base64), everything else
 *   random — what an attacker who knows the public key can send.
 *
 * Prints one JSON line at the end: `{"sent","seconds","pps","replies","replyRate"}`.
 * @module
 */
import { EAGAIN, errno, MSG_DONTWAIT } from "../../ffi/libc.ts";
import { MsgBatch, openUdp } from "../../ffi/udp.ts";
import { mac } from "../../src/crypto/blake2s.ts";
import { mac1Key } from "../../src/wireguard/cookie.ts";
import { decodeBase64 } from "../../src/encoding.ts";
import {
  mac1Offset,
  MessageCookieReplySize,
  MessageCookieReplyType,
  MessageInitiationSize,
  MessageInitiationType,
} from "../../src/wireguard/messages.ts";

/** Distinct packets cycled through (random sender indices and bodies). */
const POOL = 1024;
/** Datagrams per sendmmsg. */
const BATCH = 64;
/** Pacing step (ms): how long the sender sleeps when it is ahead of its rate. */
const STEP_MS = 1;

const [mode, host, portText, ppsText, msText, pubkey] = Deno.args;
if ((mode !== "junk" && mode !== "mac1") || !host || !portText || !ppsText || !msText) {
  console.error("usage: flood_sender.ts junk|mac1 HOST PORT PPS MS [PUBKEY]");
  Deno.exit(2);
}
if (mode === "mac1" && !pubkey) {
  console.error("mac1 mode needs the target's public key");
  Deno.exit(2);
}
const pps = Number(ppsText);
const durationMs = Number(msText);

const key = mode === "mac1" ? mac1Key(decodeBase64(pubkey)) : null;
const pool: Uint8Array[] = [];
for (let i = 0; i < POOL; i++) {
  const p = crypto.getRandomValues(new Uint8Array(MessageInitiationSize));
  p[0] = MessageInitiationType;
  p[1] = p[2] = p[3] = 0;
  if (key) {
    const at = mac1Offset(p.length);
    p.set(mac(key, p.subarray(0, at)), at);
    p.fill(0, at + 16); // no mac2
  }
  pool.push(p);
}

const sock = openUdp(0, { family: 4, nonBlocking: true, rcvbuf: 8 << 20, sndbuf: 8 << 20 });
const out = new MsgBatch(BATCH, MessageInitiationSize);
for (let i = 0; i < BATCH; i++) out.setAddrIp(i, host, Number(portText));
const inbox = new MsgBatch(BATCH, 256);
const sleeper = new Int32Array(new SharedArrayBuffer(4));

let sent = 0;
let replies = 0;
let next = 0;
const drain = () => {
  for (;;) {
    const n = inbox.recv(sock.fd, MSG_DONTWAIT);
    if (n <= 0) return;
    for (let i = 0; i < n; i++) {
      if (inbox.lens[i] === MessageCookieReplySize && inbox.bufs[i][0] === MessageCookieReplyType) replies++;
    }
  }
};

const start = performance.now();
for (;;) {
  const elapsed = performance.now() - start;
  if (elapsed >= durationMs) break;
  drain();
  let due = Math.floor((elapsed * pps) / 1000) - sent;
  if (due <= 0) {
    Atomics.wait(sleeper, 0, 0, STEP_MS);
    continue;
  }
  while (due > 0) {
    const n = Math.min(due, BATCH);
    for (let i = 0; i < n; i++) {
      out.bufs[i].set(pool[next]);
      out.lens[i] = MessageInitiationSize;
      next = (next + 1) % POOL;
    }
    const r = out.send(sock.fd, n);
    if (r < 0) {
      if (errno() !== EAGAIN) throw new Error(`sendmmsg failed: errno ${errno()}`);
      break; // socket buffer full: try again next round
    }
    sent += r;
    due -= r;
  }
}
const seconds = (performance.now() - start) / 1000;
// Replies still in flight for the last packets.
const tail = performance.now();
while (performance.now() - tail < 200) {
  drain();
  Atomics.wait(sleeper, 0, 0, STEP_MS);
}
console.log(JSON.stringify({
  sent,
  seconds: Number(seconds.toFixed(3)),
  pps: Math.round(sent / seconds),
  replies,
  replyRate: Math.round(replies / seconds),
}));
