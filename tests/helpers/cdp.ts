/**
 * A headless Chromium driven over the Chrome DevTools Protocol (a WebSocket from Deno), for the status
 * page's browser test: one page (tab) whose console errors and uncaught exceptions are collected,
 * JavaScript evaluation, text typed as keystrokes would insert it, viewport sizes and full-page PNG
 * screenshots. Chromium runs with a fresh empty profile and without any network service of its own.
 * @module
 */
import { Proc } from "./netns.ts";

/** Chromium flags for a quiet, headless, throw-away browser. */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--remote-debugging-port=0",
];

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

/** A running browser with one page. */
export class Browser {
  readonly #proc: Proc;
  readonly #ws: WebSocket;
  readonly #profile: string;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners: ((method: string, params: Record<string, unknown>) => void)[] = [];
  #nextId = 1;
  #session = "";
  #viewport = { width: 1280, height: 900, mobile: false };
  /** Console errors, uncaught exceptions and error log entries of the page, as text. */
  readonly errors: string[] = [];

  private constructor(proc: Proc, ws: WebSocket, profile: string) {
    this.#proc = proc;
    this.#ws = ws;
    this.#profile = profile;
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (typeof msg.id === "number") {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`CDP: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else if (typeof msg.method === "string") {
        for (const l of this.#listeners) l(msg.method, msg.params ?? {});
      }
    };
  }

  /** Starts `binary` (e.g. /usr/bin/chromium) and opens one blank page. */
  static async launch(binary: string): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "tfui-chromium-" });
    const child = new Deno.Command(binary, {
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, "about:blank"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const proc = new Proc(child, "chromium");
    let endpoint: string | undefined;
    const deadline = Date.now() + 20_000;
    while (endpoint === undefined && Date.now() < deadline && !proc.exited) {
      endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(proc.output())?.[1];
      if (endpoint === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    if (endpoint === undefined) {
      await proc.kill().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error(`chromium did not start:\n${proc.output().slice(-2000)}`);
    }
    const ws = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("cannot connect to chromium's DevTools"));
    });
    const b = new Browser(proc, ws, profile);
    const { targetId } = await b.send("Target.createTarget", { url: "about:blank" }, "");
    const { sessionId } = await b.send("Target.attachToTarget", { targetId, flatten: true }, "");
    b.#session = String(sessionId);
    b.#listeners.push((method, params) => {
      if (method === "Runtime.exceptionThrown") {
        const d = params.exceptionDetails as { text?: string; exception?: { description?: string } };
        b.errors.push(`exception: ${d.exception?.description ?? d.text}`);
      } else if (method === "Runtime.consoleAPICalled" && params.type === "error") {
        b.errors.push(`console.error: ${JSON.stringify(params.args)}`);
      } else if (method === "Log.entryAdded") {
        const e = params.entry as { level: string; text: string; url?: string };
        if (e.level === "error") b.errors.push(`log: ${e.text} ${e.url ?? ""}`);
      }
    });
    for (const domain of ["Page", "Runtime", "Log"]) await b.send(`${domain}.enable`);
    return b;
  }

  /** Sends one command (to the page's session unless `session` is given). */
  send(
    method: string,
    params: Record<string, unknown> = {},
    session?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const sessionId = session ?? this.#session;
    this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  /** Evaluates `expression` in the page and returns its (JSON-able) value. */
  async eval<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    const details = r.exceptionDetails as { text?: string } | undefined;
    if (details) throw new Error(`evaluating ${expression.slice(0, 80)}: ${details.text}`);
    return (r.result as { value: T }).value;
  }

  /** Polls `expression` until it is truthy (true) or `ms` pass (false). */
  async waitFor(expression: string, ms: number, every = 25): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await this.eval<boolean>(`Boolean(${expression})`)) return true;
      await new Promise((r) => setTimeout(r, every));
    }
    return false;
  }

  /** Opens `url` and waits for its load event. */
  async open(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => {
      const l = (method: string) => {
        if (method === "Page.loadEventFired") {
          this.#listeners.splice(this.#listeners.indexOf(l), 1);
          resolve();
        }
      };
      this.#listeners.push(l);
    });
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** Inserts `text` into the focused element, as typing does. */
  async type(text: string): Promise<void> {
    await this.send("Input.insertText", { text });
  }

  /** Sets the viewport (CSS pixels); `mobile` for a phone. */
  async viewport(width: number, height: number, mobile = false): Promise<void> {
    this.#viewport = { width, height, mobile };
    await this.#metrics(width, height, mobile);
  }

  async #metrics(width: number, height: number, mobile: boolean): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: mobile ? 2 : 1,
      mobile,
    });
  }

  /** Saves a PNG of the whole page to `path` (the viewport is made as tall as the page meanwhile). */
  async screenshot(path: string): Promise<void> {
    const { width, height, mobile } = this.#viewport;
    const tall = await this.eval<number>("document.documentElement.scrollHeight");
    await this.#metrics(width, Math.max(height, tall), mobile);
    await new Promise((r) => setTimeout(r, 100));
    const r = await this.send("Page.captureScreenshot", { format: "png" });
    await this.#metrics(width, height, mobile);
    const bin = atob(String(r.data));
    await Deno.writeFile(path, Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }

  /** Ends the browser (by its PID) and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#ws.close();
    } catch { /* already closed */ }
    await this.#proc.kill().catch(() => {});
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
