/**
 * `systemd-analyze verify` accepts the shipped units (packaging/systemd/). The units name
 * /usr/local/bin/twofold, which verify requires to be executable: the test checks copies whose
 * ExecStart points at a stand-in script in a temp directory, and nothing else changed.
 * Needs systemd-analyze (Debian package `systemd`; installed by .ci/run).
 */
import assert from "node:assert/strict";
import { integrationTest, requireBinary } from "../helpers/prereq.ts";

const UNITS = ["twofold.service", "twofold-hub.service"];
const INSTALLED_LAUNCHER = "/usr/local/bin/twofold";

integrationTest(
  "systemd units: systemd-analyze verify accepts them",
  [requireBinary("systemd-analyze")],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "tfsd-" });
    try {
      const launcher = `${dir}/twofold`;
      await Deno.writeTextFile(launcher, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      await Deno.chmod(launcher, 0o755);
      const paths: string[] = [];
      for (const unit of UNITS) {
        const text = await Deno.readTextFile(new URL(`../../packaging/systemd/${unit}`, import.meta.url));
        assert.ok(text.includes(INSTALLED_LAUNCHER), `${unit} runs ${INSTALLED_LAUNCHER}`);
        for (
          const line of [
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "NoNewPrivileges=yes",
            "DeviceAllow=/dev/net/tun rw",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
          ]
        ) assert.ok(text.split("\n").includes(line), `${unit}: ${line}`);
        const path = `${dir}/${unit}`;
        await Deno.writeTextFile(path, text.replaceAll(INSTALLED_LAUNCHER, launcher));
        paths.push(path);
      }
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", ...paths],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.equal(text.trim(), "", "no warnings");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
