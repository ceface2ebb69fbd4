/**
 * Child process for control_sockets_test.ts: the admin API (loopback TCP, fake backend) and a UAPI
 * socket (a do-nothing device) under a lowered open-file soft limit, so a test can drive them into
 * EMFILE without touching its own process. Usage:
 *   deno run -A control_sockets_child.ts <nofile-soft-limit> <admin-max-conns> <uapi-max-conns> <dir> [unix]
 * (the admin API on loopback TCP, or with `unix` on <dir>/admin.sock).
 * Prints one JSON line `{ "admin": "127.0.0.1:PORT", "uapi": "/dir/tfcs0.sock", "token": … }` when serving, then
 * publishes an event (about 600 bytes) every 2 ms, and logs to stderr. Ends when its stdin closes.
 */
import { fileDescriptorLimit, setFileDescriptorSoftLimit } from "../../ffi/libc.ts";
import { startAdminServer } from "../../src/admin/server.ts";
import { logger } from "../../src/log.ts";
import type { UapiDevice, UapiDeviceSnapshot } from "../../src/uapi/types.ts";
import { UapiServer } from "../../src/uapi/server.ts";
import { FakeBackend, TEST_TOKEN } from "./admin_fake_backend.ts";

const [limitText, adminCapText, uapiCapText, uapiDir, adminKind] = Deno.args;
// As `twofold up` does at start (runUntilStopped): the runtime's signal plumbing exists before any flood.
const onSignal = () => {};
Deno.addSignalListener("SIGTERM", onSignal);
Deno.addSignalListener("SIGINT", onSignal);
const device: UapiDevice = {
  snapshot: (): UapiDeviceSnapshot => ({ privateKey: null, listenPort: 51820, fwmark: 0, peers: [] }),
  apply: () => 0,
};
const backend = new FakeBackend();
const admin = await startAdminServer(backend, {
  listen: adminKind === "unix"
    ? { kind: "unix", path: `${uapiDir}/admin.sock` }
    : { kind: "tcp", host: "127.0.0.1", port: 0 },
  token: TEST_TOKEN,
  maxConnections: Number(adminCapText),
});
const log = logger("uapi");
const uapi = await UapiServer.listen("tfcs0", device, {
  dir: uapiDir,
  maxConnections: Number(uapiCapText),
  log: (m) => log.warn(m),
});
setFileDescriptorSoftLimit(BigInt(limitText));
const padding = "x".repeat(500);
const timer = setInterval(() => {
  backend.events.publish({ type: "lockdown-changed", reason: padding, data: { count: 1, enforced: false } });
}, 2);
const fds = [...Deno.readDirSync("/proc/self/fd")].length;
const nofile = String(fileDescriptorLimit().soft);
// The fake backend's token is a random test value, not a secret.
console.log(JSON.stringify({ admin: admin.address, uapi: uapi.path, nofile, fds, token: TEST_TOKEN }));
// Ends when the parent closes stdin.
for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
clearInterval(timer);
Deno.removeSignalListener("SIGTERM", onSignal);
Deno.removeSignalListener("SIGINT", onSignal);
await admin.close();
await uapi.close();
