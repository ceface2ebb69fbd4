/**
 * Where a Web Worker's module is, for every way twofold runs: in the source tree and under
 * `deno compile` (which embeds the worker with `--include`) it is the `.ts` file next to the module that
 * starts it; in the release bundle that module is inlined into `main.js`, and `tools/release.ts` writes
 * each worker, bundled, as `<bundledName>.js` beside `main.js`.
 * @module
 */

/**
 * The URL of the worker `sourceFile` (relative, e.g. "./send.ts") of the module at `base`
 * (its `import.meta.url`), or of `<bundledName>.js` beside the bundle when `base` is not a `.ts` file.
 */
export function workerModuleUrl(base: string, sourceFile: string, bundledName: string): string {
  return new URL(base.endsWith(".ts") ? sourceFile : `./${bundledName}.js`, base).href;
}
