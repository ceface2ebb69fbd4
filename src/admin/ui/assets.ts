/**
 * Where the status page's own script and stylesheet are served, and the Content-Security-Policy every
 * page response carries: everything from the node itself ('self'), no inline script or style, no
 * frames, no plugins, forms and fetches to the node only. The page needs nothing else (no CDN, no
 * font, no framework download).
 * @module
 */

/** The page's script. */
export const UI_SCRIPT_PATH = "/ui/app.js";
/** The page's stylesheet. */
export const UI_STYLE_PATH = "/ui/app.css";
/** The status fragment the script polls (the same renderer as the page; reads need what /v1/status needs). */
export const UI_STATUS_PATH = "/ui/status";

/**
 * A path of the node's (e.g. "/ui/app.js") as the page names it: relative ("ui/app.js"), so that the
 * page also works under a path prefix (`twofold ui` serves it under a per-run random one).
 */
export function relative(path: string): string {
  return path.replace(/^\//, "");
}

/** Paths any reader may fetch, even on a TCP listener: the page shell and its assets (no status in them). */
export const UI_PUBLIC_PATHS: ReadonlySet<string> = new Set(["/", UI_SCRIPT_PATH, UI_STYLE_PATH]);

/** The Content-Security-Policy of every UI response. `data:` images: only the empty favicon. */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers every UI response carries besides its type. */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": UI_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};
