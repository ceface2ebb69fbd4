/**
 * Several twofold processes on one host: two `twofold up` nodes and a `twofold hub` in three
 * namespaces (tfmh-a, tfmh-b, tfmh-h) that share ONE /var/run/wireguard, as namespaces on a real host
 * do, each with the default UAPI socket directory and its own interface names. Shows: both nodes
 * coexist and `wg show <name>` works for each; a taken interface name (in the same or another
 * namespace) is refused with an operator's message; a second `up` on the same state directory is
 * refused with one line naming the holder's PID; SIGHUP leaves `up`, `hub` and `wg -f` running and
 * passing traffic (and makes `up` re-read its PSK file); `status|lockdown --config` find the node.
 * Needs root, /dev/net/tun, iproute2, ping and wg.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import {
  type LabHub,
  type LabNode,
  startTwofoldHub,
  startTwofoldUp,
  writeHubConfig,
  writeNodeConfig,
} from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";
import { createPsrdPair } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { decodeBase64 } from "../../src/encoding.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const A: LabNode = {
  name: "node-a",
  keys: genKeyPair(),
  underlay: "10.246.0.1",
  wgIp: "100.64.0.1",
  aesIp: "100.127.0.1",
};
const B: LabNode = {
  name: "node-b",
  keys: genKeyPair(),
  underlay: "10.246.0.2",
  wgIp: "100.64.0.2",
  aesIp: "100.127.0.2",
};
/** The hub sits on its own link to node-a (10.246.1.0/24). */
const HUB: LabHub = { name: "hub-1", keys: genKeyPair(), underlay: "10.246.1.2", wgIp: "100.64.0.100" };
const A_TO_HUB = "10.246.1.1";

const NAMES_A = { wg0: "tfa0", aes0: "tfaes0" };
const NAMES_B = { wg0: "tfb0", aes0: "tfbes0" };
const HUB_WG = "tfh0";

function twofold(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
}

/** Lines of `text` that mention `needle`. */
function linesWith(text: string, needle: string): string[] {
  return text.split("\n").filter((l) => l.includes(needle));
}

/** Sends `signal` to a process the test started (by its PID). */
function signal(proc: Proc, sig: Deno.Signal): void {
  assert.ok(!proc.exited, `${proc.label} is still running before ${sig}`);
  Deno.kill(proc.pid, sig);
}

/** Waits until `proc`'s output has `count` lines matching `pattern`. */
async function waitForLines(proc: Proc, pattern: RegExp, count: number): Promise<boolean> {
  return await waitUntil(
    () => proc.output().split("\n").filter((l) => pattern.test(l)).length >= count,
    10_000,
  );
}

async function pingOk(ns: Netns, ip: string): Promise<number> {
  return (await ping(ns, ip, { count: 3, interval: 0.2, timeoutS: 2 })).received;
}

integrationTest(
  "several nodes on one host: custom interface names, one shared UAPI dir, state lock, SIGHUP, --config",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfmh-" });
    // One directory bind-mounted over /var/run/wireguard in all three namespaces: the default socket
    // directory, shared as on a real host.
    const sharedRun = await Deno.makeTempDir({ prefix: "tfmh-run-" });
    try {
      const a = await topo.netns("tfmh-a", { replaceExisting: true, runDir: sharedRun });
      const b = await topo.netns("tfmh-b", { replaceExisting: true, runDir: sharedRun });
      const h = await topo.netns("tfmh-h", { replaceExisting: true, runDir: sharedRun });
      await vethPair(a, "tfmh-va", `${A.underlay}/24`, b, "tfmh-vb", `${B.underlay}/24`);
      await vethPair(a, "tfmh-ha", `${A_TO_HUB}/24`, h, "tfmh-hh", `${HUB.underlay}/24`);

      const pskA = `${dir}/a.psk`;
      const pskB = `${dir}/b.psk`;
      const firstPsk = genPresharedKey();
      for (const p of [pskA, pskB]) await Deno.writeTextFile(p, firstPsk + "\n", { mode: 0o600 });
      const hubPeer = {
        name: HUB.name,
        publicKey: HUB.keys.publicKey,
        wgIp: HUB.wgIp,
        endpoint: `${HUB.underlay}:51820`,
        role: "hub",
      };
      const cfgA = await writeNodeConfig(dir, A, [B], {
        interfaceNames: NAMES_A,
        pskFile: pskA,
        extraPeers: [hubPeer],
      });
      const cfgB = await writeNodeConfig(dir, B, [A], { interfaceNames: NAMES_B, pskFile: pskB });
      const cfgHub = await writeHubConfig(dir, HUB, [{ ...A, underlay: A_TO_HUB }], HUB_WG);
      const pair = createPsrdPair({
        hubEndpoint: `${HUB.wgIp}:51831`,
        peerId: decodeBase64(A.keys.publicKey),
        c2hLen: 4096,
        h2cLen: 4096,
      });
      const hubStore = await PsrdStore.open(`${dir}/state-${HUB.name}`);
      hubStore.ingest(pair.hub);
      hubStore.close();

      const procA = await startTwofoldUp(a, cfgA);
      const procB = await startTwofoldUp(b, cfgB);
      const procHub = await startTwofoldHub(h, cfgHub);

      await t.step("both nodes and the hub share /var/run/wireguard; wg show works for each", async () => {
        const sockets = [...Deno.readDirSync(sharedRun)].map((e) => e.name).filter((n) =>
          n.endsWith(".sock")
        );
        assert.deepEqual(
          sockets.sort(),
          ["tfa0.sock", "tfaes0.sock", "tfb0.sock", "tfbes0.sock", "tfh0.sock"],
          "every interface's socket is in the one shared directory",
        );
        for (const [ns, names, self, peer] of [[a, NAMES_A, A, B], [b, NAMES_B, B, A]] as const) {
          const wg = await ns.exec(["wg", "show", names.wg0]);
          assert.match(wg.stdout, new RegExp(`interface: ${names.wg0}`), `wg show ${names.wg0}`);
          assert.ok(wg.stdout.includes(peer.keys.publicKey), `${self.name}'s ${names.wg0} lists its peer`);
          const aes = await ns.exec(["wg", "show", names.aes0, "public-key"]);
          assert.equal(aes.stdout.trim(), self.keys.publicKey, `wg show ${names.aes0}`);
          const links = (await ns.exec(["ip", "-o", "link", "show"])).stdout;
          assert.ok(
            links.includes(`${names.wg0}:`) && links.includes(`${names.aes0}:`),
            "the links carry the names",
          );
          assert.ok(!/\bwg0:|\baes0:/.test(links), "no link with a default name");
        }
        assert.match(procA.output(), / up: wg0 \(tfa0\) /, "the start-up line names the interface");
      });

      await t.step("traffic flows on both layers between the two nodes and to the hub", async () => {
        assert.ok(
          await waitUntil(async () => (await pingOk(a, B.aesIp)) === 3, 15_000, 200),
          "ping through aes0 (tfaes0 → tfbes0)",
        );
        assert.equal(await pingOk(a, B.wgIp), 3, "ping through wg0 (tfa0 → tfb0)");
        assert.ok(
          await waitUntil(async () => (await pingOk(a, HUB.wgIp)) === 3, 15_000, 200),
          "ping to the hub through wg0 (tfa0 → tfh0)",
        );
      });

      await t.step("a taken interface name is refused with the config field to change", async () => {
        // Another namespace: the link name is free there, but the shared UAPI socket answers (preflight,
        // nothing brought up).
        const otherNs = await writeNodeConfig(dir, { ...B, name: "node-d" }, [A], {
          interfaceNames: { wg0: NAMES_A.wg0, aes0: "tfdes0" },
        });
        const r2 = await b.exec(twofold(["up", "--config", otherNs]), { check: false });
        assert.equal(r2.code, 2, "a second tfa0 on the host does not start");
        assert.match(
          r2.stderr,
          /^twofold: wg0\.name: interface tfa0 is already run by another daemon: its UAPI socket \/var\/run\/wireguard\/tfa0\.sock answers/m,
        );
        assert.match(r2.stderr, /set wg0\.name in the config/);
        assert.equal(r2.stderr.trim().split("\n").length, 1, `one line: ${r2.stderr}`);
        // Same namespace as node-a, sockets in a directory of its own (node.uapiSocketDir) and its own
        // ports: only the link name clashes, at TUN creation.
        const sameNs = await writeNodeConfig(dir, { ...A, name: "node-c" }, [B], {
          interfaceNames: { wg0: NAMES_A.wg0, aes0: "tfces0" },
        });
        const c = JSON.parse(await Deno.readTextFile(sameNs));
        c.node.uapiSocketDir = `${dir}/run-c`;
        c.wg0.listenPort = 51920;
        c.aes0.listenPort = 51930;
        await Deno.writeTextFile(sameNs, JSON.stringify(c));
        const r1 = await a.exec(twofold(["up", "--config", sameNs]), { check: false });
        assert.equal(r1.code, 2, "a second tfa0 in the same namespace does not start");
        assert.match(
          r1.stderr,
          /^twofold: interface tfa0 already exists \(another twofold or WireGuard on this host\?\); set wg0\.name in the config/m,
        );
        assert.doesNotMatch(r1.stderr, /TUNSETIFF|EBUSY/, "no ioctl jargon");
        assert.equal(r1.stderr.trim().split("\n").length, 1, `one line: ${r1.stderr}`);
        assert.ok(!procA.exited, "node-a keeps running");
        assert.equal(await pingOk(a, B.aesIp), 3, "and keeps passing traffic");
      });

      await t.step(
        "a second up on the same state directory is refused with one line naming the PID",
        async () => {
          const r = await b.exec(twofold(["up", "--config", cfgA]), { check: false });
          assert.equal(r.code, 2, r.stderr);
          const lines = r.stderr.trim().split("\n");
          assert.equal(lines.length, 1, `one line: ${r.stderr}`);
          assert.equal(
            lines[0],
            `twofold: state directory ${dir}/state-${A.name} is in use by another twofold process (PID ${procA.pid}): ` +
              "stop it, or give this one its own node.stateDir",
          );
          assert.ok(!procA.exited, "the running node is untouched");
          assert.equal(
            (await a.exec(["wg", "show", NAMES_A.wg0, "public-key"])).stdout.trim(),
            A.keys.publicKey,
            "its interfaces too",
          );
        },
      );

      await t.step("status, lockdown and events --config find the node's socket and token", async () => {
        const st = await a.exec(twofold(["status", "--json", "--config", cfgA]), { check: false });
        assert.equal(st.code, 0, st.stderr);
        const status = JSON.parse(st.stdout);
        assert.equal(status.node.name, A.name);
        assert.deepEqual(
          [status.interfaces.wg0.name, status.interfaces.aes0.name],
          [NAMES_A.wg0, NAMES_A.aes0],
          "the status names the interfaces as they are on the host",
        );
        // A change needs the token: the config's default, <stateDir>/admin.token.
        const add = await a.exec(twofold(["lockdown", "add", "tcp/2222", "--config", cfgA]), {
          check: false,
        });
        assert.equal(add.code, 0, add.stderr);
        const list = await b.exec(twofold(["lockdown", "list", "--json", "--config", cfgB]), {
          check: false,
        });
        assert.equal(list.code, 0, list.stderr);
        assert.equal(JSON.parse(list.stdout).ports.length, 0, "node-b's own list, not node-a's");
        const hist = await a.exec(
          ["timeout", "-s", "INT", "3", ...twofold(["events", "--json", "--since", "0", "--config", cfgA])],
          { check: false },
        );
        assert.ok(/"lockdown-changed"/.test(hist.stdout), `node-a's events: ${hist.stderr}`);
        // A token file that is not the node's names itself and where it came from.
        const wrong = `${dir}/wrong.token`;
        await Deno.writeTextFile(wrong, "not-the-token\n", { mode: 0o600 });
        const bad = await a.exec(
          twofold(["lockdown", "add", "tcp/2223", "--config", cfgA, "--token-file", wrong]),
          { check: false },
        );
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, new RegExp(`${wrong.replaceAll(".", "\\.")} is the --token-file given`));
      });

      await t.step(
        "SIGHUP: up re-reads its PSK file (content, even at the same mtime) and keeps running",
        async () => {
          // A new key in both files, with the old mtimes back: only a re-read on SIGHUP can notice it.
          const next = genPresharedKey();
          for (const p of [pskA, pskB]) {
            const before = (await Deno.stat(p)).mtime!;
            await Deno.writeTextFile(p, next + "\n", { mode: 0o600 });
            await Deno.utime(p, before, before);
          }
          await new Promise((r) => setTimeout(r, 1_500)); // two polls of the files: nothing changes
          for (const proc of [procA, procB]) {
            assert.equal(
              linesWith(proc.output(), "received SIGHUP").length,
              0,
              "no SIGHUP line before the signal",
            );
            signal(proc, "SIGHUP");
          }
          for (const proc of [procA, procB]) {
            assert.ok(
              await waitForLines(
                proc,
                /received SIGHUP: re-read 1 PSK file\(s\): 1 new key\(s\) installed/,
                1,
              ),
              `the reload is logged:\n${proc.output().slice(-2000)}`,
            );
            // The config is re-read too (node-reload.ts); this test changed only the PSK file.
            assert.match(proc.output(), /received SIGHUP: re-read 1 PSK file\(s\)[^\n]*; config unchanged/);
          }
          await new Promise((r) => setTimeout(r, 1_000));
          assert.ok(!procA.exited && !procB.exited, "both nodes are still running");
          assert.ok(
            await waitUntil(async () => (await pingOk(a, B.aesIp)) === 3, 15_000, 200),
            "aes0 passes traffic under the re-read key",
          );
          const st = await a.exec(twofold(["status", "--json", "--config", cfgA]), { check: false });
          assert.equal(st.code, 0, "the admin socket survived the signal");
          // A second SIGHUP with nothing changed: logged, nothing installed.
          signal(procA, "SIGHUP");
          assert.ok(await waitForLines(procA, /received SIGHUP: re-read 1 PSK file\(s\): 0 new key\(s\)/, 1));
          assert.ok(!procA.exited);
        },
      );

      await t.step("SIGHUP: hub keeps running and passing traffic", async () => {
        signal(procHub, "SIGHUP");
        assert.ok(
          await waitForLines(procHub, /received SIGHUP: nothing to re-read .*still running/, 1),
          procHub.output(),
        );
        await new Promise((r) => setTimeout(r, 1_000));
        assert.ok(!procHub.exited, "the hub is still running");
        assert.equal(await pingOk(a, HUB.wgIp), 3, "node-a still reaches the hub through wg0");
        assert.equal(
          (await h.exec(["wg", "show", HUB_WG, "public-key"])).stdout.trim(),
          HUB.keys.publicKey,
          "its UAPI socket still answers",
        );
      });

      await t.step("SIGHUP: twofold wg -f keeps running (wireguard-go would exit 129)", async () => {
        const wg = b.spawn(twofold(["wg", "-f", "tfmhw0"]));
        assert.ok(await waitUntil(() => /interface tfmhw0 up/.test(wg.output()), 20_000), wg.output());
        signal(wg, "SIGHUP");
        assert.ok(
          await waitForLines(wg, /received SIGHUP: nothing to re-read; still running/, 1),
          wg.output(),
        );
        await new Promise((r) => setTimeout(r, 500));
        assert.ok(!wg.exited, "twofold wg is still running");
        const show = await b.exec(["wg", "show", "tfmhw0"], { check: false });
        assert.equal(show.code, 0, show.stderr);
        await wg.kill("SIGTERM");
        assert.equal(wg.exitCode, 0, "SIGTERM still stops it cleanly");
        assert.ok(
          !Deno.readDirSync(sharedRun).some((e) => e.name === "tfmhw0.sock"),
          "its socket is removed",
        );
      });

      await t.step("SIGTERM still stops a node cleanly; the lock goes with it", async () => {
        await procB.kill("SIGTERM");
        assert.equal(procB.exitCode, 0, procB.output().slice(-1000));
        const left = [...Deno.readDirSync(sharedRun)].map((e) => e.name);
        assert.ok(!left.includes("tfb0.sock") && !left.includes("tfbes0.sock"), `sockets removed: ${left}`);
        assert.ok(left.includes("tfa0.sock"), "node-a's sockets stay");
        const again = await startTwofoldUp(b, cfgB);
        assert.ok(!again.exited, "the same state directory starts again");
        await again.kill("SIGTERM");
      });

      for (const p of [procA, procHub]) assert.ok(!p.exited, `${p.label} ran to the end`);
    } finally {
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(sharedRun, { recursive: true }).catch(() => {});
    }
  },
);
