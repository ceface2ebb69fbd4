/**
 * The release tarball (`deno task release`) runs offline from an empty directory: it is built once,
 * unpacked into a fresh directory, and run with an empty DENO_DIR inside network namespaces that have
 * no way out (a fresh namespace with only lo up; the lab's namespaces joined by one veth pair):
 * `--version`, `keygen`, the interfaces' self-tests and a two-node `up` whose aes0 carries a ping.
 * Namespaces use the prefix `tfrel-`. Needs root, /dev/net/tun, iproute2, ping, wg, tar, unshare.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";
import { buildRelease, PINNED_DENO, tarballName } from "../../tools/release.ts";
import { VERSION } from "../../src/version.ts";
import { notifySocketAddress } from "../../src/systemd/notify.ts";
import { UnixDatagramReceiver } from "../../ffi/unix-datagram.ts";

const A: LabNode = {
  name: "rel-a",
  keys: genKeyPair(),
  underlay: "10.233.7.1",
  wgIp: "100.64.7.1",
  aesIp: "100.127.7.1",
};
const B: LabNode = {
  name: "rel-b",
  keys: genKeyPair(),
  underlay: "10.233.7.2",
  wgIp: "100.64.7.2",
  aesIp: "100.127.7.2",
};

/** Runs `cmd` in a fresh network namespace with only lo up (no route anywhere) and a bare environment. */
async function offline(cmd: string[], env: Record<string, string>): Promise<Deno.CommandOutput> {
  return await new Deno.Command("unshare", {
    args: ["--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", ...cmd],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/** The next datagram on `receiver` within `timeoutMs`, polling without blocking the event loop. */
async function nextDatagram(receiver: UnixDatagramReceiver, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const d = receiver.receive(0);
    if (d !== null) return new TextDecoder().decode(d);
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await listTree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
  }
  return out;
}

integrationTest(
  "release tarball: runs offline from an empty directory with an empty DENO_DIR",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary("tar"),
    requireBinary("unshare"),
  ],
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "tfrel-" });
    const topo = new Topology();
    const receivers: UnixDatagramReceiver[] = [];
    try {
      const tarball = await buildRelease(dir);
      assert.equal(tarball, `${dir}/${tarballName()}`);
      const root = `${dir}/unpacked`;
      await Deno.mkdir(root);
      const untar = await new Deno.Command("tar", { args: ["-xzf", tarball, "-C", root] }).output();
      assert.ok(untar.success, "the tarball unpacks");
      const top = `${root}/twofold-${VERSION}-linux-x64`;
      const twofold = `${top}/bin/twofold`;
      const denoDir = `${dir}/deno-dir`;
      await Deno.mkdir(denoDir);
      const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", DENO_DIR: denoDir, HOME: "/nonexistent" };

      await t.step("the tarball holds the launchers, bundles, Deno, units and manual", async () => {
        const files = await listTree(top);
        for (
          const f of [
            "bin/twofold",
            "bin/twofold-wg",
            "lib/twofold/main.js",
            "lib/twofold/encrypt-worker.js",
            "lib/twofold/decrypt-worker.js",
            "lib/twofold/rosenpass-worker.js",
            "lib/twofold/deno",
            "share/doc/twofold/twofold.txt",
            "share/systemd/twofold.service",
            "share/systemd/twofold-hub.service",
            "VERSION",
          ]
        ) assert.ok(files.includes(f), `${f} in the tarball`);
        const manual = await Deno.readTextFile(`${top}/share/doc/twofold/twofold.txt`);
        assert.match(manual, /twofold up\b/);
        assert.match(manual, /usage: twofold psrd new/);
      });

      await t.step("--version and keygen run with no network and an empty DENO_DIR", async () => {
        const v = await offline([twofold, "--version"], env);
        const text = new TextDecoder().decode(v.stdout);
        assert.ok(v.success, new TextDecoder().decode(v.stderr));
        assert.match(text, new RegExp(`^twofold ${VERSION.replaceAll(".", "\\.")}$`, "m"));
        assert.match(text, new RegExp(`^deno ${PINNED_DENO.replaceAll(".", "\\.")} `, "m"));
        const k = await offline([twofold, "keygen"], env);
        assert.ok(k.success, new TextDecoder().decode(k.stderr));
        assert.match(new TextDecoder().decode(k.stdout), /^[A-Za-z0-9+/]{43}=\n$/);
      });

      await t.step(
        "rosenpass keygen runs from the bundle (McEliece WASM and its worker found beside it)",
        async () => {
          const keys = await Deno.makeTempDir({ dir, prefix: "rp-" });
          const r = await offline([
            twofold,
            "rosenpass",
            "keygen",
            "--secret-key",
            `${keys}/secret`,
            "--public-key",
            `${keys}/public`,
          ], env);
          assert.ok(r.success, new TextDecoder().decode(r.stderr));
          assert.equal((await Deno.stat(`${keys}/public`)).size, 524_160, "a round-2 McEliece public key");
          assert.equal((await Deno.stat(`${keys}/secret`)).mode! & 0o777, 0o600);
        },
      );

      const a = await topo.netns("tfrel-a", { replaceExisting: true });
      const b = await topo.netns("tfrel-b", { replaceExisting: true });
      await vethPair(a, "tfrel-va", `${A.underlay}/24`, b, "tfrel-vb", `${B.underlay}/24`);
      const cfgA = await writeNodeConfig(dir, A, [B]);
      const cfgB = await writeNodeConfig(dir, B, [A]);
      const opts = { launcher: [twofold], env: { ...env, TWOFOLD_LOG: "debug" } };
      // node A runs as systemd would start it with Type=notify: a fake $NOTIFY_SOCKET.
      const notifySocket = `${dir}/notify.sock`;
      const notify = new UnixDatagramReceiver(notifySocketAddress(notifySocket));
      receivers.push(notify);
      const spawnedAt = performance.now();
      const procA = await startTwofoldUp(a, cfgA, {
        ...opts,
        env: { ...opts.env, NOTIFY_SOCKET: notifySocket },
      });
      const procB = await startTwofoldUp(b, cfgB, opts);

      await t.step("under Type=notify the node sends READY=1 once its admin API answers", async () => {
        assert.equal(await nextDatagram(notify, 10_000), "READY=1\nSTATUS=running\n");
        console.log(
          `offline start of a node from the tarball to READY=1: ${
            (performance.now() - spawnedAt).toFixed(0)
          } ms`,
        );
        assert.match(procA.output(), /admin API listening on /, "READY=1 came after the admin API");
      });

      await t.step("both interfaces ran their known-answer self-test", () => {
        for (const out of [procA.output(), procB.output()]) {
          assert.match(out, /wg0: self-test passed/);
          assert.match(out, /aes0: self-test passed/);
        }
      });

      await t.step("two nodes from the tarball: wg0 and, with an agreed PSK, aes0 carry pings", async () => {
        assert.equal((await ping(a, B.wgIp, { count: 3, interval: 0.2, timeoutS: 2 })).received, 3, "wg0");
        const psk = `${dir}/a-b.psk`;
        await Deno.writeTextFile(psk, genPresharedKey() + "\n", { mode: 0o600 });
        await a.exec(["wg", "set", "aes0", "peer", B.keys.publicKey, "preshared-key", psk]);
        await b.exec(["wg", "set", "aes0", "peer", A.keys.publicKey, "preshared-key", psk]);
        const r = await ping(a, B.aesIp, { count: 3, interval: 0.2, timeoutS: 2 });
        assert.equal(r.received, 3, `aes0 ping from the tarball's nodes:\n${procA.output()}`);
      });

      await t.step("DENO_DIR received no package or remote module (the bundle holds them)", async () => {
        const held = await listTree(denoDir);
        const fetched = held.filter((f) => /^(npm|remote|jsr)\/./.test(f));
        assert.deepEqual(fetched, [], "nothing was fetched into DENO_DIR");
      });

      await t.step("SIGTERM: STOPPING=1, then the node stops", async () => {
        await procA.kill("SIGTERM");
        assert.equal(await nextDatagram(notify, 5_000), "STOPPING=1\nSTATUS=stopping\n");
      });
      await procB.kill("SIGTERM");

      await t.step(
        "twofold wg from the tarball: its daemon starts offline and ends with its interface",
        async () => {
          const r = await b.exec([twofold, "wg", "tfrel0"], { env, check: false });
          assert.equal(r.code, 0, r.stderr);
          const show = await b.exec(["wg", "show", "tfrel0"], { check: false });
          assert.equal(show.code, 0, show.stderr);
          await b.exec(["ip", "link", "del", "tfrel0"]);
          const gone = await waitUntil(
            async () =>
              (await b.exec(["test", "-S", "/var/run/wireguard/tfrel0.sock"], { check: false })).code !== 0,
            5000,
          );
          assert.ok(gone, "the daemon removed its UAPI socket and ended");
        },
      );

      await t.step("the audit log holds the key install, no key, and verifies offline", async () => {
        const path = `${dir}/state-${A.name}/audit.jsonl`;
        const text = await Deno.readTextFile(path);
        const records = text.trim().split("\n").map((l) => JSON.parse(l));
        assert.deepEqual(
          [records[0].event, records.at(-1).event],
          ["audit-opened", "audit-closed"],
          "start and stop are recorded",
        );
        const installed = records.find((r) => r.event === "key-rotated" && r.peer === B.name);
        assert.ok(installed, `key install recorded:\n${text}`);
        assert.equal(installed.keySource, "manual");
        assert.equal(typeof installed.epoch, "number");
        assert.ok(records.some((r) => r.event === "gate-opened" && r.peer === B.name), "gate opened");
        const psk = (await Deno.readTextFile(`${dir}/a-b.psk`)).trim();
        const pskHex = Array.from(atob(psk), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
        assert.ok(!text.includes(psk) && !text.includes(pskHex), "no PSK in the audit log");
        assert.ok(!text.includes(A.keys.privateKey), "no private key in the audit log");
        const v = await offline([twofold, "audit", "verify", path], env);
        assert.equal(v.code, 0, new TextDecoder().decode(v.stderr));
        assert.match(
          new TextDecoder().decode(v.stdout),
          /^ok: records 1\.\.\d+ verified from the first record/,
        );
      });
    } finally {
      for (const r of receivers) r.close();
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
