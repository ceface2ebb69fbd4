/**
 * The command line that starts this twofold again (for `twofold wg`'s daemon and the lab's nodes and
 * hubs in `twofold demo`), for each way twofold runs: the compiled binary (`deno compile`: itself), the
 * release bundle (this module is inlined into `main.js`: the shipped Deno on that file, offline, as the
 * launcher runs it) or the source tree (Deno on `main.ts`, with the repository's deno.json). Deno runs
 * with the launchers' V8 flags (src/v8-flags.ts); the compiled binary has them baked in.
 * @module
 */
import { v8FlagsArgument } from "./v8-flags.ts";

/** argv prefix (executable first) that runs twofold; append the command and its arguments. */
export function twofoldCommand(): string[] {
  const exe = Deno.execPath();
  if (exe.endsWith("/twofold")) return [exe];
  const here = new URL(import.meta.url);
  if (here.protocol === "file:" && here.pathname.endsWith(".js")) {
    return [
      exe,
      "run",
      "--allow-all",
      "--no-config",
      "--cached-only",
      "--quiet",
      v8FlagsArgument(),
      here.pathname,
    ];
  }
  return [
    exe,
    "run",
    "--allow-all",
    "--quiet",
    v8FlagsArgument(),
    new URL("../main.ts", import.meta.url).pathname,
  ];
}
