import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { toHex } from "../../src/encoding.ts";
import { type BrokerEvent, BrokerService } from "../../src/ska/broker-service.ts";
import { compareBytes, deriveIntermediate, deriveSkaPsk } from "../../src/ska/derive.ts";
import { decodeSkaFrame, encodeSkaFrame, SkaStatus, SkaType } from "../../src/ska/frames.ts";
import { SkaAgreement, type SkaAgreement as Agreement, type SkaEvent } from "../../src/ska/agreement.ts";
import { fileRootKey, type RootKey } from "../../src/ska/root-key.ts";
import { serveSka, skaRequest } from "../../src/ska/transport.ts";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

const ROOT = crypto.getRandomValues(new Uint8Array(32));
const BROKER_IP = "100.64.9.10";

interface Endpoint {
  name: string;
  ip: string;
  pub: Uint8Array;
  agreement: Agreement;
  installed: { peer: string; psk: Uint8Array; epoch: number }[];
  events: SkaEvent[];
}

/** Two or three endpoints and a broker wired through in-memory "wg0": the caller's address is its own. */
function lab(opts: { brokerDown?: () => boolean; rootKey?: RootKey } = {}) {
  const transcript: Uint8Array[] = [];
  const brokerEvents: BrokerEvent[] = [];
  const keys = ["a", "b", "c"].map((name, i) => {
    const priv = generatePrivateKey();
    return { name, ip: `100.64.9.${i + 1}`, pub: publicKey(priv) };
  });
  const broker = new BrokerService({
    peers: keys.map((k) => ({ name: k.name, publicKey: k.pub, wgIp: k.ip })),
    rootKey: opts.rootKey ?? fileRootKey(ROOT),
    onEvent: (e) => brokerEvents.push(e),
  });
  const endpoints = new Map<string, Endpoint>();
  const route = (from: string) => async (host: string, _port: number, frame: Uint8Array) => {
    if (host === BROKER_IP) {
      if (opts.brokerDown?.()) throw new Error("connection refused");
      transcript.push(frame.slice());
      const reply = broker.handle(frame, from);
      if (reply === null) throw new Error("closed");
      transcript.push(reply.slice());
      return reply;
    }
    const target = [...endpoints.values()].find((e) => e.ip === host);
    if (!target) throw new Error("no route");
    const reply = await target.agreement.handleOffer(frame, from);
    if (reply === null) throw new Error("closed");
    return reply;
  };
  // a and b are SKA peers of each other; c is a configured broker peer but no SKA peer of a or b.
  for (const k of keys) {
    const peers = keys.filter((o) => o !== k && (k.name === "c" ? false : o.name !== "c"));
    const ep: Endpoint = { ...k, agreement: null as unknown as Agreement, installed: [], events: [] };
    ep.agreement = new SkaAgreement({
      selfPublicKey: k.pub,
      listenHost: k.ip,
      peers: peers.map((o) => ({ name: o.name, publicKey: o.pub, wgIp: o.ip })),
      brokerHost: BROKER_IP,
      rotationIntervalMs: 1000,
      install: (peer, psk, epoch) => {
        const last = ep.installed.filter((x) => x.peer === toHex(peer)).at(-1);
        if (last && epoch <= last.epoch) return false;
        ep.installed.push({ peer: toHex(peer), psk: psk.slice(), epoch });
        return true;
      },
      onEvent: (e) => ep.events.push(e),
      request: route(k.ip),
    });
    endpoints.set(k.name, ep);
  }
  const a = endpoints.get("a")!;
  const b = endpoints.get("b")!;
  const [initiator, responder] = compareBytes(a.pub, b.pub) < 0 ? [a, b] : [b, a];
  return { broker, transcript, brokerEvents, a, b, c: endpoints.get("c")!, initiator, responder, route };
}

/** Every 32-byte window of every recorded frame (and all zeros): what the broker could try as a DH secret. */
function windows(frames: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [new Uint8Array(32)];
  for (const f of frames) for (let i = 0; i + 32 <= f.length; i++) out.push(f.slice(i, i + 32));
  return out;
}

Deno.test("SKA: both endpoints install the same PSK at the same epoch; the broker's view cannot reproduce it", async () => {
  const { transcript, a, b, initiator, responder, broker } = lab();
  for (let round = 0; round < 3; round++) {
    assert.equal(
      await initiator.agreement.runRound({
        name: responder.name,
        publicKey: responder.pub,
        wgIp: responder.ip,
      }),
      true,
    );
  }
  assert.equal(a.installed.length, 3);
  assert.equal(b.installed.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(a.installed[i].epoch, b.installed[i].epoch);
    assert.equal(toHex(a.installed[i].psk), toHex(b.installed[i].psk));
  }
  assert.notEqual(toHex(a.installed[0].psk), toHex(a.installed[1].psk), "each epoch has its own key");
  assert.ok(a.installed[1].epoch > a.installed[0].epoch);
  // The broker's view: every frame it received and sent. From it, the broker (which also holds the root
  // key) forms every candidate it can: the intermediates it sent, recomputed ones, and the PSK formula
  // with every 32-byte string it saw in place of the DH secret.
  const intermediates = transcript.map((f) => decodeSkaFrame(f)).flatMap((m) =>
    m.type === SkaType.INTERMEDIATE_RESPONSE && m.status === SkaStatus.OK ? [m.intermediate] : []
  );
  assert.equal(intermediates.length, 6, "each endpoint fetched one intermediate per round");
  const epochs = [...new Set(a.installed.map((x) => x.epoch))];
  const seen = windows(transcript);
  const candidates: string[] = [];
  for (const epoch of epochs) {
    const inter = deriveIntermediate((d) => hmac(sha256, ROOT, d), a.pub, b.pub, epoch);
    candidates.push(toHex(inter));
    for (const i of [inter, ...intermediates]) {
      candidates.push(toHex(i));
      for (const w of seen) candidates.push(toHex(deriveSkaPsk(i, w, epoch, a.pub, b.pub)));
    }
  }
  candidates.push(...seen.map(toHex));
  assert.ok(candidates.length > 1000);
  for (const x of a.installed) {
    assert.ok(!candidates.includes(toHex(x.psk)), "the broker cannot form the PSK");
  }
  const st = broker.status();
  assert.equal(st.find((s) => s.peer === "a")!.lastEpoch, epochs.at(-1));
  assert.equal(initiator.agreement.status()[0].lastEpoch, epochs.at(-1));
  assert.equal(responder.agreement.status()[0].lastIntermediateEpoch, epochs.at(-1));
});

Deno.test("SKA broker: a third node asking for the A–B intermediate, an unknown source and a bad pair are refused without key material", () => {
  const { broker, brokerEvents, a, b, c } = lab();
  const ask = (from: string, idA: Uint8Array, idB: Uint8Array) =>
    decodeSkaFrame(
      broker.handle(encodeSkaFrame({ type: SkaType.INTERMEDIATE_REQUEST, idA, idB, epoch: 77 }), from)!,
    );
  const refusedFor = (m: ReturnType<typeof ask>, status: number) => {
    assert.equal(m.type, SkaType.INTERMEDIATE_RESPONSE);
    if (m.type !== SkaType.INTERMEDIATE_RESPONSE) return;
    assert.equal(m.status, status);
    assert.equal(toHex(m.intermediate), "00".repeat(32));
  };
  refusedFor(ask(c.ip, a.pub, b.pub), SkaStatus.PAIR_REFUSED);
  assert.match(brokerEvents.at(-1)!.reason, /pair a–b, which it is not part of/);
  assert.equal(brokerEvents.at(-1)!.requester, "c");
  refusedFor(ask("100.64.9.99", a.pub, b.pub), SkaStatus.UNKNOWN_REQUESTER);
  refusedFor(ask(a.ip, a.pub, a.pub), SkaStatus.PAIR_REFUSED);
  refusedFor(ask(a.ip, a.pub, crypto.getRandomValues(new Uint8Array(32))), SkaStatus.PAIR_REFUSED);
  const inter = deriveIntermediate((d) => hmac(sha256, ROOT, d), a.pub, b.pub, 77);
  for (const e of brokerEvents) assert.ok(!JSON.stringify(e).includes(toHex(inter)));
  // The legitimate requester gets it, whichever order it names the pair in.
  const ok = ask(b.ip, a.pub, b.pub);
  assert.ok(ok.type === SkaType.INTERMEDIATE_RESPONSE && ok.status === SkaStatus.OK);
  assert.equal(toHex((ok as { intermediate: Uint8Array }).intermediate), toHex(inter));
  assert.equal(broker.handle(new Uint8Array([1, 2, 3]), a.ip), null, "garbage is dropped");
  assert.equal(broker.status().find((s) => s.peer === "c")!.refused, 1);
});

Deno.test("SKA: broker unreachable → no key, broker-unreachable and rotation-failed; it recovers when the broker returns", async () => {
  let down = true;
  const { initiator, responder } = lab({ brokerDown: () => down });
  const peer = { name: responder.name, publicKey: responder.pub, wgIp: responder.ip };
  assert.equal(await initiator.agreement.runRound(peer), false);
  assert.deepEqual(initiator.events.map((e) => e.type), ["broker-unreachable", "rotation-failed"]);
  assert.equal(initiator.installed.length + responder.installed.length, 0);
  assert.equal(initiator.agreement.brokerReachable, false);
  down = false;
  assert.equal(await initiator.agreement.runRound(peer), true);
  assert.equal(initiator.agreement.brokerReachable, true);
  assert.equal(toHex(initiator.installed[0].psk), toHex(responder.installed[0].psk));
});

Deno.test("SKA responder: offers from a non-peer address or for an old epoch are refused", async () => {
  const { initiator, responder, c } = lab();
  const offer = (epoch: number) =>
    encodeSkaFrame({ type: SkaType.DH_OFFER, epoch, ephemeral: publicKey(generatePrivateKey()) });
  const status = async (frame: Uint8Array, from: string) => {
    const m = decodeSkaFrame((await responder.agreement.handleOffer(frame, from))!);
    return m.type === SkaType.DH_ANSWER ? m.status : -1;
  };
  assert.equal(await status(offer(10), c.ip), SkaStatus.UNKNOWN_REQUESTER);
  assert.equal(await status(offer(10), responder.ip), SkaStatus.UNKNOWN_REQUESTER);
  assert.equal(await status(offer(10), initiator.ip), SkaStatus.OK);
  assert.equal(await status(offer(10), initiator.ip), SkaStatus.BAD_EPOCH);
  assert.equal(responder.installed.length, 1);
});

Deno.test("SKA transport: one frame each way over TCP; the server sees the caller's address", async () => {
  let seenFrom = "";
  const server = serveSka("127.0.0.1", 0, (frame, from) => {
    seenFrom = from;
    const m = decodeSkaFrame(frame);
    return encodeSkaFrame({
      type: SkaType.DH_ANSWER,
      status: 0,
      epoch: m.epoch,
      ephemeral: new Uint8Array(32).fill(9),
    });
  });
  try {
    const reply = decodeSkaFrame(
      await skaRequest(
        "127.0.0.1",
        server.addr.port,
        encodeSkaFrame({ type: SkaType.DH_OFFER, epoch: 5, ephemeral: new Uint8Array(32) }),
        2000,
      ),
    );
    assert.equal(reply.epoch, 5);
    assert.equal(seenFrom, "127.0.0.1");
    await assert.rejects(skaRequest("127.0.0.1", 1, new Uint8Array(6), 2000), /cannot connect/);
  } finally {
    server.close();
  }
});

Deno.test("SKA: a broker whose HSM fails answers ROOT_KEY_FAILED; the endpoint reports broker-unreachable, no key", async () => {
  const failing: RootKey = {
    kind: "pkcs11",
    hmac: () => {
      throw new Error("PKCS#11 C_Sign: CKR_DEVICE_ERROR");
    },
    close: () => {},
  };
  const { initiator, responder, brokerEvents } = lab({ rootKey: failing });
  const peer = { name: responder.name, publicKey: responder.pub, wgIp: responder.ip };
  assert.equal(await initiator.agreement.runRound(peer), false);
  assert.deepEqual(initiator.events.map((e) => e.type), ["broker-unreachable", "rotation-failed"]);
  assert.match(initiator.events[0].reason, /root key/);
  assert.equal(initiator.installed.length + responder.installed.length, 0);
  assert.match(brokerEvents.at(-1)!.reason, /root key failed: PKCS#11 C_Sign: CKR_DEVICE_ERROR/);
});
