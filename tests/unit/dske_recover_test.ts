import assert from "node:assert/strict";
import { amdDecode } from "../../src/dske/amd.ts";
import { type HubShare, makeShares, recoverSecret } from "../../src/dske/recover.ts";
import { combineShares } from "../../src/dske/shamir.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

const random = seededRandom(42);

/** A copy of `share` with a random nonzero offset added: what a lying hub would return. */
function lie(entry: HubShare): HubShare {
  const offset = random(64);
  offset[random(1)[0] % 64] |= 1;
  return { ...entry, share: entry.share.map((b, i) => b ^ offset[i]) };
}

const HUBS = ["cc00", "aa00", "bb00", "dd00", "ee00"];

Deno.test("makeShares", async (t) => {
  await t.step("x is the 1-based index in the sorted hub-id list; order of the input is kept", () => {
    const shares = makeShares(random(32), 2, ["cc", "aa", "bb"], random);
    assert.deepEqual(shares.map((s) => [s.hubId, s.x]), [["cc", 3], ["aa", 1], ["bb", 2]]);
    for (const s of shares) assert.equal(s.share.length, 64);
  });

  await t.step("any k shares interpolate to an AMD codeword of the secret", () => {
    const secret = random(32);
    const shares = makeShares(secret, 3, HUBS, random);
    assert.deepEqual(amdDecode(combineShares([shares[4], shares[0], shares[2]])), secret);
    assert.deepEqual(amdDecode(combineShares([shares[1], shares[3], shares[2]])), secret);
  });

  await t.step("with the same injected randomness the output is reproducible", () => {
    const secret = random(32);
    const a = makeShares(secret, 2, ["b", "a"], seededRandom(9));
    const b = makeShares(secret, 2, ["b", "a"], seededRandom(9));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, makeShares(secret, 2, ["b", "a"], seededRandom(10)));
  });

  await t.step("bad parameters are refused", () => {
    const secret = random(32);
    assert.throws(() => makeShares(secret, 2, ["a", "b", "a"]), RangeError);
    assert.throws(() => makeShares(secret, 4, ["a", "b", "c"]), RangeError);
    assert.throws(() => makeShares(secret, 1, ["a", "b", "c"]), RangeError);
    assert.throws(() => makeShares(secret.subarray(0, 31), 2, ["a", "b"]), RangeError);
    assert.throws(() => makeShares(secret, 2, Array.from({ length: 256 }, (_, i) => `h${i}`)), RangeError);
  });
});

Deno.test("recoverSecret", async (t) => {
  await t.step("3 honest hubs, k = 2: ok, the first two in preference order are used, nobody named", () => {
    const secret = random(32);
    const shares = makeShares(secret, 2, HUBS.slice(0, 3), random);
    const preference = [shares[2], shares[0], shares[1]];
    const result = recoverSecret(preference, 2);
    assert.ok(result.ok);
    assert.deepEqual(result.secret, secret);
    assert.deepEqual(result.used, [shares[2].hubId, shares[0].hubId]);
    assert.deepEqual(result.inconsistent, []);
  });

  await t.step("m = k: all shares are used at once", () => {
    const secret = random(32);
    const shares = makeShares(secret, 3, HUBS.slice(0, 3), random);
    const result = recoverSecret(shares, 3);
    assert.ok(result.ok);
    assert.deepEqual(result.secret, secret);
    assert.deepEqual(result.used, shares.map((s) => s.hubId));
  });

  await t.step("one lying hub out of 3 (k = 2), in any position: right secret, liar named", () => {
    for (let liar = 0; liar < 3; liar++) {
      const secret = random(32);
      const shares = makeShares(secret, 2, HUBS.slice(0, 3), random);
      shares[liar] = lie(shares[liar]);
      const result = recoverSecret(shares, 2);
      assert.ok(result.ok, `liar ${liar}`);
      assert.deepEqual(result.secret, secret);
      assert.deepEqual(result.inconsistent, [shares[liar].hubId]);
      assert.ok(!result.used.includes(shares[liar].hubId));
    }
  });

  await t.step("two of three lying (k = 2): no honest pair, validation fails", () => {
    for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) {
      const shares = makeShares(random(32), 2, HUBS.slice(0, 3), random);
      shares[a] = lie(shares[a]);
      shares[b] = lie(shares[b]);
      const result = recoverSecret(shares, 2);
      assert.deepEqual(result, { ok: false, reason: "validation-failed", inconsistent: [] });
    }
  });

  await t.step("two liars out of 4 (k = 2): the honest pair wins and both liars are named", () => {
    for (const [a, b] of [[0, 1], [0, 3], [1, 2], [2, 3]]) {
      const secret = random(32);
      const shares = makeShares(secret, 2, HUBS.slice(0, 4), random);
      shares[a] = lie(shares[a]);
      shares[b] = lie(shares[b]);
      const result = recoverSecret(shares, 2);
      assert.ok(result.ok, `liars ${a}, ${b}`);
      assert.deepEqual(result.secret, secret);
      assert.deepEqual(result.inconsistent, [shares[a].hubId, shares[b].hubId]);
    }
  });

  await t.step("k = 3 of 5 with any two liars: ok and exactly the liars named", () => {
    for (let a = 0; a < 5; a++) {
      for (let b = a + 1; b < 5; b++) {
        const secret = random(32);
        const shares = makeShares(secret, 3, HUBS, random);
        shares[a] = lie(shares[a]);
        shares[b] = lie(shares[b]);
        const result = recoverSecret(shares, 3);
        assert.ok(result.ok, `liars ${a}, ${b}`);
        assert.deepEqual(result.secret, secret);
        assert.deepEqual(result.inconsistent, [shares[a].hubId, shares[b].hubId]);
      }
    }
  });

  await t.step("fewer than k shares: not-enough-shares", () => {
    const shares = makeShares(random(32), 2, HUBS.slice(0, 3), random);
    assert.deepEqual(recoverSecret([shares[1]], 2), {
      ok: false,
      reason: "not-enough-shares",
      inconsistent: [],
    });
    assert.deepEqual(recoverSecret([], 2), { ok: false, reason: "not-enough-shares", inconsistent: [] });
  });

  await t.step("a repeated hub id or x counts once", () => {
    const shares = makeShares(random(32), 2, HUBS.slice(0, 3), random);
    const sameHubTwice = recoverSecret([shares[0], { ...shares[1], hubId: shares[0].hubId }], 2);
    assert.deepEqual(sameHubTwice, { ok: false, reason: "not-enough-shares", inconsistent: [] });
    const sameXTwice = recoverSecret([shares[0], { ...shares[0], hubId: "other" }], 2);
    assert.equal(sameXTwice.ok, false);
    assert.equal(!sameXTwice.ok && sameXTwice.reason, "not-enough-shares");
  });

  await t.step("a second hub claiming a taken x is checked and named if off the polynomial", () => {
    const secret = random(32);
    const shares = makeShares(secret, 2, HUBS.slice(0, 3), random);
    const impostor = lie({ ...shares[0], hubId: "ff00" });
    const result = recoverSecret([shares[0], impostor, shares[1]], 2);
    assert.ok(result.ok);
    assert.deepEqual(result.secret, secret);
    assert.deepEqual(result.inconsistent, ["ff00"]);
  });

  await t.step("malformed entries (bad x, wrong share length) are named and not used", () => {
    const secret = random(32);
    const shares = makeShares(secret, 2, HUBS.slice(0, 4), random);
    const input = [
      { ...shares[0], share: shares[0].share.subarray(0, 63) },
      { ...shares[1], x: 0 },
      shares[2],
      shares[3],
    ];
    const result = recoverSecret(input, 2);
    assert.ok(result.ok);
    assert.deepEqual(result.secret, secret);
    assert.deepEqual(result.inconsistent, [shares[0].hubId, shares[1].hubId]);
  });

  await t.step("maxTrials bounds the search", () => {
    const secret = random(32);
    const shares = makeShares(secret, 2, HUBS.slice(0, 3), random);
    shares[0] = lie(shares[0]);
    // Subsets in order: {0,1} (bad), {0,2} (bad), {1,2} (good).
    assert.equal(recoverSecret(shares, 2, { maxTrials: 2 }).ok, false);
    assert.equal(recoverSecret(shares, 2, { maxTrials: 3 }).ok, true);
  });

  await t.step("the caller's shares are not modified", () => {
    const shares = makeShares(random(32), 2, HUBS.slice(0, 3), random);
    const copies = shares.map((s) => s.share.slice());
    recoverSecret(shares, 2);
    shares.forEach((s, i) => assert.deepEqual(s.share, copies[i]));
  });

  await t.step("an invalid threshold is refused", () => {
    const shares = makeShares(random(32), 2, HUBS.slice(0, 3), random);
    for (const k of [1, 0, 2.5, 256]) assert.throws(() => recoverSecret(shares, k), RangeError, `k=${k}`);
  });
});
