/**
 * The status page's stylesheet, served as `/ui/app.css` (a file of the node's own, so the CSP allows
 * styles from 'self' only). States carry a word and one of four colour classes: good, warn, bad, idle.
 * One column on a phone, peers' two layers side by side from 700 px.
 * @module
 */

/** The stylesheet text. */
export const UI_STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1b1f24; --muted: #5b6570; --line: #d8dde3;
  --good: #1a7f37; --warn: #9a6700; --bad: #cf222e; --idle: #57606a; --rx: #0969da; --tx: #8250df; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --card: #161b22; --ink: #e6edf3; --muted: #8b949e; --line: #30363d;
    --good: #3fb950; --warn: #d29922; --bad: #f85149; --idle: #8b949e; --rx: #58a6ff; --tx: #bc8cff; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 0.75rem; background: var(--bg); color: var(--ink);
  font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; }
h1 { font-size: 1.3rem; margin: 0 0 0.5rem; }
h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
h3 { font-size: 1rem; margin: 0 0 0.4rem; display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: baseline; }
h4 { margin: 0 0 0.3rem; font-size: 0.95rem; }
main { display: grid; gap: 0.75rem; max-width: 1400px; }
#status { display: grid; gap: 0.75rem; }
.card, .peer { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem; }
.peers { display: grid; gap: 0.75rem; }
.peers > h2 { margin: 0; }
.muted { color: var(--muted); }
.role { color: var(--muted); font-weight: normal; font-size: 0.85rem; }
code { font-size: 0.85rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 0.75rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.ifaces, .layers { display: grid; gap: 0.75rem; grid-template-columns: 1fr; }
@media (min-width: 700px) { .ifaces, .layers { grid-template-columns: 1fr 1fr; } }
@media (min-width: 1100px) { .peers { grid-template-columns: 1fr 1fr; } .peers > h2 { grid-column: 1 / -1; } }
.layer { border-top: 1px solid var(--line); padding-top: 0.4rem; }
.state { display: inline-block; padding: 0 0.4rem; border-radius: 999px; font-size: 0.8rem;
  font-weight: 600; border: 1px solid currentColor; margin: 0 0.3rem 0 0.15rem; white-space: nowrap; }
.state.good { color: var(--good); } .state.warn { color: var(--warn); }
.state.bad { color: var(--bad); } .state.idle { color: var(--idle); }
.reason { color: var(--muted); }
.problem { color: var(--bad); grid-column: 2; }
.keyage { display: grid; gap: 0.15rem; }
.bar { width: 100%; max-width: 16rem; height: 0.5rem; }
.bar .track { fill: var(--line); } .bar .tick { fill: var(--ink); }
.bar.good .fill { fill: var(--good); } .bar.warn .fill { fill: var(--warn); } .bar.bad .fill { fill: var(--bad); }
.graph { display: block; width: 100%; max-width: 16rem; height: 2rem; margin-top: 0.2rem; }
.graph:empty { display: none; }
.graph polyline { fill: none; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.graph .rx { stroke: var(--rx); } .graph .tx { stroke: var(--tx); }
span.rx { color: var(--rx); } span.tx { color: var(--tx); }
table { border-collapse: collapse; width: 100%; display: block; overflow-x: auto; }
th, td { text-align: left; padding: 0.2rem 0.6rem 0.2rem 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
.ports { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; }
form { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; }
input, select, button { font: inherit; padding: 0.2rem 0.5rem; border: 1px solid var(--line); border-radius: 6px;
  background: var(--card); color: var(--ink); }
button { cursor: pointer; }
#events { list-style: none; padding: 0; margin: 0; max-height: 24rem; overflow-y: auto; }
.event { padding: 0.2rem 0 0.2rem 0.5rem; border-left: 3px solid var(--idle); margin-bottom: 0.2rem; }
.event.good { border-color: var(--good); } .event.warn { border-color: var(--warn); }
.event.bad { border-color: var(--bad); }
.event time { color: var(--muted); font-variant-numeric: tabular-nums; }
#lockdown-result.bad { color: var(--bad); } #lockdown-result.good { color: var(--good); }
`;
