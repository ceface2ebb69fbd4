import assert from "node:assert/strict";
import { AdminClient, parseAdminArgs, readAdminToken } from "../../src/cli/admin-client.ts";
import { CliError } from "../../src/cli/errors.ts";

const USAGE = "usage: twofold status";

async function withConfig(
  admin: Record<string, unknown> | undefined,
  node: Record<string, unknown>,
  fn: (path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "twofold-cli-" });
  try {
    const cfg = {
      // The key file does not exist: the CLI never reads it.
      node: { name: "node-b", privateKeyFile: "./missing.key", ...node },
      wg0: { address: "100.64.0.2/10" },
      aes0: { address: "100.127.0.2/16" },
      ...(admin ? { admin } : {}),
    };
    const path = `${dir}/node-b.json`;
    await Deno.writeTextFile(path, JSON.stringify(cfg));
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejects(args: string[], pattern: RegExp, exitCode = 2): Promise<void> {
  try {
    await parseAdminArgs(args, USAGE, "help");
  } catch (e) {
    assert.ok(e instanceof CliError, String(e));
    assert.equal(e.exitCode, exitCode);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return;
  }
  assert.fail(`accepted: ${args.join(" ")}`);
}

Deno.test("admin CLI: where the node is (--config, --admin, --token-file)", async (t) => {
  await t.step("without options: the node's defaults", async () => {
    const a = await parseAdminArgs([], USAGE, "help");
    assert.deepEqual(a.target, { kind: "unix", path: "/run/twofold/admin.sock" });
    assert.equal(a.tokenFile, "/var/lib/twofold/admin.token");
    assert.deepEqual(a.source, { target: "default", token: "default", config: null });
  });

  await t.step("--config: admin.listen, and the token in the config's stateDir by default", async () => {
    await withConfig({ listen: "unix:./b.sock" }, { stateDir: "./state-b" }, async (path, dir) => {
      const a = await parseAdminArgs(["--config", path, "--json"], USAGE, "help");
      assert.deepEqual(a.target, { kind: "unix", path: `${dir}/b.sock` });
      assert.equal(a.tokenFile, `${dir}/state-b/admin.token`);
      assert.deepEqual(a.source, { target: "config", token: "config", config: path });
      assert.equal(a.json, true);
    });
    await withConfig(undefined, {}, async (path) => {
      const a = await parseAdminArgs(["-c", path], USAGE, "help");
      assert.deepEqual(a.target, { kind: "unix", path: "/run/twofold/admin.sock" });
      assert.equal(a.tokenFile, "/var/lib/twofold/admin.token", "the node's default stateDir");
    });
    await withConfig({ listen: "127.0.0.1:9191", tokenFile: "/etc/twofold/tok" }, {}, async (path) => {
      const a = await parseAdminArgs(["--config", path], USAGE, "help");
      assert.deepEqual(a.target, { kind: "tcp", host: "127.0.0.1", port: 9191 });
      assert.equal(a.tokenFile, "/etc/twofold/tok");
    });
  });

  await t.step("--admin and --token-file win over the config", async () => {
    await withConfig({ listen: "unix:./b.sock" }, { stateDir: "./state-b" }, async (path) => {
      const a = await parseAdminArgs(
        ["--config", path, "--admin", "/tmp/other.sock", "--token-file", "/tmp/other.token"],
        USAGE,
        "help",
      );
      assert.deepEqual(a.target, { kind: "unix", path: "/tmp/other.sock" });
      assert.equal(a.tokenFile, "/tmp/other.token");
      assert.deepEqual(a.source, { target: "option", token: "option", config: path });
    });
  });

  await t.step("a missing, invalid or admin-disabled config is one line, exit 2", async () => {
    await rejects(
      ["--config", "/nonexistent/node.json"],
      /^config \/nonexistent\/node\.json: the file does not exist/,
    );
    await withConfig({ enabled: false }, {}, async (path) => {
      await rejects(["--config", path], /admin\.enabled is false, so that node serves no admin API/);
    });
    await withConfig({ listen: "10.0.0.1:80" }, {}, async (path) => {
      await rejects(["--config", path], /admin\.listen/);
    });
  });

  await t.step("a missing token file says which file it was and where it came from", async () => {
    await withConfig(undefined, { stateDir: "./state-b" }, async (path, dir) => {
      const a = await parseAdminArgs(["--config", path], USAGE, "help");
      await assert.rejects(
        () => readAdminToken(a.tokenFile, a.source),
        (e: unknown) =>
          e instanceof CliError &&
          e.message.includes(`${dir}/state-b/admin.token is admin.tokenFile of ${path}`),
      );
    });
    const d = await parseAdminArgs([], USAGE, "help");
    await assert.rejects(
      () => readAdminToken("/nonexistent/admin.token", d.source),
      (e: unknown) =>
        e instanceof CliError &&
        /is the default; for a node with another node\.stateDir or admin\.tokenFile pass --config/
          .test(e.message),
    );
  });

  await t.step("no node on the socket: the address and where it came from", async () => {
    await withConfig({ listen: "unix:./b.sock" }, {}, async (path, dir) => {
      const a = await parseAdminArgs(["--config", path], USAGE, "help");
      const client = new AdminClient(a.target, a.tokenFile, a.source);
      try {
        await assert.rejects(
          () => client.request("GET", "/v1/status"),
          (e: unknown) =>
            e instanceof CliError && e.exitCode === 1 &&
            e.message ===
              `no node is listening on ${dir}/b.sock (admin.listen of ${path}): is twofold up running?`,
        );
      } finally {
        client.close();
      }
    });
  });

  await t.step("a refused token names the token file used", async () => {
    await withConfig(undefined, { stateDir: "/srv/b" }, async (path) => {
      const a = await parseAdminArgs(["--config", path], USAGE, "help");
      const client = new AdminClient(a.target, a.tokenFile, a.source);
      const e = client.apiError(403, JSON.stringify({ detail: "wrong token" }));
      client.close();
      assert.equal(
        e.message,
        `wrong token (HTTP 403) (/srv/b/admin.token is admin.tokenFile of ${path}; is that the config of the node ` +
          "that runs?)",
      );
    });
  });
});
