/**
 * The hub at PSRD exhaustion (docs/design.md §4 invariant 7): a SHARE_GET whose share no longer fits in
 * the hub's send region is answered PSRD_LOW (authenticated, no share); with less than a MAC key left the
 * hub acts on nothing (no share stored) and closes the connection; it never wraps.
 */
import assert from "node:assert/strict";
import {
  type HubMessage,
  HubStatus,
  openHubFrame,
  padLength,
  peekHubFrame,
  sealHubFrame,
} from "../../src/dske/frames.ts";
import { type HubEvent, HubService } from "../../src/dske/hub-service.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { fromHex } from "../../src/encoding.ts";

Deno.test("DSKE hub service at PSRD exhaustion", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "dske-hub-" });
  const peer = new Uint8Array(32).fill(0x11);
  const hubId = crypto.getRandomValues(new Uint8Array(16));
  const pair = createPsrdPair({
    hubId,
    hubEndpoint: "127.0.0.1:51831",
    peerId: peer,
    c2hLen: 8192,
    h2cLen: 1024,
  });
  const client = await PsrdStore.open(`${dir}/client`, { lowWaterBytes: 0 });
  const hubStore = await PsrdStore.open(`${dir}/hub`, { lowWaterBytes: 0 });
  const cb = client.ingest(pair.client);
  hubStore.ingest(pair.hub);
  const events: HubEvent[] = [];
  const svc = new HubService({ hubId, store: hubStore, onEvent: (e) => events.push(e) });
  const ids = { clientId: fromHex(cb.clientId), hubId };
  const keyId = crypto.getRandomValues(new Uint8Array(16));
  /** Seals `m` as the client, hands it to the hub, opens the answer (or returns "close"/null). */
  const send = (m: HubMessage): HubMessage | null | "close" => {
    const { offset, pad } = client.reserveTx(cb.blockId, padLength(m));
    const reply = svc.handle(sealHubFrame(m, fromHex(cb.blockId), offset, pad));
    if (reply === null || reply === "close") return reply;
    const p = peekHubFrame(reply);
    const rxPad = client.rxPad(cb.blockId, p.offset, p.used);
    const msg = openHubFrame(reply, rxPad);
    client.acceptRx(cb.blockId, p.offset, p.used);
    return msg;
  };
  const hello = (): HubMessage => ({ type: 0x01, ...ids, peerId: peer, timeMs: Date.now() });
  const get = (): HubMessage => ({ type: 0x03, ...ids, keyId, generatorPeer: peer, recovererPeer: peer });
  try {
    await t.step("a share is stored while the hub can still acknowledge", () => {
      const put = send({
        type: 0x02,
        ...ids,
        keyId,
        generatorPeer: peer,
        recovererPeer: peer,
        epoch: 1,
        ttlS: 60,
        x: 1,
        k: 2,
        n: 3,
        share: new Uint8Array(64).fill(7),
      });
      assert.equal(put !== null && put !== "close" && put.type === 0x82 && put.status, HubStatus.OK);
      assert.equal(svc.counters.shares, 1);
    });

    await t.step("with fewer than 96 B left a SHARE_GET is answered PSRD_LOW, without the share", () => {
      // 1024 − 32 (PUT ack) = 992 left; 29 HELLO_ACKs of 32 B leave 64.
      for (let i = 0; i < 29; i++) assert.equal((send(hello()) as HubMessage).type, 0x81);
      assert.equal(hubStore.blocks()[0].txRemaining, 64);
      const r = send(get());
      assert.ok(r !== null && r !== "close" && r.type === 0x83);
      assert.equal(r.status, HubStatus.PSRD_LOW);
      assert.equal(r.share, null);
      assert.equal(hubStore.blocks()[0].txRemaining, 32);
      assert.ok(events.some((e) => e.type === "refused" && /PSRD exhausted/.test(e.reason)));
    });

    await t.step("with less than 32 B left nothing is acted on and the connection closes", () => {
      assert.equal((send(hello()) as HubMessage).type, 0x81); // the last 32 B
      assert.equal(hubStore.blocks()[0].txRemaining, 0);
      const before = svc.counters.shares;
      const put = send({
        type: 0x02,
        ...ids,
        keyId: crypto.getRandomValues(new Uint8Array(16)),
        generatorPeer: peer,
        recovererPeer: peer,
        epoch: 2,
        ttlS: 60,
        x: 1,
        k: 2,
        n: 3,
        share: new Uint8Array(64).fill(9),
      });
      assert.equal(put, "close");
      assert.equal(svc.counters.shares, before, "the share was not stored");
      assert.equal(send(get()), "close", "no share released");
      assert.equal(send(hello()), "close");
      const b = hubStore.blocks()[0];
      assert.equal(b.txNext, 1024, "never wraps");
      assert.equal(b.txRemaining, 0);
      assert.match(events.at(-1)!.reason, /^PSRD exhausted: 0 B left to answer with; request not acted on/);
    });
  } finally {
    client.close();
    hubStore.close();
    await Deno.remove(dir, { recursive: true });
  }
});
