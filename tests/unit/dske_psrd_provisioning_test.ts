/**
 * PSRD provisioning mistakes (issue 12 item 4): `psrd ingest` refuses a block made for another hub
 * (naming both ids) or another hub address, `psrd remove` scrubs and deletes a block, and `twofold hub`
 * refuses at start a state with several hub ids (naming them and their blocks) or a block whose
 * endpoint is not its own wg0 address.
 */
import assert from "node:assert/strict";
import { encodeBase64, toHex } from "../../src/encoding.ts";
import { readPsrdFile } from "../../src/dske/psrd-file.ts";
import { PsrdStore } from "../../src/dske/psrd-store.ts";
import { hubIngestProblem, hubStartProblem } from "../../src/dske/psrd-provisioning.ts";
import { psrdCommand } from "../../src/cli/psrd.ts";
import { CliError } from "../../src/cli/errors.ts";
import { parseHubConfig } from "../../src/config/hub-config.ts";
import { startHub } from "../../src/hub/hub.ts";

const PEER = encodeBase64(Uint8Array.from({ length: 32 }, (_, i) => 100 + i));
const HUB1 = "11".repeat(16);
const HUB2 = "22".repeat(16);

/** Runs `twofold psrd …` in process, capturing what it prints. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await psrdCommand(args), out: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Makes a pair for hub `hubId` at `ip`; returns the two file paths. */
async function pair(dir: string, name: string, hubId: string, ip: string) {
  const client = `${dir}/${name}.client.psrd`;
  const hub = `${dir}/${name}.hub.psrd`;
  await cli([
    "new",
    "--hub-endpoint",
    `${ip}:51831`,
    "--peer-id",
    PEER,
    "--hub-id",
    hubId,
    "--client-out",
    client,
    "--hub-out",
    hub,
  ]);
  return { client, hub, blockId: toHex((await readPsrdFile(hub)).blockId) };
}

const refusedWith = (re: RegExp) => (e: unknown) =>
  e instanceof CliError && e.exitCode === 2 && !e.message.includes("\n") && re.test(e.message);

Deno.test("PSRD provisioning mistakes", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-psrd-prov-" });
  try {
    const h1a = await pair(dir, "h1a", HUB1, "100.64.0.101");
    const h1b = await pair(dir, "h1b", HUB1, "100.64.0.101");
    const h2 = await pair(dir, "h2", HUB2, "100.64.0.102");
    const h1elsewhere = await pair(dir, "h1x", HUB1, "100.64.0.109");
    const state = `${dir}/hub-1-state`;

    await t.step("ingest refuses a block of another hub id, naming both ids; nothing stored", async () => {
      assert.equal((await cli(["ingest", "--state-dir", state, h1a.hub])).code, 0);
      await assert.rejects(
        () => cli(["ingest", "--state-dir", state, h2.hub]),
        refusedWith(new RegExp(`for hub id ${HUB2}, but this state belongs to hub id ${HUB1}`)),
      );
      const listed = await cli(["list", "--state-dir", state]);
      assert.ok(!listed.out.includes(h2.blockId), "not stored");
      assert.equal((await cli(["ingest", "--state-dir", state, h1b.hub])).code, 0, "the same hub is fine");
      // a node (client copies) holds blocks of many hubs: not refused
      const node = `${dir}/node-state`;
      assert.equal((await cli(["ingest", "--state-dir", node, h1a.client])).code, 0);
      assert.equal((await cli(["ingest", "--state-dir", node, h2.client])).code, 0);
    });

    await t.step(
      "ingest refuses a hub block for another address (given, or the one its blocks name)",
      async () => {
        await assert.rejects(
          () => cli(["ingest", "--state-dir", state, h1elsewhere.hub]),
          refusedWith(
            /names hub endpoint 100\.64\.0\.109:51831, but the blocks here name 100\.64\.0\.101:51831/,
          ),
        );
        await assert.rejects(
          () =>
            cli(["ingest", "--state-dir", `${dir}/fresh`, "--hub-address", "100.64.0.102", h1elsewhere.hub]),
          refusedWith(/not this hub's wg0 address 100\.64\.0\.102/),
        );
      },
    );

    await t.step("remove scrubs the pad, deletes the block and never lets it back in", async () => {
      const store = await PsrdStore.open(state);
      const dataPath = `${state}/psrd/blocks/${h1b.blockId}/data`;
      const before = await Deno.readFile(dataPath);
      assert.ok(before.some((b) => b !== 0));
      store.close();
      const r = await cli(["remove", "--state-dir", state, h1b.blockId]);
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`removed block ${h1b.blockId} .*pad overwritten with zeros`));
      await assert.rejects(() => Deno.stat(dataPath), Deno.errors.NotFound);
      assert.ok(!(await cli(["list", "--state-dir", state])).out.includes(h1b.blockId));
      await assert.rejects(
        () => cli(["ingest", "--state-dir", state, h1b.hub]),
        refusedWith(/ingested before/),
      );
      await assert.rejects(
        () => cli(["remove", "--state-dir", state, h1b.blockId]),
        refusedWith(/no block .* in /),
      );
      await assert.rejects(() => cli(["remove", "--state-dir", state, "xyz"]), refusedWith(/32 hex digits/));
    });

    await t.step("remove wipes the pad before deleting (the bytes on disk become zeros)", async () => {
      const s = `${dir}/wipe-state`;
      assert.equal((await cli(["ingest", "--state-dir", s, h2.hub])).code, 0);
      const store = await PsrdStore.open(s);
      const path = `${s}/psrd/blocks/${h2.blockId}/data`;
      // keep a handle on the file: after remove its (unlinked) content must be zeros
      const f = await Deno.open(path, { read: true });
      try {
        store.remove(h2.blockId);
        const buf = new Uint8Array((await f.stat()).size);
        await f.seek(0, Deno.SeekMode.Start);
        let got = 0;
        while (got < buf.length) got += (await f.read(buf.subarray(got))) ?? buf.length;
        assert.ok(buf.length > 0 && buf.every((b) => b === 0));
      } finally {
        f.close();
        store.close();
      }
    });

    await t.step(
      "twofold hub refuses several hub ids (naming them and their blocks) or a foreign address",
      async () => {
        const blocks = [
          { blockId: "aa".repeat(16), role: "hub" as const, hubId: HUB1, hubEndpoint: "100.64.0.101:51831" },
          { blockId: "bb".repeat(16), role: "hub" as const, hubId: HUB2, hubEndpoint: "100.64.0.102:51831" },
        ];
        const two = hubStartProblem(blocks, "100.64.0.101", "/var/lib/h")!;
        assert.match(
          two,
          new RegExp(`2 different hub ids: hub id ${HUB1} \\(block ${"aa".repeat(16)}\\); hub id ${HUB2}`),
        );
        assert.match(two, /twofold psrd remove --state-dir \/var\/lib\/h BLOCK_ID/);
        assert.match(
          hubStartProblem([blocks[1]], "100.64.0.101", "/s")!,
          /names hub endpoint 100\.64\.0\.102:51831, not this hub's wg0 address 100\.64\.0\.101/,
        );
        assert.equal(hubStartProblem([blocks[0]], "100.64.0.101", "/s"), null);
        assert.equal(hubIngestProblem([blocks[0]], { ...blocks[0], blockId: "cc".repeat(16) }), null);

        // …and `startHub` says so before bringing anything up (no root needed to see it).
        const hubState = `${dir}/hub-2-state`;
        assert.equal((await cli(["ingest", "--state-dir", hubState, h1a.hub])).code, 0);
        const cfg = parseHubConfig(
          JSON.stringify({
            hub: { name: "hub-2", privateKeyFile: "hub.key", stateDir: hubState },
            wg0: { listenPort: 51820, address: "100.64.0.102/10" },
            peers: [{ name: "node-a", publicKey: PEER, wgIp: "100.64.0.1" }],
          }),
          { baseDir: dir, checkFiles: false },
        );
        await assert.rejects(
          () => startHub(cfg),
          (e: Error) =>
            /names hub endpoint 100\.64\.0\.101:51831, not this hub's wg0 address 100\.64\.0\.102/.test(
              e.message,
            ),
        );
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
