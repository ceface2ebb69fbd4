/** Release pieces in memory: the manual covers every command; the bundle check finds package imports left outside. */
import assert from "node:assert/strict";
import { renderManual } from "../../src/cli/manual.ts";
import { COMMANDS } from "../../src/cli/help.ts";
import { externalPackageImports, LAUNCHER, relocatePackageDirs, tarballName } from "../../tools/release.ts";
import { workerModuleUrl } from "../../src/worker-url.ts";
import { V8_FLAGS, v8FlagsArgument } from "../../src/v8-flags.ts";
import { twofoldCommand } from "../../src/self-command.ts";

Deno.test("the manual holds every command's usage and names the version", () => {
  const manual = renderManual("9.9.9");
  assert.match(manual.split("\n")[0], /twofold 9\.9\.9$/);
  for (const c of COMMANDS) assert.ok(manual.includes(`usage: twofold ${c.usage[0].split("\n")[0]}`), c.name);
});

Deno.test("externalPackageImports: npm:, jsr: and remote imports left in a bundle are found", () => {
  assert.deepEqual(externalPackageImports('import { x } from "node:path";\nconst a = 1;'), []);
  assert.deepEqual(externalPackageImports('import { z } from "npm:zod@4";'), ['from "npm:zod@4"']);
  assert.deepEqual(externalPackageImports('await import("jsr:@std/path")'), ['import("jsr:@std/path"']);
  assert.equal(externalPackageImports('export * from "https://deno.land/x/a.ts"').length, 1);
});

Deno.test("the launcher runs the bundle offline with the shipped Deno", () => {
  assert.match(LAUNCHER, /exec "\$lib\/deno" run --allow-all --cached-only --no-config /);
  assert.match(LAUNCHER, /"\$lib\/main\.js" "\$@"/);
  assert.equal(tarballName("1.2.3"), "twofold-1.2.3-linux-x64.tar.gz");
});

Deno.test("every launcher passes the V8 flags of src/v8-flags.ts", async () => {
  const arg = v8FlagsArgument();
  assert.equal(arg, `--v8-flags=${V8_FLAGS.join(",")}`);
  assert.ok(LAUNCHER.includes(` ${arg} "$lib/main.js"`), "release launcher");
  assert.ok(twofoldCommand().includes(arg), "self command");
  const root = new URL("../../", import.meta.url);
  const wg = await Deno.readTextFile(new URL("bin/twofold-wg", root));
  assert.match(wg, new RegExp(`run --allow-all --quiet ${arg} "\\$here/main\\.ts" wg`), "bin/twofold-wg");
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks;
  assert.ok(tasks.compile.includes(` ${arg} `), "deno task compile");
});

Deno.test("workerModuleUrl: the .ts worker in the source tree, <name>.js beside the release bundle", () => {
  assert.equal(
    workerModuleUrl("file:///repo/src/wireguard/dataplane/worker-pair.ts", "./send.ts", "encrypt-worker"),
    "file:///repo/src/wireguard/dataplane/send.ts",
  );
  assert.equal(
    workerModuleUrl("file:///opt/twofold/lib/twofold/main.js", "./worker.ts", "rosenpass-worker"),
    "file:///opt/twofold/lib/twofold/rosenpass-worker.js",
  );
});

Deno.test("relocatePackageDirs: bundled npm modules that use __dirname look beside the bundle", () => {
  const bundle = [
    'import "node:fs";',
    "// ../../root/.cache/deno/npm/registry.npmjs.org/mceliece-nist/2.0.1/wasm/main_thread.js",
    'var mod = readFileSync(join(__dirname, "mceliece.wasm"));',
    "// ../../root/.cache/deno/npm/registry.npmjs.org/@scope/pkg/1.2.3/index.js",
    "var here = __dirname + '/x';",
    "// src/own.ts",
    "const dirnameLike = 1;",
  ].join("\n");
  const { code, dirs } = relocatePackageDirs(bundle, "file:///work/repo/");
  assert.ok(!/\b__dirname\b/.test(code), "no bare __dirname is left");
  assert.match(code, /^const __twofoldPackageDir = /, "the helper comes first");
  assert.match(code, /__twofoldPackageDir\("node_modules\/mceliece-nist@2\.0\.1\/wasm"\)/);
  assert.match(code, /__twofoldPackageDir\("node_modules\/@scope\/pkg@1\.2\.3"\)/);
  assert.deepEqual(dirs, [
    {
      target: "node_modules/mceliece-nist@2.0.1/wasm",
      packageRoot: "/root/.cache/deno/npm/registry.npmjs.org/mceliece-nist/2.0.1",
      subdir: "wasm",
    },
    {
      target: "node_modules/@scope/pkg@1.2.3",
      packageRoot: "/root/.cache/deno/npm/registry.npmjs.org/@scope/pkg/1.2.3",
      subdir: "",
    },
  ]);
  assert.deepEqual(relocatePackageDirs("const a = 1;", "file:///x/"), { code: "const a = 1;", dirs: [] });
});
