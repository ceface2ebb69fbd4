/**
 * `deno task release`: builds the offline release tarball `dist/twofold-<version>-linux-x64.tar.gz`
 * without any network access. It holds `main.ts` and both data-plane workers bundled by `deno bundle`
 * (npm packages inlined, so no Deno cache is needed at run time), the pinned Deno binary this script
 * runs on (run it as `npx -y deno@2.9.6 task release`: that binary comes from the npm package), a
 * launcher `bin/twofold` that starts the bundle with that Deno (`--cached-only --no-config`), a
 * wg-quick launcher `bin/twofold-wg`, the systemd units and the manual rendered from the help table.
 *
 * Layout inside the tarball (one top directory, `twofold-<version>-linux-x64/`):
 *   bin/twofold, bin/twofold-wg                     launchers (POSIX sh)
 *   lib/twofold/main.js, encrypt-worker.js, decrypt-worker.js, rosenpass-worker.js, deno
 *   lib/twofold/node_modules/<pkg>@<version>/…       files bundled npm modules read at run time
 *   share/doc/twofold/twofold.txt                   the manual (every command's --help)
 *   share/systemd/twofold.service, twofold-hub.service
 *   VERSION
 *
 * Usage: deno run -A tools/release.ts [--out-dir DIR]   (default: dist/ of the repository)
 * @module
 */
import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";
import { renderManual } from "../src/cli/manual.ts";
import { v8FlagsArgument } from "../src/v8-flags.ts";

/** The Deno release the tarball ships and the launcher runs (the project's pinned `npx deno@…`). */
export const PINNED_DENO = "2.9.6";
/** The platform suffix of the tarball name. */
export const PLATFORM = "linux-x64";
/** The entry points bundled, each to `lib/twofold/<name>.js`. */
const ENTRIES: [string, string][] = [
  ["main", "main.ts"],
  ["encrypt-worker", "src/wireguard/dataplane/send.ts"],
  ["decrypt-worker", "src/wireguard/dataplane/receive.ts"],
  ["rosenpass-worker", "src/rosenpass/worker.ts"],
];
const UNITS = ["twofold.service", "twofold-hub.service"];
const ROOT = new URL("../", import.meta.url).pathname;

/** The tarball's file name for `version`. */
export function tarballName(version: string = VERSION): string {
  return `twofold-${version}-${PLATFORM}.tar.gz`;
}

/** The launcher `bin/twofold`: the shipped Deno runs the bundle offline, with no config or cache. */
export const LAUNCHER = `#!/bin/sh
# twofold launcher: runs the bundled twofold with the Deno binary shipped beside it, offline
# (--cached-only: nothing is fetched; --no-config: no deno.json is looked up). The bundle holds every
# dependency, so DENO_DIR only receives Deno's compile cache (default ~/.cache/twofold-deno).
set -e
self=$(readlink -f "$0")
lib=$(dirname "$(dirname "$self")")/lib/twofold
if [ -z "\${DENO_DIR:-}" ]; then
  DENO_DIR="\${XDG_CACHE_HOME:-\${HOME:-/tmp}/.cache}/twofold-deno"
fi
export DENO_DIR
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
# --allow-all: twofold needs FFI (libc, libcrypto), which grants everything a narrower list could deny.
# The V8 flags bound each isolate's memory (src/v8-flags.ts).
exec "$lib/deno" run --allow-all --cached-only --no-config --no-lock --quiet ${v8FlagsArgument()} "$lib/main.js" "$@"
`;

/** `bin/twofold-wg`: the wireguard-go-compatible launcher for wg-quick (WG_QUICK_USERSPACE_IMPLEMENTATION). */
export const WG_LAUNCHER = `#!/bin/sh
# twofold-wg: for wg-quick, WG_QUICK_USERSPACE_IMPLEMENTATION=/path/to/bin/twofold-wg.
# TWOFOLD_CIPHER=aes-256-gcm selects the aes0 suite (default chacha20-poly1305).
set -e
here=$(dirname "$(readlink -f "$0")")
if [ -n "\${TWOFOLD_CIPHER:-}" ]; then exec "$here/twofold" wg --cipher "$TWOFOLD_CIPHER" "$@"; fi
exec "$here/twofold" wg "$@"
`;

async function run(cmd: string, args: string[], cwd = ROOT): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${err}`);
  }
}

/** An import of a package left outside the bundle would need a Deno cache at run time: refuse it. */
export function externalPackageImports(bundle: string): string[] {
  return [...bundle.matchAll(/\b(?:from|import)\s*\(?\s*["'](npm:|jsr:|https?:)[^"']*["']/g)].map((m) =>
    m[0]
  );
}

/** An npm package directory a bundled module reads files from at run time (`__dirname`). */
export interface PackageDir {
  /** Where the bundle looks for it, relative to `lib/twofold/`: `node_modules/<name>@<version>/<subdir>`. */
  target: string;
  /** The package's own directory in the Deno cache (its package.json is copied too). */
  packageRoot: string;
  /** The subdirectory of the package the module lives in (`""` for the package root). */
  subdir: string;
}

const BUNDLED_PACKAGE_MODULE =
  /^\/\/ (\S*registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/([^/]+)\/((?:[^/]+\/)*)[^/]+)$/;
const DIRNAME_HELPER = "__twofoldPackageDir";

/**
 * Rewrites the bundled npm modules that find their own files through `__dirname` (which an ES module
 * bundle does not have: mceliece-nist loads `mceliece.wasm` and starts `worker.js` beside itself) so
 * that they look in `lib/twofold/node_modules/<name>@<version>/<subdir>`, and lists those directories
 * for the build to copy from the Deno cache. `cacheBase` resolves the bundle's source comments, which
 * are relative to the directory `deno bundle` ran in. Pure: returns the new bundle text.
 */
export function relocatePackageDirs(bundle: string, cacheBase: string): { code: string; dirs: PackageDir[] } {
  const dirs = new Map<string, PackageDir>();
  let current: PackageDir | null = null;
  const lines = bundle.split("\n").map((line) => {
    const m = BUNDLED_PACKAGE_MODULE.exec(line);
    if (m) {
      const [, path, name, version, subdir] = m;
      const root =
        new URL(path.slice(0, path.indexOf(`/${version}/`) + version.length + 1), cacheBase).pathname;
      const target = `node_modules/${name}@${version}/${subdir}`.replace(/\/$/, "");
      current = { target, packageRoot: root.replace(/\/$/, ""), subdir: subdir.replace(/\/$/, "") };
      return line;
    }
    if (current && /\b__dirname\b/.test(line)) {
      dirs.set(current.target, current);
      return line.replaceAll(/\b__dirname\b/g, `${DIRNAME_HELPER}(${JSON.stringify(current.target)})`);
    }
    return line;
  });
  if (dirs.size === 0) return { code: bundle, dirs: [] };
  const helper = `const ${DIRNAME_HELPER} = (p) => new URL("./" + p, import.meta.url).pathname;`;
  return { code: `${helper}\n${lines.join("\n")}`, dirs: [...dirs.values()] };
}

/** Copies one package directory (its files, not subdirectories, and its package.json) under `lib`. */
async function copyPackageDir(lib: string, dir: PackageDir): Promise<void> {
  const to = `${lib}/${dir.target}`;
  await Deno.mkdir(to, { recursive: true });
  const from = dir.subdir ? `${dir.packageRoot}/${dir.subdir}` : dir.packageRoot;
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
  const top = `${lib}/${
    dir.target.split("/").slice(0, dir.target.startsWith("node_modules/@") ? 3 : 2).join("/")
  }`;
  await Deno.copyFile(`${dir.packageRoot}/package.json`, `${top}/package.json`);
}

/** Builds the tarball; returns its path. */
export async function buildRelease(outDir: string, deno: string = Deno.execPath()): Promise<string> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(`the release is built for ${PLATFORM}; this is ${Deno.build.os}-${Deno.build.arch}`);
  }
  if (Deno.version.deno !== PINNED_DENO) {
    throw new Error(
      `run the release build with Deno ${PINNED_DENO} (npx -y deno@${PINNED_DENO} task release), not ${Deno.version.deno}`,
    );
  }
  const top = `twofold-${VERSION}-${PLATFORM}`;
  const stage = `${outDir}/${top}`;
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  const lib = `${stage}/lib/twofold`;
  for (const d of [lib, `${stage}/bin`, `${stage}/share/doc/twofold`, `${stage}/share/systemd`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  for (const [name, entry] of ENTRIES) {
    const out = `${lib}/${name}.js`;
    await run(deno, ["bundle", "--quiet", "--platform", "deno", "--output", out, entry]);
    const relocated = relocatePackageDirs(await Deno.readTextFile(out), `file://${ROOT}`);
    await Deno.writeTextFile(out, relocated.code);
    for (const dir of relocated.dirs) await copyPackageDir(lib, dir);
    const external = externalPackageImports(relocated.code);
    if (external.length > 0) throw new Error(`${name}.js still imports packages: ${external.join(", ")}`);
  }
  await Deno.copyFile(deno, `${lib}/deno`);
  await Deno.chmod(`${lib}/deno`, 0o755);
  await Deno.writeTextFile(`${stage}/bin/twofold`, LAUNCHER, { mode: 0o755 });
  await Deno.writeTextFile(`${stage}/bin/twofold-wg`, WG_LAUNCHER, { mode: 0o755 });
  for (const f of [`${stage}/bin/twofold`, `${stage}/bin/twofold-wg`]) await Deno.chmod(f, 0o755);
  await Deno.writeTextFile(`${stage}/share/doc/twofold/twofold.txt`, renderManual());
  for (const unit of UNITS) {
    await Deno.copyFile(`${ROOT}packaging/systemd/${unit}`, `${stage}/share/systemd/${unit}`);
  }
  await Deno.writeTextFile(`${stage}/VERSION`, `${VERSION}\n`);
  const tarball = `${outDir}/${tarballName()}`;
  await run("tar", ["-czf", tarball, "--owner=0", "--group=0", "--numeric-owner", "-C", outDir, top]);
  await Deno.remove(stage, { recursive: true });
  return tarball;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { "out-dir": { type: "string" } } });
  const outDir = values["out-dir"] ?? `${ROOT}dist`;
  await Deno.mkdir(outDir, { recursive: true });
  const started = performance.now();
  try {
    const tarball = await buildRelease(outDir);
    const size = (await Deno.stat(tarball)).size;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${tarball} (${(size / 1048576).toFixed(1)} MiB, built in ${seconds} s)`);
  } catch (e) {
    console.error(`release: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
