/**
 * A UAPI `set` is all or nothing (issue 10, item 2): a request over the device's capacity (peers,
 * allowed IPs), with a refused PSK or on a busy port changes nothing, is refused with -EINVAL (or
 * -EADDRINUSE / -EPERM) and a log line, and after every `set` the data plane routes exactly what the
 * control plane (`wg show`) lists. Reproduces the attack: an over-capacity set, then a peer removed and
 * a new one created in its slot, which must not inherit the old peer's routes. In process: a real
 * Device with its two data-plane workers over an eventfd standing in for the TUN (no root needed).
 */
import assert from "node:assert/strict";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from "../../ffi/libc.ts";
import { openUdp } from "../../ffi/udp.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { MAX_ALLOWED_IPS, MAX_PEERS, PeerWord } from "../../src/wireguard/dataplane/shared-state.ts";
import { AllowedIpsMirror } from "../../src/wireguard/dataplane/worker-common.ts";
import { toHex } from "../../src/encoding.ts";
import { PskGate, pskPolicy } from "../../src/keys/psk-gate.ts";
import type { Logger } from "../../src/log.ts";
import { chachaSuite } from "../../src/noise/suite.ts";
import { UapiErrno } from "../../src/uapi/protocol.ts";
import type { UapiPeerChange, UapiSetRequest } from "../../src/uapi/types.ts";
import { parseIp } from "../../src/wireguard/allowedips.ts";
import { Device, type PskPolicy } from "../../src/wireguard/device.ts";

/** A device over a fake TUN, with its warnings collected. */
async function withDevice(
  run: (device: Device, warnings: string[]) => Promise<void> | void,
  pskPolicy?: PskPolicy,
): Promise<void> {
  const tunFd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  assert.ok(tunFd >= 0, "eventfd");
  const warnings: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn: (m) => warnings.push(m),
    error: (m) => warnings.push(m),
  };
  const device = new Device({ ifname: "tfapply0", suite: chachaSuite(), tunFd, log, pskPolicy });
  try {
    assert.equal(device.apply({ privateKey: generatePrivateKey(), replacePeers: false, peers: [] }), 0);
    await run(device, warnings);
  } finally {
    await device.close();
    libc.close(tunFd);
  }
}

function newKey(): Uint8Array {
  return publicKey(generatePrivateKey());
}

function peer(
  publicKey: Uint8Array,
  allowedIps: string[],
  extra: Partial<UapiPeerChange> = {},
): UapiPeerChange {
  return { publicKey, remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps, ...extra };
}

function set(peers: UapiPeerChange[], extra: Partial<UapiSetRequest> = {}): UapiSetRequest {
  return { replacePeers: false, peers, ...extra };
}

/** `n` distinct /32s in 10.128.0.0/9. */
function manyIps(n: number, offset = 0): string[] {
  return Array.from({ length: n }, (_, i) => {
    const v = 0x0a800000 + offset + i;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/32`;
  });
}

/** What `wg show` lists: public key → sorted allowed IPs (and the rest of the configuration). */
function controlPlane(device: Device) {
  const snap = device.snapshot();
  return {
    listenPort: snap.listenPort,
    peers: new Map(
      snap.peers.map((p) => [toHex(p.publicKey), {
        allowedIps: [...p.allowedIps].sort(),
        psk: toHex(p.presharedKey),
        endpoint: p.endpoint,
        keepalive: p.persistentKeepalive,
      }]),
    ),
  };
}

/** Asserts the data plane routes exactly what the control plane lists (same prefixes, same peers). */
function assertTablesAgree(device: Device, when: string): void {
  const listed = new Map<string, string[]>();
  for (const p of device.snapshot().peers) listed.set(toHex(p.publicKey), [...p.allowedIps].sort());
  const routed = new Map<string, string[]>([...listed.keys()].map((k) => [k, []]));
  for (const r of device.dataPlaneRoutes()) {
    const key = toHex(r.publicKey);
    assert.ok(
      routed.has(key),
      `${when}: the data plane routes ${r.allowedIp} to a peer wg show does not list`,
    );
    routed.get(key)!.push(r.allowedIp);
  }
  for (const ips of routed.values()) ips.sort();
  assert.deepEqual(routed, listed, `${when}: data-plane routes differ from the control plane's`);
  // And what a worker does with the shared table: every listed prefix leads to its peer's slot, one
  // slot per peer (prefixes here are never nested, so a prefix's own address finds it).
  const mirror = new AllowedIpsMirror(device.shared);
  mirror.sync();
  const slotOf = new Map<number, string>();
  for (const [key, ips] of listed) {
    const slots = new Set(ips.map((c) => workerRoute(mirror, c.split("/")[0])));
    assert.equal(slots.size <= 1, true, `${when}: one peer's prefixes lead to several slots`);
    for (const slot of slots) {
      assert.ok(slot >= 0, `${when}: a listed prefix of ${key.slice(0, 8)} is not routed by the workers`);
      assert.ok(!slotOf.has(slot), `${when}: two peers share slot ${slot}`);
      slotOf.set(slot, key);
    }
  }
}

/** The data-plane slot a worker's table routes `ip` to, or -1 (only while the slot's peer is the same). */
function workerRoute(mirror: AllowedIpsMirror, ip: string): number {
  const addr = parseIp(ip);
  const slot = mirror.table.lookup(addr, 0, addr.length === 4 ? 4 : 6);
  return slot >= 0 && mirror.routesTo(slot) ? slot : -1;
}

Deno.test("UAPI set is all or nothing; the data plane always routes what wg show lists", async (t) => {
  await t.step("the attack: over-capacity set, then a new peer in a removed peer's slot", async () => {
    await withDevice((device, warnings) => {
      const a = newKey(), b = newKey(), c = newKey(), x = newKey();
      assert.equal(device.apply(set([peer(a, ["100.64.0.1/32"]), peer(b, ["100.64.0.2/32"])])), 0);
      assertTablesAgree(device, "after the first set");
      const before = controlPlane(device);

      const errno = device.apply(set([peer(c, manyIps(MAX_ALLOWED_IPS + 1))]));
      assert.equal(errno, UapiErrno.INVALID, "over the allowed-IPs limit: -EINVAL");
      assert.deepEqual(controlPlane(device), before, "nothing changed in the control plane");
      assertTablesAgree(device, "after the refused set");
      assert.match(
        warnings.at(-1) ?? "",
        new RegExp(
          `${2 + MAX_ALLOWED_IPS + 1} allowed IPs would exceed the device's limit of ${MAX_ALLOWED_IPS}`,
        ),
      );
      console.log(`refused: ${warnings.at(-1)}`);

      // Route changes keep working, in both tables.
      assert.equal(device.apply(set([peer(a, [], { remove: true }), peer(x, ["100.64.0.9/32"])])), 0);
      assertTablesAgree(device, "after removing A and adding X");
      const cp = controlPlane(device);
      assert.equal(cp.peers.has(toHex(a)), false);
      assert.deepEqual(cp.peers.get(toHex(x))?.allowedIps, ["100.64.0.9/32"]);
      const routes = device.dataPlaneRoutes().filter((r) => toHex(r.publicKey) === toHex(x));
      assert.deepEqual(routes.map((r) => r.allowedIp), ["100.64.0.9/32"], "X has no route of A's");
      assert.ok(
        !device.dataPlaneRoutes().some((r) => r.allowedIp === "100.64.0.1/32"),
        "A's address is routed nowhere",
      );
    });
  });

  await t.step("a 300-peer set creates none of them (-EINVAL), a 256-peer one all", async () => {
    await withDevice((device, warnings) => {
      const keep = newKey();
      assert.equal(device.apply(set([peer(keep, ["100.64.0.1/32"])])), 0);
      const before = controlPlane(device);
      const many = Array.from({ length: 300 }, (_, i) => peer(newKey(), manyIps(1, i)));
      assert.equal(device.apply(set(many)), UapiErrno.INVALID);
      assert.deepEqual(controlPlane(device), before, "no peer was created");
      assertTablesAgree(device, "after the 300-peer set");
      assert.match(warnings.at(-1) ?? "", new RegExp(`more than ${MAX_PEERS} peers`));

      const full = Array.from({ length: MAX_PEERS - 1 }, (_, i) => peer(newKey(), manyIps(1, i)));
      assert.equal(device.apply(set(full)), 0, "exactly the limit fits");
      assert.equal(device.snapshot().peers.length, MAX_PEERS);
      assertTablesAgree(device, "at the peer limit");
      assert.equal(device.apply(set([peer(newKey(), [])])), UapiErrno.INVALID, "one more does not");
      // replace_peers frees every slot first: a full new set of peers fits.
      const replacement = Array.from({ length: MAX_PEERS }, (_, i) => peer(newKey(), manyIps(1, 1000 + i)));
      assert.equal(device.apply(set(replacement, { replacePeers: true })), 0);
      assert.equal(device.snapshot().peers.length, MAX_PEERS);
      assertTablesAgree(device, "after replace_peers at the limit");
    });
  });

  await t.step(
    "the limit is on the result: exactly MAX_ALLOWED_IPS fits, moving prefixes counts once",
    async () => {
      await withDevice((device) => {
        const a = newKey(), b = newKey();
        assert.equal(device.apply(set([peer(a, manyIps(MAX_ALLOWED_IPS))])), 0);
        assertTablesAgree(device, "at the allowed-IPs limit");
        // B takes over half of A's prefixes: still MAX_ALLOWED_IPS entries in all.
        assert.equal(device.apply(set([peer(b, manyIps(MAX_ALLOWED_IPS / 2))])), 0);
        assertTablesAgree(device, "after moving prefixes");
        assert.equal(device.apply(set([peer(b, manyIps(1, MAX_ALLOWED_IPS))])), UapiErrno.INVALID);
        assertTablesAgree(device, "after one prefix too many");
        // Replacing B's prefixes by fewer makes room again within the same request.
        const req = set([
          peer(b, ["100.64.0.2/32"], { replaceAllowedIps: true }),
          peer(a, manyIps(10, MAX_ALLOWED_IPS)),
        ]);
        assert.equal(device.apply(req), 0);
        assertTablesAgree(device, "after replace_allowed_ips");
      });
    },
  );

  await t.step("valid changes before the failing one are not applied either", async () => {
    await withDevice((device) => {
      const a = newKey(), b = newKey(), c = newKey();
      assert.equal(device.apply(set([peer(a, ["100.64.0.1/32"])])), 0);
      const before = controlPlane(device);
      const req = set([
        peer(a, [], { remove: true }),
        peer(b, ["100.64.0.1/32"], { endpoint: { ip: "192.0.2.1", port: 51820 }, persistentKeepalive: 25 }),
        peer(c, manyIps(MAX_ALLOWED_IPS)),
      ]);
      assert.equal(device.apply(req), UapiErrno.INVALID);
      assert.deepEqual(controlPlane(device), before);
      assertTablesAgree(device, "after the mixed refused set");
    });
  });

  await t.step("a busy listen port changes nothing (-EADDRINUSE)", async () => {
    await withDevice((device, warnings) => {
      const busy = openUdp(0, { family: "dual" });
      try {
        const before = controlPlane(device);
        const errno = device.apply(set([peer(newKey(), ["100.64.0.5/32"])], { listenPort: busy.port }));
        assert.equal(errno, UapiErrno.PORT_IN_USE);
        assert.deepEqual(controlPlane(device), before);
        assertTablesAgree(device, "after the busy port");
        assert.match(warnings.at(-1) ?? "", /nothing was changed/);
      } finally {
        libc.close(busy.fd);
      }
    });
  });

  await t.step("a PSK the key policy refuses changes nothing (-EPERM), checked before applying", async () => {
    const managed = newKey();
    const gate = new PskGate({
      setPresharedKey: () => true,
      initiateHandshake: () => {},
      dropSessions: () => {},
    });
    gate.addPeer(managed, "dske");
    await withDevice((device) => {
      assert.equal(device.apply(set([peer(managed, ["100.64.0.3/32"])])), 0);
      const before = controlPlane(device);
      const req = set([
        peer(newKey(), ["100.64.0.4/32"]),
        peer(managed, ["100.64.0.5/32"], { presharedKey: new Uint8Array(32).fill(7) }),
      ]);
      assert.equal(device.apply(req), -1);
      assert.deepEqual(controlPlane(device), before);
      assertTablesAgree(device, "after the refused PSK");
    }, pskPolicy(gate, { adoptUnknownAs: null }));
  });

  await t.step("a worker's old table never reaches the next peer in a removed peer's slot", async () => {
    await withDevice((device) => {
      const a = newKey(), x = newKey();
      assert.equal(device.apply(set([peer(a, ["100.64.0.1/32"])])), 0);
      const mirror = new AllowedIpsMirror(device.shared);
      mirror.sync();
      const slotOfA = workerRoute(mirror, "100.64.0.1");
      assert.ok(slotOfA >= 0, "A is routed");
      assert.equal(device.apply(set([peer(a, [], { remove: true }), peer(x, ["100.64.0.9/32"])])), 0);
      assert.equal(device.shared.peerGet(slotOfA, PeerWord.active), 1, "X reuses A's slot");
      // Before the worker picks up the new table, A's route already leads nowhere...
      assert.equal(workerRoute(mirror, "100.64.0.1"), -1, "a stale route must not reach X");
      mirror.sync();
      // ...and after it, only X's own prefix leads to the slot.
      assert.equal(workerRoute(mirror, "100.64.0.1"), -1);
      assert.equal(workerRoute(mirror, "100.64.0.9"), slotOfA);
    });
  });
});
