/**
 * The inline style sheets of the live view and of the index page, kept as
 * constant texts so that a Content-Security-Policy can allow them by nonce
 * or by hash. Colours meet WCAG AA contrast in the light and dark schemes.
 *
 * @module
 */

const BASE_STYLE = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1b1b; --muted: #4a4a4a;
  --line: #c8c8c8; --panel: #f3f4f6; --accent: #0b57d0; --ok: #146c2e; --warn: #8a4b00;
  --bad: #b3261e; --mine: #e8f0fe; --gap: #fff4e5; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #121212; --fg: #ececec; --muted: #b8b8b8; --line: #4a4a4a; --panel: #1f1f1f;
    --accent: #8ab4f8; --ok: #81c995; --warn: #fdd663; --bad: #f28b82; --mine: #1f2a3d;
    --gap: #3a2a10; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: .9rem; }
button, input, textarea { font: inherit; color: inherit; }
button { background: var(--panel); border: 1px solid var(--muted); border-radius: .4rem;
  padding: .45rem .9rem; cursor: pointer; min-height: 2.5rem; }
button:hover { border-color: var(--fg); }
button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
button:disabled { opacity: .6; cursor: progress; }
input, textarea { background: var(--bg); border: 1px solid var(--muted); border-radius: .4rem;
  padding: .45rem; width: 100%; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.muted { color: var(--muted); }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
`;

/** The inline style sheet of the live view page. */
export const VIEW_PAGE_STYLE: string = BASE_STYLE + `
.bar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .75rem 0; }
.status { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; }
#state { font-weight: 700; padding: .15rem .6rem; border-radius: 1rem; border: 2px solid; }
#state[data-state="live"] { color: var(--ok); }
#state[data-state="connecting"], #state[data-state="reconnecting"] { color: var(--warn); }
#state[data-state="gap"], #state[data-state="expired"] { color: var(--bad); }
#state-detail { color: var(--muted); }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .5rem;
  margin: .75rem 0; padding: 0; }
.stats div { background: var(--panel); border-radius: .4rem; padding: .4rem .6rem; min-width: 0; }
.stats dt { font-size: .8rem; color: var(--muted); }
.stats dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.stats .wide { grid-column: 1 / -1; }
body:not(.paused) .stats .held { display: none; }
form { margin: .5rem 0; }
.token-row { display: flex; gap: .5rem; align-items: end; }
.token-row label { flex: 1; }
textarea { min-height: 4.5rem; resize: vertical; }
#publish-result { display: block; margin-top: .4rem; overflow-wrap: anywhere; }
#publish-result[data-status="ok"] { color: var(--ok); }
#publish-result[data-status="error"] { color: var(--bad); }
#events { list-style: none; margin: 0; padding: 0; border-top: 1px solid var(--line); }
.row { display: grid; grid-template-columns: 10rem 1fr; gap: .75rem; padding: .35rem .25rem;
  border-bottom: 1px solid var(--line); }
.row .meta { display: flex; flex-direction: column; font-size: .85rem; min-width: 0; }
.row .id { font-family: ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.row time { color: var(--muted); }
.row .data { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; min-width: 0; }
.row.mine { background: var(--mine); }
.row.gap, .row.note { background: var(--gap); font-weight: 600; }
body.paused #events { opacity: .75; }
details { margin: .75rem 0; }
details pre { white-space: pre-wrap; overflow-wrap: anywhere; }
@media (min-width: 62rem) {
  main { max-width: 90rem; }
  .layout { display: grid; grid-template-columns: 22rem minmax(0, 1fr); gap: 1.5rem; }
  .side { position: sticky; top: 1rem; align-self: start; max-height: calc(100vh - 2rem);
    overflow-y: auto; }
  .stats { grid-template-columns: 1fr 1fr; }
  .list h2 { margin-top: .75rem; }
}
@media (max-width: 40rem) {
  main { padding: .75rem; }
  .row { grid-template-columns: 1fr; gap: .15rem; }
  .row .meta { flex-direction: row; justify-content: space-between; gap: .5rem; }
  .stats { grid-template-columns: repeat(3, minmax(0, 1fr)); gap: .4rem; }
  .stats div { padding: .3rem .45rem; }
  textarea { min-height: 3rem; }
}
`;

/** The inline style sheet of the index page. */
export const INDEX_PAGE_STYLE: string = BASE_STYLE + `
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: .85rem; color: var(--muted); }
td.num { font-variant-numeric: tabular-nums; }
.up { color: var(--ok); font-weight: 600; }
.down { color: var(--bad); font-weight: 600; }
nav ul { display: flex; flex-wrap: wrap; gap: 1rem; padding: 0; list-style: none; }
@media (max-width: 40rem) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr { border-bottom: 1px solid var(--line); padding: .4rem 0; }
  td { border: 0; padding: .15rem .25rem; }
  td::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85rem; }
}
`;
