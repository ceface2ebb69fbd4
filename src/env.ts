/**
 * The environment variables twofold reads, in one table: their allowed values and what they do (the
 * `--help` texts and the start-up check use it). An empty variable means unset, so a wrapper that
 * exports `TWOFOLD_CIPHER=` gets the default; a value outside the allowed list is an error (the CLI
 * reports it as one line, exit 2) instead of being silently replaced by the default.
 * @module
 */
import { OFFLOAD_MODES } from "./wireguard/offload/offload-mode.ts";

/** One environment variable twofold reads. */
export interface EnvVar {
  /** Its name. */
  name: string;
  /** The values it accepts (undefined: any text, e.g. a path). */
  values?: readonly string[];
  /** Its meaning, for the help texts. */
  description: string;
}

/** Log levels `TWOFOLD_LOG` accepts, most verbose first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** Ciphers `twofold wg --cipher` and `TWOFOLD_CIPHER` accept. */
export const CIPHERS = ["chacha20-poly1305", "aes-256-gcm"] as const;
/** AEAD backends `TWOFOLD_AEAD_BACKEND` accepts. */
export const AEAD_BACKENDS = ["libcrypto", "noble"] as const;

/** Values `TWOFOLD_HANDOFF` accepts. */
export const HANDOFF_MODES = ["on", "off"] as const;

/** twofold's environment variables (test-only switches are not listed). */
export const ENV_VARS = {
  TWOFOLD_LOG: {
    name: "TWOFOLD_LOG",
    values: LOG_LEVELS,
    description: "log level: debug, info (default), warn or error",
  },
  TWOFOLD_AEAD_BACKEND: {
    name: "TWOFOLD_AEAD_BACKEND",
    values: AEAD_BACKENDS,
    description: "AEAD implementation: libcrypto (OpenSSL, the default when it loads) or noble",
  },
  TWOFOLD_CIPHER: {
    name: "TWOFOLD_CIPHER",
    values: CIPHERS,
    description: "the cipher when --cipher is not given (default chacha20-poly1305)",
  },
  TWOFOLD_OFFLOADS: {
    name: "TWOFOLD_OFFLOADS",
    values: OFFLOAD_MODES,
    description: "off: no TUN/UDP offloads on any interface, whatever the config says (default auto)",
  },
  TWOFOLD_HANDOFF: {
    name: "TWOFOLD_HANDOFF",
    values: HANDOFF_MODES,
    description:
      "off: aes0's datagrams cross the kernel's UDP stack to wg0 instead of the in-process hand-off (default on)",
  },
  TWOFOLD_LOG_FILE: {
    name: "TWOFOLD_LOG_FILE",
    description: "append log lines to this file instead of stderr (set by `twofold wg` for its daemon)",
  },
  JOURNAL_STREAM: {
    name: "JOURNAL_STREAM",
    description: "set by systemd when stderr goes to the journal: log lines get <N> levels, no timestamps",
  },
  NOTIFY_SOCKET: {
    name: "NOTIFY_SOCKET",
    description: "set by systemd for Type=notify: READY=1 once up, STOPPING=1 when stopping",
  },
} as const satisfies Record<string, EnvVar>;

/** Name of a variable in {@link ENV_VARS}. */
export type EnvName = keyof typeof ENV_VARS;

/** A variable holds a value it does not accept. */
export class EnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvError";
  }
}

/** Reads an environment variable; unset or empty is undefined. */
export type EnvReader = (name: string) => string | undefined;

/** The process environment, read without throwing when env access is not permitted. */
export const processEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

/** The variable's value, or undefined when it is unset or empty. */
export function envValue(name: EnvName, read: EnvReader = processEnv): string | undefined {
  const v = read(name);
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The value of a variable with a fixed list of values, or undefined when unset or empty. Any other
 * value is an {@link EnvError} naming the variable and the allowed values.
 */
export function envChoice<N extends EnvName>(
  name: N,
  read: EnvReader = processEnv,
): ((typeof ENV_VARS)[N] extends { values: readonly (infer V)[] } ? V : string) | undefined {
  const v = envValue(name, read);
  const allowed = (ENV_VARS[name] as EnvVar).values;
  if (v === undefined || allowed === undefined) return v as never;
  if (!allowed.includes(v)) {
    throw new EnvError(`${name}=${JSON.stringify(v)} is not one of ${allowed.join(", ")} (or unset it)`);
  }
  return v as never;
}

/** Checks every variable with a fixed list of values; the first bad one is an {@link EnvError}. */
export function checkEnvironment(read: EnvReader = processEnv): void {
  for (const name of Object.keys(ENV_VARS) as EnvName[]) envChoice(name, read);
}
