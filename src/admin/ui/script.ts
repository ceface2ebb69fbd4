/**
 * The status page's script, served as `/ui/app.js` (hand-written, no framework, no build step). It
 * makes the server-rendered snapshot live:
 * - polls the status fragment (`/ui/status`, the page's own renderer) every second and swaps it in;
 * - draws each layer's throughput graph (received and sent bytes per second) from the counters the
 *   fragment carries, over the last minute;
 * - follows `/v1/events` and lists new events, resuming after a dropped connection with
 *   `Last-Event-ID`. It reads the stream with `fetch`, not `EventSource`: EventSource cannot send the
 *   `Authorization` header a TCP listener needs, and the token must never go into a URL;
 * - holds the admin token typed into the page in a variable only (never the URL, a cookie or storage),
 *   sends it as a bearer header, and only with it shows the lockdown add/remove controls.
 * Event text is set with textContent, never parsed as HTML. Every URL is relative to the page, so the
 * page works under a path prefix too (`twofold ui` serves it under a per-run random one).
 * @module
 */

import { relative, UI_STATUS_PATH } from "./assets.ts";

/** The script text. */
export const UI_SCRIPT = `"use strict";
(() => {
  const POLL_MS = 1000;
  const RETRY_MS = 1000;
  const GRAPH_POINTS = 60;
  const MAX_EVENTS = 30;
  const $ = (id) => document.getElementById(id);
  const readsNeedToken = document.body.dataset.readsNeedToken === "true";
  let token = null;
  let stream = null;
  let pollTimer = null;
  let lastId = $("events").dataset.lastId || null;
  const history = new Map();

  const canRead = () => !readsNeedToken || token !== null;
  const headers = (extra) => {
    const h = Object.assign({}, extra);
    if (token !== null) h.Authorization = "Bearer " + token;
    return h;
  };
  const setLive = (text, tone) => {
    $("live").textContent = text;
    $("live").className = "state " + tone;
  };
  const showMode = () => {
    for (const el of document.querySelectorAll(".needs-token")) el.hidden = token === null;
    $("forget").hidden = token === null;
    $("mode").textContent = token !== null
      ? "Token held in this page's memory only: changes allowed. Reloading the page or 'forget' drops it."
      : readsNeedToken
      ? "This listener needs the admin token to show anything. It stays in this page's memory only."
      : "Read-only. Type the admin token to change the lockdown list; it stays in this page's memory only.";
  };

  const rate = (a, b, key) => Math.max(0, (b[key] - a[key]) / Math.max((b.t - a.t) / 1000, 0.001));
  const fmtRate = (v) => v >= 1048576 ? (v / 1048576).toFixed(1) + " MiB/s"
    : v >= 1024 ? (v / 1024).toFixed(1) + " KiB/s" : Math.round(v) + " B/s";
  const drawGraphs = () => {
    const now = performance.now();
    for (const svg of document.querySelectorAll("svg.graph")) {
      const id = svg.dataset.graph;
      const points = history.get(id) || [];
      points.push({ t: now, rx: Number(svg.dataset.rx), tx: Number(svg.dataset.tx) });
      while (points.length > GRAPH_POINTS + 1) points.shift();
      history.set(id, points);
      if (points.length < 2) continue;
      const rx = [], tx = [];
      for (let i = 1; i < points.length; i++) {
        rx.push(rate(points[i - 1], points[i], "rx"));
        tx.push(rate(points[i - 1], points[i], "tx"));
      }
      const top = Math.max(1, ...rx, ...tx);
      const line = (values, cls) => {
        const el = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
        const step = 120 / Math.max(values.length - 1, 1);
        el.setAttribute("points", values.map((v, i) => (i * step).toFixed(1) + "," +
          (29 - (v / top) * 27).toFixed(1)).join(" "));
        el.setAttribute("class", cls);
        return el;
      };
      svg.replaceChildren(line(rx, "rx"), line(tx, "tx"));
      svg.setAttribute("aria-label", "received " + fmtRate(rx[rx.length - 1]) + ", sent " +
        fmtRate(tx[tx.length - 1]));
    }
  };

  const poll = async () => {
    clearTimeout(pollTimer);
    if (!canRead()) {
      setLive("needs the admin token", "warn");
      return;
    }
    try {
      const r = await fetch(${
  JSON.stringify(relative(UI_STATUS_PATH))
}, { headers: headers(), cache: "no-store" });
      if (r.status === 401 || r.status === 403) {
        setLive("the node refused the token", "bad");
        token = null;
        showMode();
        return;
      }
      if (!r.ok) {
        setLive("status: HTTP " + r.status, "bad");
      } else {
        const html = await r.text();
        const tpl = document.createElement("template");
        tpl.innerHTML = html;
        const fresh = tpl.content.getElementById("status");
        if (fresh) $("status").replaceWith(fresh);
        showMode();
        drawGraphs();
        setLive("live, updated " + new Date().toLocaleTimeString(), "good");
      }
    } catch {
      setLive("the node cannot be reached; retrying", "bad");
    }
    pollTimer = setTimeout(poll, POLL_MS);
  };

  const tone = (type) => /failed|stale|refused|mismatch-suspected|unreachable|misbehaving|inconsistent|exhausted/
      .test(type) ? "bad" : /closed|low/.test(type) ? "warn"
    : /rotated|opened|completed|cleared/.test(type) ? "good" : "idle";
  const addEvent = (e) => {
    const li = document.createElement("li");
    li.className = "event " + tone(e.type);
    li.dataset.id = String(e.id);
    const time = document.createElement("time");
    time.dateTime = e.at;
    time.textContent = String(e.at).slice(11, 19);
    const type = document.createElement("b");
    type.textContent = e.type;
    const reason = document.createElement("span");
    reason.className = "reason";
    reason.textContent = e.reason;
    li.append(time, " ", type, (e.peer ? " " + e.peer : "") + (e.layer ? " (" + e.layer + ")" : "") + " ",
      reason);
    const list = $("events");
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  };
  const onFrame = (frame) => {
    let data = null;
    for (const line of frame.split("\\n")) if (line.startsWith("data:")) data = line.slice(5).trim();
    if (data === null) return;
    const e = JSON.parse(data);
    lastId = String(e.id);
    addEvent(e);
  };
  const follow = async () => {
    if (stream) stream.abort();
    if (!canRead()) return;
    const ctl = new AbortController();
    stream = ctl;
    while (!ctl.signal.aborted) {
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (lastId !== null) h["Last-Event-ID"] = lastId;
        const r = await fetch("v1/events", { headers: h, signal: ctl.signal, cache: "no-store" });
        if (r.ok && r.body) {
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value.replace(/\\r\\n?/g, "\\n");
            let i;
            while ((i = buf.indexOf("\\n\\n")) >= 0) {
              onFrame(buf.slice(0, i));
              buf = buf.slice(i + 2);
            }
          }
        }
      } catch {
        if (ctl.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };

  const result = (text, cls) => {
    $("lockdown-result").textContent = text;
    $("lockdown-result").className = cls;
  };
  const change = async (method, path, body, done) => {
    if (token === null) return result("type the admin token first", "bad");
    try {
      const r = await fetch(path, {
        method,
        headers: headers(body ? { "Content-Type": "application/json" } : {}),
        body: body ? JSON.stringify(body) : undefined,
      });
      const j = await r.json().catch(() => ({}));
      if (r.ok) {
        result(done + (j.enforced ? "" : " (stored; not enforced on this node)"), "good");
        poll();
      } else {
        result((j.detail || "refused") + " (HTTP " + r.status + ")", "bad");
      }
    } catch {
      result("the node cannot be reached", "bad");
    }
  };

  $("auth").hidden = false;
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("token").value.trim();
    $("token").value = "";
    token = v === "" ? null : v;
    showMode();
    poll();
    follow();
  });
  $("forget").addEventListener("click", () => {
    token = null;
    showMode();
    if (readsNeedToken && stream) stream.abort();
    poll();
  });
  $("lockdown-add").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const proto = $("add-proto").value;
    const text = $("add-port").value.trim();
    const port = /^\\d+$/.test(text) ? Number(text) : text;
    change("POST", "v1/lockdown/ports", { proto, port }, "added " + proto + "/" + text);
  });
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-remove]");
    if (!b) return;
    const spec = b.dataset.remove;
    change("DELETE", "v1/lockdown/ports/" + spec, undefined, "removed " + spec);
  });

  showMode();
  poll();
  follow();
})();
`;
