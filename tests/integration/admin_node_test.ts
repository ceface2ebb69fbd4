/**
 * The admin API of a real node and its CLI clients: two `twofold up` nodes in namespaces (tfa-a,
 * tfa-b) with manual PSK files, each with its admin API on a unix socket in the test's directory.
 * `twofold status --json` against `wg show … dump` and traffic sent, a PSK rotation on `twofold
 * events`, resuming with Last-Event-ID, the token, the lockdown list across a restart, refused listen
 * addresses and a corrupt lockdown file, and finally no key material or token in any log line or body.
 * Needs root, /dev/net/tun, iproute2, ping and wg.
 */
import assert from "node:assert/strict";
import type { NodeStatus } from "../../src/admin/model.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import { followEvents } from "../../src/cli/events.ts";
import { decodeBase64, toHex } from "../../src/encoding.ts";
import type { NodeEvent } from "../../src/events/bus.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, type Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const A: LabNode = {
  name: "adm-a",
  keys: genKeyPair(),
  underlay: "10.236.0.1",
  wgIp: "100.64.6.1",
  aesIp: "100.127.6.1",
};
const B: LabNode = {
  name: "adm-b",
  keys: genKeyPair(),
  underlay: "10.236.0.2",
  wgIp: "100.64.6.2",
  aesIp: "100.127.6.2",
};

/** Everything the node and the API said, for the final secret grep. */
const corpus: string[] = [];
/** Every secret the test made (base64 / text); their hex forms are added when grepping. */
const secrets: { what: string; base64?: string; text?: string }[] = [
  { what: "A's private key", base64: A.keys.privateKey },
  { what: "B's private key", base64: B.keys.privateKey },
];

function newPsk(what: string): string {
  const psk = genPresharedKey();
  secrets.push({ what, base64: psk });
  return psk;
}

/** The command line of `twofold <args>`. */
function twofold(args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
}

/** Runs `twofold <args>` inside `ns`; records its output. */
async function cli(ns: Netns, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await ns.exec(twofold(args), { check: false });
  corpus.push(r.stdout, r.stderr);
  return r;
}

/** `wg show IF dump` peer lines by public key: [pub, psk, endpoint, allowed, handshake, rx, tx, ka]. */
async function dump(ns: Netns, ifname: string): Promise<Map<string, string[]>> {
  const lines = (await ns.exec(["wg", "show", ifname, "dump"])).stdout.trim().split("\n").slice(1);
  return new Map(lines.map((l) => l.split("\t")).map((f) => [f[0], f]));
}

/** Writes the node config with a manual PSK file for its one peer and the admin socket in `dir`. */
async function nodeConfig(
  dir: string,
  self: LabNode,
  peer: LabNode,
  pskFile: string,
  extra: Record<string, unknown>,
) {
  const path = await writeNodeConfig(dir, self, [peer]);
  const cfg = JSON.parse(await Deno.readTextFile(path));
  cfg.peers[0].pskFile = pskFile;
  cfg.admin = { listen: `unix:${dir}/${self.name}.sock` };
  Object.assign(cfg, extra);
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

async function writePsk(path: string, psk: string): Promise<void> {
  await Deno.writeTextFile(`${path}.new`, psk + "\n", { mode: 0o600 });
  await Deno.chmod(`${path}.new`, 0o600);
  await Deno.rename(`${path}.new`, path);
}

async function startNode(ns: Netns, config: string, procs: Proc[]): Promise<Proc> {
  const p = await startTwofoldUp(ns, config);
  procs.push(p);
  const ok = await waitUntil(() => p.exited || /admin API listening on/.test(p.output()), 10_000);
  assert.ok(ok && !p.exited, `the admin API did not start:\n${p.output()}`);
  return p;
}

/** JSON events printed so far by a `twofold events --json` process. */
function printedEvents(p: Proc): NodeEvent[] {
  return p.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as NodeEvent);
}

integrationTest(
  "admin API on a running node: status, events, resume, token, lockdown, refusals, no secrets",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("wg")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfa-" });
    const procs: Proc[] = [];
    const clients: AdminClient[] = [];
    const sockA = `${dir}/${A.name}.sock`;
    const tokenFileA = `${dir}/state-${A.name}/admin.token`;
    try {
      const a = await topo.netns("tfa-a", { replaceExisting: true });
      const b = await topo.netns("tfa-b", { replaceExisting: true });
      await vethPair(a, "tfa-va", `${A.underlay}/24`, b, "tfa-vb", `${B.underlay}/24`);
      const pskA = `${dir}/a.psk`;
      const pskB = `${dir}/b.psk`;
      const first = newPsk("PSK epoch 1");
      await writePsk(pskA, first);
      await writePsk(pskB, first);
      const cfgA = await nodeConfig(dir, A, B, pskA, { lockdown: { extraPorts: ["tcp/22"] } });
      const cfgB = await nodeConfig(dir, B, A, pskB, {});
      let procA = await startNode(a, cfgA, procs);
      await startNode(b, cfgB, procs);
      const token = (await Deno.readTextFile(tokenFileA)).trim();
      secrets.push({ what: "admin token", text: token });
      const tokenMode = (await Deno.stat(tokenFileA)).mode! & 0o777;
      assert.equal(tokenMode, 0o600, "the token file is created 0600");
      assert.equal((await Deno.stat(sockA)).mode! & 0o777, 0o660, "the socket is 0660");

      await t.step("status --json reflects the real handshakes and byte counts", async () => {
        assert.ok(
          await waitUntil(
            async () => (await ping(a, B.aesIp, { count: 1, timeoutS: 1 })).received === 1,
            10_000,
          ),
          "aes0 comes up with the PSK files",
        );
        const before = JSON.parse(
          (await cli(a, ["status", "--json", "--admin", sockA])).stdout,
        ) as NodeStatus;
        const sent = await a.exec([
          "ping",
          "-n",
          "-q",
          "-c",
          "20",
          "-i",
          "0.05",
          "-s",
          "1000",
          "-W",
          "2",
          B.aesIp,
        ]);
        assert.match(sent.stdout, /20 packets transmitted, 20 received/);
        const wgBefore = await dump(a, "wg0");
        const aesBefore = await dump(a, "aes0");
        const r = await cli(a, ["status", "--json", "--admin", sockA]);
        assert.equal(r.code, 0, r.stderr);
        const wgAfter = await dump(a, "wg0");
        const aesAfter = await dump(a, "aes0");
        const s = JSON.parse(r.stdout) as NodeStatus;
        assert.equal(s.node.name, A.name);
        assert.equal(s.node.publicKey, A.keys.publicKey);
        assert.equal(s.interfaces.wg0.cipherSuite, "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
        assert.equal(s.interfaces.aes0.cipherSuite, "Noise_IKpsk2_25519_AESGCM_BLAKE2s");
        assert.equal(s.interfaces.aes0.aead, "AES-256-GCM");
        assert.equal(s.interfaces.aes0.mtu, 1360);
        assert.equal(s.interfaces.wg0.listenPort, 51820);
        const peer = s.peers.find((p) => p.name === B.name)!;
        assert.equal(peer.publicKey, B.keys.publicKey);
        for (
          const [layer, lo, hi] of [
            [peer.wg0, wgBefore.get(B.keys.publicKey)!, wgAfter.get(B.keys.publicKey)!],
            [peer.aes0!, aesBefore.get(B.keys.publicKey)!, aesAfter.get(B.keys.publicKey)!],
          ] as const
        ) {
          assert.ok(layer.lastHandshake !== null, "a handshake completed");
          const hsSeconds = Math.floor(Date.parse(layer.lastHandshake!) / 1000);
          assert.equal(hsSeconds, Number(hi[4]), "the same handshake time as wg show");
          assert.ok(
            Number(lo[5]) <= layer.rxBytes && layer.rxBytes <= Number(hi[5]),
            "rx between two wg dumps",
          );
          assert.ok(
            Number(lo[6]) <= layer.txBytes && layer.txBytes <= Number(hi[6]),
            "tx between two wg dumps",
          );
        }
        assert.equal(peer.wg0.endpoint, `${B.underlay}:51820`);
        assert.equal(peer.wg0.psk.source, "none");
        const beforePeer = before.peers.find((p) => p.name === B.name)!;
        const grew = peer.aes0!.txBytes - beforePeer.aes0!.txBytes;
        assert.ok(grew >= 20 * 1000, `aes0 tx grew by the pings sent (${grew} B)`);
        assert.equal(peer.aes0!.gate.state, "open");
        assert.equal(peer.aes0!.keyEpoch, 1);
        assert.equal(peer.aes0!.keySource, "manual");
        assert.deepEqual(s.lockdown, {
          ports: [{ proto: "tcp", port: 22, from: 22, to: 22 }],
          enforced: true,
        });
        const table = await cli(a, ["status", "--admin", sockA]);
        assert.equal(table.code, 0, table.stderr);
        console.log(table.stdout);
        assert.match(
          table.stdout,
          new RegExp(`^${B.name} +peer +${B.underlay.replaceAll(".", "\\.")}:51820 .* open +1 `, "m"),
        );
        console.log(
          `status: aes0 tx ${
            peer.aes0!.txBytes
          } B (+${grew} B for 20 × 1000 B pings), wg0 rx ${peer.wg0.rxBytes} B`,
        );
      });

      const follower: NodeEvent[] = [];
      const stopFollower = new AbortController();
      let following: Promise<void> = Promise.resolve();
      await t.step(
        "a rotation (new PSK file on both sides) appears on `twofold events --json` within 1 s",
        async () => {
          const client = new AdminClient({ kind: "unix", path: sockA });
          clients.push(client);
          following = followEvents({
            client,
            lastEventId: "0",
            signal: stopFollower.signal,
            onEvent: (e) => follower.push(e),
          });
          const ev = a.spawn(twofold(["events", "--json", "--since", "0", "--admin", sockA]));
          procs.push(ev);
          // Connected once the history (gate opened, epoch 1, handshakes) is printed.
          assert.ok(
            await waitUntil(() => printedEvents(ev).length > 0, 10_000),
            `no events printed:\n${ev.output()}`,
          );
          assert.ok(
            printedEvents(ev).some((e) => e.type === "gate-opened" && e.peer === B.name),
            "the history has the gate opening",
          );
          const second = newPsk("PSK epoch 2");
          const written = Date.now();
          await writePsk(pskA, second);
          await writePsk(pskB, second);
          let seenAt = 0;
          const ok = await waitUntil(
            () => {
              const hit = printedEvents(ev).find((e) =>
                e.type === "key-rotated" && e.peer === B.name && e.epoch === 2
              );
              if (hit && seenAt === 0) seenAt = Date.now();
              return hit !== undefined;
            },
            5000,
            5,
          );
          corpus.push(ev.output());
          assert.ok(ok, `key-rotated epoch 2 not printed:\n${ev.output()}`);
          const e = printedEvents(ev).find((x) => x.type === "key-rotated" && x.epoch === 2)!;
          const pipeline = seenAt - Date.parse(e.at);
          console.log(
            `rotation: PSK file written → line printed ${
              seenAt - written
            } ms (the node polls PSK files every 1 s); ` +
              `event published → line printed ${pipeline} ms`,
          );
          assert.ok(
            pipeline < 1000,
            `the event reached twofold events ${pipeline} ms after it was published`,
          );
          assert.equal(e.layer, "aes0");
          assert.equal(e.publicKey, B.keys.publicKey);
          await ev.kill("SIGINT");
          assert.equal(ev.exitCode, 0, "twofold events exits 0 on Ctrl-C");
          corpus.push(ev.output());
          const st = JSON.parse((await cli(a, ["status", "--json", "--admin", sockA])).stdout) as NodeStatus;
          assert.equal(st.peers.find((p) => p.name === B.name)!.aes0!.keyEpoch, 2);
        },
      );

      await t.step("a client resuming with Last-Event-ID gets exactly what it missed", async () => {
        assert.ok(
          await waitUntil(() => follower.some((e) => e.epoch === 2), 2000),
          "the follower saw epoch 2",
        );
        const missedFrom = follower[follower.length - 1].id;
        // Events while this client is away: a rotation and a lockdown change.
        const third = newPsk("PSK epoch 3");
        await writePsk(pskA, third);
        await writePsk(pskB, third);
        const put = await cli(a, [
          "lockdown",
          "add",
          "tcp/8080",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(put.code, 0, put.stderr);
        assert.ok(
          await waitUntil(() => follower.some((e) => e.type === "key-rotated" && e.epoch === 3), 3000),
          "the follower saw epoch 3",
        );
        const upTo = follower[follower.length - 1].id;
        const expected = follower.filter((e) => e.id > missedFrom && e.id <= upTo);
        const change = expected.find((e) => e.type === "lockdown-changed");
        assert.ok(change, "the lockdown change is among them");
        assert.equal(change.data?.caller, "admin token via unix socket", "the change names its caller");
        const client = new AdminClient({ kind: "unix", path: sockA });
        clients.push(client);
        const ac = new AbortController();
        const got: NodeEvent[] = [];
        await followEvents({
          client,
          lastEventId: String(missedFrom),
          signal: ac.signal,
          onEvent: (e) => {
            got.push(e);
            if (e.id >= upTo) ac.abort();
          },
        });
        corpus.push(JSON.stringify(got));
        assert.deepEqual(got.filter((e) => e.id <= upTo), expected, "no gap, no duplicate, same events");
        // The CLI resumes the same way (--since sends Last-Event-ID).
        const ev = a.spawn(twofold(["events", "--json", "--since", String(missedFrom), "--admin", sockA]));
        procs.push(ev);
        assert.ok(await waitUntil(() => printedEvents(ev).some((e) => e.id >= upTo), 5000), ev.output());
        await ev.kill("SIGINT");
        corpus.push(ev.output());
        assert.deepEqual(
          printedEvents(ev).filter((e) => e.id <= upTo).map((e) => e.id),
          expected.map((e) => e.id),
        );
        console.log(
          `resume: ${expected.length} missed events (ids ${missedFrom + 1}..${upTo}) delivered exactly once`,
        );
      });

      await t.step(
        "a mutation without the token is 401, a wrong token 403; reads on the socket need none",
        async () => {
          const client = new AdminClient({ kind: "unix", path: sockA });
          clients.push(client);
          const body = { ports: [{ proto: "tcp", port: 9 }] };
          const no = await client.request("PUT", "/v1/lockdown/ports", { body });
          const noText = await no.text();
          corpus.push(noText);
          assert.equal(no.status, 401);
          assert.equal(JSON.parse(noText).error, "unauthorized");
          const wrong = await client.request("PUT", "/v1/lockdown/ports", {
            body,
            headers: { authorization: "Bearer not-the-token" },
          });
          corpus.push(await wrong.text());
          assert.equal(wrong.status, 403);
          const del = await client.request("DELETE", "/v1/lockdown/ports/tcp/22");
          corpus.push(await del.text());
          assert.equal(del.status, 401);
          const metrics = await client.request("GET", "/metrics");
          const metricsText = await metrics.text();
          corpus.push(metricsText);
          assert.equal(metrics.status, 200);
          assert.match(metricsText, new RegExp(B.name));
          assert.match(
            metricsText,
            /^twofold_drops_total\{layer="aes0",reason="tunQueueFull"\} \d+$/m,
            "the kernel's TUN queue drops are exported",
          );
          const cliNoToken = await cli(a, [
            "lockdown",
            "add",
            "tcp/9",
            "--admin",
            sockA,
            "--token-file",
            `${dir}/none`,
          ]);
          assert.equal(cliNoToken.code, 2);
          assert.match(cliNoToken.stderr, /^twofold: admin token file .*none does not exist/);
          const list = await cli(a, ["lockdown", "list", "--json", "--admin", sockA]);
          assert.deepEqual(JSON.parse(list.stdout).ports.map((p: { port: number }) => p.port), [22, 8080]);
        },
      );

      await t.step("lockdown add/remove round-trips and persists across a restart", async () => {
        const add = await cli(a, [
          "lockdown",
          "add",
          "udp/6000-6010",
          "tcp/443",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(add.code, 0, add.stderr);
        assert.equal(
          add.stdout,
          "tcp/22\ntcp/443\ntcp/8080\nudp/6000-6010\nenforced on wg0 between AES peers by twofold's packet filter\n",
        );
        const rm = await cli(a, [
          "lockdown",
          "remove",
          "tcp/22",
          "tcp/8080",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(rm.code, 0, rm.stderr);
        const missing = await cli(a, [
          "lockdown",
          "remove",
          "tcp/22",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(missing.code, 1, "removing an absent entry is a server error");
        assert.match(missing.stderr, /HTTP 404/);
        const overlap = await cli(a, [
          "lockdown",
          "add",
          "udp/6005",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(overlap.code, 1);
        assert.match(overlap.stderr, /HTTP 409/);
        const partly = await cli(a, [
          "lockdown",
          "add",
          "tcp/9000",
          "tcp/51831",
          "--admin",
          sockA,
          "--token-file",
          tokenFileA,
        ]);
        assert.equal(partly.code, 1, "one refused entry refuses the whole add");
        assert.match(
          partly.stderr,
          /^twofold: tcp\/51831 is always allowed by the lockdown; leave it out; nothing was added \(HTTP 422\)\n$/,
        );
        assert.doesNotMatch(partly.stderr, /\bbody\b|ports\[/, "said in the operator's terms");
        const bad = await cli(a, ["lockdown", "add", "tcp:80", "--admin", sockA, "--token-file", tokenFileA]);
        assert.equal(bad.code, 2, "a malformed spec is a usage error");
        const expected = [{ proto: "tcp", port: 443, from: 443, to: 443 }, {
          proto: "udp",
          port: "6000-6010",
          from: 6000,
          to: 6010,
        }];
        assert.deepEqual(
          JSON.parse((await cli(a, ["lockdown", "list", "--json", "--admin", sockA])).stdout).ports,
          expected,
        );
        stopFollower.abort();
        await following;
        corpus.push(JSON.stringify(follower));
        await procA.kill("SIGTERM");
        corpus.push(procA.output());
        assert.equal(procA.exitCode, 0);
        assert.ok(
          await waitUntil(async () => !(await Deno.lstat(sockA).then(() => true, () => false)), 3000),
          "the socket is removed on stop",
        );
        procA = await startNode(a, cfgA, procs);
        assert.match(procA.output(), /lockdown list loaded from .*lockdown\.json \(2 entries/);
        const after = await cli(a, ["lockdown", "list", "--json", "--admin", sockA]);
        assert.deepEqual(
          JSON.parse(after.stdout).ports,
          expected,
          "the stored list, not the config's tcp/22",
        );
        assert.equal((await Deno.readTextFile(tokenFileA)).trim(), token, "the token file is kept");
      });

      await t.step(
        "a non-loopback admin.listen or a corrupt lockdown file stops `twofold up` (exit 2)",
        async () => {
          const c = await topo.netns("tfa-c", { replaceExisting: true });
          const base = JSON.parse(await Deno.readTextFile(cfgA));
          for (const listen of ["0.0.0.0:9000", "10.1.2.3:9000"]) {
            const path = `${dir}/bad-listen.json`;
            await Deno.writeTextFile(path, JSON.stringify({ ...base, admin: { listen } }));
            const r = await cli(c, ["up", "--config", path]);
            assert.equal(r.code, 2, r.stderr);
            assert.match(
              r.stderr.trim(),
              /^twofold: config .*bad-listen\.json: admin\.listen: admin address .* is not loopback; .*127\.0\.0\.1:PORT/,
            );
            assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
          }
          assert.equal(
            (await c.exec(["ip", "link", "show", "wg0"], { check: false })).code === 0,
            false,
            "nothing brought up",
          );
          const state = `${dir}/state-corrupt`;
          await Deno.mkdir(state);
          await Deno.writeTextFile(`${state}/lockdown.json`, '{"version": 1, "ports": [');
          const path = `${dir}/corrupt.json`;
          await Deno.writeTextFile(
            path,
            JSON.stringify({
              ...base,
              node: { ...base.node, stateDir: state },
              admin: { listen: `unix:${dir}/c.sock` },
            }),
          );
          const r = await cli(c, ["up", "--config", path]);
          assert.equal(r.code, 2, r.stderr);
          assert.match(
            r.stderr.trim(),
            /^twofold: lockdown list .*state-corrupt\/lockdown\.json is corrupt \(not JSON\); fix it, or remove it/,
          );
          assert.equal(
            (await c.exec(["ip", "link", "show", "wg0"], { check: false })).code === 0,
            false,
            "nothing brought up",
          );
          // A live admin socket (node A serves it) is found by preflight, before anything is brought
          // up: exit 2, exactly one line.
          const dup = `${dir}/dup.json`;
          await Deno.writeTextFile(
            dup,
            JSON.stringify({
              ...base,
              node: { ...base.node, stateDir: `${dir}/state-dup` },
              admin: { listen: `unix:${sockA}` },
            }),
          );
          const d = await cli(c, ["up", "--config", dup]);
          assert.equal(d.code, 2, d.stderr);
          assert.equal(d.stderr.trim().split("\n").length, 1, d.stderr);
          assert.match(
            d.stderr.trim(),
            /^twofold: admin\.listen: another process already serves an admin API on unix:/,
          );
          assert.equal(
            (await c.exec(["ip", "link", "show", "wg0"], { check: false })).code === 0,
            false,
            "nothing brought up",
          );
          const stillA = await cli(a, ["status", "--json", "--admin", sockA]);
          assert.equal(stillA.code, 0, "node A's admin API is untouched");
        },
      );

      await t.step("no log line or response body holds a private key, a PSK or the token", () => {
        for (const p of procs) corpus.push(p.output());
        const text = corpus.join("\n");
        assert.ok(
          text.includes(A.keys.publicKey) && text.includes(B.keys.publicKey),
          "the corpus has the status output",
        );
        assert.ok(text.length > 10_000, `a real corpus (${text.length} chars)`);
        for (const s of secrets) {
          const forms = s.base64 ? [s.base64, toHex(decodeBase64(s.base64))] : [s.text!];
          for (const f of forms) {
            assert.ok(!text.includes(f), `${s.what} appears in a log line or response body`);
            if (/^[0-9a-f]+$/.test(f)) {
              assert.ok(!text.includes(f.toUpperCase()), `${s.what} (upper-case hex)`);
            }
          }
        }
        console.log(
          `secret grep: ${secrets.length} secrets, ${text.length} characters of logs and bodies, none found`,
        );
      });
    } finally {
      for (const c of clients) c.close();
      for (const p of procs) await p.kill().catch(() => {});
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
