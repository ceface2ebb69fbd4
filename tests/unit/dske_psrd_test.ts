import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { decodeBase64, encodeBase64, toHex } from "../../src/encoding.ts";
import {
  createPsrdPair,
  decodePsrdFile,
  encodePsrdFile,
  PSRD_MAX_REGION_BYTES,
  PsrdError,
  type PsrdFile,
  readPsrdFile,
  writePsrdFile,
} from "../../src/dske/psrd-file.ts";
import { type BlockInfo, PsrdExhausted, PsrdStore } from "../../src/dske/psrd-store.ts";
import { psrdCommand } from "../../src/cli/psrd.ts";
import { CliError } from "../../src/cli/errors.ts";

const PEER = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
const C2H = 1024;
const H2C = 2048;

function pair(opts: { c2hLen?: number; h2cLen?: number } = {}) {
  return createPsrdPair({
    hubEndpoint: "10.7.0.1:51831",
    peerId: PEER,
    c2hLen: opts.c2hLen ?? C2H,
    h2cLen: opts.h2cLen ?? H2C,
  });
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-psrd-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The send and receive regions of `f` as seen by its role. */
function regions(f: PsrdFile): { tx: Uint8Array; rx: Uint8Array } {
  const c2h = f.data.subarray(0, f.c2hLen);
  const h2c = f.data.subarray(f.c2hLen);
  return f.role === "client" ? { tx: c2h, rx: h2c } : { tx: h2c, rx: c2h };
}

/** Asserts `fn` throws an error of `cls` whose message matches `re` and holds no data bytes of `f`. */
function throwsClean(
  fn: () => unknown,
  cls: new (message: string) => Error,
  re: RegExp,
  f?: PsrdFile,
  label = "",
): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof cls, `${label}: expected ${cls.name}, got ${err}`);
  assert.match((err as Error).message, re, label);
  if (f) {
    const msg = (err as Error).message;
    assert.ok(!msg.includes(encodeBase64(f.data.subarray(0, 24))), "no base64 data in the message");
    assert.ok(!msg.includes(toHex(f.data.subarray(0, 8))), "no hex data in the message");
  }
}

/** Runs `body` in a child Deno process that opens the store in `stateDir`, then kills itself with SIGKILL. */
async function crashingChild(stateDir: string, body: string): Promise<unknown> {
  const storeUrl = new URL("../../src/dske/psrd-store.ts", import.meta.url).href;
  const script = `${stateDir}/child.ts`;
  await Deno.writeTextFile(
    script,
    `import { PsrdStore } from ${JSON.stringify(storeUrl)};
const store = await PsrdStore.open(${JSON.stringify(stateDir)});
const result = (() => { ${body} })();
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(result) + "\\n"));
Deno.kill(Deno.pid, "SIGKILL");
`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("PSRD file: pair creation, encoding and validation", async (t) => {
  await t.step("a pair shares ids and data; roles differ; copies are independent", () => {
    const { client, hub } = pair();
    assert.equal(client.role, "client");
    assert.equal(hub.role, "hub");
    for (const k of ["hubId", "clientId", "peerId", "blockId", "data"] as const) {
      assert.deepEqual(client[k], hub[k]);
    }
    assert.equal(client.data.length, C2H + H2C);
    assert.deepEqual(client.peerId, PEER);
    client.data[0] ^= 1;
    assert.notEqual(client.data[0], hub.data[0]);
    const other = pair();
    assert.notDeepEqual(other.client.blockId, client.blockId);
    assert.notDeepEqual(other.client.data, client.data);
  });

  await t.step("given ids are kept; the random source supplies the rest", () => {
    const hubId = new Uint8Array(16).fill(0xaa);
    const clientId = new Uint8Array(16).fill(0xbb);
    let calls = 0;
    const { client } = createPsrdPair({
      hubId,
      clientId,
      hubEndpoint: "[fd00::1]:51831",
      peerId: PEER,
      c2hLen: C2H,
      h2cLen: H2C,
      random: (n) => {
        calls++;
        return new Uint8Array(n).fill(calls);
      },
    });
    assert.deepEqual(client.hubId, hubId);
    assert.deepEqual(client.clientId, clientId);
    assert.deepEqual(client.blockId, new Uint8Array(16).fill(1));
    assert.deepEqual(client.data, new Uint8Array(C2H + H2C).fill(2));
  });

  await t.step("region lengths and the endpoint are checked", () => {
    throwsClean(() => pair({ c2hLen: 1023 }), PsrdError, /c2h_len/);
    throwsClean(() => pair({ h2cLen: PSRD_MAX_REGION_BYTES + 1 }), PsrdError, /h2c_len/);
    throwsClean(
      () => createPsrdPair({ hubEndpoint: "10.0.0.1", peerId: PEER, c2hLen: C2H, h2cLen: H2C }),
      PsrdError,
      /hub_endpoint/,
    );
    throwsClean(
      () => createPsrdPair({ hubEndpoint: "h:70000", peerId: PEER, c2hLen: C2H, h2cLen: H2C }),
      PsrdError,
      /hub_endpoint/,
    );
    throwsClean(
      () => createPsrdPair({ hubEndpoint: "h:1", peerId: PEER.subarray(1), c2hLen: C2H, h2cLen: H2C }),
      PsrdError,
      /peer_id/,
    );
  });

  await t.step("encode/decode round trip with hex ids, base64 data and sha256", () => {
    const { hub } = pair();
    const text = encodePsrdFile(hub);
    const json = JSON.parse(text);
    assert.deepEqual(Object.keys(json), [
      "version",
      "role",
      "hub_id",
      "hub_endpoint",
      "client_id",
      "peer_id",
      "block_id",
      "c2h_len",
      "h2c_len",
      "sha256",
      "data",
    ]);
    assert.equal(json.block_id, toHex(hub.blockId));
    assert.equal(json.peer_id, toHex(PEER));
    assert.equal(json.data, encodeBase64(hub.data));
    assert.equal(json.sha256, createHash("sha256").update(hub.data).digest("hex"));
    assert.deepEqual(decodePsrdFile(text), hub);
  });

  await t.step("every corrupted field is rejected, naming the field and never the data", () => {
    const { client } = pair();
    const good = JSON.parse(encodePsrdFile(client));
    const flipped = client.data.slice();
    flipped[100] ^= 0x40;
    const cases: [string, (o: Record<string, unknown>) => void, RegExp][] = [
      ["sha mismatch (data altered)", (o) => (o.data = encodeBase64(flipped)), /"sha256" does not match/],
      ["sha not hex", (o) => (o.sha256 = "zz" + (o.sha256 as string).slice(2)), /"sha256"/],
      ["c2h_len disagrees with data", (o) => (o.c2h_len = C2H + 4), /"data" holds/],
      [
        "data truncated",
        (o) => (o.data = encodeBase64(client.data.subarray(0, C2H + H2C - 3))),
        /"data" holds/,
      ],
      ["c2h_len below minimum", (o) => (o.c2h_len = 1000), /"c2h_len"/],
      ["h2c_len above 1 GiB", (o) => (o.h2c_len = PSRD_MAX_REGION_BYTES + 1), /"h2c_len"/],
      ["h2c_len not an integer", (o) => (o.h2c_len = 2048.5), /"h2c_len"/],
      ["h2c_len a string", (o) => (o.h2c_len = "2048"), /"h2c_len"/],
      ["version 2", (o) => (o.version = 2), /"version"/],
      ["role relay", (o) => (o.role = "relay"), /"role"/],
      ["hub_id short", (o) => (o.hub_id = (o.hub_id as string).slice(2)), /"hub_id"/],
      ["client_id not hex", (o) => (o.client_id = "g".repeat(32)), /"client_id"/],
      ["peer_id short", (o) => (o.peer_id = (o.peer_id as string).slice(0, 62)), /"peer_id"/],
      ["block_id missing", (o) => delete o.block_id, /"block_id" is missing/],
      ["hub_endpoint without port", (o) => (o.hub_endpoint = "hub.example"), /"hub_endpoint"/],
      [
        "data not base64",
        (o) => (o.data = "!!!!" + (o.data as string).slice(4)),
        /"data" is not valid base64/,
      ],
      ["unknown field", (o) => (o.extra = 1), /unknown field "extra"/],
    ];
    for (const [name, mutate, re] of cases) {
      const o = structuredClone(good);
      mutate(o);
      throwsClean(() => decodePsrdFile(JSON.stringify(o)), PsrdError, re, client, name);
    }
    throwsClean(() => decodePsrdFile("{not json"), PsrdError, /not valid JSON/);
    throwsClean(() => decodePsrdFile("[1]"), PsrdError, /not a JSON object/);
    assert.deepEqual(decodePsrdFile(JSON.stringify(good)), client, "the unmodified object still decodes");
  });

  await t.step("files: written 0600, never overwritten, wider permissions refused", async () => {
    await withDir(async (dir) => {
      const { client, hub } = pair();
      const path = `${dir}/client.psrd`;
      await writePsrdFile(path, client);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      assert.deepEqual(await readPsrdFile(path), client);
      const before = await Deno.readTextFile(path);
      await assert.rejects(
        () => writePsrdFile(path, hub),
        (e) => e instanceof PsrdError && /already exists/.test(e.message),
      );
      assert.equal(await Deno.readTextFile(path), before, "the existing file is untouched");
      await Deno.chmod(path, 0o644);
      await assert.rejects(
        () => readPsrdFile(path),
        (e) => e instanceof PsrdError && e.message.includes(`chmod 600 ${path}`) && /0644/.test(e.message),
      );
      await Deno.chmod(path, 0o600);
      await Deno.writeTextFile(path, before.replace('"version": 1', '"version": 3'));
      await assert.rejects(
        () => readPsrdFile(path),
        (e) => e instanceof PsrdError && e.message.startsWith(path) && /"version"/.test(e.message),
      );
      await assert.rejects(
        () => readPsrdFile(`${dir}/absent`),
        (e) => e instanceof PsrdError && /does not exist/.test(e.message),
      );
    });
  });
});

Deno.test("PSRD store: ingest, reservation, acceptance, crash safety, scrubbing", async (t) => {
  await t.step(
    "ingest stores 0600 data; the same block id is refused, also after reopen and removal",
    async () => {
      await withDir(async (dir) => {
        const { client } = pair();
        const id = toHex(client.blockId);
        let store = await PsrdStore.open(dir);
        const info = store.ingest(client);
        assert.equal(info.blockId, id);
        assert.equal(info.role, "client");
        assert.equal(info.txLen, C2H);
        assert.equal(info.rxLen, H2C);
        assert.equal(info.txNext, 0);
        assert.equal(info.peerId, toHex(PEER));
        assert.equal((await Deno.stat(`${dir}/psrd/blocks/${id}/data`)).mode! & 0o777, 0o600);
        assert.deepEqual(await Deno.readFile(`${dir}/psrd/blocks/${id}/data`), client.data);
        throwsClean(() => store.ingest(client), PsrdError, /ingested before/, client);
        store.close();

        store = await PsrdStore.open(dir);
        assert.deepEqual(store.blocks().map((b) => b.blockId), [id]);
        throwsClean(() => store.ingest({ ...client, role: "hub" }), PsrdError, /ingested before/);
        store.close();

        await Deno.remove(`${dir}/psrd/blocks/${id}`, { recursive: true }); // the operator retires the block
        store = await PsrdStore.open(dir);
        assert.equal(store.blocks().length, 0);
        throwsClean(() => store.ingest(client), PsrdError, /ingested before/);
        store.close();
      });
    },
  );

  await t.step("findBlock filters and prefers the block with the most send bytes left", async () => {
    await withDir(async (dir) => {
      const store = await PsrdStore.open(dir);
      const hubId = new Uint8Array(16).fill(7);
      const mk = (c2hLen: number, role: "client" | "hub") => {
        const p = createPsrdPair({ hubId, hubEndpoint: "h:1", peerId: PEER, c2hLen, h2cLen: H2C });
        return store.ingest(p[role]);
      };
      const small = mk(1024, "client");
      const big = mk(4096, "client");
      const hubSide = mk(8192, "hub");
      assert.equal(store.findBlock({ hubId: toHex(hubId), role: "client" })?.blockId, big.blockId);
      assert.equal(store.findBlock({ role: "hub" })?.blockId, hubSide.blockId);
      assert.equal(store.findBlock({ clientId: small.clientId })?.blockId, small.blockId);
      assert.equal(store.findBlock({ hubId: "00".repeat(16) }), undefined);
      store.reserveTx(big.blockId, 3500);
      assert.equal(store.findBlock({ role: "client" })?.blockId, small.blockId);
      assert.equal(store.block(big.blockId.toUpperCase())?.txRemaining, 596);
      store.close();
    });
  });

  await t.step(
    "reserveTx: sequential, never overlapping, the pad is the send region, across reopen",
    async () => {
      for (const role of ["client", "hub"] as const) {
        await withDir(async (dir) => {
          const f = pair()[role];
          const { tx } = regions(f);
          const id = toHex(f.blockId);
          let store = await PsrdStore.open(dir);
          store.ingest(f);
          let expected = 0;
          for (let i = 0; i < 20; i++) {
            const used = 32 + (i % 3) * 8;
            const r = store.reserveTx(id, used);
            assert.equal(r.offset, expected);
            assert.deepEqual(r.pad, tx.subarray(expected, expected + used));
            expected += used;
            assert.equal(store.block(id)?.txNext, expected);
          }
          store.close();
          store = await PsrdStore.open(dir);
          assert.equal(store.block(id)?.txNext, expected);
          const r = store.reserveTx(id, 32);
          assert.equal(r.offset, expected);
          assert.deepEqual(r.pad, tx.subarray(expected, expected + 32));
          store.close();
        });
      }
    },
  );

  await t.step(
    "a crash (SIGKILL, no close) after reservations never lets their bytes be reserved again",
    async () => {
      await withDir(async (dir) => {
        const f = pair().client;
        const id = toHex(f.blockId);
        const store = await PsrdStore.open(dir);
        store.ingest(f);
        store.close();
        const childOffsets = await crashingChild(
          dir,
          `const o = []; for (let i = 0; i < 5; i++) o.push(store.reserveTx(${
            JSON.stringify(id)
          }, 32).offset); return o;`,
        ) as number[];
        assert.deepEqual(childOffsets, [0, 32, 64, 96, 128]);
        const again = await PsrdStore.open(dir);
        assert.equal(again.block(id)?.txNext, 160);
        assert.equal(again.reserveTx(id, 32).offset, 160);
        again.close();
      });
    },
  );

  await t.step("exhaustion throws PsrdExhausted and never wraps, also after reopen", async () => {
    await withDir(async (dir) => {
      const f = pair().hub; // hub sends from H2C (2048 bytes)
      const id = toHex(f.blockId);
      let store = await PsrdStore.open(dir);
      store.ingest(f);
      for (let i = 0; i < 63; i++) store.reserveTx(id, 32);
      assert.equal(store.block(id)?.txRemaining, 32);
      assert.throws(() => store.reserveTx(id, 33), PsrdExhausted);
      assert.equal(store.block(id)?.txNext, 2016, "a refused reservation consumes nothing");
      assert.equal(store.reserveTx(id, 32).offset, 2016);
      assert.throws(() => store.reserveTx(id, 1), PsrdExhausted);
      assert.throws(() => store.reserveTx(id, 0), PsrdError);
      store.close();
      store = await PsrdStore.open(dir);
      assert.equal(store.block(id)?.txRemaining, 0);
      assert.throws(() => store.reserveTx(id, 1), PsrdExhausted);
      store.close();
    });
  });

  await t.step(
    "canAccept/acceptRx: monotonic, replays refused also after reopen and after a crash",
    async () => {
      await withDir(async (dir) => {
        const { client, hub } = pair();
        const id = toHex(client.blockId);
        const { rx } = regions(client);
        let store = await PsrdStore.open(dir);
        store.ingest(client);
        assert.equal(store.canAccept(id, 0, 32), true);
        assert.equal(store.canAccept(id, H2C - 32, 33), false, "past the region end");
        assert.equal(store.canAccept(id, -1, 32), false);
        assert.equal(store.canAccept(id, 0, 0), false);
        assert.equal(store.canAccept("00".repeat(16), 0, 32), false);
        assert.deepEqual(store.rxPad(id, 100, 32), rx.subarray(100, 132));
        assert.equal(store.block(id)?.rxNext, 0, "rxPad and canAccept change nothing");
        store.acceptRx(id, 100, 32); // a gap: bytes 0..99 are skipped for good
        assert.equal(store.block(id)?.rxNext, 132);
        assert.equal(store.canAccept(id, 0, 32), false);
        assert.equal(store.canAccept(id, 100, 32), false);
        assert.equal(store.canAccept(id, 131, 32), false);
        assert.equal(store.canAccept(id, 132, 32), true);
        assert.throws(() => store.acceptRx(id, 100, 32), PsrdError);
        assert.throws(() => store.rxPad(id, 100, 32), PsrdError);
        assert.equal(store.block(id)?.rxNext, 132);
        store.close();

        store = await PsrdStore.open(dir);
        assert.equal(store.canAccept(id, 100, 32), false);
        store.close();
        const accepted = await crashingChild(
          dir,
          `store.acceptRx(${JSON.stringify(id)}, 200, 64); return store.block(${JSON.stringify(id)}).rxNext;`,
        );
        assert.equal(accepted, 264);
        store = await PsrdStore.open(dir);
        assert.equal(store.canAccept(id, 200, 64), false, "the replay after a crash is refused");
        assert.equal(store.canAccept(id, 264, 32), true);
        store.close();

        // The hub's send pad is the client's receive pad at the same offset.
        await withDir(async (hubDir) => {
          const hubStore = await PsrdStore.open(hubDir);
          hubStore.ingest(hub);
          hubStore.reserveTx(id, 300);
          const r = hubStore.reserveTx(id, 64);
          assert.deepEqual(r.pad, rx.subarray(r.offset, r.offset + 64));
          hubStore.close();
        });
      });
    },
  );

  await t.step("scrub zeroes exactly the consumed bytes on disk; automatic and at close", async () => {
    await withDir(async (dir) => {
      const f = pair().client;
      const id = toHex(f.blockId);
      const dataPath = `${dir}/psrd/blocks/${id}/data`;
      const store = await PsrdStore.open(dir, { scrubEvery: 3 });
      store.ingest(f);
      store.reserveTx(id, 40);
      store.acceptRx(id, 10, 50);
      assert.deepEqual(await Deno.readFile(dataPath), f.data, "nothing scrubbed before the batch is full");
      store.reserveTx(id, 24); // third operation: automatic scrub
      const expected = f.data.slice();
      expected.fill(0, 0, 64); // C2H [0, 64) sent
      expected.fill(0, C2H, C2H + 60); // H2C [0, 60) received or skipped
      assert.deepEqual(await Deno.readFile(dataPath), expected);
      store.reserveTx(id, 16);
      store.scrub();
      expected.fill(0, 64, 80);
      assert.deepEqual(await Deno.readFile(dataPath), expected);
      store.acceptRx(id, 100, 32);
      store.close();
      expected.fill(0, C2H + 60, C2H + 132);
      assert.deepEqual(await Deno.readFile(dataPath), expected, "close scrubs the rest");
      const rest = await Deno.readFile(dataPath);
      assert.deepEqual(rest.subarray(80, C2H), f.data.subarray(80, C2H), "unconsumed send bytes intact");
      assert.deepEqual(
        rest.subarray(C2H + 132),
        f.data.subarray(C2H + 132),
        "unconsumed receive bytes intact",
      );
    });
  });

  await t.step("the low-water callback fires once per block, and again on a later open", async () => {
    await withDir(async (dir) => {
      const f = pair({ h2cLen: 4096 }).client;
      const id = toHex(f.blockId);
      const seen: BlockInfo[] = [];
      let store = await PsrdStore.open(dir, { lowWaterBytes: 200, onLowWater: (b) => seen.push(b) });
      store.ingest(f);
      while (store.block(id)!.txRemaining - 32 >= 200) store.reserveTx(id, 32);
      assert.equal(seen.length, 0);
      store.reserveTx(id, 32);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].blockId, id);
      assert.ok(seen[0].txRemaining < 200);
      store.reserveTx(id, 32);
      store.acceptRx(id, 4000, 32);
      assert.equal(seen.length, 1, "only once");
      store.close();
      store = await PsrdStore.open(dir, { lowWaterBytes: 200, onLowWater: (b) => seen.push(b) });
      assert.equal(seen.length, 2, "a restarted service is alarmed again");
      store.close();
    });
  });

  await t.step("a missing or corrupt state file fails closed; so does a lost ingest record", async () => {
    await withDir(async (dir) => {
      const f = pair().client;
      const id = toHex(f.blockId);
      const store = await PsrdStore.open(dir);
      store.ingest(f);
      store.reserveTx(id, 64);
      store.close();
      const statePath = `${dir}/psrd/blocks/${id}/state.json`;
      const good = await Deno.readTextFile(statePath);
      const opensWith = async (re: RegExp) => {
        await assert.rejects(() => PsrdStore.open(dir), (e) => e instanceof PsrdError && re.test(e.message));
      };
      await Deno.writeTextFile(statePath, good.slice(0, 40));
      await opensWith(/state file .*state\.json is corrupt .*refusing to open/);
      await Deno.writeTextFile(statePath, good.replace('"tx_next":64', `"tx_next":${C2H + 1}`));
      await opensWith(/corrupt \(a watermark lies beyond its region\)/);
      await Deno.remove(statePath);
      await opensWith(/state file .*state\.json is missing.*refusing to open/);
      await Deno.writeTextFile(statePath, good);
      await Deno.rename(`${dir}/psrd/ingested.json`, `${dir}/psrd/saved.json`);
      await opensWith(/ingested\.json is missing/);
      await Deno.rename(`${dir}/psrd/saved.json`, `${dir}/psrd/ingested.json`);
      const ok = await PsrdStore.open(dir);
      assert.equal(ok.block(id)?.txNext, 64, "the restored state is used as it was");
      ok.close();
    });
  });

  await t.step("one writer at a time; a read-only view works alongside and cannot write", async () => {
    await withDir(async (dir) => {
      const f = pair().client;
      const id = toHex(f.blockId);
      const store = await PsrdStore.open(dir);
      store.ingest(f);
      await assert.rejects(
        () => PsrdStore.open(dir),
        (e) => e instanceof PsrdError && /in use/.test(e.message),
      );
      const view = await PsrdStore.open(dir, { readOnly: true });
      assert.equal(view.block(id)?.txRemaining, C2H);
      assert.throws(() => view.reserveTx(id, 32), PsrdError);
      view.close();
      store.close();
      const again = await PsrdStore.open(dir);
      again.close();
    });
  });
});

/** Runs the CLI with console output captured. */
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

Deno.test("twofold psrd: new, ingest, list", async (t) => {
  await withDir(async (dir) => {
    const clientOut = `${dir}/client.psrd`;
    const hubOut = `${dir}/hub.psrd`;
    const base = ["new", "--hub-endpoint", "10.7.0.1:51831", "--peer-id", encodeBase64(PEER)];

    await t.step("new writes two 0600 files holding the same block", async () => {
      const hubId = "0123456789abcdef0123456789abcdef";
      const r = await cli([
        ...base,
        "--hub-id",
        hubId,
        "--c2h",
        "2K",
        "--h2c",
        "4096",
        "--client-out",
        clientOut,
        "--hub-out",
        hubOut,
      ]);
      assert.equal(r.code, 0);
      for (const p of [clientOut, hubOut]) assert.equal((await Deno.stat(p)).mode! & 0o777, 0o600);
      const client = await readPsrdFile(clientOut);
      const hub = await readPsrdFile(hubOut);
      assert.equal(client.role, "client");
      assert.equal(hub.role, "hub");
      assert.deepEqual(client.data, hub.data);
      assert.deepEqual(client.blockId, hub.blockId);
      assert.equal(toHex(client.hubId), hubId);
      assert.deepEqual(client.peerId, PEER);
      assert.equal(client.c2hLen, 2048);
      assert.equal(client.h2cLen, 4096);
      assert.ok(r.out.includes(toHex(client.blockId)));
      assert.ok(!r.out.includes(encodeBase64(client.data.subarray(0, 24))));
    });

    await t.step("new refuses to overwrite, and rejects bad options by name", async () => {
      const before = await Deno.readTextFile(clientOut);
      const fresh = `${dir}/other.psrd`;
      const refused = async (args: string[], re: RegExp) => {
        await assert.rejects(
          () => cli(args),
          (e) => e instanceof CliError && e.exitCode === 2 && re.test(e.message),
        );
      };
      await refused(
        [...base, "--client-out", clientOut, "--hub-out", fresh],
        /--client-out .* already exists/,
      );
      assert.equal(await Deno.readTextFile(clientOut), before);
      await assert.rejects(() => Deno.stat(fresh), Deno.errors.NotFound);
      await refused([...base, "--c2h", "100", "--client-out", fresh, "--hub-out", `${dir}/h2`], /--c2h/);
      await refused(
        [...base, "--hub-id", "abc", "--client-out", fresh, "--hub-out", `${dir}/h2`],
        /--hub-id/,
      );
      await refused(
        ["new", "--hub-endpoint", "h:1", "--client-out", fresh, "--hub-out", `${dir}/h2`],
        /--peer-id/,
      );
      await refused(
        [...base, "--peer-id", "AAAA", "--client-out", fresh, "--hub-out", `${dir}/h2`],
        /--peer-id/,
      );
      await refused(
        [...base, "--hub-endpoint", "nohost", "--client-out", fresh, "--hub-out", `${dir}/h2`],
        /--hub-endpoint/,
      );
      await refused([...base, "--bogus", "--client-out", fresh, "--hub-out", `${dir}/h2`], /--bogus/);
      await refused(["frobnicate"], /unknown subcommand/);
    });

    await t.step("ingest once; the second ingest of the same file fails; list shows no data", async () => {
      const stateDir = `${dir}/state`;
      const first = await cli(["ingest", "--state-dir", stateDir, clientOut]);
      assert.equal(first.code, 0);
      await assert.rejects(
        () => cli(["ingest", "--state-dir", stateDir, clientOut]),
        (e) => e instanceof CliError && /ingested before/.test(e.message),
      );
      await assert.rejects(
        () => cli(["ingest", clientOut]),
        (e) => e instanceof CliError && /--state-dir/.test(e.message),
      );
      const client = await readPsrdFile(clientOut);
      const listed = await cli(["list", "--state-dir", stateDir]);
      assert.equal(listed.code, 0);
      assert.ok(listed.out.includes(toHex(client.blockId)));
      assert.ok(listed.out.includes("2048/2048"));
      assert.ok(!listed.out.includes(encodeBase64(client.data.subarray(0, 24))));
      assert.ok(!listed.out.includes(toHex(client.data.subarray(0, 8))));
    });

    await t.step(
      "ingest refuses a missing, corrupt or tampered file: exit 2, one line, nothing stored",
      async () => {
        const stateDir = `${dir}/state-bad`;
        const refused = async (path: string, re: RegExp) => {
          await assert.rejects(
            () => cli(["ingest", "--state-dir", stateDir, path]),
            (e) =>
              e instanceof CliError && e.exitCode === 2 && re.test(e.message) && !e.message.includes("\n"),
          );
        };
        await refused(`${dir}/absent.psrd`, /^psrd ingest: PSRD file .*absent\.psrd does not exist/);
        const text = await Deno.readTextFile(hubOut);
        const tampered = `${dir}/tampered.psrd`;
        const obj = JSON.parse(text);
        const data = decodeBase64(obj.data);
        data[0] ^= 1;
        obj.data = encodeBase64(data);
        await Deno.writeTextFile(tampered, JSON.stringify(obj), { mode: 0o600 });
        await refused(tampered, /"sha256" does not match the data \(corrupt or altered file\)/);
        const cut = `${dir}/cut.psrd`;
        await Deno.writeTextFile(cut, text.slice(0, text.length / 2), { mode: 0o600 });
        await refused(cut, /not valid JSON/);
        const listed = await cli(["list", "--state-dir", stateDir]);
        assert.match(listed.out, /no PSRD blocks/);
      },
    );
  });
});
