// A node's parts (src/node/part.ts): started in order, closed in reverse, nothing leaked on a failed start.
import assert from "node:assert/strict";
import { PartStack } from "../../src/node/part.ts";

function recorder() {
  const log: string[] = [];
  const part = (name: string, fail = false) => ({
    name,
    start: () => {
      if (fail) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
      return { close: (reason?: string) => void log.push(`close ${name} (${reason})`) };
    },
  });
  return { log, part };
}

Deno.test("parts close in reverse order of their start, each once", async () => {
  const { log, part } = recorder();
  const parts = new PartStack();
  await parts.start(part("wg0"));
  await parts.start(part("aes0"));
  await parts.start({ name: "absent", start: () => null });
  await parts.close("stopped");
  await parts.close("again");
  assert.deepEqual(log, ["start wg0", "start aes0", "close aes0 (stopped)", "close wg0 (stopped)"]);
});

Deno.test("a part that fails to start leaves the ones before it to be closed", async () => {
  const { log, part } = recorder();
  const parts = new PartStack();
  await parts.start(part("wg0"));
  await assert.rejects(() => parts.start(part("aes0", true)), /aes0 cannot start/);
  await parts.close("start-up failed");
  assert.deepEqual(log, ["start wg0", "close wg0 (start-up failed)"]);
});

Deno.test("a close that throws does not keep the older parts open; its error is rethrown", async () => {
  const { log, part } = recorder();
  const parts = new PartStack();
  await parts.start(part("wg0"));
  await parts.start({ name: "bad", start: () => ({ close: () => Promise.reject(new Error("bad close")) }) });
  await assert.rejects(() => parts.close("stopped"), /bad close/);
  assert.deepEqual(log, ["start wg0", "close wg0 (stopped)"]);
});
