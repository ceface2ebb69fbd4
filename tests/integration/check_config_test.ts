/**
 * `twofold check --config FILE` in a namespace of its own (private UAPI run dir and ports): a good node
 * and hub config pass (exit 0, one ok line), a config problem is one line, and several preflight
 * problems are one line each (exit 2); nothing is created. Namespace prefix `tfchk-`. Needs root.
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary, requireRoot } from "../helpers/prereq.ts";
import { Topology } from "../helpers/netns.ts";
import { type LabNode, writeHubConfig, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair } from "../helpers/wg_device.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const node = (name: string, i: number): LabNode => ({
  name,
  keys: genKeyPair(),
  underlay: `10.234.0.${i}`,
  wgIp: `100.64.9.${i}`,
  aesIp: `100.127.9.${i}`,
});

integrationTest("twofold check: one line per problem, exit 0/2, creates nothing", [
  requireRoot(),
  requireBinary("ip"),
], async (t) => {
  const topo = new Topology();
  const dir = await Deno.makeTempDir({ prefix: "tfchk-" });
  try {
    const ns = await topo.netns("tfchk-a", { replaceExisting: true });
    const a = node("chk-a", 1), b = node("chk-b", 2);
    const check = (config: string) =>
      ns.exec([Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, "check", "--config", config], {
        check: false,
      });

    await t.step("a good node config and a good hub config pass", async () => {
      const cfg = await writeNodeConfig(dir, a, [b]);
      const r = await check(cfg);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `config ${cfg} ok (node chk-a): nothing stands in the way of starting\n`);
      const hubCfg = await writeHubConfig(dir, {
        name: "chk-hub",
        keys: genKeyPair(),
        underlay: "10.234.0.9",
        wgIp: "100.64.9.9",
      }, [a]);
      const h = await check(hubCfg);
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /ok \(hub chk-hub\)/);
      const made = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("state-"));
      assert.deepEqual(made, [], "no state directory was created");
    });

    await t.step("a broker config: checked with its root key; a missing root key is one line", async () => {
      const brokerKeys = genKeyPair();
      const b64 = (n: number) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))));
      const secret = async (name: string, text: string) => {
        await Deno.writeTextFile(`${dir}/${name}`, text + "\n", { mode: 0o600 });
        await Deno.chmod(`${dir}/${name}`, 0o600);
      };
      await secret("broker.key", brokerKeys.privateKey);
      await secret("root.key", b64(32));
      await secret("chk-a.wg0.psk", b64(32));
      const cfg = {
        broker: { name: "chk-broker", privateKeyFile: "broker.key", rootKey: { file: "root.key" } },
        wg0: { listenPort: 51820, address: "100.64.9.200/10" },
        peers: [{ name: "chk-a", publicKey: a.keys.publicKey, wgIp: a.wgIp, wgPskFile: "chk-a.wg0.psk" }],
      };
      await Deno.writeTextFile(`${dir}/broker.json`, JSON.stringify(cfg));
      const ok = await check(`${dir}/broker.json`);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /ok \(broker chk-broker\)/);
      await Deno.remove(`${dir}/root.key`);
      const bad = await check(`${dir}/broker.json`);
      assert.equal(bad.code, 2);
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.match(bad.stderr, /root/i);
    });

    await t.step("a key file readable by others is one line naming it, exit 2", async () => {
      const cfg = await writeNodeConfig(dir, a, [b]);
      await Deno.chmod(`${dir}/chk-a.key`, 0o644);
      const r = await check(cfg);
      assert.equal(r.code, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /privateKeyFile/);
      await Deno.chmod(`${dir}/chk-a.key`, 0o600);
    });

    await t.step("several preflight problems: one line each, exit 2", async () => {
      const cfgPath = await writeNodeConfig(dir, a, [b]);
      const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
      await Deno.writeTextFile(`${dir}/plain-file`, "x");
      cfg.admin = { listen: `unix:${dir}/plain-file/admin.sock`, tokenFile: `${dir}/token` };
      await Deno.writeTextFile(`${dir}/token`, "secret-token\n", { mode: 0o644 });
      await Deno.chmod(`${dir}/token`, 0o644);
      await Deno.writeTextFile(cfgPath, JSON.stringify(cfg));
      const r = await check(cfgPath);
      assert.equal(r.code, 2);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 2, r.stderr);
      assert.match(lines[0], /^admin\.tokenFile: /);
      assert.match(lines[1], /^admin\.listen: /);
      assert.ok(!r.stderr.includes("secret-token"), "the token never appears");
    });
  } finally {
    await topo.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
