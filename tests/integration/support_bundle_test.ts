/**
 * The support bundle of a real node: two `twofold up` nodes and three DSKE hubs in namespaces (prefix
 * `tfsb-`), aes0 keyed by DSKE from PSRD, wg0 between the nodes with a manual pre-shared key
 * (`wgPskFile`), the admin token written by the test. `twofold bundle -o FILE --config` on node-a (the
 * node and its token found from its config, as `twofold status` finds them), unpacked with
 * the system `tar`: the expected files are there and not empty, show the node's own interfaces, and no
 * file holds any private key, the manual PSK, an aes0 PSK DSKE installed, a PSRD sample or the admin
 * token, in base64 or hex. Needs root, /dev/net/tun, iproute2, ping, wg and tar.
 */
import assert from "node:assert/strict";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { DskeLab } from "../../src/lab/dske-lab.ts";
import { integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { waitUntil } from "../helpers/netns.ts";
import { genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";
import { decodeBase64 } from "../../src/encoding.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const EXPECTED = [
  "manifest.json",
  "config.json",
  "status.json",
  "events.jsonl",
  "metrics.txt",
  "log.txt",
  "versions.json",
  "ip-addr.json",
  "ip-route.json",
  "ip-rule.json",
  "wg-show-all-dump.txt",
  "audit-head.jsonl",
];

/** Every file under `dir` (recursively) with its bytes. */
async function filesUnder(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) { for (const [p, b] of await filesUnder(path)) out.set(p, b); }
    else out.set(path, await Deno.readFile(path));
  }
  return out;
}

/** 32-byte windows of a PSRD pool's pad bytes, read before any node starts. */
async function psrdSamples(stateDir: string): Promise<Uint8Array[]> {
  const samples: Uint8Array[] = [];
  for await (const b of Deno.readDir(`${stateDir}/psrd/blocks`)) {
    const data = await Deno.readFile(`${stateDir}/psrd/blocks/${b.name}/data`);
    for (const at of [0, 4096, data.length >> 1, data.length - 32]) samples.push(data.slice(at, at + 32));
  }
  return samples;
}

integrationTest(
  "support bundle of a running node: expected files, no key, PSK, PSRD byte or token in any of them",
  [
    requireRoot(),
    requireTun(),
    requireBinary("ip"),
    requireBinary("ping"),
    requireBinary("wg"),
    requireBinary(
      "tar",
    ),
  ],
  async () => {
    await DskeLab.run(
      { prefix: "tfsb-", underlayNet: "10.238.0", wgNet: "100.64.38", aesNet: "100.127.38" },
      async (lab) => {
        const [a, b] = lab.nodes;
        const nsA = lab.nodeNs[0];
        // Secret bytes the test made, by what they are; the token is text.
        const secrets: [string, Uint8Array][] = [
          ...[...lab.nodes, ...lab.hubs].map((
            n,
          ) => [`${n.name} private key`, decodeBase64(n.keys.privateKey)]) as [
            string,
            Uint8Array,
          ][],
        ];
        // wg0 between the nodes with a manual PSK file (mode 0600) on both sides.
        const wgPsk = genPresharedKey();
        secrets.push(["manual wg0 PSK", decodeBase64(wgPsk)]);
        const wgPskFile = `${lab.dir}/nodes.wg0.psk`;
        await Deno.writeTextFile(wgPskFile, `${wgPsk}\n`, { mode: 0o600 });
        for (const [i, other] of [[0, b], [1, a]] as const) {
          const cfg = JSON.parse(await Deno.readTextFile(lab.nodeConfigs[i]));
          cfg.peers.find((p: { name: string }) => p.name === other.name).wgPskFile = wgPskFile;
          await Deno.writeTextFile(lab.nodeConfigs[i], JSON.stringify(cfg, null, 2));
        }
        for (const [i, s] of (await psrdSamples(lab.stateDir(a))).entries()) {
          secrets.push([`PSRD sample ${i}`, s]);
        }
        // The admin token, configured by the test.
        const token = "tf-" + toHex(crypto.getRandomValues(new Uint8Array(24)));
        const tokenFile = `${lab.stateDir(a)}/admin.token`;
        await Deno.writeTextFile(tokenFile, `${token}\n`, { mode: 0o600 });
        await Deno.chmod(tokenFile, 0o600);

        await lab.startHubs();
        await lab.startNodes();
        assert.ok(
          await waitUntil(
            async () => (await ping(nsA, b.aesIp, { count: 1, timeoutS: 1 })).received === 1,
            30_000,
          ),
          "aes0 opens through DSKE",
        );
        const aesPsks = async () =>
          (await nsA.exec(["wg", "show", "aes0", "preshared-keys"])).stdout.trim().split("\n")
            .map((l) => l.split("\t")[1]).filter((k) => k && k !== "(none)");
        const before = await aesPsks();
        assert.ok(before.length > 0, "DSKE installed an aes0 PSK");
        const wgShown = (await nsA.exec(["wg", "show", "wg0", "preshared-keys"])).stdout;
        assert.ok(wgShown.includes(wgPsk), "the manual wg0 PSK is in force");

        const out = `${lab.dir}/bundle.tar.gz`;
        const bundle = (args: string[]) =>
          nsA.exec([Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, "bundle", ...args], {
            check: false,
          });
        const r = await bundle(["-o", out, "--config", lab.nodeConfigs[0]]);
        assert.equal(r.code, 0, `twofold bundle failed: ${r.stderr}`);
        assert.match(r.stdout, /^wrote .*bundle\.tar\.gz \(\d+ bytes\)/);
        const size = (await Deno.stat(out)).size;
        console.log(`support bundle: ${size} bytes`);
        assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600, "the bundle is written 0600");
        for (const k of [...before, ...await aesPsks()]) secrets.push(["aes0 PSK (DSKE)", decodeBase64(k)]);

        // Never over an existing file; a wrong token is refused, naming where the token came from.
        const again = await bundle(["-o", out, "--config", lab.nodeConfigs[0]]);
        assert.equal(again.code, 1);
        assert.match(again.stderr, /exists already; choose another name with -o FILE/);
        assert.equal((await Deno.stat(out)).size, size, "the first bundle is untouched");
        const wrongToken = `${lab.dir}/wrong.token`;
        await Deno.writeTextFile(wrongToken, "not-the-token\n", { mode: 0o600 });
        await Deno.chmod(wrongToken, 0o600);
        const refused = await bundle([
          "-o",
          `${lab.dir}/refused.tar.gz`,
          "--admin",
          lab.adminSocket(0),
          "--token-file",
          wrongToken,
        ]);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /HTTP 403/);
        assert.equal(refused.stderr.trim().split("\n").length, 1, "one line");
        await assert.rejects(Deno.stat(`${lab.dir}/refused.tar.gz`), Deno.errors.NotFound, "nothing written");

        const x = `${lab.dir}/x`;
        await Deno.mkdir(x);
        const untar = await nsA.exec(["tar", "-xzf", out, "-C", x], { check: false });
        assert.equal(untar.code, 0, untar.stderr);
        const files = await filesUnder(x);
        const byName = new Map([...files].map(([p, bytes]) => [p.split("/").pop()!, bytes]));
        for (const name of EXPECTED) {
          assert.ok(byName.has(name), `${name} in the bundle (${[...byName.keys()].join(", ")})`);
          assert.ok(byName.get(name)!.length > 0, `${name} is not empty`);
        }
        const text = (name: string) => new TextDecoder().decode(byName.get(name)!);
        const addrs = JSON.parse(text("ip-addr.json")) as { ifname: string }[];
        assert.ok(
          addrs.some((l) => l.ifname === "wg0") && addrs.some((l) => l.ifname === "aes0"),
          "node's own view",
        );
        const dump = text("wg-show-all-dump.txt").trim().split("\n").map((l) => l.split("\t"));
        assert.deepEqual(dump.filter((l) => l.length === 5).map((l) => [l[0], l[1], l[2]]), [
          ["wg0", "(redacted)", a.keys.publicKey],
          ["aes0", "(redacted)", a.keys.publicKey],
        ]);
        const wgPeerB = dump.find((l) => l[0] === "wg0" && l[1] === b.keys.publicKey)!;
        const aesPeerB = dump.find((l) => l[0] === "aes0" && l[1] === b.keys.publicKey)!;
        assert.equal(wgPeerB[2], "(redacted)", "the manual wg0 PSK shows as set, redacted");
        assert.equal(aesPeerB[2], "(redacted)", "the DSKE PSK shows as set, redacted");
        assert.equal(JSON.parse(text("status.json")).node.name, a.name);
        assert.equal(JSON.parse(text("config.json")).peers[0].wgPskFile, wgPskFile, "paths stay");
        assert.match(text("events.jsonl"), /"key-rotated"|"gate-opened"/);
        assert.match(text("log.txt"), /admin API listening/);
        assert.match(text("audit-head.jsonl"), /"audit-opened"/);
        const manifest = JSON.parse(text("manifest.json"));
        assert.equal(
          manifest.knownSecretsReplaced,
          0,
          "no source handed the bundle a known secret (the last-resort scrub found nothing to replace)",
        );
        assert.deepEqual(
          manifest.missing.map((m: { part: string }) => m.part),
          ["netmap.json"],
          "only the map is missing",
        );
        const versions = JSON.parse(text("versions.json"));
        assert.equal(versions.kernel, Deno.osRelease());
        assert.match(versions.libcrypto, /OpenSSL|not loaded/);

        const forms: [string, string][] = [
          ["admin token", token],
          ["admin token base64", encodeBase64(new TextEncoder().encode(token))],
          ["admin token hex", toHex(new TextEncoder().encode(token))],
        ];
        for (const [what, bytes] of secrets) {
          forms.push([`${what} base64`, encodeBase64(bytes)], [`${what} hex`, toHex(bytes)]);
          forms.push([`${what} HEX`, toHex(bytes).toUpperCase()]);
        }
        for (const [path, bytes] of files) {
          const content = new TextDecoder().decode(bytes);
          for (const [what, form] of forms) assert.ok(!content.includes(form), `${what} found in ${path}`);
        }
        console.log(`checked ${files.size} files for ${forms.length} secret forms: none found`);
      },
    );
  },
);
