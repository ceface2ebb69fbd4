/**
 * The status page as a Hono sub-app, mounted at `/` of the admin API:
 * - `GET /`: the whole page. On the unix socket (and through `twofold ui`, which proxies it) it holds a
 *   snapshot of the status and the latest events, readable with JavaScript off. On a TCP listener,
 *   where reads need the token, it holds no status: the page asks for the token and its script reads
 *   with it (a browser cannot send a bearer header when it navigates).
 * - `GET /ui/status`: the live part of the page as an HTML fragment (what the script polls); it needs
 *   what `GET /v1/status` needs.
 * - `GET /ui/app.js`, `GET /ui/app.css`: the page's own script and stylesheet.
 * Every response carries the strict Content-Security-Policy of assets.ts. The status goes through the
 * API's schema first, so only declared fields can reach the page.
 * @module
 */
import { Hono } from "hono";
import type { AdminBackend } from "../model.ts";
import { NodeStatusSchema } from "../status-schema.ts";
import { toStateBody } from "../lockdown-schema.ts";
import { Page, PAGE_EVENTS, type PageStatus, StatusSection } from "./page.tsx";
import { UI_SCRIPT_PATH, UI_SECURITY_HEADERS, UI_STATUS_PATH, UI_STYLE_PATH } from "./assets.ts";
import { UI_SCRIPT } from "./script.ts";
import { UI_STYLE } from "./style.ts";

/** Options of {@link uiApp}. */
export interface UiAppOptions {
  /** True on a TCP listener: the page then shows the status only to a script holding the token. */
  readsNeedToken: boolean;
}

/** The backend's status with only its declared fields (throws when it does not match the schema). */
export function pageStatus(backend: AdminBackend): PageStatus {
  const s = backend.status();
  const checked = NodeStatusSchema.safeParse({ ...s, lockdown: toStateBody(s.lockdown) });
  if (!checked.success) throw new Error("the status snapshot does not match its schema");
  return checked.data;
}

const HTML = "text/html; charset=utf-8";

/** The status page's routes for `backend`; see the module doc. Mount with `app.route("/", uiApp(…))`. */
export function uiApp(backend: AdminBackend, opts: UiAppOptions): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(UI_SECURITY_HEADERS)) c.header(k, v);
  });
  app.get("/", (c) => {
    const status = opts.readsNeedToken ? null : pageStatus(backend);
    const events = opts.readsNeedToken ? [] : backend.events.since(0).slice(-PAGE_EVENTS);
    const page = <Page status={status} events={events} readsNeedToken={opts.readsNeedToken} />;
    return c.body("<!doctype html>" + String(page), 200, { "Content-Type": HTML });
  });
  app.get(UI_STATUS_PATH, (c) => {
    const fragment = <StatusSection s={pageStatus(backend)} />;
    return c.body(String(fragment), 200, { "Content-Type": HTML });
  });
  app.get(
    UI_SCRIPT_PATH,
    (c) => c.body(UI_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8" }),
  );
  app.get(UI_STYLE_PATH, (c) => c.body(UI_STYLE, 200, { "Content-Type": "text/css; charset=utf-8" }));
  return app;
}
