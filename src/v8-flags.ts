/**
 * The V8 flags every launcher of twofold passes to Deno (`--v8-flags=…`): the lab's and `twofold wg`'s
 * self command (src/self-command.ts), the release launcher (tools/release.ts), bin/twofold-wg and
 * `deno task compile` (deno.json, which bakes them into the binary). They bound memory, not behaviour.
 * A plain `deno run main.ts` goes without them (`DENO_V8_FLAGS` adds them there).
 * @module
 */

/**
 * Young-generation semi-spaces of at most 1 MB per isolate instead of V8's default of up to 16 MB
 * (V8 grows them with the allocation rate, and a data-plane worker under load allocates fast). Every
 * isolate of a node — main thread and each data-plane worker — pays it, so it is the largest single cut
 * of a loaded node's RSS (docs/benchmarks.md, "Memory"); the extra scavenges cost no measurable
 * throughput there.
 */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/** {@link V8_FLAGS} as one Deno argument. */
export function v8FlagsArgument(): string {
  return `--v8-flags=${V8_FLAGS.join(",")}`;
}
