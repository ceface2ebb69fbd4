/**
 * The send path's staged queue (src/wireguard/dataplane/staged-packets.ts): packets held per peer slot
 * until a keypair exists, oldest dropped past the bound, and never handed to a new peer in a reused slot.
 * @module
 */
import assert from "node:assert/strict";
import { StagedPackets } from "../../src/wireguard/dataplane/staged-packets.ts";
import { MAX_STAGED_PACKETS } from "../../src/wireguard/constants.ts";

/** A packet whose bytes all equal `tag`, at offset `at` of a larger buffer. */
function packet(tag: number, len: number, at = 16): Uint8Array {
  const buf = new Uint8Array(at + len + 16).fill(0xee);
  buf.fill(tag, at, at + len);
  return buf;
}

/** Takes every packet staged for `peer`, oldest first: [first byte, length] of each. */
function drain(staged: StagedPackets, peer: number): [number, number][] {
  const out: [number, number][] = [];
  const dst = new Uint8Array(4096);
  while (staged.count(peer) > 0) {
    const len = staged.peek(peer, dst, 16);
    assert.ok(dst.subarray(16, 16 + len).every((b) => b === dst[16]), "the copy is the packet, whole");
    out.push([dst[16], len]);
    staged.shift(peer);
  }
  return out;
}

Deno.test("staged packets", async (t) => {
  await t.step("kept in order per peer, copied from the given offset", () => {
    const staged = new StagedPackets(4);
    assert.equal(staged.stage(1, 7, packet(1, 100), 16, 100), false);
    assert.equal(staged.stage(1, 7, packet(2, 3000), 16, 3000), false);
    assert.equal(staged.stage(2, 7, packet(9, 60), 16, 60), false);
    assert.deepEqual(drain(staged, 1), [[1, 100], [2, 3000]]);
    assert.deepEqual(drain(staged, 2), [[9, 60]]);
    assert.equal(staged.count(3), 0);
  });

  await t.step("past the bound the oldest goes, and the caller hears of each drop", () => {
    const staged = new StagedPackets(1);
    let drops = 0;
    for (let k = 0; k < MAX_STAGED_PACKETS + 3; k++) {
      if (staged.stage(0, 1, packet(k & 0xff, 40), 16, 40)) drops++;
    }
    assert.equal(drops, 3);
    const got = drain(staged, 0);
    assert.equal(got.length, MAX_STAGED_PACKETS);
    assert.equal(got[0][0], 3, "the three oldest were dropped");
  });

  await t.step("a new peer in the slot never gets its predecessor's packets", () => {
    const staged = new StagedPackets(2);
    staged.stage(0, 1, packet(1, 40), 16, 40);
    staged.keepOnly(0, 1);
    assert.equal(staged.count(0), 1, "same generation: kept");
    staged.keepOnly(0, 2);
    assert.equal(staged.count(0), 0, "new generation: forgotten");
    staged.stage(0, 2, packet(2, 40), 16, 40);
    staged.stage(0, 3, packet(3, 40), 16, 40); // staged under a newer generation: the older go
    assert.deepEqual(drain(staged, 0), [[3, 40]]);
    staged.stage(1, 5, packet(4, 40), 16, 40);
    staged.keepOnly(1, -1);
    assert.equal(staged.count(1), 0, "-1 forgets in any case (the slot is inactive)");
  });
});
