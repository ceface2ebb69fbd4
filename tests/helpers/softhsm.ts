/**
 * A throw-away SoftHSM2 token for tests: its own config and token directory under a temp dir (never
 * the system's), initialised with `softhsm2-util --init-token`. Set `SOFTHSM2_CONF` in this process
 * (for the FFI module) and pass {@link SoftHsmToken.env} to child processes.
 */
import { findBinary } from "../../src/lab/prereq.ts";

/** Where Debian's SoftHSM2 module lives (first existing). */
const SOFTHSM_MODULES = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

/** The SoftHSM2 module path, or null when it is not installed. */
export function softhsmModule(): string | null {
  for (const p of SOFTHSM_MODULES) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Reason to skip when SoftHSM2 (module + softhsm2-util) is missing, otherwise null. */
export function requireSoftHsm(): string | null {
  if (softhsmModule() === null) return "SoftHSM2 module missing (apt-get install softhsm2)";
  if (findBinary("softhsm2-util") === null) return "softhsm2-util missing (apt-get install softhsm2)";
  return null;
}

/** A token made for one test. */
export interface SoftHsmToken {
  /** The temp directory holding config, tokens and the PIN file. */
  dir: string;
  /** The module path. */
  module: string;
  /** Token label. */
  label: string;
  /** User PIN. */
  pin: string;
  /** A 0600 file holding the PIN. */
  pinFile: string;
  /** Environment for processes that use the token (`SOFTHSM2_CONF`). */
  env: Record<string, string>;
  /** Removes the directory and restores this process's SOFTHSM2_CONF. */
  remove(): void;
}

/** Creates a fresh token labelled `label` with user PIN `pin`, and points this process at it. */
export async function makeSoftHsmToken(label: string, pin: string): Promise<SoftHsmToken> {
  const module = softhsmModule();
  if (module === null) throw new Error("SoftHSM2 is not installed");
  const dir = Deno.makeTempDirSync({ prefix: "twofold-softhsm-" });
  Deno.mkdirSync(`${dir}/tokens`, { mode: 0o700 });
  const conf = `${dir}/softhsm2.conf`;
  Deno.writeTextFileSync(
    conf,
    `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const out = await new Deno.Command("softhsm2-util", {
    args: ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", `${pin}-so`],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    Deno.removeSync(dir, { recursive: true });
    throw new Error(`softhsm2-util --init-token failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const pinFile = `${dir}/pin`;
  Deno.writeTextFileSync(pinFile, pin + "\n", { mode: 0o600 });
  Deno.chmodSync(pinFile, 0o600);
  const previous = Deno.env.get("SOFTHSM2_CONF");
  Deno.env.set("SOFTHSM2_CONF", conf);
  return {
    dir,
    module,
    label,
    pin,
    pinFile,
    env,
    remove() {
      if (previous === undefined) Deno.env.delete("SOFTHSM2_CONF");
      else Deno.env.set("SOFTHSM2_CONF", previous);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
