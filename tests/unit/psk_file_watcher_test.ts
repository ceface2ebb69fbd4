/**
 * The PSK-file watcher under a live peer change (a network map adding and removing peers): files of
 * new manual AES peers are installed at once, peers without a manual file are left alone, a peer that
 * left forgets its file state, and back in the map its file is installed again.
 */
import assert from "node:assert/strict";
import type { PeerConfig } from "../../src/config/node-config.ts";
import { toHex } from "../../src/encoding.ts";
import type { PskGate } from "../../src/keys/psk-gate.ts";
import { logger } from "../../src/log.ts";
import { PskFileWatcher } from "../../src/node/psk-file-watcher.ts";
import { parseCidr } from "../../src/wireguard/allowedips.ts";

/** The gate as the watcher sees it: every install recorded (peer hex, epoch). */
class RecordingGate {
  installs: { peer: string; epoch: number }[] = [];
  install(peer: Uint8Array, psk: Uint8Array, epoch: number): { ok: true } {
    assert.equal(psk.length, 32);
    this.installs.push({ peer: toHex(peer), epoch });
    return { ok: true };
  }
}

function peer(n: number, pskFile: string | null, keySource: PeerConfig["keySource"] = "manual"): PeerConfig {
  return {
    name: `node-${n}`,
    publicKey: new Uint8Array(32).fill(n),
    wgIp: parseCidr(`100.64.0.${n}/32`),
    aesIp: parseCidr(`100.127.0.${n}/32`),
    endpoint: null,
    role: "peer",
    keySource,
    pskFile,
    psk: null,
    persistentKeepalive: 0,
  };
}

Deno.test("PSK-file watcher follows a live peer list", () => {
  const dir = Deno.makeTempDirSync({ prefix: "tf-pskwatch-" });
  const gate = new RecordingGate();
  const watcher = new PskFileWatcher([], gate as unknown as PskGate, logger("psk-watch-test"));
  try {
    const file = (n: number) => {
      const path = `${dir}/${n}.psk`;
      Deno.writeFileSync(path, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
      Deno.chmodSync(path, 0o600);
      return path;
    };
    const [a, b] = [peer(2, file(2)), peer(3, file(3))];
    const hex = (p: PeerConfig) => toHex(p.publicKey);
    watcher.start();
    assert.deepEqual(gate.installs, [], "no peers, nothing installed");

    watcher.setPeers([a, peer(4, null), peer(5, null, "dske"), { ...peer(6, file(6)), aesIp: null }]);
    assert.deepEqual(gate.installs, [{ peer: hex(a), epoch: 1 }], "only the manual AES peer's file");

    watcher.setPeers([a, b]);
    assert.deepEqual(
      gate.installs.slice(1),
      [{ peer: hex(b), epoch: 1 }],
      "the new peer's file, not a's again",
    );

    watcher.setPeers([b]);
    assert.equal(gate.installs.length, 2, "a peer leaving installs nothing");
    assert.deepEqual(watcher.reload(), { files: 1, installed: 0, failed: 0 }, "a's file is no longer read");

    watcher.setPeers([a, b]);
    assert.deepEqual(
      gate.installs.slice(2),
      [{ peer: hex(a), epoch: 1 }],
      "back in the map: installed again",
    );
  } finally {
    watcher.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
