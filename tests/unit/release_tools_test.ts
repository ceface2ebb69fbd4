/** Release pieces in memory: the manual covers every command; the bundle check finds package imports left outside. */
import assert from "node:assert/strict";
import { renderManual } from "../../src/cli/manual.ts";
import { COMMANDS } from "../../src/cli/help.ts";
import { externalPackageImports, LAUNCHER, tarballName } from "../../tools/release.ts";
import { workerModuleUrl } from "../../src/worker-url.ts";

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

Deno.test("workerModuleUrl: the .ts worker in the source tree, <name>.js beside the release bundle", () => {
  assert.equal(
    workerModuleUrl("file:///repo/src/dataplane/dataplane.ts", "./encrypt-worker.ts", "encrypt-worker"),
    "file:///repo/src/dataplane/encrypt-worker.ts",
  );
  assert.equal(
    workerModuleUrl("file:///opt/twofold/lib/twofold/main.js", "./worker.ts", "rosenpass-worker"),
    "file:///opt/twofold/lib/twofold/rosenpass-worker.js",
  );
});
