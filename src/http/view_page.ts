/**
 * HTML pages for people: the live view of one stream and the index of an
 * instance. Both pages are self-contained (inline style and script, no
 * external resource) so they ship inside a compiled binary, and every string
 * from outside is escaped.
 *
 * @module
 */

import { VIEW_MAX_ROWS, VIEW_PAGE_SCRIPT } from "./_view_script.ts";
import { CLIENT_SCRIPT } from "./_client_script.ts";
import { INDEX_PAGE_STYLE, VIEW_PAGE_STYLE } from "./_view_style.ts";

export {
  CLIENT_SCRIPT,
  INDEX_PAGE_STYLE,
  VIEW_MAX_ROWS,
  VIEW_PAGE_SCRIPT,
  VIEW_PAGE_STYLE,
};

/** Options of {@linkcode renderStreamPage}. */
export interface StreamPageOptions {
  /** The stream path as served, with or without its leading slash, e.g. `events`. */
  path: string;
  /** Whether the page shows a publish box that POSTs to the same path. */
  publishAllowed: boolean;
  /** Whether the page shows a token field (sent as `?token=` and as a Bearer token). */
  tokenRequired: boolean;
  /**
   * The page title.
   *
   * @default {"wsevent: /<path>"}
   */
  title?: string;
  /**
   * A Content-Security-Policy nonce put on the inline `<script>` and `<style>`.
   *
   * @default {undefined}
   */
  nonce?: string;
}

/** What the index page shows about one served path. */
export interface IndexPathInfo {
  /** The path, with or without its leading slash. */
  path: string;
  /** Current subscribers by transport. */
  subscribers: { websocket: number; sse: number };
  /** Events in the replay buffer. */
  buffered: number;
  /** Capacity of the replay buffer, in events. */
  capacity: number;
  /** Bytes held by the replay buffer. */
  bufferedBytes: number;
  /** The upstream this path relays, if it is a relay. */
  upstream?: { url: string; connected: boolean; reconnects: number };
}

/** The data the index page shows: plain values, no behaviour. */
export interface IndexInfo {
  /** The wsevent version. */
  version: string;
  /** Every served path. */
  paths: IndexPathInfo[];
}

/** Options of {@linkcode renderIndexPage}. */
export interface IndexPageOptions {
  /**
   * A Content-Security-Policy nonce put on the inline `<style>`.
   *
   * @default {undefined}
   */
  nonce?: string;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @param text Any string.
 * @returns The string with `& < > " '` replaced by entities.
 *
 * @example Usage
 * ```ts
 * import { escapeHtml } from "./view_page.ts";
 * console.log(escapeHtml('<a href="x">')); // &lt;a href=&quot;x&quot;&gt;
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** JSON that is safe inside a `<script>` element: no `<`, `>`, `&`, U+2028, U+2029. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function displayPath(path: string): string {
  return "/" + path.replace(/^\/+/, "");
}

/** A relative link from the root to a path, each segment percent-encoded. */
function pathHref(path: string): string {
  const segments = path.replace(/^\/+/, "").split("/");
  return "./" + segments.map(encodeURIComponent).join("/");
}

function nonceAttr(nonce: string | undefined): string {
  return nonce === undefined ? "" : ` nonce="${escapeHtml(nonce)}"`;
}

function head(title: string, style: string, nonce: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style${nonceAttr(nonce)}>${style}</style>
</head>
`;
}

/**
 * Builds a Content-Security-Policy for both pages, allowing their inline
 * script and style by nonce and network access to the same origin only.
 *
 * @param nonce The nonce given to {@linkcode renderStreamPage} or {@linkcode renderIndexPage}.
 * @returns The header value.
 *
 * @example Usage
 * ```ts
 * import { pageContentSecurityPolicy } from "./view_page.ts";
 * const csp = pageContentSecurityPolicy("r4nd0m");
 * console.log(csp.includes("script-src 'nonce-r4nd0m'")); // true
 * ```
 */
export function pageContentSecurityPolicy(nonce: string): string {
  const source = `'nonce-${nonce}'`;
  return [
    "default-src 'none'",
    `script-src ${source}`,
    `style-src ${source}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

function tokenForm(): string {
  return `<form id="token-form" class="token-row" aria-describedby="token-help">
<label>Token <input id="token" data-testid="token" type="password" autocomplete="off" spellcheck="false"></label>
<button type="submit" id="token-apply" data-testid="token-apply">Reconnect</button>
</form>
<p id="token-help" class="muted">Sent as <code>?token=</code> on the stream and as a Bearer token when publishing.</p>
`;
}

function publishSection(): string {
  return `<section aria-labelledby="publish-heading">
<h2 id="publish-heading">Publish</h2>
<form id="publish-form" data-testid="publish-form">
<label for="publish-data">Event data</label>
<textarea id="publish-data" data-testid="publish-data" name="data" required aria-describedby="publish-help"></textarea>
<div class="bar"><button type="submit" id="publish-button" data-testid="publish-button">Publish</button>
<span id="publish-help" class="muted">Ctrl+Enter publishes too.</span></div>
<output id="publish-result" data-testid="publish-result" role="status" aria-live="polite"></output>
</form>
</section>
`;
}

/**
 * Renders the live view of one stream: a page that subscribes to the same
 * path over SSE with the client module (inlined first, as the global
 * `wsevent`), lists events newest first (at most
 * {@linkcode VIEW_MAX_ROWS} rows), shows the connection state, the last
 * event id and the rate, and offers pause, clear and, when allowed, a
 * publish box. Elements carry ids equal to their `data-testid`: `state`,
 * `last-id`, `rate`, `events` (rows: `event-row`), `publish-data`,
 * `publish-button`, `publish-result`.
 *
 * @param options What to show; see {@linkcode StreamPageOptions}.
 * @returns A complete HTML document.
 *
 * @example Usage
 * ```ts
 * import { renderStreamPage } from "./view_page.ts";
 * const html = renderStreamPage({ path: "events", publishAllowed: true, tokenRequired: false });
 * console.log(html.includes('id="publish-data"')); // true
 * ```
 */
export function renderStreamPage(options: StreamPageOptions): string {
  const path = displayPath(options.path);
  const title = options.title ?? `wsevent: ${path}`;
  const depth = path.split("/").length - 2;
  const home = depth > 0 ? "../".repeat(depth) : "./";
  const config = {
    path,
    maxRows: VIEW_MAX_ROWS,
    publishAllowed: options.publishAllowed,
    tokenRequired: options.tokenRequired,
  };
  const shownPath = escapeHtml(path);
  const token = options.tokenRequired ? tokenForm() : "";
  const publish = options.publishAllowed ? publishSection() : "";
  const nonce = nonceAttr(options.nonce);
  return head(title, VIEW_PAGE_STYLE, options.nonce) + `<body>
<main>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="muted">Live view of the stream <code>${shownPath}</code>. <a href="${home}">All streams</a></p>
</header>
<div class="status" role="status" aria-live="polite" aria-atomic="true">
<span class="sr-only">Connection:</span>
<span id="state" data-testid="state" data-state="connecting">Connecting</span>
<span id="state-detail" data-testid="state-detail"></span>
</div>
<div class="layout">
<div class="side">
${statsList()}${token}<div class="bar" role="group" aria-label="List controls">
<button type="button" id="pause" data-testid="pause" aria-pressed="false">Pause</button>
<button type="button" id="clear" data-testid="clear">Clear</button>
</div>
${publish}<details>
<summary>Subscribe from a terminal</summary>
<pre><code id="curl-hint">curl -N -H 'Accept: text/event-stream' ${shownPath}</code></pre>
</details>
</div>
<section class="list" aria-labelledby="events-heading">
<h2 id="events-heading">Events, newest first</h2>
<ol id="events" data-testid="events" data-max-rows="${VIEW_MAX_ROWS}"></ol>
</section>
</div>
<noscript><p>This page needs JavaScript to show the stream live.</p></noscript>
</main>
<script type="application/json" id="wsevent-config">${
    scriptJson(config)
  }</script>
<script${nonce}>${CLIENT_SCRIPT}</script>
<script${nonce}>${VIEW_PAGE_SCRIPT}</script>
</body>
</html>
`;
}

function statsList(): string {
  return `<dl class="stats">
<div class="wide"><dt>Last event id</dt><dd id="last-id" data-testid="last-id" class="mono">none yet</dd></div>
<div><dt>Events per second</dt><dd id="rate" data-testid="rate">0.0</dd></div>
<div><dt>Received</dt><dd id="received" data-testid="received">0</dd></div>
<div><dt>Rows shown (max ${VIEW_MAX_ROWS})</dt><dd id="shown" data-testid="shown">0</dd></div>
<div><dt>Gaps</dt><dd id="gaps" data-testid="gaps">0</dd></div>
<div class="held"><dt>Arrived while paused</dt><dd id="held" data-testid="held">0</dd></div>
</dl>
`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function upstreamCell(upstream: IndexPathInfo["upstream"]): string {
  if (upstream === undefined) return `<span class="muted">none (origin)</span>`;
  const state = upstream.connected
    ? `<span class="up" data-testid="upstream-state">connected</span>`
    : `<span class="down" data-testid="upstream-state">disconnected</span>`;
  return `<code>${escapeHtml(upstream.url)}</code> ${state}, ` +
    `${upstream.reconnects} reconnect${upstream.reconnects === 1 ? "" : "s"}`;
}

function pathRow(info: IndexPathInfo): string {
  const path = displayPath(info.path);
  const { websocket, sse } = info.subscribers;
  return `<tr data-testid="path-row" data-path="${escapeHtml(path)}">
<td data-label="Path"><a href="${escapeHtml(pathHref(info.path))}">${
    escapeHtml(path)
  }</a></td>
<td data-label="Subscribers" class="num">${
    websocket + sse
  } (WebSocket ${websocket}, SSE ${sse})</td>
<td data-label="Buffer" class="num">${info.buffered} / ${info.capacity} events, ${
    formatBytes(info.bufferedBytes)
  }</td>
<td data-label="Upstream">${upstreamCell(info.upstream)}</td>
</tr>
`;
}

/**
 * Renders the index page of an instance: its paths with subscribers by
 * transport, replay buffer fill and upstream state, with links to each live
 * view, to `/metrics` and to `/healthz`.
 *
 * @param info What the instance serves; see {@linkcode IndexInfo}.
 * @param options See {@linkcode IndexPageOptions}.
 * @returns A complete HTML document.
 *
 * @example Usage
 * ```ts
 * import { renderIndexPage } from "./view_page.ts";
 * const html = renderIndexPage({
 *   version: "0.1.0",
 *   paths: [{ path: "events", subscribers: { websocket: 1, sse: 2 }, buffered: 10, capacity: 1000, bufferedBytes: 420 }],
 * });
 * console.log(html.includes('href="./events"')); // true
 * ```
 */
export function renderIndexPage(
  info: IndexInfo,
  options: IndexPageOptions = {},
): string {
  const rows = info.paths.length === 0
    ? `<p data-testid="no-paths">This instance serves no stream.</p>\n`
    : `<div class="table-wrap"><table data-testid="paths">
<caption class="sr-only">Streams served by this instance</caption>
<thead><tr><th scope="col">Stream</th><th scope="col">Subscribers</th><th scope="col">Replay buffer</th><th scope="col">Upstream</th></tr></thead>
<tbody>
${info.paths.map(pathRow).join("")}</tbody>
</table></div>
`;
  return head("wsevent", INDEX_PAGE_STYLE, options.nonce) + `<body>
<main>
<header>
<h1>wsevent</h1>
<p class="muted">Version <span data-testid="version">${
    escapeHtml(info.version)
  }</span>. Open a stream for its live view; reload this page for fresh counts.</p>
</header>
<nav aria-label="Instance"><ul>
<li><a href="./metrics" data-testid="metrics-link">Metrics</a></li>
<li><a href="./healthz">Health</a></li>
</ul></nav>
<h2>Streams</h2>
${rows}</main>
</body>
</html>
`;
}
