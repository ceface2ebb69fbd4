import assert from "node:assert/strict";
import { offloadsWanted } from "../../src/wireguard/offload/offload-mode.ts";
import { checkEnvironment, EnvError } from "../../src/env.ts";

Deno.test("offloads knob: the config's auto yields to TWOFOLD_OFFLOADS=off; off in the config always wins", () => {
  assert.equal(offloadsWanted("auto", undefined), true);
  assert.equal(offloadsWanted("auto", "auto"), true);
  assert.equal(offloadsWanted("auto", "off"), false);
  assert.equal(offloadsWanted("off", undefined), false);
  assert.equal(offloadsWanted("off", "auto"), false);
});

Deno.test("TWOFOLD_OFFLOADS accepts auto and off only", () => {
  const env = (v: string) => (name: string) => name === "TWOFOLD_OFFLOADS" ? v : undefined;
  checkEnvironment(env("off"));
  checkEnvironment(env("auto"));
  checkEnvironment(env(""));
  assert.throws(() => checkEnvironment(env("on")), EnvError);
});
