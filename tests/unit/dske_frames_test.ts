import assert from "node:assert/strict";
import { poly1305 } from "@noble/ciphers/_poly1305.js";
import {
  AUTH_LEN,
  decodePeerFrame,
  encodePeerFrame,
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameError,
  FrameType,
  HEADER_LEN,
  hubFrameLength,
  type HubMessage,
  HubStatus,
  isHubFrameType,
  isPeerFrameType,
  type KeyOffer,
  KeyResultStatus,
  MAC_KEY_LEN,
  MAX_FRAME_LEN,
  MAX_KEY_OFFER_HUBS,
  MAX_KEY_RESULT_BAD_HUBS,
  MAX_SYNC_EPOCHS,
  openHubFrame,
  padLength,
  peekHubFrame,
  PEER_FRAME_VERSION,
  type PeerMessage,
  sealHubFrame,
  SHARE_LEN,
  type ShareGetResp,
  type SharePut,
} from "../../src/dske/frames.ts";
import { FrameReader } from "../../src/dske/frame-reader.ts";
import { PEER_TAG_LEN, peerFrameTag } from "../../src/dske/peer-auth.ts";
import { concatBytes } from "../../src/encoding.ts";

// ------------------------------------------------------------------------------------------------
// Helpers

/** The node-to-node frame key of these tests (one direction of a pair). */
const PEER_KEY = new Uint8Array(32).fill(7);
/** Encodes a node-to-node frame under PEER_KEY. */
const enc = (m: PeerMessage) => encodePeerFrame(m, PEER_KEY);
/** Decodes a node-to-node frame under PEER_KEY. */
const dec = (f: Uint8Array) => decodePeerFrame(f, PEER_KEY);
/** Recomputes the tag of a (modified) node-to-node frame, so the checks behind the tag run. */
function retag(f: Uint8Array): Uint8Array {
  const end = f.length - PEER_TAG_LEN;
  f.set(peerFrameTag(PEER_KEY, f.subarray(0, end)), end);
  return f;
}

/** Small seeded PRNG (mulberry32) so failures are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(n: number, rand: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

const randInt = (rand: () => number, n: number) => Math.floor(rand() * n);

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

function u64be(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}

function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}

/** Runs `f` and returns the FrameError code it throws; fails if it throws anything else or nothing. */
function frameErrorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof FrameError, `expected FrameError, got ${e}`);
    return e.code;
  }
  assert.fail("expected a FrameError");
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const rand0 = prng(0xd5ce);
const id16 = () => randomBytes(16, rand0);
const id32 = () => randomBytes(32, rand0);

function sampleHubMessages(): HubMessage[] {
  return [
    { type: FrameType.HELLO, clientId: id16(), hubId: id16(), peerId: id32(), timeMs: 1_700_000_000_123 },
    {
      type: FrameType.HELLO_ACK,
      clientId: id16(),
      hubId: id16(),
      status: HubStatus.OK,
      c2hRxNext: 4096,
      h2cTxNext: Number.MAX_SAFE_INTEGER,
      c2hRemaining: 2 ** 40 + 7,
      h2cRemaining: 0,
    },
    {
      type: FrameType.SHARE_PUT,
      clientId: id16(),
      hubId: id16(),
      keyId: id16(),
      generatorPeer: id32(),
      recovererPeer: id32(),
      epoch: 2 ** 33 + 5,
      ttlS: 600,
      x: 3,
      k: 2,
      n: 5,
      share: randomBytes(SHARE_LEN, rand0),
    },
    {
      type: FrameType.SHARE_PUT_ACK,
      clientId: id16(),
      hubId: id16(),
      keyId: id16(),
      status: HubStatus.DUPLICATE,
    },
    {
      type: FrameType.SHARE_GET,
      clientId: id16(),
      hubId: id16(),
      keyId: id16(),
      generatorPeer: id32(),
      recovererPeer: id32(),
    },
    {
      type: FrameType.SHARE_GET_RESP,
      clientId: id16(),
      hubId: id16(),
      keyId: id16(),
      status: HubStatus.OK,
      x: 255,
      k: 3,
      n: 4,
      epoch: 99,
      generatorPeer: id32(),
      share: randomBytes(SHARE_LEN, rand0),
    },
    {
      type: FrameType.SHARE_GET_RESP,
      clientId: id16(),
      hubId: id16(),
      keyId: id16(),
      status: HubStatus.UNKNOWN_KEY,
      x: 0,
      k: 0,
      n: 0,
      epoch: 0,
      generatorPeer: new Uint8Array(32),
      share: null,
    },
    { type: FrameType.SHARE_DELETE, clientId: id16(), hubId: id16(), keyId: id16() },
  ];
}

/** Frame sizes of docs/design.md §3.5, keyed like sampleHubMessages(). */
const EXPECTED_HUB_SIZES = [128, 124, 246, 108, 168, 216, 152, 104];
const EXPECTED_PAD_LENGTHS = [32, 32, 96, 32, 32, 96, 32, 32];

function samplePeerMessages(): PeerMessage[] {
  return [
    {
      type: FrameType.KEY_OFFER,
      keyId: id16(),
      epoch: 12345,
      generatorPeer: id32(),
      recovererPeer: id32(),
      k: 2,
      n: 3,
      expiresMs: 1_700_000_600_000,
      confirm: id32(),
      hubs: [{ hubId: id16(), x: 1 }, { hubId: id16(), x: 2 }, { hubId: id16(), x: 3 }],
    },
    {
      type: FrameType.KEY_OFFER,
      keyId: id16(),
      epoch: 0,
      generatorPeer: id32(),
      recovererPeer: id32(),
      k: 0,
      n: 0,
      expiresMs: Number.MAX_SAFE_INTEGER,
      confirm: new Uint8Array(32),
      hubs: [],
    },
    {
      type: FrameType.KEY_RESULT,
      keyId: id16(),
      epoch: 77,
      status: KeyResultStatus.OK,
      confirm: id32(),
      badHubs: [],
    },
    {
      type: FrameType.KEY_RESULT,
      keyId: id16(),
      epoch: 78,
      status: KeyResultStatus.VALIDATION_FAILED,
      confirm: new Uint8Array(32),
      badHubs: [id16(), id16()],
    },
    { type: FrameType.KEY_ABORT, keyId: id16(), epoch: 79, reason: 9 },
    { type: FrameType.ERROR, code: 0xbeef },
    { type: FrameType.KEY_SYNC, timeMs: 1_700_000_000_000, epochs: [5, 6, 9] },
  ];
}

/** Header + body + 32-byte tag (ERROR: no tag). */
const EXPECTED_PEER_SIZES = [
  8 + 132 + 60 + 32,
  8 + 132 + 32,
  8 + 60 + 32,
  8 + 60 + 32 + 32,
  68,
  12,
  8 + 12 + 24 + 32,
];

type Sealed = {
  message: HubMessage;
  frame: Uint8Array;
  pad: Uint8Array;
  blockId: Uint8Array;
  offset: number;
};

function sealAll(rand: () => number): Sealed[] {
  return sampleHubMessages().map((message, i) => {
    const pad = randomBytes(padLength(message), rand);
    const blockId = randomBytes(16, rand);
    const offset = i * 1000 + randInt(rand, 1000);
    return { message, frame: sealHubFrame(message, blockId, offset, pad), pad, blockId, offset };
  });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// ------------------------------------------------------------------------------------------------

Deno.test("DSKE hub frames: encoding, sizes and round trips", async (t) => {
  await t.step("every hub type seals to the table's frame size and opens to the same message", () => {
    const sealed = sealAll(prng(1));
    assert.equal(sealed.length, EXPECTED_HUB_SIZES.length);
    sealed.forEach(({ message, frame, pad, blockId, offset }, i) => {
      assert.equal(frame.length, EXPECTED_HUB_SIZES[i], `type 0x${message.type.toString(16)}`);
      assert.equal(pad.length, EXPECTED_PAD_LENGTHS[i]);
      const status = "status" in message ? message.status : HubStatus.OK;
      assert.equal(hubFrameLength(message.type, status), frame.length);
      assert.deepEqual(peekHubFrame(frame), { type: message.type, blockId, offset, used: pad.length });
      assert.deepEqual(openHubFrame(frame, pad), message);
    });
  });

  await t.step("header, body and auth sit where docs/design.md §3.4 puts them (HELLO built by hand)", () => {
    const clientId = id16(), hubId = id16(), peerId = id32(), blockId = id16();
    const pad = randomBytes(32, prng(2));
    const offset = 2 ** 41 + 3;
    const frame = sealHubFrame(
      { type: FrameType.HELLO, clientId, hubId, peerId, timeMs: 0x0102030405 },
      blockId,
      offset,
      pad,
    );
    const beforeTag = concat(
      new Uint8Array([0x44, 0x4b, 0x01, 0x01]),
      u32be(128),
      clientId,
      hubId,
      peerId,
      u64be(0x0102030405),
      blockId,
      u64be(offset),
      u32be(32),
      u32be(0),
    );
    assert.deepEqual(frame.subarray(0, 112), beforeTag);
    assert.deepEqual(frame.subarray(112), poly1305(beforeTag, pad.subarray(0, 32)));
  });

  await t.step("SHARE_PUT: enc_share is share XOR pad[32..96] at body offset 126; the OTP hides it", () => {
    const [, , put] = sampleHubMessages() as [HubMessage, HubMessage, SharePut];
    const padA = randomBytes(96, prng(3));
    const padB = randomBytes(96, prng(4));
    const a = sealHubFrame(put, id16(), 0, padA);
    const b = sealHubFrame(put, id16(), 0, padB);
    const encStart = HEADER_LEN + 126;
    const encA = a.subarray(encStart, encStart + SHARE_LEN);
    assert.equal(a[encStart - 1], SHARE_LEN, "share_len byte");
    assert.deepEqual(encA, put.share.map((v, i) => v ^ padA[MAC_KEY_LEN + i]));
    assert.notDeepEqual(encA, put.share);
    assert.equal(indexOfBytes(a, put.share), -1, "plaintext share must not appear in the frame");
    assert.notDeepEqual(encA, b.subarray(encStart, encStart + SHARE_LEN), "different pads, different bytes");
  });

  await t.step("SHARE_GET_RESP: status decides the size, share_len and pad length", () => {
    const msgs = sampleHubMessages();
    const ok = msgs[5] as ShareGetResp, notOk = msgs[6] as ShareGetResp;
    assert.equal(padLength(ok), 96);
    assert.equal(padLength(notOk), 32);
    const okFrame = sealHubFrame(ok, id16(), 0, new Uint8Array(96).fill(7));
    const okPlain = openHubFrame(okFrame, new Uint8Array(96).fill(7)) as ShareGetResp;
    assert.deepEqual(okPlain.share, ok.share);
    const encStart = HEADER_LEN + 96;
    assert.deepEqual(okFrame.subarray(encStart, encStart + 64), ok.share!.map((v) => v ^ 7));
    assert.equal(okFrame[encStart - 4], 64, "share_len");
    const nFrame = sealHubFrame(notOk, id16(), 0, new Uint8Array(32));
    assert.equal(nFrame[HEADER_LEN + 92], 0, "share_len");
    assert.equal((openHubFrame(nFrame, new Uint8Array(32)) as ShareGetResp).share, null);

    // status ≠ OK with a share, or OK without one, cannot be sealed
    assert.equal(
      frameErrorCode(() => sealHubFrame({ ...notOk, share: ok.share }, id16(), 0, new Uint8Array(32))),
      "bad-field",
    );
    assert.equal(
      frameErrorCode(() => sealHubFrame({ ...ok, share: null }, id16(), 0, new Uint8Array(96))),
      "bad-field",
    );
  });

  await t.step("sealing rejects bad inputs", () => {
    const [hello, , put] = sampleHubMessages();
    const pad32 = new Uint8Array(32);
    assert.equal(frameErrorCode(() => sealHubFrame(hello, id16(), 0, new Uint8Array(31))), "bad-pad");
    assert.equal(frameErrorCode(() => sealHubFrame(hello, id16(), 0, new Uint8Array(96))), "bad-pad");
    assert.equal(frameErrorCode(() => sealHubFrame(put, id16(), 0, pad32)), "bad-pad");
    assert.equal(frameErrorCode(() => sealHubFrame(hello, new Uint8Array(15), 0, pad32)), "bad-field");
    assert.equal(frameErrorCode(() => sealHubFrame(hello, id16(), -1, pad32)), "bad-field");
    assert.equal(frameErrorCode(() => sealHubFrame(hello, id16(), 0.5, pad32)), "bad-field");
    assert.equal(
      frameErrorCode(() => sealHubFrame(hello, id16(), Number.MAX_SAFE_INTEGER - 31, pad32)),
      "bad-field",
    );
    assert.ok(sealHubFrame(hello, id16(), Number.MAX_SAFE_INTEGER - 32, pad32).length === 128);
    const h = hello as HubMessage & { type: 0x01 };
    assert.equal(frameErrorCode(() => sealHubFrame({ ...h, peerId: id16() }, id16(), 0, pad32)), "bad-field");
    assert.equal(
      frameErrorCode(() => sealHubFrame({ ...h, timeMs: 2 ** 53 }, id16(), 0, pad32)),
      "bad-field",
    );
    const p = put as SharePut;
    const pad96 = new Uint8Array(96);
    assert.equal(frameErrorCode(() => sealHubFrame({ ...p, x: 256 }, id16(), 0, pad96)), "bad-field");
    assert.equal(frameErrorCode(() => sealHubFrame({ ...p, ttlS: 65536 }, id16(), 0, pad96)), "bad-field");
    assert.equal(
      frameErrorCode(() => sealHubFrame({ ...p, share: new Uint8Array(63) }, id16(), 0, pad96)),
      "bad-field",
    );
  });

  await t.step("isHubFrameType / isPeerFrameType partition the types", () => {
    for (const t of [0x01, 0x81, 0x02, 0x82, 0x03, 0x83, 0x04]) {
      assert.ok(isHubFrameType(t) && !isPeerFrameType(t));
    }
    for (const t of [0x10, 0x11, 0x12, 0x13, 0x7f]) assert.ok(!isHubFrameType(t) && isPeerFrameType(t));
    for (const t of [0x00, 0x05, 0x80, 0x84, 0x14, 0xff]) {
      assert.ok(!isHubFrameType(t) && !isPeerFrameType(t));
    }
  });
});

Deno.test("DSKE hub frames: authentication and validation", async (t) => {
  const sealed = sealAll(prng(10));

  await t.step("a wrong pad (or a pad of the wrong length) is rejected", () => {
    for (const { frame, pad } of sealed) {
      const wrong = pad.slice();
      wrong[0] ^= 1;
      assert.equal(frameErrorCode(() => openHubFrame(frame, wrong)), "bad-tag");
      assert.equal(frameErrorCode(() => openHubFrame(frame, randomBytes(pad.length, prng(11)))), "bad-tag");
      assert.equal(frameErrorCode(() => openHubFrame(frame, pad.subarray(0, pad.length - 1))), "bad-pad");
      assert.equal(frameErrorCode(() => openHubFrame(frame, concat(pad, new Uint8Array(1)))), "bad-pad");
    }
  });

  await t.step("pad bytes after the MAC key only change the decrypted share, never pass a forgery", () => {
    const { frame, pad, message } = sealed[2]; // SHARE_PUT
    const otherOtp = pad.slice();
    otherOtp[MAC_KEY_LEN] ^= 0xff;
    const opened = openHubFrame(frame, otherOtp) as SharePut;
    assert.notDeepEqual(opened.share, (message as SharePut).share);
  });

  await t.step("flipping any single bit of any sealed frame is rejected", () => {
    let checked = 0;
    for (const { frame, pad } of sealed) {
      for (let bit = 0; bit < frame.length * 8; bit++) {
        const m = frame.slice();
        m[bit >> 3] ^= 1 << (bit & 7);
        frameErrorCode(() => openHubFrame(m, pad));
        checked++;
      }
    }
    assert.equal(checked, EXPECTED_HUB_SIZES.reduce((s, n) => s + 8 * n, 0));
  });

  await t.step("peek validates structure without the pad", () => {
    const { frame } = sealed[0];
    const cases: [string, (f: Uint8Array) => Uint8Array, string][] = [
      ["magic", (f) => (f[0] ^= 1, f), "bad-magic"],
      ["version", (f) => (f[2] = 2, f), "bad-version"],
      ["unknown type", (f) => (f[3] = 0x05, f), "bad-type"],
      ["peer type", (f) => (f[3] = FrameType.KEY_ABORT, f), "bad-type"],
      ["other hub type of a different size", (f) => (f[3] = FrameType.HELLO_ACK, f), "bad-length"],
      ["length field +1", (f) => (f[7] += 1, f), "bad-length"],
      ["length field > 4096", (f) => (new DataView(f.buffer).setUint32(4, 5000), f), "too-long"],
      ["truncated by one", (f) => f.subarray(0, f.length - 1), "bad-length"],
      ["truncated to the header", (f) => f.subarray(0, 8), "bad-length"],
      ["shorter than a header", (f) => f.subarray(0, 7), "bad-length"],
      ["extended by one", (f) => concat(f, new Uint8Array(1)), "bad-length"],
      ["used = 33", (f) => (f[f.length - AUTH_LEN + 27] = 33, f), "bad-used"],
      ["used = 96", (f) => (f[f.length - AUTH_LEN + 27] = 96, f), "bad-used"],
      ["auth reserved ≠ 0", (f) => (f[f.length - AUTH_LEN + 31] = 1, f), "bad-field"],
      ["offset ≥ 2^53", (f) => (f[f.length - AUTH_LEN + 17] = 0x20, f), "bad-field"],
      [
        "offset + used > 2^53-1",
        (f) => (f.set(u64be(Number.MAX_SAFE_INTEGER - 31), f.length - 32), f),
        "bad-field",
      ],
      ["time_ms ≥ 2^53", (f) => (f[8 + 64] = 0xff, f), "bad-field"],
    ];
    for (const [name, mutate, code] of cases) {
      const f = mutate(frame.slice());
      assert.equal(frameErrorCode(() => peekHubFrame(f)), code, name);
      assert.equal(frameErrorCode(() => openHubFrame(f, sealed[0].pad)), code, name);
    }
    // used must match the message's OTP fields in both directions
    const put = sealed[2].frame.slice();
    put[put.length - AUTH_LEN + 27] = 32;
    assert.equal(frameErrorCode(() => peekHubFrame(put)), "bad-used");
  });

  await t.step("body reserved bytes and share_len are checked", () => {
    const ack = sealed[1].frame.slice(); // HELLO_ACK: rsv 3 after status at body offset 33
    ack[HEADER_LEN + 33] = 1;
    assert.equal(frameErrorCode(() => peekHubFrame(ack)), "bad-field");
    const put = sealed[2].frame.slice();
    put[HEADER_LEN + 125] = 63;
    assert.equal(frameErrorCode(() => peekHubFrame(put)), "bad-field");
    const resp = sealed[6].frame.slice(); // status ≠ OK, 152 bytes
    resp[HEADER_LEN + 92] = 64;
    assert.equal(frameErrorCode(() => peekHubFrame(resp)), "bad-field");
    const okResp = sealed[5].frame.slice(); // status OK frame claiming a failure status
    okResp[HEADER_LEN + 48] = HubStatus.EXPIRED;
    assert.equal(frameErrorCode(() => peekHubFrame(okResp)), "bad-length");
    const failResp = sealed[6].frame.slice(); // failure-size frame claiming OK
    failResp[HEADER_LEN + 48] = HubStatus.OK;
    assert.equal(frameErrorCode(() => peekHubFrame(failResp)), "bad-length");
  });

  await t.step("a frame that is a subarray of a larger buffer decodes the same", () => {
    const { frame, pad, message } = sealed[2];
    const big = concat(new Uint8Array(13), frame, new Uint8Array(5));
    assert.deepEqual(openHubFrame(big.subarray(13, 13 + frame.length), pad), message);
  });
});

Deno.test("DSKE peer frames", async (t) => {
  await t.step("every peer type encodes to the table's size and decodes to the same message", () => {
    samplePeerMessages().forEach((m, i) => {
      const frame = enc(m);
      assert.equal(frame.length, EXPECTED_PEER_SIZES[i]);
      assert.equal(new DataView(frame.buffer).getUint16(0), FRAME_MAGIC);
      assert.equal(frame[2], m.type === FrameType.ERROR ? FRAME_VERSION : PEER_FRAME_VERSION);
      assert.equal(frame[3], m.type);
      assert.equal(new DataView(frame.buffer).getUint32(4), frame.length);
      assert.deepEqual(dec(frame), m);
    });
  });

  await t.step(
    "KEY_OFFER layout: hub entries {hub_id 16, x u8, rsv 3} after the 132-byte head, then the tag",
    () => {
      const offer = samplePeerMessages()[0] as KeyOffer;
      const f = enc(offer);
      assert.deepEqual(f.subarray(8, 24), offer.keyId);
      assert.deepEqual(f.subarray(24, 32), u64be(offer.epoch));
      assert.deepEqual(f.subarray(96, 100), new Uint8Array([offer.k, offer.n, 0, 0]));
      assert.deepEqual(f.subarray(100, 108), u64be(offer.expiresMs));
      assert.deepEqual(f.subarray(108, 140), offer.confirm);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(f.subarray(140 + 20 * i, 156 + 20 * i), offer.hubs[i].hubId);
        assert.deepEqual(f.subarray(156 + 20 * i, 160 + 20 * i), new Uint8Array([offer.hubs[i].x, 0, 0, 0]));
      }
      assert.deepEqual(f.subarray(200), peerFrameTag(PEER_KEY, f.subarray(0, 200)));
    },
  );

  await t.step("the tag binds every byte, and only the pair's key opens a frame", () => {
    for (const m of samplePeerMessages().filter((m) => m.type !== FrameType.ERROR)) {
      const f = enc(m);
      assert.equal(frameErrorCode(() => decodePeerFrame(f, new Uint8Array(32).fill(8))), "bad-tag");
      for (let i = 0; i < f.length; i++) {
        if (i >= 4 && i < 8) continue; // the length field: a changed one is refused as bad-length first
        const g = f.slice();
        g[i] ^= 0x01;
        const code = frameErrorCode(() => dec(g));
        assert.ok(
          code === "bad-tag" || (i < 4 && code === "bad-magic") || (i === 2 && code === "bad-version"),
        );
      }
    }
    // a version-1 frame (the unauthenticated layout) is refused
    const old = enc(samplePeerMessages()[4]);
    old[2] = 1;
    assert.equal(frameErrorCode(() => dec(old)), "bad-version");
    assert.equal(
      frameErrorCode(() => encodePeerFrame(samplePeerMessages()[4])),
      "bad-field",
      "no key, no frame",
    );
  });

  await t.step("list limits follow MAX_FRAME_LEN", () => {
    const hubs = (n: number) => Array.from({ length: n }, (_, i) => ({ hubId: id16(), x: (i % 255) + 1 }));
    const offer = (n: number): KeyOffer => ({ ...(samplePeerMessages()[0] as KeyOffer), n, hubs: hubs(n) });
    assert.equal(MAX_KEY_OFFER_HUBS, 196);
    const o196 = offer(196);
    assert.equal(enc(o196).length, 8 + 132 + 20 * 196 + 32);
    assert.deepEqual(dec(enc(o196)), o196);
    assert.equal(frameErrorCode(() => enc(offer(197))), "too-long");
    assert.equal(MAX_KEY_RESULT_BAD_HUBS, 249);
    const result = (c: number): PeerMessage => ({
      type: FrameType.KEY_RESULT,
      keyId: id16(),
      epoch: 1,
      status: 2,
      confirm: new Uint8Array(32),
      badHubs: Array.from({ length: c }, id16),
    });
    const r249 = result(249);
    assert.deepEqual(dec(enc(r249)), r249);
    assert.equal(enc(r249).length, 8 + 60 + 16 * 249 + 32);
    assert.equal(frameErrorCode(() => enc(result(250))), "too-long");
    const sync = (c: number): PeerMessage => ({
      type: FrameType.KEY_SYNC,
      timeMs: 1,
      epochs: Array(c).fill(3),
    });
    assert.deepEqual(dec(enc(sync(MAX_SYNC_EPOCHS))), sync(MAX_SYNC_EPOCHS));
    assert.equal(frameErrorCode(() => enc(sync(MAX_SYNC_EPOCHS + 1))), "too-long");
  });

  await t.step("encoding rejects inconsistent or out-of-range fields", () => {
    const offer = samplePeerMessages()[0] as KeyOffer;
    assert.equal(frameErrorCode(() => enc({ ...offer, n: 2 })), "bad-field");
    assert.equal(frameErrorCode(() => enc({ ...offer, k: 256 })), "bad-field");
    assert.equal(frameErrorCode(() => enc({ ...offer, epoch: 2 ** 53 })), "bad-field");
    assert.equal(
      frameErrorCode(() => enc({ ...offer, hubs: [...offer.hubs.slice(0, 2), { hubId: id32(), x: 3 }] })),
      "bad-field",
    );
    assert.equal(
      frameErrorCode(() => enc({ type: FrameType.ERROR, code: 0x10000 })),
      "bad-field",
    );
    assert.equal(
      frameErrorCode(() =>
        enc({
          type: FrameType.KEY_RESULT,
          keyId: id16(),
          epoch: 0,
          status: 0,
          confirm: new Uint8Array(32),
          badHubs: [id32()],
        })
      ),
      "bad-field",
    );
  });

  await t.step("decoding rejects wrong sizes, counts, reserved bytes and hub types", () => {
    const [offer, , , result, abort, error, sync] = samplePeerMessages().map(enc);
    /** The frame resized to `len` (body cut or zero-extended, header length set), tagged again. */
    const setLen = (f: Uint8Array, len: number) => {
      const g = new Uint8Array(len);
      const body = Math.min(f.length - PEER_TAG_LEN, Math.max(HEADER_LEN, len - PEER_TAG_LEN));
      g.set(f.subarray(0, Math.min(len, body)));
      new DataView(g.buffer).setUint32(4, len);
      return len >= HEADER_LEN + PEER_TAG_LEN ? retag(g) : g;
    };
    assert.equal(frameErrorCode(() => dec(setLen(offer, offer.length - 20))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(offer, offer.length + 20))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(offer, 50))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(result, result.length - 16))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(abort, abort.length - 1))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(abort, 27))), "bad-length");
    assert.equal(frameErrorCode(() => dec(setLen(sync, sync.length - 8))), "bad-length");
    const errShort = error.slice(0, 13);
    new DataView(errShort.buffer).setUint32(4, 13);
    assert.equal(frameErrorCode(() => dec(errShort)), "bad-length");
    const countUp = offer.slice();
    countUp[97] += 1; // n no longer matches the list
    assert.equal(frameErrorCode(() => dec(retag(countUp))), "bad-length");
    const syncCount = sync.slice();
    syncCount[16] = MAX_SYNC_EPOCHS + 1;
    assert.equal(frameErrorCode(() => dec(retag(syncCount))), "bad-field");
    const rsv = offer.slice();
    rsv[140 + 17] = 1; // reserved byte of the first hub entry
    assert.equal(frameErrorCode(() => dec(retag(rsv))), "bad-field");
    const rsvErr = error.slice();
    rsvErr[11] = 1;
    assert.equal(frameErrorCode(() => dec(rsvErr)), "bad-field");
    const bigEpoch = offer.slice();
    bigEpoch[24] = 0x00;
    bigEpoch[25] = 0x20; // 2^53
    assert.equal(frameErrorCode(() => dec(retag(bigEpoch))), "bad-field");
    const hub = sealAll(prng(20))[0].frame;
    assert.equal(frameErrorCode(() => dec(hub)), "bad-type");
    assert.equal(frameErrorCode(() => peekHubFrame(abort)), "bad-type");
  });
});

Deno.test("DSKE frames: randomized malformed input", async (t) => {
  const seed = 0x5eed_f00d;
  const rand = prng(seed);
  const sealed = sealAll(rand);
  const peers = samplePeerMessages().map(enc);

  /** Returns the outcome of `f`: "ok", or the FrameError code. Any other exception fails the test. */
  const outcome = (what: string, f: () => unknown): string => {
    try {
      f();
      return "ok";
    } catch (e) {
      if (!(e instanceof FrameError)) assert.fail(`${what} threw a non-FrameError (seed ${seed}): ${e}`);
      return e.code;
    }
  };

  const mutate = (base: Uint8Array): Uint8Array => {
    let f: Uint8Array = base.slice();
    const ops = 1 + randInt(rand, 3);
    for (let o = 0; o < ops; o++) {
      switch (randInt(rand, 8)) {
        case 0: // flip a bit
          if (f.length) f[randInt(rand, f.length)] ^= 1 << randInt(rand, 8);
          break;
        case 1: // random byte
          if (f.length) f[randInt(rand, f.length)] = randInt(rand, 256);
          break;
        case 2: // truncate
          f = f.slice(0, randInt(rand, f.length + 1));
          break;
        case 3: // extend
          f = concat(f, randomBytes(1 + randInt(rand, 40), rand));
          break;
        case 4: // truncate or extend, then fix the header length so deeper checks run
          f = randInt(rand, 2)
            ? f.slice(0, Math.max(8, randInt(rand, f.length + 1)))
            : concat(f, randomBytes(randInt(rand, 64), rand));
          if (f.length >= 8) new DataView(f.buffer, f.byteOffset).setUint32(4, f.length);
          break;
        case 5: // change the type to another known one
          if (f.length > 3) {
            f[3] = [0x01, 0x81, 0x02, 0x82, 0x03, 0x83, 0x04, 0x7f, 0x10, 0x11, 0x12][randInt(rand, 11)];
          }
          break;
        case 6: // overwrite a random run
          if (f.length) {
            const at = randInt(rand, f.length);
            f.set(randomBytes(Math.min(f.length - at, 1 + randInt(rand, 16)), rand), at);
          }
          break;
        case 7: // zero a run (hits reserved/status/share_len/count fields)
          if (f.length) {
            const at = randInt(rand, f.length);
            f.fill(0, at, Math.min(f.length, at + 1 + randInt(rand, 8)));
          }
          break;
      }
    }
    return f;
  };

  await t.step("≥ 2000 mutations of valid frames: FrameError or a message, never another exception", () => {
    let cases = 0, accepted = 0, noOps = 0;
    for (let i = 0; i < 3000; i++) {
      const source = sealed[randInt(rand, sealed.length)];
      const f = mutate(source.frame);
      const same = equalBytes(f, source.frame);
      outcome("peekHubFrame", () => peekHubFrame(f));
      outcome("decodePeerFrame", () => dec(f));
      const pads = [source.pad, randomBytes(source.pad.length, rand), randomBytes(randInt(rand, 120), rand)];
      for (const pad of pads) {
        const r = outcome("openHubFrame", () => openHubFrame(f, pad));
        if (r === "ok") {
          accepted++;
          assert.ok(same, `openHubFrame accepted a modified frame (seed ${seed}, case ${i})`);
          assert.equal(pad, source.pad);
        }
      }
      if (same) noOps++;
      cases++;
    }
    for (let i = 0; i < 2000; i++) {
      const source = peers[randInt(rand, peers.length)];
      const f = mutate(source);
      const r = outcome("decodePeerFrame", () => dec(f));
      if (r === "ok") {
        // it re-encodes to the same bytes; a tagged frame decodes only unmodified
        assert.deepEqual(enc(dec(f)), f);
        if (f[3] !== FrameType.ERROR) assert.deepEqual(f, source);
      }
      outcome("peekHubFrame", () => peekHubFrame(f));
      outcome("openHubFrame", () => openHubFrame(f, randomBytes(96, rand)));
      cases++;
    }
    assert.ok(cases >= 5000);
    assert.equal(accepted, noOps, "only unmodified frames open, and they open with the right pad");
  });

  await t.step("random garbage, with and without a valid header", () => {
    for (let i = 0; i < 2000; i++) {
      const len = randInt(rand, 300);
      const f = randomBytes(len, rand);
      if (i % 2 === 0 && len >= 8) {
        f[0] = 0x44;
        f[1] = 0x4b;
        f[2] = FRAME_VERSION;
        f[3] = [0x01, 0x81, 0x02, 0x82, 0x03, 0x83, 0x04, 0x7f, 0x10, 0x11, 0x12, 0x13][randInt(rand, 12)];
        new DataView(f.buffer).setUint32(4, len);
      }
      outcome("peekHubFrame", () => peekHubFrame(f));
      assert.notEqual(outcome("openHubFrame", () => openHubFrame(f, randomBytes(96, rand))), "ok");
      assert.notEqual(outcome("openHubFrame", () => openHubFrame(f, randomBytes(32, rand))), "ok");
      const r = outcome("decodePeerFrame", () => dec(f));
      if (r === "ok") assert.deepEqual(enc(dec(f)), f);
    }
  });
});

Deno.test("FrameReader", async (t) => {
  const frames = [...sealAll(prng(30)).map((s) => s.frame), ...samplePeerMessages().map(enc)];
  const stream = concat(...frames, ...frames);
  const expected = [...frames, ...frames];

  await t.step("splits and joins frames across arbitrary chunk boundaries", () => {
    const rand = prng(31);
    for (let trial = 0; trial < 200; trial++) {
      const reader = new FrameReader();
      const out: Uint8Array[] = [];
      let pos = 0;
      const maxChunk = [1, 7, 64, 300, stream.length][trial % 5];
      while (pos < stream.length) {
        const n = 1 + randInt(rand, maxChunk);
        out.push(...reader.push(stream.subarray(pos, pos + n)));
        pos += n;
        assert.ok(reader.buffered < MAX_FRAME_LEN);
      }
      assert.equal(reader.buffered, 0);
      assert.deepEqual(out, expected);
    }
  });

  await t.step("the whole stream in one chunk, and empty chunks", () => {
    const reader = new FrameReader();
    assert.deepEqual(reader.push(new Uint8Array(0)), []);
    assert.deepEqual(reader.push(stream), expected);
    assert.deepEqual(reader.push(new Uint8Array(0)), []);
  });

  await t.step("returned frames do not alias the caller's chunks or each other", () => {
    const reader = new FrameReader();
    const chunk = stream.slice(0, frames[0].length);
    const [got] = reader.push(chunk);
    chunk.fill(0);
    assert.deepEqual(got, frames[0]);
  });

  await t.step("a header-only frame and a 4096-byte frame are delivered", () => {
    const reader = new FrameReader();
    const tiny = concat(new Uint8Array([0x44, 0x4b, 1, 0x7f]), u32be(8));
    const big = concat(new Uint8Array([0x44, 0x4b, 1, 0x10]), u32be(4096), randomBytes(4088, prng(32)));
    assert.deepEqual(reader.push(concat(tiny, big.subarray(0, 100))), [tiny]);
    assert.equal(reader.buffered, 100);
    assert.deepEqual(reader.push(big.subarray(100)), [big]);
  });

  await t.step(
    "rejects bad magic, version and lengths as soon as the bytes arrive, then stays failed",
    () => {
      const header = (b0: number, b1: number, ver: number, len: number) =>
        concat(new Uint8Array([b0, b1, ver, 0x01]), u32be(len));
      const cases: [Uint8Array, number, string][] = [
        [header(0x45, 0x4b, 1, 128), 1, "bad-magic"],
        [header(0x44, 0x4c, 1, 128), 2, "bad-magic"],
        [header(0x44, 0x4b, 3, 128), 3, "bad-version"], // 1 (hub frames) and 2 (node frames) are known
        [header(0x44, 0x4b, 1, 4097), 8, "too-long"],
        [header(0x44, 0x4b, 1, 0xffffffff), 8, "too-long"],
        [header(0x44, 0x4b, 1, 7), 8, "bad-length"],
        [header(0x44, 0x4b, 1, 0), 8, "bad-length"],
      ];
      for (const [bytes, failsAfter, code] of cases) {
        const reader = new FrameReader();
        for (let i = 0; i < failsAfter - 1; i++) assert.deepEqual(reader.push(bytes.subarray(i, i + 1)), []);
        assert.equal(frameErrorCode(() => reader.push(bytes.subarray(failsAfter - 1, failsAfter))), code);
        assert.equal(frameErrorCode(() => reader.push(frames[0])), code, "stays failed");
      }
      // a bad frame after good ones: earlier frames in the same chunk are lost with the connection
      const reader = new FrameReader();
      assert.equal(
        frameErrorCode(() => reader.push(concat(frames[0], header(0x44, 0x4b, 1, 5000)))),
        "too-long",
      );
    },
  );
});
