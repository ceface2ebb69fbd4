/**
 * Keypair rotation (src/wireguard/keypair-rotation.ts), pure: the previous/current/next reshuffle of
 * wireguard-go for an initiator, a responder and key confirmation, which slots leave the ring, and the
 * grace a retired keypair keeps before its slot may be freed.
 */
import assert from "node:assert/strict";
import {
  EMPTY_RING,
  type KeypairRing,
  NO_KEYPAIR,
  RetiredKeypairs,
  rotateKeypairs,
} from "../../src/wireguard/keypair-rotation.ts";

const ring = (previous: number, current: number, next: number): KeypairRing => ({ previous, current, next });

Deno.test("initiator: the new keypair is current at once, the old current becomes previous", () => {
  assert.deepEqual(rotateKeypairs(EMPTY_RING, { kind: "initiated", slot: 1 }), {
    ring: ring(NO_KEYPAIR, 1, NO_KEYPAIR),
    removed: [],
  });
  assert.deepEqual(rotateKeypairs(ring(1, 2, NO_KEYPAIR), { kind: "initiated", slot: 3 }), {
    ring: ring(2, 3, NO_KEYPAIR),
    removed: [1],
  });
});

Deno.test("initiator with an unconfirmed next: next becomes previous, the old current and previous leave", () => {
  assert.deepEqual(rotateKeypairs(ring(1, 2, 3), { kind: "initiated", slot: 4 }), {
    ring: ring(3, 4, NO_KEYPAIR),
    removed: [1, 2],
  });
});

Deno.test("responder: the new keypair waits in next; current stays, previous and an older next leave", () => {
  assert.deepEqual(rotateKeypairs(ring(1, 2, NO_KEYPAIR), { kind: "responded", slot: 5 }), {
    ring: ring(NO_KEYPAIR, 2, 5),
    removed: [1],
  });
  assert.deepEqual(rotateKeypairs(ring(1, 2, 3), { kind: "responded", slot: 6 }), {
    ring: ring(NO_KEYPAIR, 2, 6),
    removed: [3, 1],
  });
});

Deno.test("confirmation moves next to current and current to previous, only for the ring's next", () => {
  assert.deepEqual(rotateKeypairs(ring(1, 2, 3), { kind: "confirmed", slot: 3 }), {
    ring: ring(2, 3, NO_KEYPAIR),
    removed: [1],
  });
  assert.equal(rotateKeypairs(EMPTY_RING, { kind: "confirmed", slot: 7 }), null, "no next");
  assert.equal(rotateKeypairs(ring(1, 2, 3), { kind: "confirmed", slot: 2 }), null, "already current");
  assert.equal(rotateKeypairs(ring(1, 2, NO_KEYPAIR), { kind: "confirmed", slot: NO_KEYPAIR }), null);
});

Deno.test("expiry empties the ring and removes every keypair it held", () => {
  assert.deepEqual(rotateKeypairs(ring(1, 2, 3), { kind: "expired" }), {
    ring: EMPTY_RING,
    removed: [2, 1, 3],
  });
  assert.deepEqual(rotateKeypairs(EMPTY_RING, { kind: "expired" }), { ring: EMPTY_RING, removed: [] });
});

Deno.test("a full exchange: responder then initiator rekey keeps at most three keypairs, each slot once", () => {
  let r: KeypairRing = EMPTY_RING;
  const removed: number[] = [];
  const steps = [
    { kind: "responded", slot: 1 },
    { kind: "confirmed", slot: 1 },
    { kind: "initiated", slot: 2 },
    { kind: "responded", slot: 3 },
    { kind: "initiated", slot: 4 },
    { kind: "responded", slot: 5 },
    { kind: "confirmed", slot: 5 },
  ] as const;
  for (const step of steps) {
    const next = rotateKeypairs(r, step);
    assert.ok(next, step.kind);
    r = next.ring;
    removed.push(...next.removed);
  }
  assert.deepEqual(r, ring(4, 5, NO_KEYPAIR));
  assert.deepEqual(removed.sort(), [1, 2, 3]);
});

Deno.test("retired keypairs are freed when their grace ends, or at once when their peer's sessions end", () => {
  const retired = new RetiredKeypairs(5_000);
  retired.retire(0, 1, 1_000);
  retired.retire(0, NO_KEYPAIR, 1_000);
  retired.retire(1, 2, 2_000);
  retired.retire(0, 3, 3_000);
  assert.equal(retired.size, 3);
  assert.deepEqual(retired.takeDue(5_999), []);
  assert.deepEqual(retired.takeDue(6_000), [1]);
  assert.deepEqual(retired.takePeer(0), [3]);
  assert.deepEqual(retired.takePeer(0), []);
  assert.deepEqual(retired.takeDue(7_000), [2]);
  assert.equal(retired.size, 0);
});
