/**
 * `twofold rosenpass`: the Rosenpass key tools. `keygen` writes a Classic McEliece 460896 key pair
 * (secret key mode 0600, never overwriting a file); `fingerprint` prints the SHA-256 (base64) of a
 * public key, the value a peer entry pins. Output keys never reach stdout or logs.
 * @module
 */
import {
  parseSubcommandArgs,
  requiredOption,
  type Subcommand,
  type SubcommandOptions,
} from "./subcommand-args.ts";
import { generateStaticKeyPair, publicKeyFingerprint, publicKeyProblem } from "../rosenpass/key-files.ts";
import { DEFAULT_PROFILE, PROFILE_NAMES, profileByName, type ProfileName } from "../rosenpass/profile.ts";
import { CliError } from "./errors.ts";
import { helpOf } from "./help.ts";

const SECRET_KEY_MODE = 0o600;
const PUBLIC_KEY_MODE = 0o644;

function parse(sub: string, args: string[], options: SubcommandOptions, positionals: number) {
  return parseSubcommandArgs(rosenpassSubcommand(sub), args, options, positionals);
}

function required(sub: string, values: Record<string, unknown>, name: string): string {
  return requiredOption(rosenpassSubcommand(sub), values, name);
}

/** `rosenpass SUB`, whose help is `twofold rosenpass --help`. */
function rosenpassSubcommand(sub: string): Subcommand {
  return { name: `rosenpass ${sub}`, help: "rosenpass" };
}

function refuseExisting(path: string): void {
  try {
    Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new CliError(`rosenpass keygen: cannot check ${path} (${(e as Error).name})`);
  }
  throw new CliError(`rosenpass keygen: ${path} already exists; remove it first or choose another path`);
}

async function writeKeyFile(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  try {
    await Deno.writeFile(path, bytes, { createNew: true, mode });
    await Deno.chmod(path, mode); // exact mode whatever the umask
  } catch (e) {
    throw new CliError(
      `rosenpass keygen: cannot write ${path} (${(e as Error).name}): check the directory`,
      1,
    );
  }
}

async function keygen(args: string[]): Promise<number> {
  const { values } = parse("keygen", args, {
    "secret-key": { type: "string" },
    "public-key": { type: "string" },
    profile: { type: "string" },
  }, 0);
  const secretPath = required("keygen", values, "secret-key");
  const publicPath = required("keygen", values, "public-key");
  const profileName = (values.profile ?? DEFAULT_PROFILE) as string;
  if (!PROFILE_NAMES.includes(profileName as ProfileName)) {
    throw new CliError(
      `rosenpass keygen: --profile must be ${PROFILE_NAMES.join(" or ")}, not "${profileName}"`,
    );
  }
  if (secretPath === publicPath) {
    throw new CliError("rosenpass keygen: --secret-key and --public-key must differ");
  }
  refuseExisting(secretPath);
  refuseExisting(publicPath);
  const profile = profileByName(profileName as ProfileName);
  console.error(
    `rosenpass keygen: generating a Classic McEliece 460896 key pair (${profile.name}), a few seconds…`,
  );
  const started = performance.now();
  const { publicKey, secretKey } = await generateStaticKeyPair(profile);
  try {
    await writeKeyFile(secretPath, secretKey, SECRET_KEY_MODE);
    await writeKeyFile(publicPath, publicKey, PUBLIC_KEY_MODE);
  } finally {
    secretKey.fill(0);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(
    `rosenpass keygen: done in ${seconds} s; secret key ${secretPath} (0600), public key ${publicPath}`,
  );
  console.log(publicKeyFingerprint(publicKey));
  return 0;
}

async function fingerprint(args: string[]): Promise<number> {
  const { positionals } = parse("fingerprint", args, {}, 1);
  const path = positionals[0];
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new CliError(`rosenpass fingerprint: cannot read ${path} (${(e as Error).name}): check the path`);
  }
  const problem = publicKeyProblem(bytes);
  if (problem) throw new CliError(`rosenpass fingerprint: ${path} ${problem}`);
  console.log(publicKeyFingerprint(bytes));
  return 0;
}

/** Runs `twofold rosenpass ARGS…`; returns the exit code (bad usage throws CliError). */
export async function runRosenpassCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help" || rest.includes("--help")) {
    console.log(helpOf(sub === "keygen" || sub === "fingerprint" ? `rosenpass ${sub}` : "rosenpass"));
    return sub === undefined ? 2 : 0;
  }
  if (sub === "keygen") return await keygen(rest);
  if (sub === "fingerprint") return await fingerprint(rest);
  throw new CliError(`rosenpass: unknown command "${sub}"; run "twofold rosenpass --help"`);
}
