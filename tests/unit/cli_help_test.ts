/**
 * The CLI's help table, help/version decision and environment parsing, in memory. The spawned
 * counterpart (every command's --help run for real, without side effects) is
 * tests/integration/cli_front_door_test.ts.
 */
import assert from "node:assert/strict";
import {
  COMMANDS,
  findCommand,
  helpRequest,
  renderHelp,
  renderOverview,
  usageOf,
} from "../../src/cli/help.ts";
import { parseArgs } from "node:util";
import { CliError, optionError } from "../../src/cli/errors.ts";
import { parseWgArgs } from "../../src/cli/wg.ts";
import { checkEnvironment, envChoice, EnvError, type EnvReader, envValue } from "../../src/env.ts";

/** The commands main.ts dispatches, read from its source so that a new command without help fails here. */
async function dispatchedCommands(): Promise<string[]> {
  const main = await Deno.readTextFile(new URL("../../main.ts", import.meta.url));
  return [...main.matchAll(/case "([a-z]+)":/g)].map((m) => m[1]);
}

function env(vars: Record<string, string>): EnvReader {
  return (name) => vars[name];
}

Deno.test("help table: every dispatched command and subcommand has a complete entry", async (t) => {
  await t.step("every command main.ts runs is in the table", async () => {
    const commands = await dispatchedCommands();
    assert.ok(commands.length >= 10, `found ${commands.join(", ")}`);
    for (const c of commands) assert.ok(findCommand([c]), `no help entry for "${c}"`);
  });

  await t.step("each entry says what, options, exit codes and environment; subcommands exist", () => {
    const names = new Set(COMMANDS.map((c) => c.name));
    assert.equal(names.size, COMMANDS.length, "names are unique");
    for (const c of COMMANDS) {
      const text = renderHelp(c);
      assert.ok(text.startsWith(`usage: twofold ${c.name.split(" ")[0]}`), text);
      for (const section of ["options:", "exit codes:", "environment"]) {
        assert.ok(text.includes(section), `${c.name}: ${section}`);
      }
      assert.ok(c.options.some(([flag]) => flag.includes("--help")), `${c.name} documents --help`);
      assert.ok(c.exitCodes.some(([code]) => code === 0) && c.exitCodes.some(([code]) => code === 2), c.name);
      for (const sub of c.subcommands ?? []) assert.ok(names.has(`${c.name} ${sub}`), `${c.name} ${sub}`);
    }
  });

  await t.step("long-running commands document their signals", () => {
    for (const name of ["wg", "up", "hub", "events", "demo"]) {
      assert.match(renderHelp(findCommand([name])!), /signals:\n {2}SIGINT, SIGTERM/, name);
    }
  });

  await t.step("the overview lists the top-level commands only", () => {
    const o = renderOverview();
    assert.match(o, /^ {2}psrd {2,}/m);
    assert.doesNotMatch(o, /psrd new/);
    assert.match(o, /--version/);
  });

  await t.step("usageOf gives the first usage line; an unknown name is a programming error", () => {
    assert.equal(usageOf("up"), "usage: twofold up --config node.json");
    assert.throws(() => usageOf("nope"), /no help entry/);
  });
});

Deno.test("helpRequest: help and version are recognised before anything runs", async (t) => {
  const help = (args: string[]) => {
    const r = helpRequest(args);
    assert.equal(r.kind, "help", `${args.join(" ")} asks for help`);
    return r as { kind: "help"; text: string; exitCode: number };
  };

  await t.step("no command: the overview, exit 2; help/-h/--help: the overview, exit 0", () => {
    assert.equal(help([]).exitCode, 2);
    for (const a of [["help"], ["-h"], ["--help"]]) {
      assert.equal(help(a).exitCode, 0);
      assert.equal(help(a).text, renderOverview());
    }
  });

  await t.step("--help/-h anywhere before -- picks the command, or its subcommand", () => {
    assert.equal(help(["keygen", "--help"]).text, renderHelp(findCommand(["keygen"])!));
    assert.equal(help(["pubkey", "-h"]).text, renderHelp(findCommand(["pubkey"])!));
    assert.equal(
      help(["psrd", "new", "--hub-endpoint", "x:1", "--help"]).text,
      renderHelp(findCommand(["psrd", "new"])!),
    );
    assert.equal(
      help(["lockdown", "add", "tcp/80", "-h"]).text,
      renderHelp(findCommand(["lockdown", "add"])!),
    );
    assert.equal(help(["psrd", "--help"]).text, renderHelp(findCommand(["psrd"])!));
    assert.equal(helpRequest(["wg", "--", "--help"]).kind, "run");
  });

  await t.step("help CMD [SUB] and CMD help [SUB] name that command", () => {
    assert.equal(help(["help", "status"]).text, renderHelp(findCommand(["status"])!));
    assert.equal(help(["help", "psrd", "list"]).text, renderHelp(findCommand(["psrd", "list"])!));
    assert.equal(help(["psrd", "help"]).text, renderHelp(findCommand(["psrd"])!));
    assert.equal(help(["psrd", "help", "ingest"]).text, renderHelp(findCommand(["psrd", "ingest"])!));
    assert.equal(help(["lockdown", "help", "set"]).text, renderHelp(findCommand(["lockdown", "set"])!));
  });

  await t.step("an unknown command or subcommand named for help is a usage error", () => {
    assert.throws(() => helpRequest(["help", "frob"]), (e) => e instanceof CliError && e.exitCode === 2);
    assert.throws(
      () => helpRequest(["help", "psrd", "frob"]),
      (e) => e instanceof CliError && /new, ingest, list/.test(e.message),
    );
  });

  await t.step("--version; ordinary command lines run", () => {
    assert.equal(helpRequest(["--version"]).kind, "version");
    assert.equal(helpRequest(["keygen"]).kind, "run");
    assert.equal(helpRequest(["status", "--json"]).kind, "run");
    assert.equal(helpRequest(["frob"]).kind, "run", "main reports the unknown command");
  });
});

Deno.test("option errors are one line naming the option and the command's --help", () => {
  const fail = (args: string[]) => {
    try {
      parseArgs({ args, options: { cipher: { type: "string" }, json: { type: "boolean" } } });
    } catch (e) {
      return optionError("psrd new", e);
    }
    throw new Error("parseArgs accepted it");
  };
  const cases: [string[], string][] = [
    [["--bogus"], 'unknown option "--bogus"; run "twofold psrd new --help"'],
    [["--cipher"], 'option "--cipher" needs a value; run "twofold psrd new --help"'],
    [["--json=yes"], 'option "--json" takes no value; run "twofold psrd new --help"'],
  ];
  for (const [args, message] of cases) {
    const e = fail(args);
    assert.equal(e.message, message);
    assert.equal(e.exitCode, 2);
  }
});

Deno.test("environment: empty means unset, an unknown value is one clear error", async (t) => {
  await t.step("empty and unset read as undefined", () => {
    assert.equal(envValue("TWOFOLD_CIPHER", env({ TWOFOLD_CIPHER: "" })), undefined);
    assert.equal(envValue("TWOFOLD_CIPHER", env({})), undefined);
    assert.equal(envChoice("TWOFOLD_LOG", env({ TWOFOLD_LOG: "" })), undefined);
    assert.equal(envChoice("TWOFOLD_LOG", env({ TWOFOLD_LOG: "warn" })), "warn");
  });

  await t.step("an unknown TWOFOLD_LOG is an error naming the variable and the allowed values", () => {
    assert.throws(
      () => checkEnvironment(env({ TWOFOLD_LOG: "verbose" })),
      (e) =>
        e instanceof EnvError && !e.message.includes("\n") &&
        /TWOFOLD_LOG="verbose" is not one of debug, info, warn, error/.test(e.message),
    );
    assert.throws(() => checkEnvironment(env({ TWOFOLD_AEAD_BACKEND: "openssl" })), EnvError);
    assert.throws(() => checkEnvironment(env({ TWOFOLD_CIPHER: "aes" })), EnvError);
    checkEnvironment(
      env({ TWOFOLD_LOG: "", TWOFOLD_CIPHER: "", TWOFOLD_AEAD_BACKEND: "", TWOFOLD_LOG_FILE: "" }),
    );
  });

  await t.step("twofold wg: TWOFOLD_CIPHER= means the default; a bad one is a usage error", () => {
    assert.equal(parseWgArgs(["wg7"], env({ TWOFOLD_CIPHER: "" })).cipher, "chacha20-poly1305");
    assert.equal(parseWgArgs(["wg7"], env({ TWOFOLD_CIPHER: "aes-256-gcm" })).cipher, "aes-256-gcm");
    assert.equal(
      parseWgArgs(["--cipher", "chacha20-poly1305", "wg7"], env({ TWOFOLD_CIPHER: "aes-256-gcm" })).cipher,
      "chacha20-poly1305",
    );
    assert.throws(
      () => parseWgArgs(["wg7"], env({ TWOFOLD_CIPHER: "rot13" })),
      (e) => e instanceof CliError && e.exitCode === 2 && /TWOFOLD_CIPHER/.test(e.message),
    );
  });
});
