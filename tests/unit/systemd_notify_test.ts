/** The sd_notify protocol: socket addresses, messages, and datagrams received by a fake $NOTIFY_SOCKET. */
import assert from "node:assert/strict";
import {
  notifyMessage,
  notifySocketAddress,
  NotifySocketError,
  SystemdNotifier,
} from "../../src/systemd/notify.ts";
import { UnixDatagramReceiver } from "../../ffi/unix-datagram.ts";
import { runUntilStopped } from "../../src/cli/foreground.ts";
import { logger } from "../../src/log.ts";

const text = (b: Uint8Array | null) => b === null ? null : new TextDecoder().decode(b);

Deno.test("notifySocketAddress: a path is NUL-terminated in a full sockaddr_un", () => {
  const a = notifySocketAddress("/run/systemd/notify");
  assert.equal(a.length, 110);
  assert.deepEqual([...a.slice(0, 2)], [1, 0], "AF_UNIX, little-endian");
  assert.equal(text(a.slice(2, 2 + 19)), "/run/systemd/notify");
  assert.equal(a[2 + 19], 0);
});

Deno.test("notifySocketAddress: @name is abstract: leading NUL, length exactly the name", () => {
  const a = notifySocketAddress("@sd-notify/42");
  assert.equal(a.length, 2 + 1 + 12);
  assert.equal(a[2], 0);
  assert.equal(text(a.slice(3)), "sd-notify/42");
});

Deno.test("notifySocketAddress: relative, vsock and over-long names are refused", () => {
  assert.throws(() => notifySocketAddress("run/notify"), NotifySocketError);
  assert.throws(() => notifySocketAddress("vsock:2:1234"), NotifySocketError);
  assert.throws(() => notifySocketAddress("/" + "x".repeat(107)), NotifySocketError);
  assert.equal(notifySocketAddress("/" + "x".repeat(106)).length, 110, "107 bytes + NUL fit");
  assert.throws(() => notifySocketAddress("@" + "x".repeat(108)), NotifySocketError);
});

Deno.test("notifyMessage: KEY=value lines, newlines in values flattened", () => {
  assert.equal(
    text(notifyMessage({ READY: "1", STATUS: "up: wg0\naes0" })),
    "READY=1\nSTATUS=up: wg0 aes0\n",
  );
});

Deno.test("SystemdNotifier: without NOTIFY_SOCKET nothing is sent", () => {
  const sent: Uint8Array[] = [];
  const n = new SystemdNotifier(() => undefined, (_a, d) => sent.push(d));
  assert.equal(n.enabled, false);
  assert.equal(n.ready("up"), false);
  assert.deepEqual(sent, []);
});

for (const kind of ["path", "abstract"] as const) {
  Deno.test(`SystemdNotifier: READY=1 and STOPPING=1 reach a fake ${kind} NOTIFY_SOCKET`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tfnotify-" });
    const value = kind === "path" ? `${dir}/notify.sock` : `@twofold-test-${crypto.randomUUID()}`;
    const receiver = new UnixDatagramReceiver(notifySocketAddress(value));
    try {
      const n = new SystemdNotifier((name) => name === "NOTIFY_SOCKET" ? value : undefined);
      assert.equal(n.enabled, true);
      assert.equal(n.ready("up: wg0 and aes0, admin API"), true);
      assert.equal(text(receiver.receive(2000)), "READY=1\nSTATUS=up: wg0 and aes0, admin API\n");
      assert.equal(n.stopping(), true);
      assert.equal(text(receiver.receive(2000)), "STOPPING=1\nSTATUS=stopping\n");
      assert.equal(receiver.receive(0), null, "nothing else");
    } finally {
      receiver.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("SystemdNotifier: a socket nobody listens on is a warning, not a failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tfnotify-" });
  try {
    const n = new SystemdNotifier((name) => name === "NOTIFY_SOCKET" ? `${dir}/absent.sock` : undefined);
    assert.equal(n.ready("up"), false);
    assert.equal(n.stopping(), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runUntilStopped: READY=1 once the service has started, STOPPING=1 when it ends", async () => {
  const sent: string[] = [];
  const notifier = new SystemdNotifier(
    (name) => name === "NOTIFY_SOCKET" ? "@fake" : undefined,
    (_a, d) => sent.push(new TextDecoder().decode(d)),
  );
  let end!: () => void;
  let startedWithoutReady = false;
  const code = runUntilStopped(
    (onEnded) => {
      end = onEnded;
      startedWithoutReady = sent.length === 0;
      return Promise.resolve({ close: () => Promise.resolve() });
    },
    logger("test"),
    notifier,
  );
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(startedWithoutReady, "nothing is sent before start resolves");
  assert.deepEqual(sent, ["READY=1\nSTATUS=running\n"]);
  end();
  assert.equal(await code, 0);
  assert.deepEqual(sent, ["READY=1\nSTATUS=running\n", "STOPPING=1\nSTATUS=stopping\n"]);
});

Deno.test("runUntilStopped: a start-up failure sends no READY=1", async () => {
  const sent: Uint8Array[] = [];
  const notifier = new SystemdNotifier(() => "@fake", (_a, d) => sent.push(d));
  await assert.rejects(
    runUntilStopped(() => Promise.reject(new Error("port busy")), logger("test"), notifier),
    /port busy/,
  );
  assert.deepEqual(sent, []);
});
