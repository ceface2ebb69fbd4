/** Log line formats: plain (timestamp, level word) and journald (`<N>` priority, no timestamp). */
import assert from "node:assert/strict";
import { formatLogLine, logFormatFor } from "../../src/log.ts";

const NOW = new Date("2026-01-02T03:04:05.678Z");

Deno.test("plain lines carry the timestamp and the level word", () => {
  assert.equal(
    formatLogLine("plain", "warn", "wg0", "handshake failed", NOW),
    "2026-01-02T03:04:05.678Z WARN  wg0: handshake failed\n",
  );
});

Deno.test("journal lines carry the syslog priority and no timestamp", () => {
  const lines = (["debug", "info", "warn", "error"] as const).map((l) =>
    formatLogLine("journal", l, "node-a", "x", NOW)
  );
  assert.deepEqual(lines, ["<7>node-a: x\n", "<6>node-a: x\n", "<4>node-a: x\n", "<3>node-a: x\n"]);
});

Deno.test("the journal format is chosen by JOURNAL_STREAM, unless a log file is set", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(logFormatFor(env({})), "plain");
  assert.equal(logFormatFor(env({ JOURNAL_STREAM: "" })), "plain", "empty means unset");
  assert.equal(logFormatFor(env({ JOURNAL_STREAM: "8:12345" })), "journal");
  assert.equal(logFormatFor(env({ JOURNAL_STREAM: "8:12345", TWOFOLD_LOG_FILE: "/tmp/x.log" })), "plain");
});
