/**
 * The status page in a real browser: two `twofold up` nodes in namespaces (tfu-a, tfu-b) with manual
 * PSK files and admin APIs on unix sockets, one `twofold ui` per node, and Debian's headless Chromium
 * driven over the DevTools protocol. The page shows the peer and its open gate on both nodes, goes
 * live, lists a key rotation (a new PSK file on both sides) within 1 s of the node publishing it, adds
 * and removes a lockdown entry with the token typed into the page (checked with GET
 * /v1/lockdown/ports), never stores the token, and logs no console error. Screenshots (wide and
 * narrow) go to a temporary directory whose paths are printed.
 * Needs root, /dev/net/tun, iproute2, ping and chromium.
 */
import assert from "node:assert/strict";
import type { LockdownState } from "../../src/admin/model.ts";
import { AdminClient } from "../../src/cli/admin-client.ts";
import { findBinary, integrationTest, requireBinary, requireRoot, requireTun } from "../helpers/prereq.ts";
import { type Netns, Proc, Topology, vethPair, waitUntil } from "../helpers/netns.ts";
import { type LabNode, startTwofoldUp, writeNodeConfig } from "../helpers/twofold_node.ts";
import { genKeyPair, genPresharedKey } from "../helpers/wg_device.ts";
import { ping } from "../helpers/measure.ts";
import { Browser } from "../helpers/cdp.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const A: LabNode = {
  name: "ui-a",
  keys: genKeyPair(),
  underlay: "10.239.0.1",
  wgIp: "100.64.19.1",
  aesIp: "100.127.19.1",
};
const B: LabNode = {
  name: "ui-b",
  keys: genKeyPair(),
  underlay: "10.239.0.2",
  wgIp: "100.64.19.2",
  aesIp: "100.127.19.2",
};

async function writePsk(path: string, psk: string): Promise<void> {
  await Deno.writeTextFile(`${path}.new`, psk + "\n", { mode: 0o600 });
  await Deno.chmod(`${path}.new`, 0o600);
  await Deno.rename(`${path}.new`, path);
}

async function nodeConfig(dir: string, self: LabNode, peer: LabNode, pskFile: string): Promise<string> {
  const path = await writeNodeConfig(dir, self, [peer]);
  const cfg = JSON.parse(await Deno.readTextFile(path));
  cfg.peers[0].pskFile = pskFile;
  cfg.admin = { listen: `unix:${dir}/${self.name}.sock` };
  // Manual keys that expire: the page then draws the key's age as a bar.
  cfg.keys = { ...cfg.keys, manualMaxAgeSeconds: 90 };
  await Deno.writeTextFile(path, JSON.stringify(cfg, null, 2));
  return path;
}

async function startNode(ns: Netns, config: string, procs: Proc[]): Promise<void> {
  const p = await startTwofoldUp(ns, config);
  procs.push(p);
  const ok = await waitUntil(() => p.exited || /admin API listening on/.test(p.output()), 10_000);
  assert.ok(ok && !p.exited, `the admin API did not start:\n${p.output()}`);
}

/** Starts `twofold ui` for the socket in the root namespace; returns its URL. */
async function startUi(socket: string, procs: Proc[]): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, "ui", "--admin", `unix:${socket}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const p = new Proc(child, `twofold ui ${socket}`);
  procs.push(p);
  let url: string | undefined;
  await waitUntil(
    () => (url = /(http:\/\/127\.0\.0\.1:\d+\/\S+\/)/.exec(p.output())?.[1]) !== undefined,
    15_000,
  );
  assert.ok(url, `twofold ui printed no URL:\n${p.output()}`);
  return url!;
}

/** The page's peers as "name: gate word" (what a reader sees). */
const PEERS_JS = `[...document.querySelectorAll("article.peer")].map((a) =>
  a.dataset.peer + ": " + (a.querySelector(".gate .state")?.textContent ?? "none"))`;

integrationTest(
  "status page in headless Chromium: both nodes' peers and gates, a rotation live, lockdown from the page",
  [requireRoot(), requireTun(), requireBinary("ip"), requireBinary("ping"), requireBinary("chromium")],
  async (t) => {
    const topo = new Topology();
    const dir = await Deno.makeTempDir({ prefix: "tfu-" });
    const shots = await Deno.makeTempDir({ prefix: "tfu-shots-" });
    const procs: Proc[] = [];
    let browser: Browser | undefined;
    const client = new AdminClient(
      { kind: "unix", path: `${dir}/${A.name}.sock` },
      `${dir}/state-${A.name}/admin.token`,
    );
    try {
      const a = await topo.netns("tfu-a", { replaceExisting: true });
      const b = await topo.netns("tfu-b", { replaceExisting: true });
      await vethPair(a, "tfu-va", `${A.underlay}/24`, b, "tfu-vb", `${B.underlay}/24`);
      const pskA = `${dir}/a.psk`;
      const pskB = `${dir}/b.psk`;
      const first = genPresharedKey();
      await writePsk(pskA, first);
      await writePsk(pskB, first);
      await startNode(a, await nodeConfig(dir, A, B, pskA), procs);
      await startNode(b, await nodeConfig(dir, B, A, pskB), procs);
      const token = (await Deno.readTextFile(`${dir}/state-${A.name}/admin.token`)).trim();
      assert.ok(
        await waitUntil(
          async () => (await ping(a, B.aesIp, { count: 1, timeoutS: 1 })).received === 1,
          15_000,
        ),
        "aes0 comes up with the PSK files",
      );
      const urlA = await startUi(`${dir}/${A.name}.sock`, procs);
      const urlB = await startUi(`${dir}/${B.name}.sock`, procs);
      browser = await Browser.launch(findBinary("chromium")!);
      const page = browser;
      await page.viewport(1280, 900);

      await t.step("each node's page shows its peer with the gate open, and goes live", async () => {
        for (const [url, self, peer] of [[urlB, B, A], [urlA, A, B]] as const) {
          await page.open(url);
          assert.ok(
            await page.waitFor(`document.getElementById("live").textContent.startsWith("live")`, 5000),
          );
          assert.equal(await page.eval<string>(`document.getElementById("status").dataset.node`), self.name);
          assert.deepEqual(await page.eval<string[]>(PEERS_JS), [`${peer.name}: open`]);
          const text = await page.eval<string>("document.body.innerText");
          for (const s of ["Noise_IKpsk2_25519_AESGCM_BLAKE2s", "AES-256-GCM", "1360", "manual, epoch 1"]) {
            assert.ok(text.includes(s), `${self.name}'s page shows ${s}`);
          }
        }
        // A second poll has come, so the graphs have two samples to draw.
        assert.ok(await page.waitFor(`document.querySelector("svg.graph polyline.rx")`, 5000), "a graph");
      });

      await t.step(
        "a key rotation appears in the live event list within 1 s of being published",
        async () => {
          const second = genPresharedKey();
          await writePsk(pskA, second);
          await writePsk(pskB, second);
          const find = `[...document.querySelectorAll("#events li")].find((li) =>
          li.querySelector("b").textContent === "key-rotated" &&
          li.textContent.includes("${B.name}") && Number(li.dataset.id) > 0 && li.dataset.seen !== "old")`;
          // Mark what is listed now, so only a new item counts.
          await page.eval(`document.querySelectorAll("#events li").forEach((li) => li.dataset.seen = "old")`);
          let seenAt = 0;
          const ok = await waitUntil(
            async () => {
              if (await page.eval<boolean>(`Boolean(${find})`)) seenAt = Date.now();
              return seenAt > 0;
            },
            5000,
            10,
          );
          assert.ok(ok, "a key-rotated event for the peer is listed");
          const at = await page.eval<string>(`${find}.querySelector("time").dateTime`);
          const delay = seenAt - Date.parse(at);
          console.log(`rotation: event published → listed on the page ${delay} ms`);
          assert.ok(delay < 1000, `listed ${delay} ms after the node published it`);
          assert.ok(
            await page.waitFor(`document.body.innerText.includes("manual, epoch 2")`, 3000),
            "epoch 2",
          );
        },
      );

      await t.step("with JavaScript off the page is a static snapshot", async () => {
        await page.send("Emulation.setScriptExecutionDisabled", { value: true });
        try {
          await page.open(urlA);
          const text = await page.eval<string>("document.body.innerText");
          assert.ok(text.includes("snapshot (live updates need JavaScript)"), "not live");
          assert.deepEqual(await page.eval<string[]>(PEERS_JS), [`${B.name}: open`]);
          assert.ok(text.includes("key-rotated"), "the latest events are listed");
        } finally {
          await page.send("Emulation.setScriptExecutionDisabled", { value: false });
        }
        await page.open(urlA);
        assert.ok(await page.waitFor(`document.getElementById("live").textContent.startsWith("live")`, 5000));
      });

      await t.step("screenshots, wide and narrow", async () => {
        // Some traffic, so that the throughput graphs have something to draw.
        await a.exec(["ping", "-n", "-q", "-c", "30", "-i", "0.2", "-s", "1200", "-W", "2", B.aesIp]);
        const wide = `${shots}/status-wide.png`;
        const narrow = `${shots}/status-narrow.png`;
        await page.screenshot(wide);
        await page.viewport(390, 844, true);
        await new Promise((r) => setTimeout(r, 1200));
        assert.equal(
          await page.eval<number>("document.documentElement.scrollWidth"),
          390,
          "no sideways scroll",
        );
        await page.screenshot(narrow);
        await page.viewport(1280, 900);
        for (const p of [wide, narrow]) assert.ok((await Deno.stat(p)).size > 10_000, p);
        console.log(`screenshots: ${wide} ${narrow}`);
      });

      await t.step(
        "read-only until the token is typed; then a lockdown entry is added and removed",
        async () => {
          assert.equal(await page.eval<boolean>(`document.querySelector(".lockdown-edit").hidden`), true);
          await page.eval(`document.getElementById("token").focus()`);
          await page.type(token);
          await page.eval(`document.querySelector("#token-form button[type=submit]").click()`);
          assert.ok(
            await page.waitFor(`!document.querySelector(".lockdown-edit").hidden`, 2000),
            "controls shown",
          );
          await page.eval(`document.getElementById("add-proto").value = "tcp"`);
          await page.eval(`document.getElementById("add-port").focus()`);
          await page.type("8443");
          await page.eval(`document.querySelector("#lockdown-add button").click()`);
          assert.ok(
            await page.waitFor(
              `document.getElementById("lockdown-result").textContent.startsWith("added tcp/8443")`,
              3000,
            ),
            await page.eval<string>(`document.getElementById("lockdown-result").textContent`),
          );
          const added = await client.json<{ ports: { proto: string; port: number | string }[] }>(
            "GET",
            "/v1/lockdown/ports",
          );
          assert.deepEqual(added.ports.map((p) => `${p.proto}/${p.port}`), ["tcp/8443"]);
          assert.ok(await page.waitFor(`document.querySelector('[data-remove="tcp/8443"]')`, 3000), "listed");
          assert.ok(await page.waitFor(`!document.querySelector('[data-remove="tcp/8443"]').hidden`, 3000));
          await page.eval(`document.querySelector('[data-remove="tcp/8443"]').click()`);
          assert.ok(
            await page.waitFor(
              `document.getElementById("lockdown-result").textContent.startsWith("removed")`,
              3000,
            ),
          );
          const removed = await client.json<LockdownState>("GET", "/v1/lockdown/ports");
          assert.deepEqual(removed.ports, []);
          assert.ok(
            await page.waitFor(
              `[...document.querySelectorAll("#events li b")].some((b) => b.textContent === "lockdown-changed")`,
              3000,
            ),
            "the change is in the event list",
          );
        },
      );

      await t.step("the token is in no URL, cookie or storage; no console error", async () => {
        const kept = await page.eval<string>(
          `location.href + "|" + document.cookie + "|" + JSON.stringify(localStorage) + "|" + JSON.stringify(sessionStorage) + "|" + document.documentElement.outerHTML`,
        );
        assert.ok(!kept.includes(token), "the token is kept in memory only");
        assert.deepEqual(page.errors, []);
      });
    } finally {
      client.close();
      await browser?.close();
      for (const p of procs) await p.kill().catch(() => {});
      await topo.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
