import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { NETMAP_HELP, NETMAP_SUBCOMMANDS } from "../../src/cli/netmap.ts";
import { renderHelp } from "../../src/cli/help.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto/x25519.ts";
import { encodeBase64 } from "../../src/encoding.ts";
import { parseNetmap } from "../../src/netmap/schema.ts";
import { formatIpv4Number } from "../../src/netmap/ipv4.ts";

const ENTRY = fileURLToPath(new URL("../../main.ts", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function netmap(cwd: string, ...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", ENTRY, "netmap", ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function ok(r: Run): string {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout;
}

/** Exit code and the single stderr line. */
function fails(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit ${code} expected, got ${r.code}; stdout ${r.stdout} stderr ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
}

const newKey = () => encodeBase64(publicKey(generatePrivateKey()));

Deno.test("netmap CLI: init, add (allocating), list, check, remove; every edit bumps the serial", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-cli-" });
  try {
    const [ka, kb, kp, kh] = [newKey(), newKey(), newKey(), newKey()];
    assert.match(
      ok(await netmap(dir, "init", "--domain", "Fabric.Example", "--aes-subnet", "100.127.0.0/16")),
      /netmap\.json: new map for fabric\.example, AES subnet 100\.127\.0\.0\/16, serial 1/,
    );
    fails(
      await netmap(dir, "init", "--domain", "x.example", "--aes-subnet", "100.127.0.0/16"),
      2,
      /^twofold: netmap init: \.\/netmap\.json already exists/,
    );
    assert.match(
      ok(
        await netmap(
          dir,
          "add",
          "node-a",
          "--public-key",
          ka,
          "--groups",
          "ops,lab",
          "--endpoint",
          "192.0.2.1:51820",
          "--key-source",
          "dske",
        ),
      ),
      /added node-a: wg0 100\.64\.0\.1, AES 100\.127\.0\.1 \(dske\); serial 2/,
    );
    assert.match(
      ok(await netmap(dir, "add", "node-b", "--public-key", kb, "--keepalive", "25")),
      /added node-b: wg0 100\.64\.0\.2, AES 100\.127\.0\.2 \(dske\); serial 3/,
    );
    assert.match(
      ok(await netmap(dir, "add", "printer", "--public-key", kp, "--exempt")),
      /added printer: wg0 100\.64\.0\.3, no AES address \(wg0 only\); serial 4/,
    );
    assert.match(
      ok(await netmap(dir, "add", "hub-1", "--public-key", kh, "--hub")),
      /added hub-1: wg0 100\.64\.0\.4, no AES/,
    );

    const map = parseNetmap(await Deno.readTextFile(`${dir}/netmap.json`));
    assert.equal(map.serial, 5);
    assert.deepEqual(map.groups, ["ops", "lab"]);
    assert.deepEqual(
      map.nodes.map((n) => [n.name, n.role, formatIpv4Number(n.wgIp), n.aesIp && formatIpv4Number(n.aesIp)]),
      [
        ["node-a", "peer", "100.64.0.1", "100.127.0.1"],
        ["node-b", "peer", "100.64.0.2", "100.127.0.2"],
        ["printer", "peer", "100.64.0.3", null],
        ["hub-1", "hub", "100.64.0.4", null],
      ],
    );
    assert.equal(map.nodes[1].persistentKeepalive, 25);

    const list = ok(await netmap(dir, "list"));
    assert.match(
      list,
      /^map \.\/netmap\.json: serial 5, domain fabric\.example, AES subnet 100\.127\.0\.0\/16, 4 node\(s\)/,
    );
    assert.match(
      list,
      /node-a\s+peer\s+100\.64\.0\.1\s+100\.127\.0\.1\s+dske\s+ops,lab\s+192\.0\.2\.1:51820\s+/,
    );
    assert.match(list, /printer\s+peer\s+100\.64\.0\.3\s+-\s+-\s+/);
    assert.equal(JSON.parse(ok(await netmap(dir, "list", "--json"))).serial, 5);
    assert.match(ok(await netmap(dir, "check")), /valid; serial 5, 4 node\(s\), domain fabric\.example/);

    // Duplicates: one line naming the entry; the file is untouched.
    const before = await Deno.readTextFile(`${dir}/netmap.json`);
    fails(
      await netmap(dir, "add", "NODE-A", "--public-key", newKey()),
      2,
      /^twofold: netmap add: name: "NODE-A" is already in the map/,
    );
    fails(
      await netmap(dir, "add", "node-c", "--public-key", ka),
      2,
      /^twofold: netmap add: --public-key: is already the key of "node-a"/,
    );
    fails(
      await netmap(dir, "add", "node-c", "--public-key", newKey(), "--exempt", "--hub"),
      2,
      /--exempt and --hub exclude each other/,
    );
    fails(
      await netmap(dir, "add", "node-c", "--public-key", newKey(), "--key-source", "manual"),
      2,
      /keySource: "manual" differs from nodes\[0\] \("node-a"\) \("dske"\)/,
    );
    fails(await netmap(dir, "add", "--public-key", newKey()), 2, /expected the node's NAME/);
    fails(
      await netmap(dir, "add", "x", "--public-key", newKey(), "--bogus"),
      2,
      /unknown option "--bogus"; run "twofold netmap add --help"/,
    );
    fails(
      await netmap(dir, "remove", "nobody"),
      2,
      /^twofold: netmap remove: name: "nobody" is not in the map/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/netmap.json`), before, "refused edits change nothing");

    assert.match(ok(await netmap(dir, "remove", "node-b")), /removed node-b; serial 6/);
    // node-b's addresses are free again only because it left the map; the next node takes the lowest free.
    assert.match(
      ok(await netmap(dir, "add", "node-c", "--public-key", newKey())),
      /wg0 100\.64\.0\.2, AES 100\.127\.0\.2 \(dske\); serial 7/,
    );
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(left, ["netmap.json"], "no temporary or lock file left behind");
    fails(
      await netmap(dir, "frobnicate"),
      2,
      /^twofold: netmap: unknown subcommand "frobnicate"; use one of init, add/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netmap CLI: --map elsewhere, a hand-broken map is refused with its line, a held lock refuses an edit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-cli-" });
  try {
    const map = `${dir}/fabric/map.jsonc`;
    await Deno.mkdir(`${dir}/fabric`);
    ok(await netmap(dir, "init", "--domain", "x.example", "--aes-subnet", "100.127.0.0/30", "--map", map));
    ok(await netmap(dir, "add", "a", "--public-key", newKey(), "--map", map));
    ok(await netmap(dir, "add", "b", "--public-key", newKey(), "--map", map));
    fails(
      await netmap(dir, "add", "c", "--public-key", newKey(), "--map", map),
      2,
      /^twofold: netmap add: no free AES address is left in 100\.127\.0\.0\/30; remove nodes that are gone/,
    );
    fails(
      await netmap(dir, "check", "--map", `${dir}/none.json`),
      1,
      /map .*none\.json does not exist: create one with `twofold netmap init/,
    );

    const text = await Deno.readTextFile(map);
    await Deno.writeTextFile(map, text.replace('"100.64.0.2"', '"100.64.0.1"'));
    fails(
      await netmap(dir, "check", "--map", map),
      1,
      /map\.jsonc: nodes\[1\] \("b"\)\.wgIp: 100\.64\.0\.1 is already used by nodes\[0\] \("a"\)/,
    );
    fails(
      await netmap(dir, "add", "c", "--public-key", newKey(), "--exempt", "--map", map),
      2,
      /is already used by nodes\[0\]/,
    );
    await Deno.writeTextFile(map, '{\n  "version": 1,\n  oops\n}');
    fails(await netmap(dir, "check", "--map", map), 1, /map\.jsonc: line 3:3: expected a property name/);

    await Deno.writeTextFile(map, text);
    await Deno.writeTextFile(`${map}.lock`, "");
    fails(
      await netmap(dir, "remove", "a", "--map", map),
      2,
      /map\.jsonc\.lock exists: another edit of the map is running/,
    );
    assert.equal(await Deno.readTextFile(map), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netmap CLI: signer-keygen (0600), sign, verify; an edit after signing or another key fails verify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-cli-" });
  try {
    const pub = ok(await netmap(dir, "signer-keygen", "--out", "signer.key")).trim();
    assert.match(pub, /^[A-Za-z0-9+/]{43}=$/);
    assert.equal((await Deno.stat(`${dir}/signer.key`)).mode! & 0o777, 0o600);
    assert.ok(
      !(await Deno.readTextFile(`${dir}/signer.key`)).includes(pub),
      "the key file is the private seed",
    );
    fails(
      await netmap(dir, "signer-keygen", "--out", "signer.key"),
      2,
      /already exists; a signer key is never overwritten/,
    );

    ok(await netmap(dir, "init", "--domain", "x.example", "--aes-subnet", "100.127.0.0/16"));
    ok(await netmap(dir, "add", "a", "--public-key", newKey()));
    assert.match(ok(await netmap(dir, "sign", "--key", "signer.key")), /netmap\.json\.sig: signed serial 2/);
    assert.match(ok(await netmap(dir, "verify", "--public-key", pub)), /signature good \(serial 2, signer /);

    const other = ok(await netmap(dir, "signer-keygen", "--out", "other.key")).trim();
    fails(
      await netmap(dir, "verify", "--public-key", other),
      1,
      /does not verify \.\/netmap\.json with this key/,
    );
    fails(
      await netmap(dir, "verify", "--public-key", "AAAA"),
      2,
      /--public-key: not a usable base64 Ed25519 public key/,
    );

    ok(await netmap(dir, "add", "b", "--public-key", newKey()));
    fails(await netmap(dir, "verify", "--public-key", pub), 1, /the map changed since it was signed/);
    ok(await netmap(dir, "sign", "--key", "signer.key"));
    ok(await netmap(dir, "verify", "--public-key", pub));

    await Deno.chmod(`${dir}/signer.key`, 0o640);
    fails(
      await netmap(dir, "sign", "--key", "signer.key"),
      2,
      /signer key signer\.key has permissions 0640, wider than 0600: run `chmod 600 signer\.key`/,
    );
    await Deno.remove(`${dir}/netmap.json.sig`);
    fails(
      await netmap(dir, "verify", "--public-key", pub),
      1,
      /netmap\.json\.sig does not exist; sign the map/,
    );
    await Deno.writeTextFile(`${dir}/netmap.json.sig`, "garbage\n");
    fails(await netmap(dir, "verify", "--public-key", pub), 1, /does not hold one base64 Ed25519 signature/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netmap CLI: help entries exist for every subcommand and render in the help table's format", () => {
  const names = NETMAP_HELP.map((h) => h.name);
  assert.deepEqual(names, ["netmap", ...NETMAP_SUBCOMMANDS.map((s) => `netmap ${s}`)]);
  assert.deepEqual(NETMAP_HELP[0].subcommands, [...NETMAP_SUBCOMMANDS]);
  for (const entry of NETMAP_HELP) {
    const text = renderHelp(entry);
    assert.match(text, new RegExp(`^usage: twofold ${entry.name}`));
    assert.match(text, /\nexit codes:\n/);
    assert.ok(entry.options.some(([flag]) => flag === "-h, --help"), `${entry.name} lists --help`);
  }
});

Deno.test("netmap CLI: concurrent adds never lose an edit or share an address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-cli-" });
  try {
    ok(await netmap(dir, "init", "--domain", "x.example", "--aes-subnet", "100.127.0.0/16"));
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => netmap(dir, "add", `n${i}`, "--public-key", newKey())),
    );
    const added = runs.filter((r) => r.code === 0).length;
    for (const r of runs.filter((r) => r.code !== 0)) {
      fails(r, 2, /netmap\.json\.lock exists: another edit of the map is running/);
    }
    assert.ok(added >= 1);
    const map = parseNetmap(await Deno.readTextFile(`${dir}/netmap.json`));
    assert.equal(map.nodes.length, added, "every successful add is in the map");
    assert.equal(map.serial, 1 + added);
    const addresses = map.nodes.flatMap((n) => [n.wgIp, n.aesIp]);
    assert.equal(new Set(addresses).size, addresses.length, "no address handed out twice");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["netmap.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("netmap CLI: add --route (repeatable), the ROUTES column, an overlap refused in one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tf-netmap-cli-" });
  try {
    ok(await netmap(dir, "init", "--domain", "sites.example", "--aes-subnet", "100.127.0.0/16"));
    assert.doesNotMatch(ok(await netmap(dir, "add", "plain", "--public-key", newKey())), /routes/);
    assert.doesNotMatch(ok(await netmap(dir, "list")), /ROUTES/, "no column while no node routes");
    assert.match(
      ok(
        await netmap(
          dir,
          "add",
          "site-a",
          "--public-key",
          newKey(),
          "--route",
          "192.168.10.0/24",
          "--route",
          "fd00:10::/64",
        ),
      ),
      /added site-a: wg0 100\.64\.0\.2, AES 100\.127\.0\.2 \(manual\); routes 192\.168\.10\.0\/24, fd00:10::\/64; serial 3/,
    );
    const list = ok(await netmap(dir, "list"));
    assert.match(list, /ENDPOINTS\s+ROUTES\s+PUBLIC KEY/);
    assert.match(list, /site-a\s+peer\s+.*\s+192\.168\.10\.0\/24,fd00:10::\/64\s+/);
    assert.match(list, /plain\s+peer\s+.*\s+-\s+\S+=$/m);
    const before = await Deno.readTextFile(`${dir}/netmap.json`);
    fails(
      await netmap(dir, "add", "site-b", "--public-key", newKey(), "--route", "192.168.0.0/16"),
      2,
      /^twofold: netmap add: .*nodes\[2\] \("site-b"\)\.routes\[0\]: 192\.168\.0\.0\/16 \(advertised by "site-b"\) overlaps 192\.168\.10\.0\/24/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/netmap.json`), before, "a refused edit changes nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
