/**
 * twofold's version: the one in deno.json, so `twofold --version`, the admin API's status and the
 * release agree.
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** twofold's version (from deno.json). */
export const VERSION: string = denoJson.version;
