/**
 * The two inputs the decrypt worker's handshake admission reads besides the message: the cookie
 * source taken from a raw sockaddr (what mac2 and cookies are bound to), and the local public key the
 * control plane publishes through shared memory (what mac1 is checked against).
 */
import assert from "node:assert/strict";
import { encodeSockaddr, sockaddrIpPort } from "../../ffi/udp.ts";
import { DeviceWord, SharedState } from "../../src/wireguard/dataplane/shared-state.ts";

Deno.test("cookie source from a sockaddr: IP bytes then the big-endian port", async (t) => {
  const sa = new Uint8Array(28);
  const out = new Uint8Array(18);
  await t.step("IPv4 (sockaddr_in)", () => {
    const len = encodeSockaddr("10.0.0.1", 51820, sa, 0, false);
    assert.equal(sockaddrIpPort(sa, 0, out), 6);
    assert.deepEqual([...out.subarray(0, 6)], [10, 0, 0, 1, 0xca, 0x6c]);
    assert.equal(len, 16);
  });
  await t.step("IPv4-mapped IPv6 gives the same source as plain IPv4", () => {
    encodeSockaddr("10.0.0.1", 51820, sa, 0, true);
    assert.equal(sockaddrIpPort(sa, 0, out), 6);
    assert.deepEqual([...out.subarray(0, 6)], [10, 0, 0, 1, 0xca, 0x6c]);
  });
  await t.step("IPv6", () => {
    encodeSockaddr("2001:db8::7", 1, sa, 0, true);
    assert.equal(sockaddrIpPort(sa, 0, out), 18);
    assert.deepEqual([...out.subarray(0, 2)], [0x20, 0x01]);
    assert.equal(out[15], 7);
    assert.deepEqual([...out.subarray(16, 18)], [0, 1]);
  });
  await t.step("another family gives nothing", () => {
    sa.fill(0);
    sa[0] = 1; // AF_UNIX
    assert.equal(sockaddrIpPort(sa, 0, out), 0);
  });
});

Deno.test("local public key through shared state: published, replaced, withdrawn", () => {
  const main = new SharedState();
  const worker = new SharedState(main.sab);
  assert.equal(worker.readLocalPublic(), null, "none before a private key is set");
  const first = crypto.getRandomValues(new Uint8Array(32));
  main.writeLocalPublic(first);
  const seen = worker.readLocalPublic();
  assert.ok(seen);
  assert.deepEqual(seen.publicKey, first);
  const second = crypto.getRandomValues(new Uint8Array(32));
  main.writeLocalPublic(second);
  const again = worker.readLocalPublic();
  assert.ok(again);
  assert.deepEqual(again.publicKey, second);
  assert.ok(again.version > seen.version, "a new key has a new version");
  main.writeLocalPublic(null);
  assert.equal(worker.readLocalPublic(), null, "withdrawn with the private key");
  assert.equal(Atomics.load(worker.header, DeviceWord.identityVersion) % 2, 0, "no write left half done");
});
