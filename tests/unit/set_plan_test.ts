import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { toHex } from "../../src/encoding.ts";
import { UapiErrno } from "../../src/uapi/protocol.ts";
import type { UapiPeerChange, UapiSetRequest } from "../../src/uapi/types.ts";
import { AllowedIps, formatCidr, parseCidr } from "../../src/wireguard/allowedips.ts";
import { type PlanBase, planSet, type SetPlan } from "../../src/wireguard/set-plan.ts";

const LIMITS = { maxPeers: 4, maxAllowedIps: 6 };
const CHECKS = { endpoint: () => null };

function key(): Uint8Array {
  return publicKey(generatePrivateKey());
}

function change(
  pk: Uint8Array,
  allowedIps: string[] = [],
  extra: Partial<UapiPeerChange> = {},
): UapiPeerChange {
  return { publicKey: pk, remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps, ...extra };
}

function req(peers: UapiPeerChange[], extra: Partial<UapiSetRequest> = {}): UapiSetRequest {
  return { replacePeers: false, peers, ...extra };
}

/** A base with `peers` in slots 0.. and their prefixes. */
function base(peers: [Uint8Array, string[]][], own: Uint8Array | null = null): PlanBase {
  const allowed = new AllowedIps();
  peers.forEach(([, ips], slot) => ips.forEach((c) => allowed.insert(parseCidr(c), slot)));
  return { peers: new Map(peers.map(([pk], slot) => [toHex(pk), slot])), allowed, ownPublicKey: own };
}

function accepted(result: ReturnType<typeof planSet>): SetPlan {
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return result;
}

function routes(plan: SetPlan, slot: number): string[] {
  return plan.allowed.entriesFor(slot).map(formatCidr);
}

Deno.test("planSet: a UAPI set planned against a copy, refused whole or accepted with its slots", async (t) => {
  await t.step("the base is never changed, accepted or refused", () => {
    const a = key();
    const b = base([[a, ["10.0.0.1/32"]]]);
    accepted(planSet(b, req([change(a, ["10.0.0.2/32"], { replaceAllowedIps: true })]), LIMITS, CHECKS));
    planSet(
      b,
      req([
        change(key(), [
          "10.1.0.0/29",
          "10.2.0.0/29",
          "10.3.0.0/29",
          "10.4.0.0/29",
          "10.5.0.0/29",
          "10.6.0.0/29",
        ]),
      ]),
      LIMITS,
      CHECKS,
    );
    assert.deepEqual(b.allowed.entriesFor(0).map(formatCidr), ["10.0.0.1/32"]);
    assert.equal(b.allowed.size, 1);
  });

  await t.step("new peers get the lowest free slots; a slot freed earlier in the request is reused", () => {
    const a = key(), b = key(), x = key(), y = key();
    const plan = accepted(planSet(
      base([[a, ["10.0.0.1/32"]], [b, ["10.0.0.2/32"]]]),
      req([change(a, [], { remove: true }), change(x, ["10.0.0.9/32"]), change(y)]),
      LIMITS,
      CHECKS,
    ));
    assert.deepEqual([0, 1, 2].map((i) => plan.createdSlots[i]), [undefined, 0, 2]);
    assert.deepEqual(routes(plan, 0), ["10.0.0.9/32"], "X in A's slot has X's prefix only");
    assert.equal(plan.peerCount, 3);
  });

  await t.step("an inserted prefix moves from its owner; the limit is on the result", () => {
    const a = key(), b = key();
    const full = ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32", "10.0.0.5/32", "10.0.0.6/32"];
    const start = base([[a, full]]);
    const plan = accepted(planSet(start, req([change(b, ["10.0.0.1/32"])]), LIMITS, CHECKS));
    assert.deepEqual(routes(plan, 1), ["10.0.0.1/32"]);
    assert.equal(plan.allowed.size, 6);
    const over = planSet(start, req([change(b, ["10.0.0.7/32"])]), LIMITS, CHECKS);
    assert.ok(!over.ok);
    assert.equal(over.errno, UapiErrno.INVALID);
    assert.match(over.reason, /7 allowed IPs would exceed the device's limit of 6/);
    // Over on the way, within the limit at the end: accepted.
    const via = req([change(b, ["10.0.0.7/32"]), change(a, ["10.0.0.8/32"], { replaceAllowedIps: true })]);
    assert.equal(accepted(planSet(start, via, LIMITS, CHECKS)).allowed.size, 2);
  });

  await t.step("too many peers: -EINVAL naming the limit; replace_peers frees every slot first", () => {
    const peers: [Uint8Array, string[]][] = [[key(), []], [key(), []], [key(), []], [key(), []]];
    const r = planSet(base(peers), req([change(key())]), LIMITS, CHECKS);
    assert.ok(!r.ok);
    assert.equal(r.errno, UapiErrno.INVALID);
    assert.match(r.reason, /more than 4 peers/);
    const replaced = accepted(
      planSet(
        base(peers),
        req([1, 2, 3, 4].map(() => change(key())), { replacePeers: true }),
        LIMITS,
        CHECKS,
      ),
    );
    assert.deepEqual(replaced.createdSlots, [0, 1, 2, 3]);
  });

  await t.step("our own key is ignored, and a new private key drops the peer that has it", () => {
    const sk = generatePrivateKey();
    const own = publicKey(sk), other = key();
    const plan = accepted(
      planSet(
        base([[own, ["10.0.0.1/32"]], [other, []]]),
        req([change(own, ["10.0.0.2/32"])], { privateKey: sk }),
        LIMITS,
        CHECKS,
      ),
    );
    assert.deepEqual(plan.createdSlots, []);
    assert.equal(plan.peerCount, 1);
    assert.equal(plan.allowed.size, 0);
  });

  await t.step("update_only never creates; remove of an unknown key is nothing", () => {
    const plan = accepted(
      planSet(
        base([]),
        req([change(key(), ["10.0.0.1/32"], { updateOnly: true }), change(key(), [], { remove: true })]),
        LIMITS,
        CHECKS,
      ),
    );
    assert.equal(plan.peerCount, 0);
    assert.equal(plan.allowed.size, 0);
  });

  await t.step("a refused PSK or endpoint refuses the whole request with the check's errno", () => {
    const a = key();
    const psk = new Uint8Array(32).fill(1);
    const seen: boolean[] = [];
    const refused = planSet(
      base([[a, []]]),
      req([change(key()), change(a, [], { presharedKey: psk })]),
      LIMITS,
      {
        ...CHECKS,
        psk: (_pk, _psk, created) => {
          seen.push(created);
          return -1;
        },
      },
    );
    assert.ok(!refused.ok);
    assert.equal(refused.errno, -1);
    assert.deepEqual(seen, [false], "the check is told whether the request creates the peer");
    const badEndpoint = planSet(
      base([]),
      req([change(key(), [], { endpoint: { ip: "fe80::1%nope", port: 1 } })]),
      LIMITS,
      {
        endpoint: () => "unknown IPv6 zone",
      },
    );
    assert.ok(!badEndpoint.ok);
    assert.equal(badEndpoint.errno, UapiErrno.INVALID);
    assert.match(badEndpoint.reason, /endpoint refused \(unknown IPv6 zone\)/);
  });
});
