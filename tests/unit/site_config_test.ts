/** The node config's `site` section (router node): defaults, the LAN name rule, unknown keys. */
import assert from "node:assert/strict";
import { CliError } from "../../src/operator-error.ts";
import { type NodeConfig, parseNodeConfig } from "../../src/config/node-config.ts";
import { compareConfigs } from "../../src/node/config-reload.ts";

type Json = Record<string, unknown>;

function config(site?: unknown): Json {
  return {
    node: { name: "router-a", privateKeyFile: "./router-a.key" },
    wg0: { address: "100.64.0.1/10" },
    aes0: { address: "100.127.0.1/16" },
    ...(site === undefined ? {} : { site }),
  };
}

function parse(c: Json): NodeConfig {
  return parseNodeConfig(JSON.stringify(c), {
    baseDir: "/etc/twofold",
    checkFiles: false,
    sourceName: "node.json",
  });
}

/** The one-line message parsing `c` fails with (exit 2). */
function rejection(c: Json): string {
  try {
    parse(c);
  } catch (e) {
    assert.ok(e instanceof CliError, `a CliError, not ${e}`);
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes("\n"), e.message);
    return e.message;
  }
  throw new Error("the config was accepted");
}

Deno.test("site section", async (t) => {
  await t.step("absent: no router", () => {
    assert.equal(parse(config()).site, null);
  });
  await t.step("lan only: masquerade off, MSS clamp on", () => {
    assert.deepEqual(parse(config({ lan: "eth1" })).site, { lan: "eth1", masquerade: false, mssClamp: true });
  });
  await t.step("every key given", () => {
    assert.deepEqual(
      parse(config({ lan: "br-lan", masquerade: true, mssClamp: false })).site,
      { lan: "br-lan", masquerade: true, mssClamp: false },
    );
  });
  await t.step("lan is required", () => {
    assert.equal(
      rejection(config({ masquerade: true })),
      "config node.json: site.lan: missing; add it (a string in double quotes)",
    );
  });
  await t.step("an unknown key is named with the allowed ones", () => {
    assert.match(
      rejection(config({ lan: "eth1", masq: true })),
      /^config node\.json: site\.masq: unknown key; .*allowed here: lan, masquerade, mssClamp/,
    );
  });
  await t.step("the interface-name rule", () => {
    assert.match(
      rejection(config({ lan: "eth1; reboot" })),
      /^config node\.json: site\.lan: "eth1; reboot" is not a usable interface name \(1-15 characters/,
    );
    assert.match(
      rejection(config({ lan: "a-very-long-interface" })),
      /site\.lan: .* not a usable interface name/,
    );
  });
  await t.step("the LAN is not a tunnel interface", () => {
    assert.match(rejection(config({ lan: "aes0" })), /^config node\.json: site\.lan: "aes0" is aes0\.name; /);
    assert.match(rejection(config({ lan: "wg0" })), /site\.lan: "wg0" is wg0\.name; /);
  });
  await t.step("booleans are booleans", () => {
    assert.match(
      rejection(config({ lan: "eth1", masquerade: "yes" })),
      /site\.masquerade: expected true or false/,
    );
  });
});

Deno.test("site section: a change on reload needs a restart", () => {
  const running = parse(config({ lan: "eth1" }));
  assert.deepEqual(compareConfigs(running, parse(config({ lan: "eth1" }))).restartNeeded, []);
  assert.deepEqual(compareConfigs(running, parse(config({ lan: "eth1", masquerade: true }))).restartNeeded, [
    "site",
  ]);
  assert.deepEqual(compareConfigs(running, parse(config())).restartNeeded, ["site"]);
});
