/**
 * The browser script of the live view, kept as one constant text so that a
 * Content-Security-Policy can allow it by nonce or by hash. It reads its
 * settings from the JSON block `#wsevent-config` and touches event data only
 * through `textContent`. It subscribes and publishes with the client module
 * (`src/client.ts`), which the page loads first as the global `wsevent`
 * (see `_client_script.ts`): the page has no reconnect or resume of its own.
 *
 * @module
 */

/** Most event rows the live view keeps in the page; older rows are removed. */
export const VIEW_MAX_ROWS = 500;

/**
 * The inline script of the live view. It holds no backtick and no `</script`,
 * and it does not change with the options, so its hash is stable.
 */
export const VIEW_PAGE_SCRIPT: string = `(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("wsevent-config").textContent || "{}");
  const MAX_ROWS = cfg.maxRows > 0 ? cfg.maxRows : 500;
  const MAX_DATA_CHARS = 4000;
  const GAP_HOLD_MS = 5000;
  const RATE_BUCKETS = 5;
  const LABELS = {
    connecting: "Connecting",
    live: "Live",
    reconnecting: "Reconnecting",
    gap: "Live, after a gap",
    expired: "Token expired",
  };
  const ui = {
    state: $("state"), detail: $("state-detail"), lastId: $("last-id"),
    rate: $("rate"), received: $("received"), shown: $("shown"),
    gaps: $("gaps"), held: $("held"), list: $("events"),
    pause: $("pause"), clear: $("clear"), token: $("token"),
    tokenForm: $("token-form"), form: $("publish-form"),
    text: $("publish-data"), send: $("publish-button"),
    result: $("publish-result"), curl: $("curl-hint"),
  };
  let controller = null;
  let lastId = "";
  let connState = "connecting";
  let shownState = "";
  let detail = "";
  let gapUntil = 0;
  let gapTimer = 0;
  let paused = false;
  let heldCount = 0;
  let pending = [];
  let flushScheduled = false;
  let received = 0;
  let gaps = 0;
  let tickCount = 0;
  let tickStart = performance.now();
  const buckets = [];
  const mine = new Set();

  // A token in the page address (/events?token=...) fills the token field;
  // it is then taken out of the address bar so it is not shared by copy.
  const pageToken = new URLSearchParams(location.search).get("token") || "";
  if (pageToken) {
    if (ui.token) ui.token.value = pageToken;
    history.replaceState(null, "", location.pathname);
  }
  const tokenValue = () => (ui.token ? ui.token.value.trim() : pageToken);

  // Absolute, so that the client needs no page location of its own.
  const streamUrl = location.origin + location.pathname;

  function render() {
    const now = Date.now();
    const value = connState === "live" && now < gapUntil ? "gap" : connState;
    ui.state.dataset.state = value;
    if (value !== shownState) {
      shownState = value;
      ui.state.textContent = LABELS[value];
    }
    if (ui.detail.textContent !== detail) ui.detail.textContent = detail;
    clearTimeout(gapTimer);
    if (value === "gap") gapTimer = setTimeout(endGap, gapUntil - now + 10);
  }

  function endGap() {
    if (connState === "live") detail = "";
    render();
  }

  function setState(value, why) {
    connState = value;
    detail = why || "";
    render();
  }

  // Starts (or restarts, with the token field's current value) the
  // subscription; the client reconnects by itself and resumes after lastId.
  function connect() {
    if (controller) controller.abort();
    const ctl = new AbortController();
    controller = ctl;
    setState(lastId ? "reconnecting" : "connecting", "");
    const token = tokenValue();
    const events = wsevent.subscribe(streamUrl, {
      token: token || undefined,
      lastEventId: lastId || undefined,
      signal: ctl.signal,
      onGap,
      onState(state, why) {
        if (ctl.signal.aborted) return;
        if (state === "open") setState("live", "");
        else if (state === "closed") {
          const refused = /answered 40[13]\\b/.test(why) && cfg.tokenRequired;
          setState("reconnecting", "Connection lost: " + why.replace(/^upstream \\S+ /, "") +
            "; it resumes after the last id." + (refused ? " Check the token." : ""));
        }
      },
    });
    (async () => {
      for await (const ev of events) {
        if (typeof ev.data === "string") onEvent("message", ev.id, ev.data);
        else onEvent("message", ev.id, "[binary, " + ev.data.byteLength + " bytes]");
      }
    })().catch((err) => {
      if (ctl.signal.aborted) return;
      // The server ended the stream at the token's expiry: the same token
      // would be refused, so wait for a fresh one (the token field resumes).
      if (err instanceof wsevent.TokenExpiredError) {
        setState("expired", "The token expired; enter a fresh token to resume after the last id.");
      } else {
        setState("reconnecting", String(err && err.message ? err.message : err));
      }
    });
  }

  function onEvent(kind, id, data) {
    received++;
    tickCount++;
    if (id) {
      lastId = id;
      ui.lastId.textContent = id;
    }
    enqueue({ kind, id, data, time: new Date() });
  }

  function onGap(info) {
    const after = typeof info.lastEventId === "string" ? info.lastEventId : "";
    const reason = typeof info.reason === "string" ? info.reason : "unknown";
    gaps++;
    ui.gaps.textContent = String(gaps);
    gapUntil = Date.now() + GAP_HOLD_MS;
    detail = "Events after " + (after || "the start") + " could not be replayed: " + reason + ".";
    render();
    enqueue({ kind: "gap", id: after, data: "Gap: events after " + (after || "the start") +
      " could not be replayed (" + reason + ")", time: new Date() });
  }

  function enqueue(item) {
    pending.push(item);
    if (pending.length > MAX_ROWS) pending.shift();
    if (paused) heldCount++;
    else scheduleFlush();
  }

  function scheduleFlush() {
    if (flushScheduled) return;
    flushScheduled = true;
    if (document.hidden) setTimeout(flush, 1000);
    else requestAnimationFrame(flush);
  }

  function makeRow(item) {
    const li = document.createElement("li");
    li.className = "row " + item.kind;
    li.dataset.testid = "event-row";
    li.dataset.kind = item.kind;
    if (item.id) li.dataset.id = item.id;
    if (item.kind === "message" && mine.has(item.id)) {
      li.classList.add("mine");
      li.dataset.mine = "true";
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = item.kind === "message" ? item.id || "(no id)" : item.kind;
    const time = document.createElement("time");
    time.dateTime = item.time.toISOString();
    time.textContent = item.time.toLocaleTimeString();
    meta.append(id, time);
    const pre = document.createElement("pre");
    pre.className = "data";
    let text = item.data.endsWith("\\n") ? item.data.slice(0, -1) : item.data;
    if (text.length > MAX_DATA_CHARS) {
      text = text.slice(0, MAX_DATA_CHARS) + " [" + (text.length - MAX_DATA_CHARS) + " more characters]";
    }
    pre.textContent = text;
    li.append(meta, pre);
    return li;
  }

  function flush() {
    flushScheduled = false;
    if (paused || pending.length === 0) return;
    const fragment = document.createDocumentFragment();
    for (let i = pending.length - 1; i >= 0; i--) fragment.append(makeRow(pending[i]));
    pending = [];
    ui.list.prepend(fragment);
    while (ui.list.childElementCount > MAX_ROWS) ui.list.lastElementChild.remove();
    ui.shown.textContent = String(ui.list.childElementCount);
    ui.received.textContent = String(received);
  }

  function tick() {
    const now = performance.now();
    buckets.push([tickCount, now - tickStart]);
    if (buckets.length > RATE_BUCKETS) buckets.shift();
    tickCount = 0;
    tickStart = now;
    let n = 0;
    let ms = 0;
    for (const [count, span] of buckets) {
      n += count;
      ms += span;
    }
    const rate = ms > 0 ? (n * 1000) / ms : 0;
    ui.rate.textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
    ui.received.textContent = String(received);
    ui.held.textContent = String(heldCount);
  }

  function togglePause() {
    paused = !paused;
    ui.pause.setAttribute("aria-pressed", String(paused));
    ui.pause.textContent = paused ? "Resume" : "Pause";
    document.body.classList.toggle("paused", paused);
    if (!paused) {
      if (heldCount > pending.length) {
        const skipped = heldCount - pending.length;
        pending.unshift({ kind: "note", id: "", time: new Date(),
          data: skipped + " events arrived while paused and are not shown." });
      }
      heldCount = 0;
      ui.held.textContent = "0";
      scheduleFlush();
    }
  }

  function clearList() {
    ui.list.textContent = "";
    pending = [];
    heldCount = 0;
    ui.shown.textContent = "0";
    ui.held.textContent = "0";
  }

  async function publish(ev) {
    ev.preventDefault();
    const token = tokenValue();
    ui.send.disabled = true;
    ui.result.dataset.status = "pending";
    ui.result.textContent = "Publishing";
    try {
      const { id } = await wsevent.publish(streamUrl, ui.text.value, { token: token || undefined });
      mine.add(id);
      if (mine.size > 50) mine.delete(mine.values().next().value);
      // The event may have arrived before this answer: mark its row now.
      for (const row of ui.list.querySelectorAll("li[data-id]")) {
        if (row.dataset.id === id) {
          row.classList.add("mine");
          row.dataset.mine = "true";
        }
      }
      ui.result.dataset.status = "ok";
      ui.result.dataset.id = id;
      ui.result.textContent = "Published with id " + id;
      ui.text.value = "";
    } catch (err) {
      ui.result.dataset.status = "error";
      ui.result.textContent = err instanceof wsevent.PublishError
        ? "Error " + err.status + (err.code ? " " + err.code : "") + ": " + err.detail
        : "Network error: " + (err && err.message ? err.message : String(err));
    } finally {
      ui.send.disabled = false;
    }
  }

  ui.pause.addEventListener("click", togglePause);
  ui.clear.addEventListener("click", clearList);
  if (ui.tokenForm) {
    ui.tokenForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      connect();
    });
  }
  if (ui.form) {
    ui.form.addEventListener("submit", publish);
    ui.text.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) ui.form.requestSubmit();
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pending.length > 0) scheduleFlush();
  });
  ui.curl.textContent = "curl -N -H 'Accept: text/event-stream' " + location.origin + location.pathname;
  setInterval(tick, 1000);
  connect();
})();
`;
