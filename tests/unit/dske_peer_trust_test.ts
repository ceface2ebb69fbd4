/**
 * The pure parts of trusting the node-to-node channel (issue 12): the pair's frame keys, the key
 * confirmation tags, recovery with confirmation against colluding hubs, and the held-key
 * reconciliation rule.
 */
import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { derivePeerAuthKeys, peerFrameTag, verifyPeerFrameTag } from "../../src/dske/peer-auth.ts";
import { checkConfirmation, confirmationTag, type ConfirmContext } from "../../src/dske/key-confirm.ts";
import { HELD_KEYS, HeldKeys, reconcileTarget } from "../../src/dske/held-keys.ts";
import { makeShares, recoverSecret } from "../../src/dske/recover.ts";
import { collusionShare } from "../../src/dske/test-faults.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

const random = seededRandom(12);

function keyPair() {
  const priv = generatePrivateKey();
  return { priv, pub: publicKey(priv) };
}

Deno.test("node-to-node frame keys", async (t) => {
  const a = keyPair(), b = keyPair(), hub = keyPair();
  const ab = derivePeerAuthKeys(a.priv, a.pub, b.pub)!;
  const ba = derivePeerAuthKeys(b.priv, b.pub, a.pub)!;

  await t.step("both nodes derive the same key per direction; the directions differ", () => {
    assert.deepEqual(ab.send, ba.receive);
    assert.deepEqual(ab.receive, ba.send);
    assert.notDeepEqual(ab.send, ab.receive);
  });

  await t.step("a third party (a hub with its own key and both public keys) gets other keys", () => {
    const ha = derivePeerAuthKeys(hub.priv, hub.pub, a.pub)!;
    const hb = derivePeerAuthKeys(hub.priv, hub.pub, b.pub)!;
    for (const k of [ha.send, ha.receive, hb.send, hb.receive]) {
      assert.notDeepEqual(k, ab.send);
      assert.notDeepEqual(k, ab.receive);
    }
  });

  await t.step("a tag verifies only under its key and over the same bytes", () => {
    const frame = random(100);
    const tag = peerFrameTag(ab.send, frame);
    assert.ok(verifyPeerFrameTag(ba.receive, frame, tag));
    assert.ok(!verifyPeerFrameTag(ba.send, frame, tag), "not reflected back to the sender");
    const other = frame.slice();
    other[3] ^= 1;
    assert.ok(!verifyPeerFrameTag(ba.receive, other, tag));
    assert.ok(!verifyPeerFrameTag(ba.receive, frame, tag.subarray(0, 16)));
  });

  await t.step("a low-order peer key gives no keys", () => {
    assert.equal(derivePeerAuthKeys(a.priv, a.pub, new Uint8Array(32)), null);
  });
});

Deno.test("key confirmation", async (t) => {
  const secret = random(32);
  const ctx: ConfirmContext = {
    keyId: random(16),
    epoch: 1234,
    generatorPeer: random(32),
    recovererPeer: random(32),
  };

  await t.step("a tag checks against the same key and round only", () => {
    const g = confirmationTag(secret, "generator", ctx);
    assert.equal(g.length, 32);
    assert.ok(checkConfirmation(secret, "generator", ctx, g));
    assert.ok(!checkConfirmation(random(32), "generator", ctx, g), "another key");
    assert.ok(!checkConfirmation(secret, "recoverer", ctx, g), "the other direction");
    assert.ok(!checkConfirmation(secret, "generator", { ...ctx, epoch: 1235 }, g), "another epoch");
    assert.ok(!checkConfirmation(secret, "generator", { ...ctx, keyId: random(16) }, g), "another key id");
    assert.ok(!checkConfirmation(secret, "generator", { ...ctx, recovererPeer: random(32) }, g));
  });

  await t.step("the tag is not the key", () => {
    assert.notDeepEqual(confirmationTag(secret, "generator", ctx), secret);
    assert.notDeepEqual(confirmationTag(secret, "generator", ctx), confirmationTag(secret, "recoverer", ctx));
  });
});

Deno.test("recoverSecret with key confirmation", async (t) => {
  const hubs = ["aa00", "bb00", "cc00"];
  const keyId = random(16);

  await t.step(
    "k colluding hubs with a consistent forged key: confirmation-failed, no hub named a liar",
    () => {
      const secret = random(32);
      const shares = makeShares(secret, 2, hubs, random);
      const forged = shares.map((s, i) => i < 2 ? { ...s, share: collusionShare(keyId, s.x, 2) } : s);
      // Without confirmation the forged pair is accepted and the honest hub is named: the old defect.
      const blind = recoverSecret(forged, 2);
      assert.ok(blind.ok);
      assert.notDeepEqual(blind.secret, secret);
      assert.deepEqual(blind.inconsistent, ["cc00"]);
      const confirm = (s: Uint8Array) => s.every((b, i) => b === secret[i]);
      const r = recoverSecret(forged, 2, { confirm });
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.reason === "confirmation-failed");
      assert.deepEqual(r.forged, ["aa00", "bb00"], "the hubs whose shares made the wrong key");
      assert.deepEqual(r.inconsistent, [], "nobody named a liar");
    },
  );

  await t.step("one liar among three: the confirmed pair wins and only the liar is named", () => {
    const secret = random(32);
    const shares = makeShares(secret, 2, hubs, random);
    const lying = shares.map((s, i) => i === 0 ? { ...s, share: s.share.map((b) => b ^ 0x21) } : s);
    const r = recoverSecret(lying, 2, { confirm: (s) => s.every((b, i) => b === secret[i]) });
    assert.ok(r.ok);
    assert.deepEqual(r.secret, secret);
    assert.deepEqual(r.inconsistent, ["aa00"]);
  });

  await t.step("the colluders' forged shares are the same sharing whatever hub computes them", () => {
    const x1 = collusionShare(keyId, 1, 2),
      x2 = collusionShare(keyId, 2, 2),
      x3 = collusionShare(keyId, 3, 2);
    const r = recoverSecret([{ hubId: "a", x: 1, share: x1 }, { hubId: "b", x: 2, share: x2 }, {
      hubId: "c",
      x: 3,
      share: x3,
    }], 2);
    assert.ok(r.ok, "a valid AMD codeword");
    assert.deepEqual(r.inconsistent, []);
  });
});

Deno.test("held keys and reconciliation", async (t) => {
  await t.step(`the last ${HELD_KEYS} keys are kept; older ones are dropped and wiped`, () => {
    const held = new HeldKeys();
    const psks: Uint8Array[] = [];
    for (let e = 10; e < 10 + HELD_KEYS + 2; e++) {
      const psk = random(32);
      psks.push(psk);
      held.add(e, random(16), psk);
    }
    assert.deepEqual(held.epochs(), [12, 13, 14, 15]);
    assert.equal(held.newest(), 15);
    assert.deepEqual(held.get(15)!.psk, psks.at(-1));
    const kept = held.get(12)!;
    held.clear();
    assert.deepEqual(held.epochs(), []);
    assert.ok(kept.psk.every((b) => b === 0), "cleared keys are wiped");
  });

  await t.step(
    "the newest epoch both hold is installed; a key the peer lacks closes; nothing goes back",
    () => {
      // lost commit: the recoverer holds 5 (pending) and runs 4; the generator runs 5
      assert.deepEqual(reconcileTarget([3, 4, 5], [3, 4, 5], 4), { action: "install", epoch: 5 });
      // lost KEY_RESULT: the recoverer holds 5, the generator never installed it: stay on 4
      assert.deepEqual(reconcileTarget([3, 4], [3, 4, 5], 4), { action: "none" });
      assert.deepEqual(reconcileTarget([3, 4, 5], [3, 4], 4), { action: "none" });
      // the peer restarted: it holds nothing
      assert.deepEqual(reconcileTarget([3, 4], [], 4), { action: "close", commonEpoch: null });
      // we run 5, the peer only holds up to 4 (it lost 5): close, never install the older 4
      assert.deepEqual(reconcileTarget([4, 5], [3, 4], 5), { action: "close", commonEpoch: 4 });
      // we restarted: nothing installed, nothing in common
      assert.deepEqual(reconcileTarget([], [3, 4], null), { action: "none" });
      assert.deepEqual(reconcileTarget([7], [6, 7], null), { action: "install", epoch: 7 });
    },
  );
});
