/**
 * The preflight probes (src/node/preflight.ts) on loopback and in a temp dir: a busy UDP port, a busy
 * admin TCP port, a live admin or UAPI socket and a path that is not a socket are each one line naming
 * the fix; free ones pass, and a probe leaves nothing bound.
 */
import assert from "node:assert/strict";
import {
  adminListenProblem,
  formatPreflightProblem,
  uapiSocketProblem,
  udpPortProblem,
} from "../../src/node/preflight.ts";
import { openUdp } from "../../ffi/udp.ts";
import { closeQuietly } from "../../ffi/libc.ts";

function oneLine(text: string | null, re: RegExp): void {
  assert.ok(text !== null, "a problem is reported");
  assert.ok(!text.includes("\n"), `one line: ${text}`);
  assert.match(text, re);
}

Deno.test("preflight: UDP ports", async (t) => {
  await t.step("a port held by another socket is reported; a free one passes and stays free", () => {
    const held = openUdp(0, { family: 4, bindAddress: "127.0.0.1" });
    try {
      oneLine(
        udpPortProblem(held.port, { family: 4, bindAddress: "127.0.0.1" }),
        new RegExp(`UDP port 127\\.0\\.0\\.1:${held.port} is in use .*choose another port`),
      );
      oneLine(udpPortProblem(held.port, { family: "dual" }), new RegExp(`UDP port ${held.port} is in use`));
    } finally {
      closeQuietly(held.fd);
    }
    assert.equal(udpPortProblem(held.port, { family: "dual" }), null, "free once released");
    assert.equal(udpPortProblem(held.port, { family: "dual" }), null, "the probe released it again");
    assert.equal(udpPortProblem(0, { family: "dual" }), null, "port 0 always binds");
  });

  await t.step("IP_FREEBIND: an address not on any interface yet can be probed", () => {
    // 100.64.0.0/10 is not configured on a test machine; without IP_FREEBIND this bind fails.
    assert.equal(udpPortProblem(0, { family: 4, bindAddress: "100.127.254.253", freeBind: true }), null);
    oneLine(
      udpPortProblem(40000, { family: 4, bindAddress: "100.127.254.253" }),
      /cannot bind UDP 100\.127\.254\.253:40000/,
    );
  });
});

Deno.test("preflight: admin listen address", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "twofold-preflight-" });
  try {
    await t.step("a busy loopback TCP port is reported; a free one passes", async () => {
      const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (holder.addr as Deno.NetAddr).port;
      try {
        oneLine(
          await adminListenProblem({ kind: "tcp", host: "127.0.0.1", port }),
          new RegExp(`TCP 127\\.0\\.0\\.1:${port} is in use .*admin\\.listen`),
        );
        oneLine(await adminListenProblem({ kind: "tcp", host: "localhost", port }), /is in use/);
      } finally {
        holder.close();
      }
      assert.equal(await adminListenProblem({ kind: "tcp", host: "127.0.0.1", port }), null);
    });

    await t.step(
      "a live admin socket and a non-socket path are reported; a stale socket passes",
      async () => {
        const path = `${dir}/admin.sock`;
        const live = Deno.listen({ transport: "unix", path });
        try {
          oneLine(
            await adminListenProblem({ kind: "unix", path }),
            new RegExp(`another process already serves an admin API on unix:${path}`),
          );
        } finally {
          live.close();
        }
        // A closed listener's socket file (if left) is stale, which the server replaces.
        assert.equal(await adminListenProblem({ kind: "unix", path }), null);
        assert.equal(await adminListenProblem({ kind: "unix", path: `${dir}/absent.sock` }), null);
        const file = `${dir}/plain`;
        await Deno.writeTextFile(file, "");
        oneLine(
          await adminListenProblem({ kind: "unix", path: file }),
          /exists and is not a socket; remove it/,
        );
        // The socket's directory would be created under a file: refused before bring-up.
        oneLine(
          await adminListenProblem({ kind: "unix", path: `${file}/sub/admin.sock` }),
          new RegExp(`${file} is not a directory, so unix:.* cannot be created`),
        );
        assert.equal(await adminListenProblem({ kind: "unix", path: `${dir}/new/dir/admin.sock` }), null);
      },
    );

    await t.step("a live UAPI socket means a running daemon; a free name passes", async () => {
      const uapi = `${dir}/uapi`;
      await Deno.mkdir(uapi);
      const live = Deno.listen({ transport: "unix", path: `${uapi}/tfpf0.sock` });
      try {
        oneLine(
          await uapiSocketProblem("tfpf0", uapi),
          /interface tfpf0 is already run by another daemon: its UAPI socket .*tfpf0\.sock answers .*; stop the other one or pick another name/,
        );
        oneLine(
          await uapiSocketProblem("tfpf0", uapi, "aes0.name"),
          /tfpf0\.sock answers .*; set aes0\.name in the config to a name no other interface on this host uses$/,
        );
      } finally {
        live.close();
      }
      assert.equal(await uapiSocketProblem("tfpf0", uapi), null, "stale or gone: replaced at start");
      assert.equal(await uapiSocketProblem("tfpf1", uapi), null);
      await Deno.writeTextFile(`${uapi}/tfpf2.sock`, "");
      oneLine(await uapiSocketProblem("tfpf2", uapi), /tfpf2\.sock exists and is not a socket; remove it/);
    });

    await t.step("a problem prints as `<field>: <message>`", () => {
      assert.equal(formatPreflightProblem({ field: "wg0.listenPort", message: "m" }), "wg0.listenPort: m");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
